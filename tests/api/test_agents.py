"""GET /api/agents/ and GET /api/teams/."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from agents import services as agent_services
from agents.models import ModelConfig, Team
from tests import factories

pytestmark = pytest.mark.django_db


def test_agents_list_never_shows_an_api_key(api: APIClient) -> None:
    config = agent_services.model_config_create(
        name="Cloud", provider=ModelConfig.Provider.OPENAI, model="gpt-4o-mini", api_key="sk-very-secret-key"
    )
    factories.agent(
        config,
        "planner",
        name="Planner",
        description="Plans the work.",
        capabilities=["planning", "writing"],
        tool_names=["calculator"],
    )

    response = api.get("/api/agents/")

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1 and body["next"] is None
    assert body["results"] == [
        {
            "slug": "planner",
            "name": "Planner",
            "description": "Plans the work.",
            "capabilities": ["planning", "writing"],
            "model_config": {"name": "Cloud", "provider": "openai"},
            "tool_names": ["calculator"],
        }
    ]
    text = response.content.decode()
    assert "sk-very-secret-key" not in text
    assert config.api_key_encrypted not in text


def test_agents_list_is_ordered_by_name_and_paginated(api: APIClient) -> None:
    model = factories.replay_model(["x"])
    factories.agent(model, "zed", name="Zed")
    factories.agent(model, "amy", name="Amy")
    factories.agent(model, "max", name="Max")

    names = [a["name"] for a in api.get("/api/agents/").json()["results"]]
    page = api.get("/api/agents/", {"limit": 2, "offset": 2}).json()

    assert names == ["Amy", "Max", "Zed"]
    assert page["count"] == 3 and [a["slug"] for a in page["results"]] == ["zed"]


def test_teams_list_shows_participants_in_speaking_order(api: APIClient) -> None:
    model = factories.replay_model(["x"])
    writer = factories.agent(model, "writer", name="Writer")
    critic = factories.agent(model, "critic", name="Critic")
    agent_services.team_create(
        slug="review",
        name="Review",
        kind=Team.Kind.ROUND_ROBIN,
        description="Write, then criticise.",
        agents=[writer, critic],
        max_messages=3,
        stop_word="APPROVE",
    )
    agent_services.team_create(slug="solo", name="Solo", kind=Team.Kind.SINGLE, agents=[critic], max_messages=2)

    response = api.get("/api/teams/")

    assert response.status_code == 200
    assert response.json()["results"] == [
        {
            "slug": "review",
            "name": "Review",
            "description": "Write, then criticise.",
            "kind": "round_robin",
            "participants": ["writer", "critic"],
            "max_messages": 3,
            "stop_word": "APPROVE",
        },
        {
            "slug": "solo",
            "name": "Solo",
            "description": "",
            "kind": "single",
            "participants": ["critic"],
            "max_messages": 2,
            "stop_word": "",
        },
    ]


@pytest.mark.parametrize("url", ["/api/agents/", "/api/teams/"])
def test_listings_need_authentication(anon: APIClient, url: str) -> None:
    assert anon.get(url).status_code == 401


@pytest.mark.parametrize("url", ["/api/agents/", "/api/teams/"])
def test_listings_are_read_only(api: APIClient, url: str) -> None:
    assert api.post(url, {"slug": "new"}, format="json").status_code == 405
