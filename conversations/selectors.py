"""Reads. Everything a user can see is scoped to its owner here, in one place."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from conversations.models import Conversation, Message, Run
from conversations.realtime import serialize_message, serialize_run


def conversation_list(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Conversation]:
    return Conversation.objects.filter(owner_id=user.pk).select_related("team", "agent")


def conversation_get(*, user: AbstractBaseUser | AnonymousUser, conversation_id: int) -> Conversation:
    """The user's conversation, or 404 — another user's conversation does not exist for them."""
    return get_object_or_404(conversation_list(user=user), pk=conversation_id)


def conversation_owned(*, user_id: int | None, conversation_id: int) -> bool:
    return user_id is not None and Conversation.objects.filter(pk=conversation_id, owner_id=user_id).exists()


def message_list(*, conversation: Conversation, after: int = 0, limit: int | None = None) -> QuerySet[Message]:
    messages = Message.objects.filter(conversation=conversation, seq__gt=after).order_by("seq")
    return messages[:limit] if limit else messages


def messages_after(*, conversation_id: int, after: int) -> list[dict[str, Any]]:
    """Serialized messages with ``seq > after``: what a reconnecting socket missed."""
    return [
        serialize_message(m)
        for m in Message.objects.filter(conversation_id=conversation_id, seq__gt=after).order_by("seq")
    ]


def messages_page(*, conversation_id: int, before: int | None, limit: int) -> tuple[list[dict[str, Any]], bool]:
    """Up to ``limit`` serialized messages just before ``before`` (the newest without it), oldest
    first, and whether older ones exist. A page never starts with tool results whose call is on
    the page before: they are shown folded into that call's card."""
    messages = Message.objects.filter(conversation_id=conversation_id)
    if before is not None:
        messages = messages.filter(seq__lt=before)
    rows = list(messages.order_by("-seq")[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit][::-1]
    while has_more and len(rows) > 1 and rows[0].type == Message.Type.TOOL_RESULT:
        rows.pop(0)
    return [serialize_message(m) for m in rows], has_more


def run_get(*, user: AbstractBaseUser | AnonymousUser, run_id: int) -> Run:
    return get_object_or_404(Run.objects.filter(conversation__owner_id=user.pk), pk=run_id)


def run_active(*, conversation: Conversation) -> Run | None:
    return conversation.runs.filter(status__in=Run.ACTIVE_STATUSES).first()


def run_outcomes(*, conversation: Conversation) -> list[dict[str, Any]]:
    """Failed and cancelled runs of a conversation, oldest first: the chat shows their outcome."""
    runs = conversation.runs.filter(status__in=[Run.Status.FAILED, Run.Status.CANCELLED]).order_by("id")
    return [serialize_run(run) for run in runs]


def run_latest(*, conversation_id: int) -> dict[str, Any] | None:
    """The newest run, serialized: a (re)connecting socket learns the current run state from it."""
    run = Run.objects.filter(conversation_id=conversation_id).order_by("-id").first()
    return serialize_run(run) if run is not None else None


def chat_items(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as the chat shows them: a tool result folds into the card of its call."""
    calls: dict[str, dict[str, Any]] = {}
    items: list[dict[str, Any]] = []
    for message in messages:
        if message["type"] == Message.Type.TOOL_CALL:
            message = {**message, "results": []}
            for call in message["payload"].get("calls", []):
                calls[str(call.get("id"))] = message
            items.append(message)
        elif message["type"] == Message.Type.TOOL_RESULT:
            results = message["payload"].get("results", [])
            owner = calls.get(str(results[0].get("call_id"))) if results else None
            if owner is not None:
                owner["results"].extend({**result, "seq": message["seq"]} for result in results)
            else:
                items.append(message)
        else:
            items.append(message)
    return items
