"""Database rows -> AutoGen objects. The only place that knows how our specs map onto AgentChat."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from autogen_agentchat.agents import AssistantAgent, UserProxyAgent
from autogen_agentchat.base import ChatAgent, TerminationCondition
from autogen_agentchat.base import Team as AgentChatTeam
from autogen_agentchat.conditions import (
    HandoffTermination,
    MaxMessageTermination,
    TimeoutTermination,
    TokenUsageTermination,
)
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat, SelectorGroupChat, Swarm
from autogen_agentchat.teams._group_chat._selector_group_chat import SelectorFuncType
from autogen_core import CancellationToken
from autogen_core.memory import Memory
from autogen_core.model_context import BufferedChatCompletionContext, ChatCompletionContext
from autogen_core.tools import BaseTool
from django.conf import settings

from agents.magentic import LedgerMagenticOneGroupChat
from agents.models import Agent, ModelConfig, Team
from agents.providers import model_client_for
from agents.terminations import StopWordTermination
from tools.code_executor import CODE_EXECUTOR_PRESET, build_code_executor_agent
from tools.runtime import ToolSpec, governed_tools
from tools.selectors import granted_tool_specs

logger = logging.getLogger(__name__)

DEFAULT_SYSTEM_MESSAGE = "You are a helpful assistant. Answer clearly and concisely."
# AutoGen's own default selector prompt (fields: {roles}, {participants}, {history}).
DEFAULT_SELECTOR_PROMPT: str = inspect.signature(SelectorGroupChat.__init__).parameters["selector_prompt"].default
DEFAULT_MAGENTIC_MAX_TURNS = 20
DEFAULT_MAGENTIC_MAX_STALLS = 3
MAX_SELECTOR_ATTEMPTS = 3
USER_PROXY_PRESET = "user_proxy"
# An agent with this preset is a UserProxyAgent: its turn asks the person in the chat through
# ``input_func(agent, prompt, cancellation_token)``.
InputFunc = Callable[[Agent, str, CancellationToken | None], Awaitable[str]]


@dataclass(frozen=True)
class TeamSpec:
    """Everything needed to build a team, loaded from the database in one go (no lazy queries
    from inside the event loop)."""

    kind: str
    agents: list[Agent]
    max_messages: int | None = None
    stop_word: str = ""
    label: str = ""
    participants: list[str] = field(default_factory=list)
    token_budget: int | None = None
    timeout_seconds: int | None = None
    stop_on_handoff_to_user: bool = False
    selector_prompt: str = ""
    allow_repeated_speaker: bool = False
    max_stalls: int | None = None
    orchestrator: ModelConfig | None = None
    # The conversation's owner: whose memories memory-enabled agents recall and store.
    owner_id: int | None = None
    # Agent id -> its granted, enabled and approved tools (tools.selectors.granted_tool_specs).
    tools: dict[int, list[ToolSpec]] = field(default_factory=dict)

    def orchestrator_config(self) -> ModelConfig:
        """The model that selects speakers or plans: the team's, else the first agent's."""
        return self.orchestrator or self.agents[0].model_config

    def display_names(self) -> dict[str, str]:
        """AutoGen speaker name (the agent's slug) -> the name people see."""
        return {agent.slug: agent.name for agent in self.agents}


def spec_for_team(team: Team) -> TeamSpec:
    agents = [m.agent for m in team.members.select_related("agent__model_config").order_by("position", "id")]
    if not agents:
        raise ValueError(f"Team {team.name!r} has no participants.")
    return TeamSpec(
        kind=team.kind,
        agents=agents,
        max_messages=team.max_messages,
        stop_word=team.stop_word,
        label=team.name,
        participants=[a.slug for a in agents],
        token_budget=team.token_budget,
        timeout_seconds=team.timeout_seconds,
        stop_on_handoff_to_user=team.stop_on_handoff_to_user,
        selector_prompt=team.selector_prompt,
        allow_repeated_speaker=team.allow_repeated_speaker,
        max_stalls=team.max_stalls,
        # Loaded here, in sync code: the event loop must not run lazy queries.
        orchestrator=ModelConfig.objects.get(pk=team.orchestrator_model_id) if team.orchestrator_model_id else None,
        tools=granted_tool_specs(a.pk for a in agents),
    )


def spec_for_agent(agent: Agent) -> TeamSpec:
    return TeamSpec(
        kind=Team.Kind.SINGLE,
        agents=[agent],
        label=agent.name,
        participants=[agent.slug],
        tools=granted_tool_specs([agent.pk]),
    )


def build_agent(
    agent: Agent,
    *,
    handoffs: list[str] | None = None,
    owner_id: int | None = None,
    tool_specs: list[ToolSpec] | None = None,
) -> AssistantAgent:
    """``handoffs``: swarm teams only, the agents (or ``"user"``) this agent may hand off to;
    ``owner_id``: the user whose experiences a memory-enabled agent recalls;
    ``tool_specs``: the agent's granted tools as loaded into the team spec (``None``: load them
    now, which only sync callers may do). ``Agent.tool_names`` is deprecated and not read here."""
    if tool_specs is None:
        tool_specs = granted_tool_specs([agent.pk]).get(agent.pk, [])
    config = agent.model_config
    context: ChatCompletionContext | None = None
    context_messages = config.options.get("context_messages")
    if context_messages:
        # Small local models have small windows: keep only the most recent messages.
        context = BufferedChatCompletionContext(buffer_size=int(context_messages))
    model_client = model_client_for(config)
    if tool_specs and not model_client.model_info.get("function_calling", False):
        # AutoGen refuses tools on such a model (ValueError): the agent answers without them.
        logger.warning(
            "%s: %s",
            agent.slug,
            tools_not_offered_note(config, [spec.name for spec in tool_specs]),
        )
        tool_specs = []
    # Each tool wrapped: grant re-checked, arguments validated, timeout, ToolInvocation recorded.
    tools: list[BaseTool[Any, Any] | Callable[..., Any] | Callable[..., Awaitable[Any]]] = list(
        governed_tools(tool_specs)
    )
    return AssistantAgent(
        name=agent.slug,
        description=agent.description,
        system_message=agent.system_message or DEFAULT_SYSTEM_MESSAGE,
        model_client=model_client,
        tools=tools or None,
        reflect_on_tool_use=bool(tools),
        # Each round offers the tools again (and keeps the prompt's cached prefix); only a model
        # still calling after the last round is asked, without tools, for its answer.
        max_tool_iterations=max(settings.LODESTONE_TOOL_ROUNDS, 1),
        model_client_stream=True,
        model_context=context,
        handoffs=list(handoffs) if handoffs else None,
        memory=_memory(agent, owner_id),
    )


def model_calls_tools(config: ModelConfig) -> bool:
    """Whether agents on ``config`` are offered their tools: its client's ``function_calling``."""
    return bool(model_client_for(config).model_info.get("function_calling", False))


def tools_not_offered_note(config: ModelConfig, tool_names: list[str]) -> str:
    """What to tell people when an agent's granted tools are not offered, because of its model."""
    return (
        f"its tools ({', '.join(tool_names)}) are not offered: the model of {config.name!r} cannot call tools. "
        "A local Qwen model can (LODESTONE_LOCAL_MODEL=qwen2.5-coder-0.5b or qwen2.5-coder-1.5b)."
    )


def _memory(agent: Agent, owner_id: int | None) -> list[Memory] | None:
    if not agent.memory_enabled:
        return None
    from memory.autogen import LodestoneMemory

    return [LodestoneMemory(agent=agent, user_id=owner_id)]


def build_user_proxy(agent: Agent, input_func: InputFunc | None) -> UserProxyAgent:
    if input_func is None:
        # AutoGen's default reads the server's stdin: never that.
        raise ValueError(f"{agent.name} asks the user, which needs a chat to ask in.")

    async def ask(prompt: str, cancellation_token: CancellationToken | None = None) -> str:
        return await input_func(agent, prompt, cancellation_token)

    return UserProxyAgent(name=agent.slug, description=agent.description, input_func=ask)


def build_termination(spec: TeamSpec) -> TerminationCondition:
    condition: TerminationCondition = MaxMessageTermination(settings.LODESTONE_RUN_MAX_MESSAGES)
    if spec.max_messages and spec.kind != Team.Kind.MAGENTIC_ONE:  # Magentic-One: its max turns
        condition = condition | MaxMessageTermination(spec.max_messages)
    if spec.stop_word:
        code_pending = any(agent.preset == CODE_EXECUTOR_PRESET for agent in spec.agents)
        condition = condition | StopWordTermination(spec.stop_word, code_pending=code_pending)
    if spec.token_budget:
        condition = condition | TokenUsageTermination(max_total_token=spec.token_budget)
    if spec.timeout_seconds:
        condition = condition | TimeoutTermination(spec.timeout_seconds)
    if spec.stop_on_handoff_to_user or _hands_off_to_user(spec):
        # A swarm cannot route to "user" (not a participant): a handoff to the user ends the run.
        condition = condition | HandoffTermination(target="user")
    return condition


def _hands_off_to_user(spec: TeamSpec) -> bool:
    return spec.kind == Team.Kind.SWARM and any("user" in (agent.handoffs or []) for agent in spec.agents)


def swarm_handoffs(spec: TeamSpec, agent: Agent) -> list[str]:
    """The agent's handoff targets that exist in this team (or the user), itself excluded."""
    allowed = set(spec.participants) | {"user"}
    return [t for t in (agent.handoffs or []) if t in allowed and t != agent.slug]


def build_team(
    spec: TeamSpec,
    *,
    selector_func: SelectorFuncType | None = None,
    input_func: InputFunc | None = None,
) -> BaseGroupChat:
    """``selector_func``: selector teams, our routing (``None`` leaves speaker selection to the
    model); ``input_func``: how a user proxy agent asks the person in the chat."""
    swarm = spec.kind == Team.Kind.SWARM
    participants: list[ChatAgent | AgentChatTeam] = [
        build_user_proxy(agent, input_func)
        if agent.preset == USER_PROXY_PRESET
        # AutoGen's CodeExecutorAgent, running the previous message's code in our sandbox.
        else build_code_executor_agent(agent, stop_word=spec.stop_word)
        if agent.preset == CODE_EXECUTOR_PRESET
        else build_agent(
            agent,
            handoffs=swarm_handoffs(spec, agent) if swarm else None,
            owner_id=spec.owner_id,
            tool_specs=spec.tools.get(agent.pk, []),
        )
        for agent in spec.agents
    ]
    termination = build_termination(spec)
    if spec.kind == Team.Kind.SINGLE:
        # One agent answers once per user message (tool calls happen inside its turn).
        return RoundRobinGroupChat(participants[:1], termination_condition=termination, max_turns=1)
    if spec.kind == Team.Kind.ROUND_ROBIN:
        return RoundRobinGroupChat(participants, termination_condition=termination)
    if spec.kind == Team.Kind.SELECTOR:
        if len(participants) < 2:
            raise ValueError("A selector team needs at least two agents.")
        return SelectorGroupChat(
            participants,
            model_client=model_client_for(spec.orchestrator_config()),
            termination_condition=termination,
            selector_prompt=spec.selector_prompt or DEFAULT_SELECTOR_PROMPT,
            allow_repeated_speaker=spec.allow_repeated_speaker,
            max_selector_attempts=MAX_SELECTOR_ATTEMPTS,
            selector_func=selector_func,
            emit_team_events=True,  # SelectSpeakerEvent: each routing decision becomes visible
        )
    if spec.kind == Team.Kind.SWARM:
        return Swarm([p for p in participants if isinstance(p, ChatAgent)], termination_condition=termination)
    if spec.kind == Team.Kind.MAGENTIC_ONE:
        agents = [p for p in participants if isinstance(p, ChatAgent)]
        return LedgerMagenticOneGroupChat(
            agents,
            model_client=model_client_for(spec.orchestrator_config()),
            termination_condition=termination,
            # Magentic-One counts its own rounds; max messages doubles as that limit.
            max_turns=spec.max_messages or DEFAULT_MAGENTIC_MAX_TURNS,
            max_stalls=spec.max_stalls or DEFAULT_MAGENTIC_MAX_STALLS,
        )
    raise ValueError(f"Unsupported team kind {spec.kind!r}.")
