"""Database rows -> AutoGen objects. The only place that knows how our specs map onto AgentChat."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import ChatAgent, TerminationCondition
from autogen_agentchat.base import Team as AgentChatTeam
from autogen_agentchat.conditions import MaxMessageTermination, TextMentionTermination
from autogen_agentchat.teams import BaseGroupChat, RoundRobinGroupChat
from autogen_core.model_context import BufferedChatCompletionContext, ChatCompletionContext
from autogen_core.tools import BaseTool
from django.conf import settings

from agents.models import Agent, Team
from agents.providers import model_client_for
from tools.registry import autogen_tools

DEFAULT_SYSTEM_MESSAGE = "You are a helpful assistant. Answer clearly and concisely."


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
    )


def spec_for_agent(agent: Agent) -> TeamSpec:
    return TeamSpec(kind=Team.Kind.SINGLE, agents=[agent], label=agent.name, participants=[agent.slug])


def build_agent(agent: Agent) -> AssistantAgent:
    config = agent.model_config
    context: ChatCompletionContext | None = None
    context_messages = config.options.get("context_messages")
    if context_messages:
        # Small local models have small windows: keep only the most recent messages.
        context = BufferedChatCompletionContext(buffer_size=int(context_messages))
    tools: list[BaseTool[Any, Any] | Callable[..., Any] | Callable[..., Awaitable[Any]]] = list(
        autogen_tools(agent.tool_names)
    )
    return AssistantAgent(
        name=agent.slug,
        description=agent.description,
        system_message=agent.system_message or DEFAULT_SYSTEM_MESSAGE,
        model_client=model_client_for(config),
        tools=tools or None,
        reflect_on_tool_use=bool(tools),
        model_client_stream=True,
        model_context=context,
    )


def build_termination(spec: TeamSpec) -> TerminationCondition:
    condition: TerminationCondition = MaxMessageTermination(settings.LODESTONE_RUN_MAX_MESSAGES)
    if spec.max_messages:
        condition = condition | MaxMessageTermination(spec.max_messages)
    if spec.stop_word:
        condition = condition | TextMentionTermination(spec.stop_word)
    return condition


def build_team(spec: TeamSpec) -> BaseGroupChat:
    participants: list[ChatAgent | AgentChatTeam] = [build_agent(agent) for agent in spec.agents]
    if spec.kind == Team.Kind.SINGLE:
        # One agent answers once per user message (tool calls happen inside its turn).
        return RoundRobinGroupChat(participants[:1], termination_condition=build_termination(spec), max_turns=1)
    if spec.kind == Team.Kind.ROUND_ROBIN:
        return RoundRobinGroupChat(participants, termination_condition=build_termination(spec))
    raise ValueError(f"Unsupported team kind {spec.kind!r}.")
