"""An OpenAI-compatible endpoint for integrations: ``GET /v1/models`` (every team and agent, by slug)
and ``POST /v1/chat/completions`` (streaming as server-sent events, or not).

Authenticated with one of the user's API keys as a bearer token (what the ``openai`` client sends). Each
call is an ordinary conversation of that user — created, posted to and answered through the same
services as the chat — so it shows in the web UI. The request's last message (role ``user``) is the
message posted; the turns before it (``system``, ``user``, ``assistant``) are stored first as the
conversation's history and given to the team as context (``execute_run`` starts the first run with
them as AutoGen task messages), so a multi-turn client keeps its context.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from agents.models import Agent, Team
from config import inputs
from config.accounts.authentication import ApiKeyRefused, api_key_check
from config.accounts.limits import rate_hit, rate_setting
from config.errors import ApplicationError
from conversations import realtime, services
from conversations.models import Conversation, Message, Run

COMPLETION_TIMEOUT_SECONDS = 600


def _error(status: int, message: str, kind: str = "invalid_request_error") -> JsonResponse:
    return JsonResponse({"error": {"message": message, "type": kind, "code": None}}, status=status)


def _authenticate(request: HttpRequest) -> User | JsonResponse:
    """The API key's user, or the answer refusing the call: 401 without a usable key, 429 when the
    client address sent too many bad keys or the user exceeds LODESTONE_RATE_OPENAI."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() not in ("bearer", "token") or not key.strip():
        return _error(401, "Send your API key as `Authorization: Bearer <key>`.", "authentication_error")
    try:
        user = api_key_check(request, key).user
    except ApiKeyRefused as exc:
        return _refusal(exc.status_code, exc.message, exc.wait)
    wait = rate_hit(scope="openai", ident=str(user.pk), rate=rate_setting("LODESTONE_RATE_OPENAI"))
    if wait is not None:
        return _refusal(429, f"Too many requests: try again in {math.ceil(wait)} seconds.", wait)
    return user  # type: ignore[return-value]


def _refusal(status: int, message: str, wait: float | None) -> JsonResponse:
    if wait is None:
        return _error(status, message, "authentication_error")
    response = _error(status, message, "rate_limit_error")
    response["Retry-After"] = str(math.ceil(wait))
    return response


def models_list() -> list[dict[str, Any]]:
    teams = [
        {"id": t.slug, "object": "model", "created": int(t.created_at.timestamp()), "owned_by": "team"}
        for t in Team.objects.all()
    ]
    team_slugs = {t["id"] for t in teams}
    agents = [
        {"id": a.slug, "object": "model", "created": int(a.created_at.timestamp()), "owned_by": "agent"}
        for a in Agent.objects.all()
        if a.slug not in team_slugs
    ]
    return teams + agents


def _open(user: User, model: str, text: str, history: list[tuple[str, str]]) -> Conversation:
    """A new conversation of ``user`` with the team (or agent) named ``model``, holding the earlier
    turns of the request as its history."""
    team = Team.objects.filter(slug=model).first()
    agent = None if team else Agent.objects.filter(slug=model).first()
    if team is None and agent is None:
        raise ApplicationError(f"The model {model!r} does not exist: use a team or agent slug.", status_code=404)
    with transaction.atomic():
        conversation = services.conversation_create(owner=user, team=team, agent=agent, title=f"API: {text[:60]}")
        services.history_append(conversation=conversation, turns=history)
    return conversation


def _post(user: User, conversation: Conversation, text: Any) -> Run:
    _, run = services.message_post(conversation=conversation, user=user, text=text)
    return run


def _answer(run_id: int) -> tuple[Run, str]:
    run = Run.objects.get(pk=run_id)
    texts = list(
        Message.objects.filter(run_id=run_id, type__in=[Message.Type.TEXT, Message.Type.INPUT_REQUEST])
        .order_by("seq")
        .values_list("content", flat=True)
    )
    return run, texts[-1] if texts else ""


def _usage(run: Run) -> dict[str, int]:
    return {
        "prompt_tokens": run.prompt_tokens,
        "completion_tokens": run.completion_tokens,
        "total_tokens": run.prompt_tokens + run.completion_tokens,
    }


def _finish_reason(run: Run) -> str:
    return "stop" if run.status in (Run.Status.COMPLETED, Run.Status.AWAITING_INPUT) else "error"


async def _wait(run_id: int) -> Run:
    deadline = time.monotonic() + COMPLETION_TIMEOUT_SECONDS
    while True:
        run = await Run.objects.aget(pk=run_id)
        if run.status not in (Run.Status.QUEUED, Run.Status.RUNNING) or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.05)


ROLES = ("system", "developer", "user", "assistant")


def _content(message: dict[str, Any], index: int) -> str:
    content = message.get("content")
    if isinstance(content, list):  # content parts: keep the text ones
        content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str) or not content.strip():
        raise ValidationError(f"`messages[{index}].content` is empty: every message needs text.")
    try:
        return services.validate_message_text(content)
    except ValidationError as exc:
        raise ValidationError(f"`messages[{index}].content`: {' '.join(exc.messages)}") from exc


