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

import json
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
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


# The largest event a socket sends, in bytes of JSON as sent (non-ASCII escaped: up to 12 bytes
# for one character). Well under the 1 MiB frame limit common WebSocket clients (`websockets`,
# many proxies) apply: one bigger event would break every reconnect that replays it.
EVENT_MAX_BYTES = 256 * 1024
# When a message is over the limit: its content keeps this many characters, each string of its
# payload the first of these lengths that fits.
_CAPPED_CONTENT_CHARS = EVENT_MAX_BYTES // 32
_CAPPED_STRING_CHARS = (2048, 512, 128, 32)


def _json_size(value: Any) -> int:
    return len(json.dumps(value, cls=DjangoJSONEncoder))


def _cut_strings(value: Any, limit: int) -> Any:
    if isinstance(value, str):
        return value if len(value) <= limit else value[:limit] + "…"
    if isinstance(value, dict):
        return {key: _cut_strings(child, limit) for key, child in value.items()}
    if isinstance(value, list):
        return [_cut_strings(child, limit) for child in value]
    return value


def capped_message(message: dict[str, Any], *, max_bytes: int = EVENT_MAX_BYTES) -> dict[str, Any]:
    """``message`` as one socket event may carry it: unchanged when it fits in ``max_bytes``; else
    with its texts cut and ``"truncated": true``, so the client fetches it whole from
    ``GET /api/conversations/{id}/messages/?after=<seq - 1>&limit=1``."""
    if _json_size(message) <= max_bytes - 64:  # room for the event's own envelope
        return message
    content = _cut_strings(message.get("content", ""), _CAPPED_CONTENT_CHARS)
    for limit in _CAPPED_STRING_CHARS:
        capped = {
            **message,
            "content": content,
            "payload": _cut_strings(message.get("payload"), limit),
            "truncated": True,
        }
        if _json_size(capped) <= max_bytes - 64:
            return capped
    return {**message, "content": content, "payload": {}, "truncated": True}


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


def run_event(run: Run, *, waiting_for_model: int = 0) -> dict[str, Any]:
    """``waiting_for_model``: the run's place in the local model's queue (1 = next), while it waits."""
    serialized = serialize_run(run)
    if waiting_for_model:
        serialized["waiting_for_model"] = waiting_for_model
    return {"type": RUN, "run": serialized}


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
