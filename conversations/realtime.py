"""Realtime events of a conversation: group names, event shapes, publishing after commit.

Every event sent to a conversation's channel group is one of these shapes; consumers forward
them to sockets as JSON, or as HTML fragments for the browser chat:

- ``conversation.message``: a persisted ``Message`` (clients deduplicate by ``seq``);
- ``conversation.message_update``: a message already sent changed (an approval card was answered
  or expired): clients replace the one with that ``seq``;
- ``conversation.chunk``: transient streamed text (``run_id``, ``source``, ``name``, ``text``);
- ``conversation.run``: a run changed status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

if TYPE_CHECKING:
    from conversations.models import Message, Run

MESSAGE = "conversation.message"
MESSAGE_UPDATE = "conversation.message_update"
CHUNK = "conversation.chunk"
RUN = "conversation.run"


def group_name(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def serialize_message(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "seq": message.seq,
        "run_id": message.run_id,
        "source": message.source,
        "type": message.type,
        "content": message.content,
        "payload": message.payload,
        "prompt_tokens": message.prompt_tokens,
        "completion_tokens": message.completion_tokens,
        "latency_ms": message.latency_ms,
        "created_at": message.created_at.isoformat() if message.created_at else None,
    }


def serialize_run(run: Run) -> dict[str, Any]:
    return {
        "id": run.pk,
        "conversation_id": run.conversation_id,
        "status": run.status,
        "error": run.error,
        "stop_reason": run.stop_reason,
        "cancel_requested": run.cancel_requested,
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "created_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
    }


def message_event(message: Message) -> dict[str, Any]:
    return {"type": MESSAGE, "message": serialize_message(message)}


def message_update_event(message: Message) -> dict[str, Any]:
    return {"type": MESSAGE_UPDATE, "message": serialize_message(message)}


def run_event(run: Run) -> dict[str, Any]:
    return {"type": RUN, "run": serialize_run(run)}


def chunk_event(*, run_id: int, source: str, name: str, text: str) -> dict[str, Any]:
    return {"type": CHUNK, "run_id": run_id, "source": source, "name": name, "text": text}


async def publish(conversation_id: int, event: dict[str, Any]) -> None:
    """Send now. Callers in async code call this after their write has committed."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(group_name(conversation_id), event)


def publish_on_commit(conversation_id: int, event: dict[str, Any]) -> None:
    """Send once the current transaction commits, so nobody hears of rolled-back data."""
    transaction.on_commit(lambda: async_to_sync(publish)(conversation_id, event))
