"""Small builders for test data, all through the services the product uses."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User

from agents import services as agent_services
from agents.models import Agent, ModelConfig, Team
from conversations import services as conversation_services
from conversations.models import Conversation

_counter = 0


def _next() -> int:
    global _counter
    _counter += 1
    return _counter


def user(username: str | None = None, password: str = "pw-Secret-123") -> User:
    username = username or f"user{_next()}"
    return get_user_model().objects.create_user(username=username, password=password)  # type: ignore[return-value]


def staff_user(*permissions: str, username: str | None = None) -> User:
    """A staff user (may open the admin) with exactly these permissions, named ``app.codename``:
    staff status itself grants nothing."""
    from agents.permissions import permissions_named

    staff = user(username)
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    named = list(permissions_named(permissions))
    assert len(named) == len(permissions), f"unknown permission among {permissions}"
    staff.user_permissions.add(*named)
    return staff


def replay_model(responses: list[Any], *, chunk_delay: float = 0.0, name: str | None = None) -> ModelConfig:
    return agent_services.model_config_create(
        name=name or f"replay-{_next()}",
        provider=ModelConfig.Provider.REPLAY,
        options={"responses": responses, "chunk_delay": chunk_delay},
    )


def agent(model_config: ModelConfig, slug: str | None = None, **kwargs: Any) -> Agent:
    slug = slug or f"agent_{_next()}"
    return agent_services.agent_create(
        slug=slug,
        name=kwargs.pop("name", slug.title()),
        description=kwargs.pop("description", f"The {slug} agent."),
        model_config=model_config,
        **kwargs,
    )


def round_robin(agents: list[Agent], *, max_messages: int | None = None, stop_word: str = "") -> Team:
    n = _next()
    return agent_services.team_create(
        slug=f"team-{n}",
        name=f"Team {n}",
        kind=Team.Kind.ROUND_ROBIN,
        agents=agents,
        max_messages=max_messages if max_messages or stop_word else len(agents) + 1,
        stop_word=stop_word,
    )


def conversation(owner: User, *, team: Team | None = None, agent: Agent | None = None) -> Conversation:
    return conversation_services.conversation_create(owner=owner, team=team, agent=agent)
