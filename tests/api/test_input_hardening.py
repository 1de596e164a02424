"""Hostile input on the REST API and the pages: a clear 400, never a 500, and nothing stored that
cannot be read back (config/inputs.py, config/rest.py, config/api.py)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from agents.models import Agent
from config import inputs
from conversations import services
from conversations.models import Conversation, Message
from memory import services as memory_services
from memory.models import Experience
from tests import factories

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000
TOO_BIG = "9223372036854775808"  # 2**63: more than SQLite's INTEGER holds
PAGINATED = ["/api/conversations/", "/api/agents/", "/api/teams/", "/api/memory/experiences/", "/api/tools/"]


def post_raw(api: APIClient, path: str, body: str) -> Any:
    return api.post(path, body, content_type="application/json")


# --- The JSON parser


@pytest.mark.parametrize("path", ["/api/conversations/", "/api/memory/search/", "/api/memory/experiences/"])
def test_deeply_nested_json_is_a_400(api: APIClient, path: str) -> None:
    response = post_raw(api, path, '{"text": ' + DEEP + "}")

    assert response.status_code == 400
    assert response.json() == {"detail": f"The JSON is nested more than {inputs.JSON_MAX_DEPTH} levels deep."}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"title": "a\\u0000b", "agent": "helper"}', "NUL character"),
        ('{"title": "a\\udc00b", "agent": "helper"}', "lone UTF-16 surrogate"),
        ('{"\\udc00": 1, "agent": "helper"}', "lone UTF-16 surrogate"),
        ('{"title": NaN, "agent": "helper"}', "NaN is not valid JSON"),
    ],
)
def test_nul_surrogates_and_nan_anywhere_in_a_body_are_a_400(
    api: APIClient, agent: Agent, body: str, reason: str
) -> None:
    response = post_raw(api, "/api/conversations/", body)

    assert response.status_code == 400
    assert reason in response.json()["detail"]
    assert not Conversation.objects.exists()


def test_invalid_utf8_is_a_400(api: APIClient) -> None:
    response = api.post("/api/conversations/", b'{"title": "\xff"}', content_type="application/json")

    assert response.status_code == 400
    assert "not valid UTF-8" in response.json()["detail"]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = '{"a": "' + "[{" * 5000 + '", "b": [[1]]}'

    assert inputs.json_loads(text) == {"a": "[{" * 5000, "b": [[1]]}


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = inputs.JSON_MAX_DEPTH
    assert inputs.json_loads("[" * depth + "]" * depth) is not None
    with pytest.raises(inputs.JSONInputError, match="nested more than"):
        inputs.json_loads("[" * (depth + 1) + "]" * (depth + 1))


def test_only_json_bodies_are_parsed(api: APIClient, agent: Agent) -> None:
    # Form bodies would skip the JSON checks (a JSONField in a form decodes its own JSON).
    response = api.post("/api/conversations/", {"agent": "helper"}, format="multipart")

    assert response.status_code == 415


def test_fields_are_strict_about_types(api: APIClient, agent: Agent) -> None:
    assert post_raw(api, "/api/conversations/", '{"agent": "helper", "title": 0}').status_code == 400
    assert post_raw(api, "/api/memory/search/", '{"query": 0}').json() == {"query": ["Not a valid string."]}
    assert post_raw(api, "/api/memory/search/", '{"query": "x", "k": "5"}').status_code == 400
    assert post_raw(api, "/api/memory/experiences/", '{"text": "x", "shared": "yes"}').status_code == 400
    assert post_raw(api, "/api/memory/experiences/", '{"text": "x", "importance": "0.5"}').status_code == 400
    assert not Experience.objects.exists()


# --- Pagination and the pages' own query parameters


@pytest.mark.parametrize("path", PAGINATED)
@pytest.mark.parametrize(
    "query", [f"limit={TOO_BIG}", f"offset={TOO_BIG}", "offset=null", "limit=0", "offset=-1", "limit=1.5", "limit="]
)
def test_bad_limit_or_offset_is_a_400_on_every_list(api: APIClient, path: str, query: str) -> None:
    response = api.get(f"{path}?{query}")

    assert response.status_code == 400, response.content
    name = query.split("=")[0]
    assert list(response.json()) == [name]
    assert "whole number" in response.json()[name][0]


def test_a_limit_above_the_maximum_gives_the_maximum(api: APIClient, user: User, agent: Agent) -> None:
    for _ in range(3):
        factories.conversation(user, agent=agent)

    page = api.get("/api/conversations/?limit=2147483647&offset=1").json()
    assert page["count"] == 3 and len(page["results"]) == 2
    assert "limit=200" in page["previous"]


def test_messages_after_beyond_the_database_range_is_a_400(api: APIClient, user: User, agent: Agent) -> None:
    conversation = factories.conversation(user, agent=agent)

    response = api.get(f"/api/conversations/{conversation.pk}/messages/?after={TOO_BIG}")
    assert response.status_code == 400 and "after" in response.json()


@pytest.mark.parametrize("value", [TOO_BIG, "-1", "x", ""])
def test_sidebar_and_history_pages_refuse_unbounded_numbers(user: User, agent: Agent, value: str) -> None:
    conversation = factories.conversation(user, agent=agent)
    client = Client()
    client.force_login(user)

    assert client.get(f"/conversations/sidebar/?offset={value}").status_code == 400
    assert client.get(f"/conversations/{conversation.pk}/history/?before={value}").status_code == 400
    assert client.get("/conversations/sidebar/?offset=2147483647").status_code == 200


def test_an_unknown_tool_filter_is_a_400(api: APIClient) -> None:
    response = api.get("/api/tools/invocations/?tool=0")

    assert response.status_code == 400
    assert list(response.json()) == ["tool"]


# --- Memory


@pytest.mark.usefixtures("own_vector_store")
@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        ({"agent": {"$gt": {"$lt": 1}}}, "$gt on 'agent' needs a number"),
        ({"kind": {"$in": [{"x": 1}]}}, "needs a list of strings"),
        ({"kind": None}, "needs a string, number or boolean"),
        ({"kind": {"$regex": "x"}}, "Unknown filter operator"),
        ({"owner": 1}, "Unknown filter fields: owner"),
    ],
)
def test_a_bad_memory_filter_is_a_400_with_the_reason(api: APIClient, filters: dict[str, Any], reason: str) -> None:
    response = api.post("/api/memory/search/", {"query": "anything", "filters": filters}, format="json")

    assert response.status_code == 400, response.content
    assert reason in response.json()["filters"][0]


@pytest.mark.usefixtures("own_vector_store")
@pytest.mark.parametrize("metadata", [{"note": "a\udc00"}, {"a": {"b": ["ok", "x\x00"]}}, {"k\ud800": 1}])
def test_memory_text_and_metadata_that_cannot_be_read_back_are_refused(user: User, metadata: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match=r"NUL|surrogate"):
        memory_services.experience_store(text="A fine memory.", owner=user, metadata=metadata)
    with pytest.raises(ValidationError, match="surrogate"):
        memory_services.experience_store(text="bad \udc00 text", owner=user)
    assert not Experience.objects.exists()


@pytest.mark.usefixtures("own_vector_store")
def test_a_stored_surrogate_still_lists_and_searches(api: APIClient, user: User, other_user: User) -> None:
    # A shared memory stored before the checks existed: every user's list and search must survive it.
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL's jsonb refuses a lone surrogate itself: such a row cannot exist there.")
    experience = memory_services.experience_store(text="The deploy key rotates monthly.", owner=None)
    Experience.objects.filter(pk=experience.pk).update(metadata={"note": "bad \udc00 data"})
    other = APIClient()
    other.force_login(other_user)

    for client in (api, other):
        listed = client.get("/api/memory/experiences/")
        assert listed.status_code == 200
        assert listed.json()["results"][0]["metadata"] == {"note": "bad \ufffd data"}
        found = client.post("/api/memory/search/", {"query": "deploy key"}, format="json")
        assert found.status_code == 200
        assert found.json()[0]["experience"]["metadata"] == {"note": "bad \ufffd data"}


# --- Messages


def test_a_nul_or_surrogate_in_a_message_is_refused_by_the_service(user: User, agent: Agent) -> None:
    conversation = factories.conversation(user, agent=agent)
    for text in ("a\x00b", "a\udc00b"):
        with pytest.raises(ValidationError):
            services.message_post(conversation=conversation, user=user, text=text)
    assert not Message.objects.exists()


def test_a_models_unreadable_output_is_stored_readable(user: User, agent: Agent) -> None:
    conversation = factories.conversation(user, agent=agent)
    message = services.message_append(
        conversation_id=conversation.pk,
        run_id=None,
        source="helper",
        type=Message.Type.TEXT,
        content="odd \udc00 \x00 output",
        payload={"calls": [{"arguments": {"q": "\ud800"}}]},
    )
    message.refresh_from_db()
    assert message.content == "odd \ufffd \ufffd output"
    assert message.payload == {"calls": [{"arguments": {"q": "\ufffd"}}]}


# --- /v1/chat/completions


def api_key_for(user: User) -> str:
    """A key the /v1 endpoint accepts as a bearer token (the one place that knows how keys are made)."""
    from config.accounts.services import api_key_create

    return api_key_create(user=user, name="input tests")[1]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('{"model": "helper", "messages": ' + DEEP + "}", "nested more than"),
        ('{"model": "helper", "messages": [{"role": "user", "content": "hi \\udc00"}]}', "lone UTF-16 surrogate"),
        ('{"model": "helper", "messages": [{"role": "user", "content": "hi \\u0000"}]}', "NUL character"),
    ],
)
def test_v1_refuses_deep_json_nul_and_surrogates_with_a_400(user: User, agent: Agent, body: str, reason: str) -> None:
    client = Client()
    response = client.post(
        "/v1/chat/completions",
        body,
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_key_for(user)}"},
    )

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and reason in error["message"]
    assert not Conversation.objects.exists()