def _history(messages: list[Any]) -> tuple[list[tuple[str, str]], str]:
    """The earlier turns as ``(role, text)`` and the last ``user`` message's text (the one posted)."""
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLES:
            raise ValidationError(
                f"`messages[{index}].role` is {role!r}: use one of system, developer, user, assistant."
            )
        turns.append(("system" if role == "developer" else role, _content(message, index)))
    if not any(role == "user" for role, _ in turns):
        raise ValidationError("`messages` needs a message with role `user`.")
    if turns[-1][0] != "user":
        raise ValidationError("The last message must have role `user`: it is the one the team answers.")
    return turns[:-1], turns[-1][1]


def _parse(request: HttpRequest) -> tuple[str, list[tuple[str, str]], str, bool]:
    try:
        body = inputs.json_loads(request.body or b"{}")
    except inputs.JSONInputError as exc:
        raise ValidationError(f"The body must be JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ValidationError("The body must be a JSON object.")
    model = body.get("model")
    messages = body.get("messages")
    if not isinstance(model, str) or not model:
        raise ValidationError("`model` is required: a team or agent slug (GET /v1/models).")
    if not isinstance(messages, list) or not messages:
        raise ValidationError("`messages` must be a non-empty list.")
    history, text = _history(messages)
    return model, history, text, bool(body.get("stream", False))


@csrf_exempt
async def models_view(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return _error(405, "Use GET.")
    refused = await sync_to_async(_authenticate)(request)
    if isinstance(refused, JsonResponse):
        return refused
    return JsonResponse({"object": "list", "data": await sync_to_async(models_list)()})


@csrf_exempt
async def chat_completions_view(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    if request.method != "POST":
        return _error(405, "Use POST.")
    user = await sync_to_async(_authenticate)(request)
    if isinstance(user, JsonResponse):
        return user
    try:
        model, history, text, stream = _parse(request)
        layer = get_channel_layer()
        if stream and layer is None:
            return _error(503, "Streaming needs a channel layer.", "server_error")
        conversation = await sync_to_async(_open)(user, model, text, history)
        if not stream:
            return await _complete(conversation, await sync_to_async(_post)(user, conversation, text), model)
        # Listen before posting, so no token of the reply is missed.
        channel = await layer.new_channel()
        await layer.group_add(realtime.group_name(conversation.pk), channel)
        run = await sync_to_async(_post)(user, conversation, text)
    except ValidationError as exc:
        return _error(400, " ".join(exc.messages))
    except ApplicationError as exc:
        return _error(exc.status_code, exc.message)
    response = StreamingHttpResponse(_sse(layer, channel, conversation, run, model), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Lodestone-Conversation"] = str(conversation.pk)
    return response


async def _complete(conversation: Conversation, run: Run, model: str) -> JsonResponse:
    await _wait(run.pk)
    run, content = await sync_to_async(_answer)(run.pk)
    if run.status == Run.Status.FAILED:
        return _error(502, run.error or "The team failed.", "server_error")
    return JsonResponse(
        {
            "id": f"chatcmpl-{run.pk}",
            "object": "chat.completion",
            "created": int(run.created_at.timestamp()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": _finish_reason(run)}
            ],
            "usage": _usage(run),
            "lodestone": {"conversation_id": conversation.pk, "run_id": run.pk, "status": run.status},
        }
    )


def _chunk(run: Run, model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    body = {
        "id": f"chatcmpl-{run.pk}",
        "object": "chat.completion.chunk",
        "created": int(run.created_at.timestamp()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body)}\n\n"


async def _sse(layer: Any, channel: str, conversation: Conversation, run: Run, model: str) -> AsyncIterator[str]:
    """Tokens as they stream; a message that arrives without streamed tokens is sent whole; the
    stream ends when the run stops running. Several speakers are separated by a blank line."""
    group = realtime.group_name(conversation.pk)
    yield _chunk(run, model, {"role": "assistant", "content": ""})
    streamed: set[str] = set()
    speaker = ""
    try:
        while True:
            try:
                event = await asyncio.wait_for(layer.receive(channel), timeout=1.0)
            except TimeoutError:
                current = await Run.objects.aget(pk=run.pk)
                if current.status in (Run.Status.QUEUED, Run.Status.RUNNING):
                    continue
                break  # the end was published before we listened, or dropped
            kind = event.get("type")
            if kind == realtime.CHUNK and event.get("run_id") == run.pk:
                prefix = "\n\n" if speaker and event["source"] != speaker else ""
                speaker = event["source"]
                streamed.add(speaker)
                yield _chunk(run, model, {"content": prefix + event["text"]})
            elif kind == realtime.MESSAGE:
                message = event["message"]
                if message["run_id"] == run.pk and message["type"] in ("text", "input_request"):
                    if message["source"] not in streamed or message["type"] == "input_request":
                        prefix = "\n\n" if speaker else ""
                        speaker = message["source"]
                        yield _chunk(run, model, {"content": prefix + message["content"]})
                    streamed.discard(message["source"])
            elif (
                kind == realtime.RUN
                and event["run"]["id"] == run.pk
                and event["run"]["status"] not in (Run.Status.QUEUED, Run.Status.RUNNING)
            ):
                break
    finally:
        await layer.group_discard(group, channel)
    final = await Run.objects.aget(pk=run.pk)
    yield _chunk(final, model, {}, _finish_reason(final), usage=_usage(final))
    yield "data: [DONE]\n\n"
