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


def message_update_fragment(message: dict[str, Any]) -> str:
    """A changed message, swapped in place of the one with its seq (only approval cards change)."""
    if message["type"] != Message.Type.APPROVAL:
        return ""
    return render_to_string("tools/partials/approval_item.html", {"item": message, "oob": True})


def history_items(items: list[dict[str, Any]], run_outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chat items of the page, each failed or cancelled run's outcome attached to the last item of
    that run (``item["run_notice"]``), where the socket would have appended it live."""
    last_of_run: dict[int, dict[str, Any]] = {}
    for item in items:
        if item.get("run_id") is not None:
            last_of_run[item["run_id"]] = item
    result = [dict(item) for item in items]
    index = {id(original): copy for original, copy in zip(items, result, strict=True)}
    for run in run_outcomes:
        owner = last_of_run.get(run["id"])
        if owner is not None:
            index[id(owner)]["run_notice"] = run
    return result


def chunk_fragment(event: dict[str, Any]) -> str:
    return render_to_string("conversations/partials/ws_chunk.html", {"event": event})


def run_fragment(run: dict[str, Any]) -> str:
    return render_to_string("conversations/partials/ws_run.html", {"run": run})


def error_fragment(text: str) -> str:
    return render_to_string("conversations/partials/ws_error.html", {"error": text})
