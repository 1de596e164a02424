"""The conversation socket through the real ASGI stack (session auth, origin check, routing)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import User
from django.test import Client

from config.asgi import application
from conversations import services
from conversations.models import Conversation, Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_executor import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)


async def connect(user: User | None, conversation_id: int, query: str = "") -> WebsocketCommunicator:
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if user is not None:
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers.append((b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()))
    path = f"/ws/conversations/{conversation_id}/" + (f"?{query}" if query else "")
    return WebsocketCommunicator(application, path, headers=headers)


async def receive_until(comm: WebsocketCommunicator, done: Any, limit: float = 10.0) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(limit):
        while True:
            event = await comm.receive_json_from(timeout=limit)
            events.append(event)
            if done(event):
                return events


def run_ended(event: dict[str, Any]) -> bool:
    return event["type"] == "conversation.run" and event["run"]["status"] not in ("queued", "running")


async def setup_conversation(responses: list[Any]) -> tuple[User, Conversation]:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(responses)
    a = await sync_to_async(factories.agent)(model, "alpha")
    b = await sync_to_async(factories.agent)(model, "beta")
    team = await sync_to_async(factories.round_robin)([a, b], max_messages=3)
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    return user, conversation


async def test_live_events_stream_chunks_then_messages_in_order(inline_runner: InlineRunner) -> None:
    user, conversation = await setup_conversation(["Hello from alpha.", "And beta agrees."])
    comm = await connect(user, conversation.pk)
    connected, _ = await comm.connect()
    assert connected

    await comm.send_json_to({"type": "message.post", "text": "Hi team"})
    events = await receive_until(comm, run_ended)
    await comm.disconnect()

    messages = [e["message"] for e in events if e["type"] == "conversation.message"]
    assert [(m["seq"], m["source"], m["content"]) for m in messages] == [
        (1, "user", "Hi team"),
        (2, "alpha", "Hello from alpha."),
        (3, "beta", "And beta agrees."),
    ]
    chunks = [e for e in events if e["type"] == "conversation.chunk"]
    assert "".join(c["text"] for c in chunks if c["source"] == "alpha") == "Hello from alpha."
    # Every chunk of alpha arrives before alpha's persisted message.
    alpha_done = next(
        i for i, e in enumerate(events) if e["type"] == "conversation.message" and e["message"]["seq"] == 2
    )
    assert all(
        i < alpha_done for i, e in enumerate(events) if e["type"] == "conversation.chunk" and e["source"] == "alpha"
    )
    statuses = [e["run"]["status"] for e in events if e["type"] == "conversation.run"]
    assert statuses == ["queued", "running", "completed"]


async def test_reconnect_with_after_gets_exactly_the_missed_messages(inline_runner: InlineRunner) -> None:
    user, conversation = await setup_conversation(["One.", "Two."])
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Count")
    await wait_for_run(run.pk)

    comm = await connect(user, conversation.pk, "after=1")
    connected, _ = await comm.connect()
    assert connected
    replayed = [await comm.receive_json_from(timeout=5) for _ in range(3)]
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()
    assert [(e["message"]["seq"], e["message"]["content"]) for e in replayed[:2]] == [(2, "One."), (3, "Two.")]
    # Then the state of the latest run, which a client that was away may have missed.
    assert replayed[2]["type"] == "conversation.run"
    assert (replayed[2]["run"]["id"], replayed[2]["run"]["status"]) == (run.pk, "completed")


async def test_another_user_and_anonymous_are_refused(inline_runner: InlineRunner) -> None:
    _, conversation = await setup_conversation(["x"])
    stranger = await sync_to_async(factories.user)()
    for who in (stranger, None):
        comm = await connect(who, conversation.pk)
        connected, code = await comm.connect()
        assert not connected
        assert code == 4404
    missing = await connect(stranger, 999_999)
    connected, code = await missing.connect()
    assert not connected and code == 4404


async def test_bad_actions_get_clear_errors_and_store_nothing(inline_runner: InlineRunner, settings: Any) -> None:
    settings.LODESTONE_MESSAGE_MAX_CHARS = 10
    user, conversation = await setup_conversation(["x"])
    comm = await connect(user, conversation.pk)
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "message.post", "text": "   "})
    assert await comm.receive_json_from() == {"type": "error", "error": "The message is empty."}
    await comm.send_json_to({"type": "message.post", "text": "x" * 11})
    assert "limit is 10" in (await comm.receive_json_from())["error"]
    await comm.send_to(text_data="{not json")
    assert "JSON parse error" in (await comm.receive_json_from())["error"]
    await comm.disconnect()
    assert await Run.objects.filter(conversation=conversation).acount() == 0


async def test_html_format_sends_htmx_fragments(inline_runner: InlineRunner) -> None:
    user, conversation = await setup_conversation(["<script>alert(1)</script> **bold**", "fine"])
    comm = await connect(user, conversation.pk, "format=html")
    assert (await comm.connect())[0]
    await comm.send_json_to({"type": "message.post", "text": "Hi"})
    fragments: list[str] = []
    async with asyncio.timeout(10):
        while not any('data-run-status="completed"' in f for f in fragments):
            fragments.append(await comm.receive_from(timeout=10))
    await comm.disconnect()
    assert all("hx-swap-oob" in f for f in fragments)
    alpha = next(f for f in fragments if 'data-seq="2"' in f)
    assert "<script>" not in alpha and "<strong>bold</strong>" in alpha


async def test_a_dropped_event_is_healed_from_the_database(inline_runner: InlineRunner) -> None:
    """The channel layer drops events for a socket that falls behind; the database does not."""
    from conversations import realtime

    user, conversation = await setup_conversation(["x"])
    comm = await connect(user, conversation.pk)
    assert (await comm.connect())[0]
    append = sync_to_async(services.message_append)
    first = await append(conversation_id=conversation.pk, run_id=None, source="alpha", type="text", content="lost")
    second = await append(conversation_id=conversation.pk, run_id=None, source="beta", type="text", content="heard")
    # Only the second event reaches the group, as if the first had been dropped.
    await realtime.publish(conversation.pk, realtime.message_event(second))
    received = [await comm.receive_json_from(timeout=5) for _ in range(2)]
    assert await comm.receive_nothing(timeout=0.2)
    await comm.disconnect()
    assert [e["message"]["seq"] for e in received] == [first.seq, second.seq]
    assert [e["message"]["content"] for e in received] == ["lost", "heard"]
