"""POST and GET /api/conversations/{id}/messages/."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.serializers.json import DjangoJSONEncoder
from pytest_django import DjangoCaptureOnCommitCallbacks, Settings
from rest_framework.test import APIClient

from agents.models import Agent
from conversations import services
from conversations.models import Conversation, Message, Run
from conversations.realtime import serialize_message, serialize_run
from tests import factories
from tests.api.conftest import RecordingRunner

pytestmark = pytest.mark.django_db


def messages_url(conversation_id: int) -> str:
    return f"/api/conversations/{conversation_id}/messages/"


def as_json(data: dict[str, Any]) -> dict[str, Any]:
    """What a dict looks like after a trip through the JSON renderer."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def assert_nothing_stored(conversation: Conversation) -> None:
    assert not Message.objects.filter(conversation=conversation).exists()
    assert not Run.objects.filter(conversation=conversation).exists()
    conversation.refresh_from_db()
    assert conversation.last_seq == 0


@pytest.fixture
def conversation(user: User, agent: Agent) -> Conversation:
    return factories.conversation(user, agent=agent)


# --- posting


def test_post_stores_the_message_opens_a_run_and_hands_it_to_the_runner(
    api: APIClient,
    conversation: Conversation,
    recording_runner: RecordingRunner,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(messages_url(conversation.pk), {"text": "  What is 6 times 7?  "}, format="json")

    assert response.status_code == 202
    message = Message.objects.get(conversation=conversation)
    run = Run.objects.get(conversation=conversation)
    assert (message.seq, message.source, message.type, message.content) == (1, "user", "user", "What is 6 times 7?")
    assert message.run == run and run.status == Run.Status.QUEUED
    assert response.json() == {"message": as_json(serialize_message(message)), "run": as_json(serialize_run(run))}
    assert recording_runner.submitted == [run.pk]
    conversation.refresh_from_db()
    assert conversation.last_seq == 1


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"text": ""}, {"text": ["The message is empty."]}),
        ({"text": "   \n\t "}, {"text": ["The message is empty."]}),
        ({}, {"text": ["This field is required."]}),
        ({"text": None}, {"text": ["This field may not be null."]}),
    ],
)
def test_post_rejects_an_empty_message(
    api: APIClient,
    conversation: Conversation,
    recording_runner: RecordingRunner,
    payload: dict[str, Any],
    expected: dict[str, list[str]],
) -> None:
    response = api.post(messages_url(conversation.pk), payload, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert_nothing_stored(conversation)
    assert recording_runner.submitted == []


def test_post_rejects_a_message_over_the_limit(
    api: APIClient, conversation: Conversation, settings: Settings, recording_runner: RecordingRunner
) -> None:
    settings.LODESTONE_MESSAGE_MAX_CHARS = 10

    response = api.post(messages_url(conversation.pk), {"text": "x" * 11}, format="json")

    assert response.status_code == 400
    assert response.json() == {"text": ["The message is 11 characters long; the limit is 10."]}
    assert_nothing_stored(conversation)

    # Exactly at the limit is fine.
    assert api.post(messages_url(conversation.pk), {"text": "x" * 10}, format="json").status_code == 202


def test_post_rejects_malformed_json(api: APIClient, conversation: Conversation) -> None:
    response = api.post(messages_url(conversation.pk), '{"text": "unfinished', content_type="application/json")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")
    assert_nothing_stored(conversation)


def test_post_rejects_json_that_is_not_an_object(api: APIClient, conversation: Conversation) -> None:
    response = api.post(messages_url(conversation.pk), '["hello"]', content_type="application/json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    assert_nothing_stored(conversation)


def test_post_while_a_run_is_active_is_a_conflict(
    api: APIClient, user: User, conversation: Conversation, recording_runner: RecordingRunner
) -> None:
    _, run = services.message_post(conversation=conversation, user=user, text="First")

    response = api.post(messages_url(conversation.pk), {"text": "Second"}, format="json")

    assert response.status_code == 409
    assert response.json() == {"detail": "A reply is still running in this conversation: wait for it or stop it first."}
    assert list(Message.objects.filter(conversation=conversation).values_list("content", flat=True)) == ["First"]
    assert list(Run.objects.filter(conversation=conversation)) == [run]
    conversation.refresh_from_db()
    assert conversation.last_seq == 1

    # Once the run has finished, the conversation takes the next message.
    services.run_finish(run_id=run.pk, status=Run.Status.COMPLETED)
    response = api.post(messages_url(conversation.pk), {"text": "Second"}, format="json")
    assert response.status_code == 202
    assert response.json()["message"]["seq"] == 2


def test_post_to_another_users_conversation_is_not_found(
    other_api: APIClient, conversation: Conversation, recording_runner: RecordingRunner
) -> None:
    response = other_api.post(messages_url(conversation.pk), {"text": "Let me in"}, format="json")

    assert response.status_code == 404
    assert_nothing_stored(conversation)


def test_post_needs_authentication(anon: APIClient, conversation: Conversation) -> None:
    response = anon.post(messages_url(conversation.pk), {"text": "Hi"}, format="json")

    assert response.status_code == 401
    assert_nothing_stored(conversation)


# --- reading


@pytest.fixture
def history(conversation: Conversation) -> list[Message]:
    """Five messages: user, agent, user, tool call, agent."""
    rows = [
        ("user", "user", "Hi", {}),
        ("helper", "text", "Hello.", {}),
        ("user", "user", "6*7?", {}),
        ("helper", "tool_call", "", {"calls": [{"id": "c1", "name": "calculator", "arguments": "{}"}]}),
        ("helper", "text", "42", {}),
    ]
    return [
        services.message_append(
            conversation_id=conversation.pk, run_id=None, source=source, type=type_, content=content, payload=payload
        )
        for source, type_, content, payload in rows
    ]


def test_list_returns_every_message_in_order_in_the_socket_shape(
    api: APIClient, conversation: Conversation, history: list[Message]
) -> None:
    response = api.get(messages_url(conversation.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [m["seq"] for m in body["results"]] == [1, 2, 3, 4, 5]
    assert body["results"] == [as_json(serialize_message(Message.objects.get(pk=m.pk))) for m in history]


def test_list_after_a_seq(api: APIClient, conversation: Conversation, history: list[Message]) -> None:
    body = api.get(messages_url(conversation.pk), {"after": 3}).json()

    assert [(m["seq"], m["content"]) for m in body["results"]] == [(4, ""), (5, "42")]
    assert body["results"][0]["payload"] == {"calls": [{"id": "c1", "name": "calculator", "arguments": "{}"}]}
    assert api.get(messages_url(conversation.pk), {"after": 5}).json() == {"next": None, "results": []}
    assert api.get(messages_url(conversation.pk), {"after": 99}).json()["results"] == []


def test_list_with_a_limit_links_to_the_next_messages(
    api: APIClient, conversation: Conversation, history: list[Message]
) -> None:
    seen: list[int] = []
    url: str | None = messages_url(conversation.pk) + "?after=1&limit=2"
    pages = 0
    while url:
        response = api.get(url)
        assert response.status_code == 200
        body = response.json()
        seen += [m["seq"] for m in body["results"]]
        url = body["next"]
        pages += 1

    assert seen == [2, 3, 4, 5]
    assert pages == 2


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"after": "abc"}, {"after": ["A valid integer is required."]}),
        ({"after": "-1"}, {"after": ["Ensure this value is greater than or equal to 0."]}),
        ({"after": "1.5"}, {"after": ["A valid integer is required."]}),
        ({"limit": "0"}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": "100000"}, {"limit": ["Ensure this value is less than or equal to 500."]}),
    ],
)
def test_list_rejects_a_bad_cursor(
    api: APIClient, conversation: Conversation, params: dict[str, str], expected: dict[str, list[str]]
) -> None:
    response = api.get(messages_url(conversation.pk), params)

    assert response.status_code == 400
    assert response.json() == expected


def test_list_of_another_users_conversation_is_not_found(
    other_api: APIClient, conversation: Conversation, history: list[Message]
) -> None:
    response = other_api.get(messages_url(conversation.pk))

    assert response.status_code == 404
    assert "Hi" not in response.content.decode()


def test_list_needs_authentication(anon: APIClient, conversation: Conversation) -> None:
    assert anon.get(messages_url(conversation.pk)).status_code == 401
