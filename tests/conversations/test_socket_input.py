"""Hostile frames on the conversation socket get an error event and the socket stays open; no
event the socket sends is larger than ``realtime.EVENT_MAX_BYTES``."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from conversations import realtime, services
from conversations.models import Message
from conversations.runner import InlineRunner
from tests.conversations.test_consumer import connect, receive_until, run_ended, setup_conversation

pytestmark = pytest.mark.django_db(transaction=True)

DEEP = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ({"bytes_data": b"\x00\x01binary"}, "not a binary one"),
        ({"text_data": "{not json"}, "JSON parse error"),
        ({"text_data": DEEP}, "nested more than"),
        ({"text_data": '{"type": "message.post", "text": "hi \\udc00"}'}, "lone UTF-16 surrogate"),
        ({"text_data": '{"type": "message.post", "text": "hi \\u0000"}'}, "NUL character"),
        ({"text_data": '{"type": "message.post", "text": NaN}'}, "NaN is not valid JSON"),
    ],
)
async def test_a_bad_frame_gets_an_error_and_the_socket_stays_open(
    inline_runner: InlineRunner, frame: dict[str, object], reason: str
) -> None:
    user, conversation = await setup_conversation(["Hello.", "Bye."])
    comm = await connect(user, conversation.pk)
    assert (await comm.connect())[0]

    await comm.send_to(**frame)  # type: ignore[arg-type]
    event = await comm.receive_json_from()
    assert event["type"] == "error" and reason in event["error"], event

    # Still open and working: a valid action after the bad frame is carried out.
    await comm.send_json_to({"type": "message.post", "text": "Still there?"})
    events = await receive_until(comm, run_ended)
    await comm.disconnect()
    posted = [e["message"] for e in events if e["type"] == "conversation.message"]
    assert (posted[0]["seq"], posted[0]["content"]) == (1, "Still there?")
    contents = [m.content async for m in Message.objects.filter(conversation=conversation)]
    assert "Still there?" in contents and all("\x00" not in c for c in contents)


async def test_a_bad_after_parameter_replays_from_the_start(inline_runner: InlineRunner) -> None:
    user, conversation = await setup_conversation(["Hello."])
    await sync_to_async(services.message_append)(
        conversation_id=conversation.pk, run_id=None, source="user", type=Message.Type.USER, content="first"
    )
    comm = await connect(user, conversation.pk, "after=9223372036854775808")
    assert (await comm.connect())[0]
    assert (await comm.receive_json_from())["message"]["content"] == "first"
    await comm.disconnect()


async def test_a_huge_recalled_card_is_capped_on_every_reconnect(inline_runner: InlineRunner) -> None:
    user, conversation = await setup_conversation(["Hello."])
    # A 100,000-character memory of emoji: 1.2 MB of JSON as sent (each one escaped to 12 bytes).
    huge = "\U0001f600" * 100_000
    recalled = await sync_to_async(services.message_append)(
        conversation_id=conversation.pk,
        run_id=None,
        source="alpha",
        type=Message.Type.MEMORY,
        content="Recalled 1 memory",
        payload={"memories": [{"id": 1, "text": huge, "score": 0.9}]},
    )
    after = await sync_to_async(services.message_append)(
        conversation_id=conversation.pk, run_id=None, source="user", type=Message.Type.USER, content="next"
    )
    assert len(json.dumps(realtime.message_event(recalled))) > 1_000_000

    for query in ("after=0", f"after={recalled.seq - 1}"):
        comm = await connect(user, conversation.pk, query)
        assert (await comm.connect())[0]
        frames = [await comm.receive_from(), await comm.receive_from()]
        await comm.disconnect()
        assert all(len(frame.encode()) <= realtime.EVENT_MAX_BYTES for frame in frames)
        card, following = (json.loads(frame)["message"] for frame in frames)
        assert card["seq"] == recalled.seq and card["truncated"] is True
        assert card["payload"]["memories"][0]["text"].startswith("\U0001f600" * 100)
        assert following["seq"] == after.seq and "truncated" not in following

    # The whole message is one REST call away, as the docs say.
    api = APIClient()
    await sync_to_async(api.force_login)(user)
    page = await sync_to_async(api.get)(
        f"/api/conversations/{conversation.pk}/messages/?after={recalled.seq - 1}&limit=1"
    )
    assert page.json()["results"][0]["payload"]["memories"][0]["text"] == huge


def test_a_small_message_is_sent_unchanged() -> None:
    message = {"seq": 1, "content": "hi", "payload": {"x": "y" * 100}}

    assert realtime.capped_message(message) is message


def test_a_message_of_many_small_strings_still_fits() -> None:
    message = {"seq": 1, "content": "c" * 500_000, "payload": {"items": ["\u00e9" * 30] * 50_000}}

    capped = realtime.capped_message(message)
    assert capped["truncated"] is True
    assert len(json.dumps({"type": realtime.MESSAGE, "message": capped})) <= realtime.EVENT_MAX_BYTES
