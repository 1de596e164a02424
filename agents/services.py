"""Writes for agents, teams and model configs, plus the demo seed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, ModelConfig, Team, TeamMember
from agents.providers.local_models import MODELS, PackagedModel, packaged_model
from tools.code_executor import CODE_EXECUTOR_PRESET, CODER_PRESET
from tools.services import tool_grants_from_names


def model_config_create(
    *,
    name: str,
    provider: str,
    model: str = "",
    base_url: str = "",
    api_key: str = "",
    options: dict[str, Any] | None = None,
) -> ModelConfig:
    config = ModelConfig(name=name, provider=provider, model=model, base_url=base_url, options=options or {})
    if api_key:
        config.set_api_key(api_key)
    config.full_clean()
    config.save()
    return config


def agent_create(
    *,
    slug: str,
    name: str,
    description: str,
    model_config: ModelConfig,
    system_message: str = "",
    capabilities: Sequence[str] = (),
    tool_names: Sequence[str] = (),
    **fields: Any,
) -> Agent:
    """``fields``: further ``Agent`` fields, e.g. ``handoffs``, ``preset``, ``memory_enabled``."""
    agent = Agent(
        **fields,
        slug=slug,
        name=name,
        description=description,
        model_config=model_config,
        system_message=system_message,
        capabilities=list(capabilities),
        tool_names=list(tool_names),
    )
    agent.full_clean()
    agent.save()
    if tool_names:
        # Deprecated field: the tools named here become active grants, which is what the factory reads.
        tool_grants_from_names(agent=agent, names=list(tool_names))
    return agent


@transaction.atomic
def team_create(
    *,
    slug: str,
    name: str,
    kind: str,
    agents: Sequence[Agent],
    description: str = "",
    max_messages: int | None = None,
    stop_word: str = "",
    **fields: Any,
) -> Team:
    """``fields``: further ``Team`` fields (token_budget, timeout_seconds, stop_on_handoff_to_user,
    selector_prompt, allow_repeated_speaker, max_stalls, orchestrator_model)."""
    if not agents:
        raise ValidationError({"participants": "A team needs at least one agent."})
    if kind == Team.Kind.SINGLE and len(agents) != 1:
        raise ValidationError({"participants": "A single-agent team has exactly one agent."})
    if len({a.pk for a in agents}) != len(agents):
        raise ValidationError({"participants": "An agent can join a team only once."})
    team = Team(
        slug=slug,
        name=name,
        kind=kind,
        description=description,
        max_messages=max_messages,
        stop_word=stop_word,
        **fields,
    )
    team.full_clean()
    team.save()
    TeamMember.objects.bulk_create(
        TeamMember(team=team, agent=agent, position=position) for position, agent in enumerate(agents)
    )
    return team


# --- The local model config ----------------------------------------------------------------------

# Names the demo's local config had before it was named after the configured model.
LEGACY_LOCAL_MODEL_NAMES = ("Local SmolLM2-135M",)
LOCAL_MODEL_OPTIONS: dict[str, Any] = {
    "max_tokens": 256,
    "temperature": 0.3,
    # Small models have small windows: only the most recent messages go into an agent's context...
    "context_messages": 6,
    # ...but Magentic-One's ledger prompts and a Qwen model's tool block need more than 2048 tokens.
    "n_ctx": 4096,
}


def local_model_entry(key: str | None = None) -> PackagedModel:
    """The catalogue entry of ``key``, by default of ``LODESTONE_LOCAL_MODEL``."""
    return packaged_model(key or settings.LODESTONE_LOCAL_MODEL)


def local_model_config_name(key: str | None = None) -> str:
    """``"Local <title>"`` of the configured local model, e.g. ``"Local Qwen2.5-Coder-1.5B-Instruct"``."""
    return f"Local {local_model_entry(key).title}"


@transaction.atomic
def local_model_config_ensure() -> ModelConfig:
    """The local config that runs ``LODESTONE_LOCAL_MODEL`` (``model`` empty), named after that model.

    Idempotent. When the setting names another model than before, the earlier config (found by the
    name it was given then) is renamed rather than joined by a second one, so agents on it follow.
    Options missing from an existing config are added; ones it has (an admin's edits) are kept."""
    name = local_model_config_name()
    config = ModelConfig.objects.filter(name=name).first()
    if config is None:
        earlier = {*LEGACY_LOCAL_MODEL_NAMES, *(local_model_config_name(key) for key in MODELS)} - {name}
        config = (
            ModelConfig.objects.filter(name__in=earlier, provider=ModelConfig.Provider.LOCAL, model="")
            .order_by("pk")
            .first()
        )
    if config is None:
        return model_config_create(name=name, provider=ModelConfig.Provider.LOCAL, options=dict(LOCAL_MODEL_OPTIONS))
    options = {**LOCAL_MODEL_OPTIONS, **config.options}
    if (config.name, config.options) != (name, options):
        config.name, config.options = name, options
        config.full_clean()
        config.save()
    return config


# --- The demo -------------------------------------------------------------------------------------

DEMO_TOOLS = ("calculator", "current_time", "memory_search", "memory_store", "python_exec")

ASSISTANT_PROMPT = (
    "You are a helpful assistant. For arithmetic, call calculator. To run Python, call python_exec. For the "
    "date or time, call current_time. When the user tells you something about themselves, call memory_store "
    "with it. When you are given memories, answer from them. Otherwise answer directly, in one or two sentences."
)
# The same assistant on a model that cannot call tools (smollm2-135m): a prompt about tools it
# does not get would only make it pretend to call them.
ASSISTANT_PROMPT_NO_TOOLS = "You are a helpful assistant. Answer in one or two short sentences."
CRITIC_PROMPT = (
    "You review the previous answer. In one or two sentences, say whether it is correct and name one "
    "thing that would make it better."
)
RESEARCHER_PROMPT = (
    "You are a researcher. List the three or four facts the task needs, one short line each. "
    "Do not write the final answer."
)
WRITER_PROMPT = "You are a writer. Using the facts above, write what the user asked for in one short paragraph."
CODER_PROMPT = (
    "You write Python 3 for the user's task: one short ```python code block that prints the result. "
    "It runs in a sandbox without network access, with the standard library only. When you are shown "
    "its output, state the result in one sentence and write no more code."
)
# AutoGen fills in {roles}, {participants} and {history}; shorter than its default, for small models.
SELECTOR_PROMPT = (
    "Choose who speaks next.\n\n{roles}\n\nConversation so far:\n{history}\n\n"
    "The researcher collects facts first, the writer then writes the answer from them, and the critic "
    "reviews what the writer wrote. Reply with one name from {participants} and nothing else."
)

CALCULATOR_PROMPT = "What is 4817 \N{MULTIPLICATION SIGN} 2293?"
MEMORY_PROMPTS = ["My favourite colour is teal.", "What is my favourite colour?"]
PRIMES_PROMPT = "Write and run Python that prints the first 10 primes"


def _demo_agent(*, slug: str, tools: Sequence[str] = (), **fields: Any) -> Agent:
    """``Agent.objects.update_or_create(slug=...)`` with validation before the write, plus grants of
    ``tools`` (added, never revoked: an administrator may have granted more)."""
    agent = Agent.objects.filter(slug=slug).first() or Agent(slug=slug)
    for key, value in fields.items():
        setattr(agent, key, value)
    agent.full_clean()
    agent.save()
    if tools:
        tool_grants_from_names(agent=agent, names=list(tools))
    return agent


def _demo_team(*, slug: str, agents: Sequence[Agent], **fields: Any) -> Team:
    """``Team.objects.update_or_create(slug=...)``, validated, with exactly ``agents`` in this order."""
    team = Team.objects.filter(slug=slug).first() or Team(slug=slug)
    for key, value in fields.items():
        setattr(team, key, value)
    team.full_clean()
    team.save()
    current = list(team.members.order_by("position", "id").values_list("agent_id", flat=True))
    if current != [agent.pk for agent in agents]:
        team.members.all().delete()
        TeamMember.objects.bulk_create(
            TeamMember(team=team, agent=agent, position=position) for position, agent in enumerate(agents)
        )
    return team


@transaction.atomic
def demo_seed() -> dict[str, Any]:
    """The demo, on the configured local model, with no API key: an assistant with tools and memory,
    the assistant and a critic in turn (``duo``), a selector team (researcher, writer, critic), a
    coder and an executor that runs the code in the sandbox, and a Magentic-One team.

    Idempotent with fixed slugs: running it again (``make run`` does each time) updates the demo
    agents and teams to this version (prompts, tools, members, starter prompts) and never duplicates.
    On a model that cannot call tools the assistant keeps its grants, but the factory does not offer
    them (``agents.factory.build_agent``) and its prompt does not mention them."""
    config = local_model_config_ensure()
    tool_calling = local_model_entry().tool_calling
    assistant = _demo_agent(
        slug="assistant",
        name="Assistant",
        description="A general helper that answers directly and uses tools: calculator, clock, memory, Python.",
        system_message=ASSISTANT_PROMPT if tool_calling else ASSISTANT_PROMPT_NO_TOOLS,
        capabilities=["general", "writing", "arithmetic", "memory"],
        model_config=config,
        # Each reply is remembered, and later ones recall it (shown as a "recalled" card).
        memory_enabled=True,
        tools=DEMO_TOOLS,
        starter_prompts=[
            CALCULATOR_PROMPT,
            *MEMORY_PROMPTS,
            "What time is it in Tokyo?",
            "Use python_exec to print 2 ** 100",
        ],
    )
    critic = _demo_agent(
        slug="critic",
        name="Critic",
        description="Reviews the previous answer and suggests one concrete improvement.",
        system_message=CRITIC_PROMPT,
        capabilities=["review", "critique", "feedback"],
        model_config=config,
        starter_prompts=["Review this sentence: The sky is blue because it reflects the sea."],
    )
    researcher = _demo_agent(
        slug="researcher",
        name="Researcher",
        description="Collects the key facts a task needs and lists them briefly.",
        system_message=RESEARCHER_PROMPT,
        capabilities=["research", "facts", "explain", "summary"],
        model_config=config,
        memory_enabled=True,
        preset="researcher",
        starter_prompts=["What are the main causes of the seasons?"],
    )
    writer = _demo_agent(
        slug="writer",
        name="Writer",
        description="Writes the final answer from the researcher's facts.",
        system_message=WRITER_PROMPT,
        capabilities=["writing", "draft", "text"],
        model_config=config,
        starter_prompts=["Write a two-sentence welcome for a new colleague."],
    )
    coder = _demo_agent(
        slug="code_coder",
        name="Coder",
        description="Writes Python code that solves the task and prints the result.",
        system_message=CODER_PROMPT,
        capabilities=["code", "python", "programming"],
        model_config=config,
        preset=CODER_PRESET,
        starter_prompts=[PRIMES_PROMPT],
    )
    executor = _demo_agent(
        slug="code_executor",
        name="Executor",
        description="Runs the coder's Python in the sandbox and reports the output.",
        system_message="",
        capabilities=["code execution", "run"],
        model_config=config,
        preset=CODE_EXECUTOR_PRESET,
        starter_prompts=[],
    )
    duo = _demo_team(
        slug="duo",
        name="Assistant + Critic",
        kind=Team.Kind.ROUND_ROBIN,
        description="The assistant answers, then the critic reviews.",
        agents=[assistant, critic],
        max_messages=3,
        stop_word="",
        starter_prompts=[CALCULATOR_PROMPT, "Give me three tips for naming variables."],
    )
    desk = _demo_team(
        slug="research-desk",
        name="Research desk (selector)",
        kind=Team.Kind.SELECTOR,
        description="A selector team: the researcher collects facts, the writer writes, the critic reviews.",
        agents=[researcher, writer, critic],
        max_messages=4,
        stop_word="",
        selector_prompt=SELECTOR_PROMPT,
        allow_repeated_speaker=False,
        # Questions rather than "write ..." requests: capability routing then starts with the researcher.
        starter_prompts=["Why is the sky blue?", "How does a vaccine train the immune system?"],
    )
    pair = _demo_team(
        slug="code-pair",
        name="Coder + Executor",
        kind=Team.Kind.ROUND_ROBIN,
        description="The coder writes Python, the executor runs it in the sandbox, the coder reads the result.",
        agents=[coder, executor],
        # The task, the code, its output, the coder's answer: a fixed end rather than a stop word
        # that a small model tends to write together with its first block of code.
        max_messages=4,
        stop_word="",
        starter_prompts=[PRIMES_PROMPT, "Write and run Python that prints the 12th Fibonacci number"],
    )
    magentic = _demo_team(
        slug="magentic",
        name="Magentic-One",
        kind=Team.Kind.MAGENTIC_ONE,
        description="An orchestrator plans, keeps a ledger of progress and hands steps to the researcher, "
        "the coder and the executor.",
        agents=[researcher, coder, executor],
        max_messages=12,  # Magentic-One's turns
        max_stalls=2,
        timeout_seconds=600,
        starter_prompts=[f"{PRIMES_PROMPT}, then explain the method in one sentence."],
    )
    return {
        "model_config": config,
        "tool_calling": tool_calling,
        "agents": [assistant, critic, researcher, writer, coder, executor],
        "team": duo,
        "teams": [duo, desk, pair, magentic],
    }


def demo_user_ensure(*, credentials_file: Path, username: str = "demo", is_admin: bool = False) -> tuple[User, str]:
    """The demo login. Its random password is created once and kept in a git-ignored file so
    every `make run` can print it again. An admin (staff and superuser, to edit agents and teams in
    the admin) only when ``is_admin`` (the local settings); otherwise a plain user, who can chat
    with every team and agent, and is demoted if an earlier run made it an admin."""
    if credentials_file.exists():
        password = credentials_file.read_text().strip()
    else:
        password = secrets.token_urlsafe(12)
        credentials_file.parent.mkdir(parents=True, exist_ok=True)
        credentials_file.write_text(password)
        credentials_file.chmod(0o600)
    user, created = User.objects.get_or_create(username=username)
    changed = created or not user.check_password(password)
    if changed:
        user.set_password(password)
    if user.is_staff != is_admin or user.is_superuser != is_admin:
        user.is_staff = user.is_superuser = is_admin
        changed = True
    if changed:
        user.save()
    return user, password
