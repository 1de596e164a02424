"""GET/POST /api/conversations/ and GET /api/conversations/{id}/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from agents.models import Agent, Team
from config.accounts.services import api_key_create
from conversations import services
from conversations.models import Conversation, Run
from tests import factories
from tests.api.conftest import RecordingRunner

pytestmark = pytest.mark.django_db

LIST = "/api/conversations/"


def detail(conversation_id: int) -> str:
    return f"/api/conversations/{conversation_id}/"


# --- list


def test_list_shows_only_the_callers_conversations_paginated(
    api: APIClient, user: User, other_user: User, agent: Agent, team: Team
) -> None:
    first = factories.conversation(user, agent=agent)
    second = factories.conversation(user, team=team)
    factories.conversation(other_user, agent=agent)

    response = api.get(LIST)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 2
    assert {c["id"] for c in body["results"]} == {first.pk, second.pk}
    by_id = {c["id"]: c for c in body["results"]}
    assert by_id[first.pk]["agent"] == {"slug": "helper", "name": "Helper"}
    assert by_id[first.pk]["team"] is None
    assert by_id[second.pk]["team"] == {"slug": team.slug, "name": team.name}
    assert by_id[second.pk]["agent"] is None

    page = api.get(LIST, {"limit": 1}).json()
    assert page["count"] == 2 and len(page["results"]) == 1 and page["next"] is not None
    rest = api.get(page["next"]).json()
    assert len(rest["results"]) == 1 and rest["next"] is None
    assert {page["results"][0]["id"], rest["results"][0]["id"]} == {first.pk, second.pk}


def test_list_is_most_recently_active_first(api: APIClient, user: User, agent: Agent) -> None:
    older = factories.conversation(user, agent=agent)
    newer = factories.conversation(user, agent=agent)
    services.message_append(conversation_id=older.pk, run_id=None, source="user", type="user", content="bump")

    ids = [c["id"] for c in api.get(LIST).json()["results"]]

    assert ids == [older.pk, newer.pk]


def test_list_needs_authentication(anon: APIClient) -> None:
    response = anon.get(LIST)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response["WWW-Authenticate"] == "Token"


# --- create


def test_create_with_an_agent(api: APIClient, user: User, agent: Agent) -> None:
    response = api.post(LIST, {"agent": "helper", "title": "  Questions  "}, format="json")

    assert response.status_code == 201
    conversation = Conversation.objects.get()
    assert conversation.owner == user and conversation.agent == agent and conversation.team is None
    body = response.json()
    assert body["id"] == conversation.pk
    assert body["title"] == "Questions"
    assert body["agent"] == {"slug": "helper", "name": "Helper"}
    assert body["team"] is None
    assert body["last_seq"] == 0
    assert body["active_run"] is None
    assert body["created_at"] and body["updated_at"]


def test_create_with_a_team_gets_a_default_title(api: APIClient, team: Team) -> None:
    response = api.post(LIST, {"team": team.slug}, format="json")

    assert response.status_code == 201
    conversation = Conversation.objects.get()
    assert conversation.team == team
    assert response.json()["title"] == f"Chat with {team.name}"


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"team": "nope"}, {"team": ["There is no team with the slug “nope”."]}),
        ({"agent": "nobody"}, {"agent": ["There is no agent with the slug “nobody”."]}),
        ({"title": "Alone"}, {"detail": ["Choose exactly one team or one agent to talk to."]}),
        ({"title": "x" * 201, "agent": "helper"}, {"title": ["Ensure this field has no more than 200 characters."]}),
    ],
)
def test_create_rejects_bad_input_and_stores_nothing(
    api: APIClient, agent: Agent, payload: dict[str, str], expected: dict[str, list[str]]
) -> None:
    response = api.post(LIST, payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert not Conversation.objects.exists()


def test_create_rejects_both_a_team_and_an_agent(api: APIClient, agent: Agent, team: Team) -> None:
    response = api.post(LIST, {"team": team.slug, "agent": agent.slug}, format="json")

    assert response.status_code == 400
    assert response.json() == {"detail": ["Choose exactly one team or one agent to talk to."]}
    assert not Conversation.objects.exists()


def test_create_rejects_malformed_json(api: APIClient, agent: Agent) -> None:
    response = api.post(LIST, '{"agent": "helper"', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert not Conversation.objects.exists()


def test_create_needs_authentication(anon: APIClient, agent: Agent) -> None:
    response = anon.post(LIST, {"agent": "helper"}, format="json")

    assert response.status_code == 401
    assert not Conversation.objects.exists()


# --- detail


def test_detail_without_a_run(api: APIClient, user: User, team: Team) -> None:
    conversation = factories.conversation(user, team=team)

    response = api.get(detail(conversation.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == conversation.pk
    assert body["title"] == conversation.title
    assert body["team"] == {"slug": team.slug, "name": team.name}
    assert body["agent"] is None
    assert body["last_seq"] == 0
    assert body["active_run"] is None


def test_detail_shows_the_active_run(
    api: APIClient, user: User, agent: Agent, recording_runner: RecordingRunner
) -> None:
    conversation = factories.conversation(user, agent=agent)
    _, run = services.message_post(conversation=conversation, user=user, text="Hello?")

    body = api.get(detail(conversation.pk)).json()

    assert body["last_seq"] == 1
    assert body["active_run"]["id"] == run.pk
    assert body["active_run"]["status"] == "queued"
    assert body["active_run"]["conversation_id"] == conversation.pk

    services.run_finish(run_id=run.pk, status=Run.Status.COMPLETED)
    assert api.get(detail(conversation.pk)).json()["active_run"] is None


def test_detail_of_another_users_conversation_is_not_found(api: APIClient, other_user: User, agent: Agent) -> None:
    theirs = factories.conversation(other_user, agent=agent)

    response = api.get(detail(theirs.pk))

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
    assert api.get(detail(theirs.pk + 1000)).status_code == 404


def test_detail_needs_authentication(anon: APIClient, user: User, agent: Agent) -> None:
    conversation = factories.conversation(user, agent=agent)
    assert anon.get(detail(conversation.pk)).status_code == 401


# --- token authentication


def test_token_authentication(user: User, agent: Agent) -> None:
    conversation = factories.conversation(user, agent=agent)
    _, key = api_key_create(user=user, name="test")
    client = APIClient()

    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get(LIST)
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["results"]] == [conversation.pk]
    created = client.post(LIST, {"agent": agent.slug}, format="json")
    assert created.status_code == 201
    assert Conversation.objects.get(pk=created.json()["id"]).owner == user

    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-key")
    response = client.get(LIST)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid API key (unknown, expired or revoked)."}
    assert response["WWW-Authenticate"] == "Token"
