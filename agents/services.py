"""Writes for agents, teams and model configs, plus the demo seed."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction

from agents.models import Agent, ModelConfig, Team, TeamMember


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
        from tools.services import tool_grants_from_names

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


LOCAL_MODEL_NAME = "Local SmolLM2-135M"


@transaction.atomic
def demo_seed() -> dict[str, Any]:
    """Idempotent: the local model, two agents and a round-robin team that work with no API key."""
    config, _ = ModelConfig.objects.get_or_create(
        name=LOCAL_MODEL_NAME,
        defaults={
            "provider": ModelConfig.Provider.LOCAL,
            "options": {"max_tokens": 200, "temperature": 0.6, "context_messages": 6},
        },
    )
    assistant = Agent.objects.filter(slug="assistant").first() or agent_create(
        slug="assistant",
        name="Assistant",
        description="A general helper that answers questions directly.",
        system_message="You are a helpful assistant. Answer in a few short sentences.",
        capabilities=["general", "writing"],
        model_config=config,
        # The demo shows memory at work: each reply is remembered, later ones recall it.
        memory_enabled=True,
    )
    critic = Agent.objects.filter(slug="critic").first() or agent_create(
        slug="critic",
        name="Critic",
        description="Reviews the previous answer and suggests one concrete improvement.",
        system_message="You review the previous answer. Say in one or two sentences what could be better.",
        capabilities=["review"],
        model_config=config,
    )
    team = Team.objects.filter(slug="duo").first() or team_create(
        slug="duo",
        name="Assistant + Critic",
        kind=Team.Kind.ROUND_ROBIN,
        description="The assistant answers, then the critic reviews.",
        agents=[assistant, critic],
        max_messages=3,
    )
    return {"model_config": config, "agents": [assistant, critic], "team": team}


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
