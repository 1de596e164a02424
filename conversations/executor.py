"""The one run executor: build the team, replay its saved state, stream its events into the
conversation (persisted messages and transient tokens), and end the run in a readable state.

Runners call ``execute_run``; it is safe to call for a run that was cancelled or taken already.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field, replace
from typing import Any

from asgiref.sync import sync_to_async
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    MemoryQueryEvent,
    ModelClientStreamingChunkEvent,
    StopMessage,
    TextMessage,
    ThoughtEvent,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
    ToolCallSummaryMessage,
    UserInputRequestedEvent,
)
from autogen_agentchat.teams import BaseGroupChat
from autogen_core import CancellationToken
from django.conf import settings
from django.db import close_old_connections

from agents.factory import USER_PROXY_PRESET, TeamSpec, build_team, spec_for_agent, spec_for_team
from agents.models import Agent, Team
from agents.providers.model_queue import model_wait_scope
from conversations import manager, realtime, services
from conversations.models import Message, Run
from memory import learning

logger = logging.getLogger(__name__)

# Cancellation tokens of the runs executing in this process, for immediate in-process cancel.
_TOKENS: dict[int, CancellationToken] = {}


def signal_cancel(run_id: int) -> None:
    token = _TOKENS.get(run_id)
    if token is not None:
        token.cancel()


@dataclass
class RunContext:
    run_id: int
    conversation_id: int
    # A HandoffMessage when a swarm resumes after a handoff to the user; the user proxy's message
    # when its question is answered in a new run (after a restart).
    # With the conversation's history first (the earlier turns of an OpenAI request) on its first run.
    task: str | BaseChatMessage | list[BaseChatMessage]
    spec: TeamSpec
    team_state: dict[str, Any] | None
    router: manager.SelectorRouter | None = None  # selector teams: our routing, with its decisions
    # Round-robin and swarm teams: an @mention in the message (who answers next, or why not).
    mention: manager.RoutingDecision | None = None
    last_text: str = ""  # the last thing an agent said: the question a user proxy asks
    # Set when the stream reaches a user proxy's UserInputRequestedEvent: everything said before
    # the question is stored, so the question gets the next seq.
    input_requested: asyncio.Event = field(default_factory=asyncio.Event)
    owner: asyncio.Task[Any] | None = None  # the task executing the run


@dataclass
class MappedEvent:
    type: str
    source: str
    content: str
    payload: dict[str, Any]
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _load_context(run_id: int) -> RunContext | None:
    close_old_connections()
    run = services.run_start(run_id=run_id)
    if run is None:
        return None
    conversation = run.conversation
    spec = spec_for_team(conversation.team) if conversation.team_id else spec_for_agent(conversation.agent)  # type: ignore[arg-type]
    spec = replace(spec, owner_id=conversation.owner_id)  # whose memories the agents recall
    user_message = run.messages.filter(type=Message.Type.USER).order_by("seq").first()
    if user_message is None:
        raise ValueError("The run has no user message to answer.")
    task = manager.task_for(
        spec, conversation_id=conversation.pk, text=user_message.content, answer_to=user_message.payload
    )
    # A plain message (not an answer to a question, not a swarm's resume) may address an agent.
    mention = manager.mention_route(spec, task) if isinstance(task, str) else None
    if mention is not None and mention.agent and spec.kind == Team.Kind.SWARM:
        task = HandoffMessage(source="user", target=mention.agent, content=user_message.content)  # hand it over
    return RunContext(
        run_id=run.pk,
        conversation_id=conversation.pk,
        # Later runs have the history in the saved team state.
        task=manager.with_history(conversation.pk, task) if conversation.team_state is None else task,
        spec=spec,
        mention=mention,
        team_state=conversation.team_state,
    )


def map_event(event: BaseAgentEvent | BaseChatMessage) -> MappedEvent | None:
    """One AutoGen event -> what we persist, or ``None`` for events we do not keep."""
    usage = getattr(event, "models_usage", None)
    tokens = {
        "prompt_tokens": usage.prompt_tokens if usage else 0,
        "completion_tokens": usage.completion_tokens if usage else 0,
    }
    if isinstance(event, TextMessage):
        return MappedEvent(Message.Type.TEXT, event.source, event.content, {}, **tokens)
    if isinstance(event, ToolCallRequestEvent):
        calls = [{"id": c.id, "name": c.name, "arguments": c.arguments} for c in event.content]
        summary = ", ".join(f"{c['name']}({c['arguments']})" for c in calls)
        return MappedEvent(Message.Type.TOOL_CALL, event.source, summary, {"calls": calls}, **tokens)
    if isinstance(event, ToolCallExecutionEvent):
        results = [
            {"call_id": r.call_id, "name": r.name, "content": r.content, "is_error": bool(r.is_error)}
            for r in event.content
        ]
        summary = "\n".join(str(r["content"]) for r in results)
        return MappedEvent(Message.Type.TOOL_RESULT, event.source, summary, {"results": results})
    if isinstance(event, ToolCallSummaryMessage):
        return MappedEvent(Message.Type.TOOL_SUMMARY, event.source, event.content, {})
    if isinstance(event, ThoughtEvent):
        return MappedEvent(Message.Type.THOUGHT, event.source, event.content, {})
    if isinstance(event, HandoffMessage):
        return MappedEvent(Message.Type.HANDOFF, event.source, event.content, {"target": event.target}, **tokens)
    if isinstance(event, StopMessage):
        return MappedEvent(Message.Type.STOP, event.source, event.content, {})
    if isinstance(event, MemoryQueryEvent):
        return map_memory_event(event)
    logger.debug("Not persisting AutoGen event %s", type(event).__name__)
    return None


def readable_error(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    # AutoGen wraps agent failures in a serialised traceback; the last line is the useful one.
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) > 3:
        text = lines[-1]
    return f"The reply failed: {text}"[:1000]


async def _watch(run_id: int, token: CancellationToken) -> None:
    """Observe a cancel requested from another process (API, another server, Celery), and sign
    life (the run's heartbeat) so other processes can tell a live run from one whose worker died."""
    requested = sync_to_async(Run.objects.filter(pk=run_id, cancel_requested=True).exists)
    heartbeat = sync_to_async(services.run_heartbeat)
    beat_at = time.monotonic()
    while not token.is_cancelled():
        await asyncio.sleep(settings.LODESTONE_CANCEL_POLL_SECONDS)
        if await requested():
            token.cancel()
        if time.monotonic() - beat_at >= settings.LODESTONE_RUN_HEARTBEAT_SECONDS:
            beat_at = time.monotonic()
            await heartbeat(run_id=run_id)


async def _publish_run(run: Run, *, waiting_for_model: int = 0) -> None:
    await realtime.publish(run.conversation_id, realtime.run_event(run, waiting_for_model=waiting_for_model))


async def execute_run(run_id: int) -> None:
    try:
        context = await sync_to_async(_load_context)(run_id)
    except Exception as exc:
        logger.exception("Run %s could not start", run_id)
        run = await sync_to_async(services.run_finish)(
            run_id=run_id, status=Run.Status.FAILED, error=readable_error(exc)
        )
        await _publish_run(run)
        return
    if context is None:
        return  # cancelled while queued, or already taken by another worker
    started = await sync_to_async(Run.objects.get)(pk=run_id)
    await _publish_run(started)

    token = CancellationToken()
    _TOKENS[run_id] = token
    watcher = asyncio.create_task(_watch(run_id, token))
    status, error, stop_reason = Run.Status.COMPLETED, "", ""
    try:
        stop_reason = await _stream(context, token)
    except asyncio.CancelledError:
        if token.is_cancelled():
            status, stop_reason = Run.Status.CANCELLED, "Stopped by the user."
            parked = await sync_to_async(services.run_park_paused)(run_id=run_id)
            if parked is not None:  # paused: the run waits for the user, its state kept
                await realtime.publish(context.conversation_id, realtime.message_event(parked[0]))
                await _publish_run(parked[1])
                return
        else:
            # A run waiting for the user's answer stays parked: the answer resumes it in a new run.
            if not await sync_to_async(services.run_input_detach)(run_id=run_id):
                status, error = Run.Status.FAILED, "Interrupted: the server stopped while this reply was running."
                await _end(context, status, error, stop_reason)
            raise
    except Exception as exc:
        logger.warning("Run %s failed: %s", run_id, exc, exc_info=settings.DEBUG)
        status, error = Run.Status.FAILED, readable_error(exc)
    finally:
        watcher.cancel()
        _TOKENS.pop(run_id, None)
    if status == Run.Status.COMPLETED and await sync_to_async(manager.park_if_handed_to_user)(context.run_id):
        # A handoff to the user: the run waits for the answer (the next run takes it).
        await _publish_parked(context)
        return
    await _end(context, status, error, stop_reason)
    if status == Run.Status.COMPLETED:
        # Only once the run is completed (memory checks it): failed and cancelled runs teach nothing.
        await _remember(context)


async def _publish_parked(context: RunContext) -> None:
    request = await Message.objects.filter(run_id=context.run_id, type=Message.Type.INPUT_REQUEST).alatest("seq")
    await realtime.publish(context.conversation_id, realtime.message_event(request))
    await _publish_run(await Run.objects.aget(pk=context.run_id))


async def _ask_user(context: RunContext, agent: Agent, prompt: str, token: CancellationToken | None) -> str:
    """A user proxy's turn: ask in the chat, wait in ``awaiting_input`` for the answer."""
    try:
        await asyncio.wait_for(context.input_requested.wait(), timeout=10)
    except TimeoutError:
        logger.warning("Run %s: asking the user without the stream having caught up", context.run_id)
    context.input_requested.clear()
    parked = await sync_to_async(services.run_request_input)(
        run_id=context.run_id, source=agent.slug, question=context.last_text or prompt, agent_name=agent.name
    )
    if parked is None:
        raise asyncio.CancelledError()
    request, run = parked
    await realtime.publish(context.conversation_id, realtime.message_event(request))
    await _publish_run(run)
    answer_for = sync_to_async(services.answer_for)
    while True:
        answer, waiting = await answer_for(run_id=context.run_id, request_seq=request.seq)
        if answer is not None:
            await _publish_run(await Run.objects.aget(pk=context.run_id))
            return answer
        if context.owner is not None and context.owner.cancelling():
            # The server is stopping: AutoGen waits for this turn before the run's task can end.
            await sync_to_async(services.run_input_detach)(run_id=context.run_id)
            raise asyncio.CancelledError()
        if not waiting or (token is not None and token.is_cancelled()):
            raise asyncio.CancelledError()
        await asyncio.sleep(settings.LODESTONE_INPUT_POLL_SECONDS)


def map_memory_event(event: MemoryQueryEvent) -> MappedEvent:
    """What a memory-enabled agent recalled (``memory.autogen``): the chat's "recalled" card."""
    memories = [
        {
            "id": (item.metadata or {}).get("experience_id"),
            "text": item.content if isinstance(item.content, str) else str(item.content),
            "score": (item.metadata or {}).get("score"),
        }
        for item in event.content
    ]
    count = len(memories)
    content = f"Recalled {count} {'memory' if count == 1 else 'memories'}"
    return MappedEvent(Message.Type.MEMORY, event.source, content, {"memories": memories})


def _model_lane(context: RunContext) -> str:
    """The local model's queue lane of a run: its owner's, so users take turns."""
    return f"user:{context.spec.owner_id}"


async def _remember(context: RunContext) -> None:
    """Memory-enabled agents keep what the completed run taught them (``memory.learning``: learned
    facts, or the verbatim outcome in episodic mode); a memory failure never fails the run."""
    if not any(agent.memory_enabled for agent in context.spec.agents):
        return
    try:
        # The learning model calls queue in the owner's lane too, not in one lane shared by everybody.
        with model_wait_scope(_model_lane(context)):
            await learning.run_remember(run_id=context.run_id)
    except Exception as exc:
        logger.warning("Run %s: storing its experience failed: %s", context.run_id, exc)


async def _end(context: RunContext, status: str, error: str, stop_reason: str) -> None:
    run = await sync_to_async(services.run_finish)(
        run_id=context.run_id, status=status, error=error, stop_reason=stop_reason
    )
    await _publish_run(run)


class ChunkBuffer:
    """Coalesces streamed tokens into at most one event per interval per speaker: the first token
    goes out at once, a fast model's flood becomes a few events a second, a slow model's tokens
    still go out one by one."""

    def __init__(self, context: RunContext, interval: float) -> None:
        self._context = context
        self._names = context.spec.display_names()
        self._interval = interval
        self._source = ""
        self._parts: list[str] = []
        self._last_flush = 0.0

    async def add(self, source: str, text: str) -> None:
        if self._parts and source != self._source:
            await self.flush()
        self._source = source
        self._parts.append(text)
        if time.monotonic() - self._last_flush >= self._interval:
            await self.flush()

    async def flush(self) -> None:
        if not self._parts:
            return
        text, self._parts = "".join(self._parts), []
        self._last_flush = time.monotonic()
        await realtime.publish(
            self._context.conversation_id,
            realtime.chunk_event(
                run_id=self._context.run_id,
                source=self._source,
                name=self._names.get(self._source, self._source),
                text=text,
            ),
        )


async def _stream(context: RunContext, token: CancellationToken) -> str:
    context.router = manager.router_for(context.spec)
    context.owner = asyncio.current_task()

    async def ask(agent: Agent, prompt: str, cancellation_token: CancellationToken | None) -> str:
        return await _ask_user(context, agent, prompt, cancellation_token or token)

    team = build_team(context.spec, selector_func=context.router.select if context.router else None, input_func=ask)
    if context.team_state:
        await team.load_state(context.team_state)
    if context.mention is not None and context.mention.agent and context.spec.kind == Team.Kind.ROUND_ROBIN:
        await manager.address(team, context.spec, context.mention.agent)
    from memory.autogen import MemoryScope, memory_scope

    scope = MemoryScope(
        user_id=context.spec.owner_id,
        conversation_id=context.conversation_id,
        run_id=context.run_id,
        agents={agent.slug: agent.pk for agent in context.spec.agents},
    )
    from tools.runtime import CallContext, call_scope

    calls = CallContext(run_id=context.run_id, conversation_id=context.conversation_id, user_id=context.spec.owner_id)

    async def waiting_for_model(position: int) -> None:
        await _publish_run(await Run.objects.aget(pk=context.run_id), waiting_for_model=position)

    # Who is calling: for the memory tools, for tool grants, approvals and invocation records, and
    # for the local model's queue (one lane per user: nobody's ten runs starve another's one).
    with memory_scope(scope), call_scope(calls), model_wait_scope(_model_lane(context), waiting_for_model):
        stop_reason = await _consume(context, team, token)
    # Saved only when the team completed: after an error AutoGen keeps the failed turn's input in
    # the agent's buffer, and saving that would repeat it in the next prompt. A failed or cancelled
    # run leaves the state of its last stored message, which is consistent.
    final_state = dict(await team.save_state())
    await sync_to_async(_save_state)(context.conversation_id, final_state)
    return stop_reason


async def _consume(context: RunContext, team: BaseGroupChat, token: CancellationToken) -> str:
    append = sync_to_async(services.message_append)
    names = context.spec.display_names()
    last = time.monotonic()
    stop_reason = ""
    chunks = ChunkBuffer(context, settings.LODESTONE_STREAM_FLUSH_SECONDS)
    proxies = {"user", *(a.slug for a in context.spec.agents if a.preset == USER_PROXY_PRESET)}
    history = {m.id for m in context.task} if isinstance(context.task, list) else set()
    if context.mention is not None:  # stored before the reply, like a selector's routing
        routing = manager.routing_event(context.spec, context.mention)
        message = await append(
            conversation_id=context.conversation_id,
            run_id=context.run_id,
            source=routing.source,
            type=routing.type,
            content=routing.content,
            payload={**routing.payload, "agent_name": "Conversation manager"},
        )
        await realtime.publish(context.conversation_id, realtime.message_event(message))
    async for event in team.run_stream(task=context.task, cancellation_token=token):
        if isinstance(event, TaskResult):
            stop_reason = event.stop_reason or ""
            continue
        if isinstance(event, ModelClientStreamingChunkEvent):
            if event.content:
                await chunks.add(event.source, event.content)
            continue
        await chunks.flush()
        if isinstance(event, UserInputRequestedEvent):
            context.input_requested.set()
            continue
        if isinstance(event, TextMessage | HandoffMessage) and event.source in proxies:
            continue  # the task or a user proxy's answer: already stored as the user's message
        if isinstance(event, BaseChatMessage) and event.id in history:
            continue  # the history a client brought along: stored before the run
        mapped = manager.map_team_event(event, context.router) or map_event(event)
        if mapped is None:
            continue
        now = time.monotonic()
        # Saved with every message so a crash loses at most the message in flight.
        state = dict(await team.save_state())
        message = await append(
            conversation_id=context.conversation_id,
            run_id=context.run_id,
            source=mapped.source,
            type=mapped.type,
            content=mapped.content,
            # AutoGen names agents by slug; the chat shows each agent's display name.
            payload={
                **mapped.payload,
                "agent_name": names.get(mapped.source, mapped.source),
                **manager.message_cost(context.spec, mapped.source, mapped.prompt_tokens, mapped.completion_tokens),
            },
            prompt_tokens=mapped.prompt_tokens,
            completion_tokens=mapped.completion_tokens,
            latency_ms=int((now - last) * 1000),
            team_state=state,
        )
        last = now
        if mapped.type == Message.Type.TEXT:
            context.last_text = mapped.content
        await realtime.publish(context.conversation_id, realtime.message_event(message))
    return stop_reason


def _save_state(conversation_id: int, state: dict[str, Any]) -> None:
    from conversations.models import Conversation

    Conversation.objects.filter(pk=conversation_id).update(team_state=state)
