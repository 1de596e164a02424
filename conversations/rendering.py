"""HTML fragments of realtime events for the browser chat (htmx out-of-band swaps).

The page and the socket render messages with the same templates, so a reloaded page looks
exactly like the live one.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string

from conversations.models import Message


def message_fragment(message: dict[str, Any]) -> str:
    template = (
        "conversations/partials/ws_tool_result.html"
        if message["type"] == Message.Type.TOOL_RESULT
        else "conversations/partials/ws_message.html"
    )
    item = {**message, "results": []} if message["type"] == Message.Type.TOOL_CALL else message
    return render_to_string(template, {"item": item})


def chunk_fragment(event: dict[str, Any]) -> str:
    return render_to_string("conversations/partials/ws_chunk.html", {"event": event})


def run_fragment(run: dict[str, Any]) -> str:
    return render_to_string("conversations/partials/ws_run.html", {"run": run})


def error_fragment(text: str) -> str:
    return render_to_string("conversations/partials/ws_error.html", {"error": text})
