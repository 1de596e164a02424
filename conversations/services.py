"""Writes and orchestration for conversations: every adapter (page, HTMX, API, socket, CLI)
comes through here."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, User
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.models import Agent, Team
from config import inputs
from config.accounts.limits import rate_hit, rate_setting
from config.errors import ApplicationError
from conversations import realtime
from conversations.models import Conversation, Message, Run

TITLE_MAX = 200
AUTO_TITLE_MAX = 60


def conversation_create(
    *, owner: User, team: Team | None = None, agent: Agent | None = None, title: str = ""
) -> Conversation:
    if (team is None) == (agent is None):
        raise ValidationError("Choose exactly one team or one agent to talk to.")
    title = (title or "").strip()[:TITLE_MAX]
    if not title:
        title = _placeholder_title(team.name if team else agent.name)  # type: ignore[union-attr]
    return Conversation.objects.create(owner=owner, team=team, agent=agent, title=title)


@transaction.atomic
def conversation_start(
    *, owner: User, team: Team | None = None, agent: Agent | None = None, title: str = "", first_message: str = ""
) -> Conversation:
    """``conversation_create`` and, when ``first_message`` is not blank, ``message_post`` of it (a
    starter prompt on the new-conversation page): both happen or, if the message is refused,
    neither."""
    conversation = conversation_create(owner=owner, team=team, agent=agent, title=title)
    if first_message.strip():
        message_post(conversation=conversation, user=owner, text=first_message)
    return conversation


def _placeholder_title(counterpart_name: str) -> str:
    return f"Chat with {counterpart_name}"


def title_from_text(text: str, limit: int = AUTO_TITLE_MAX) -> str:
    """A conversation's title from its first message: the first line, cut at a word."""
    line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(line) <= limit:
        return line
    cut = line[:limit].rsplit(" ", 1)[0] or line[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _title_from_first_message(conversation: Conversation, text: str) -> None:
    """A conversation started without a title is named after its first message (as chat apps do)."""
    placeholder = _placeholder_title(conversation.counterpart_name)
    if conversation.title == placeholder and not Message.objects.filter(conversation=conversation).exists():
        conversation.title = title_from_text(text) or placeholder
        Conversation.objects.filter(pk=conversation.pk, title=placeholder).update(title=conversation.title)


def _next_seq(conversation_id: int, team_state: dict[str, Any] | None) -> int:
    """Take the next ``seq`` inside the caller's transaction (the row update serialises writers),
    saving the team's state in the same statement."""
    changes: dict[str, Any] = {"last_seq": F("last_seq") + 1, "updated_at": timezone.now()}
    if team_state is not None:
        changes["team_state"] = team_state
    Conversation.objects.filter(pk=conversation_id).update(**changes)
    return Conversation.objects.values_list("last_seq", flat=True).get(pk=conversation_id)


def message_append(
    *,
    conversation_id: int,
    run_id: int | None,
    source: str,
    type: str,
    content: str = "",
    payload: dict[str, Any] | None = None,
    prompt_tokens: int = 0,
    completion_tokens: int = 0,
    latency_ms: int | None = None,
    team_state: dict[str, Any] | None = None,
) -> Message:
    """Store one message with the next ``seq`` (and the team's state as of that message).

    A model's output is stored, not refused: a NUL or lone surrogate in it becomes U+FFFD, so the
    message can always be read back and sent (user text was refused earlier with a reason)."""
    content = inputs.replace_surrogates(content, nul=True)
    payload = inputs.replace_surrogates(payload, nul=True) if payload else payload
    with transaction.atomic():
        seq = _next_seq(conversation_id, team_state)
        message = Message.objects.create(
            conversation_id=conversation_id,
            run_id=run_id,
            seq=seq,
            source=source,
            type=type,
            content=content,
            payload=payload or {},
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_ms=latency_ms,
        )
    return message


HISTORY_SOURCES = {"system": "system", "user": "user", "assistant": "assistant"}


def history_append(*, conversation: Conversation, turns: list[tuple[str, str]]) -> list[Message]:
    """Earlier turns a client brought along (OpenAI ``messages`` before the last one): stored without
    a run, marked ``payload.history``, and given to the team as context by its first run."""
    stored = []
    for role, text in turns:
        if role not in HISTORY_SOURCES:
            raise ValidationError({"role": f"Unknown role {role!r}: use system, user or assistant."})
        stored.append(
            message_append(
                conversation_id=conversation.pk,
                run_id=None,
                source=HISTORY_SOURCES[role],
                type=Message.Type.USER if role == "user" else Message.Type.TEXT,
                content=validate_message_text(text),
                payload={"history": True, "role": role, "agent_name": role.title()},
            )
        )
    return stored


def validate_message_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ValidationError({"text": "Send the message as text."})
    text = text.strip()
    if not text:
        raise ValidationError({"text": "The message is empty."})
    # Every path (page, API, socket, /v1, CLI) stores only text it can read back and send again.
    if problem := inputs.text_problem(text):
        raise ValidationError({"text": f"The message {problem}."})
    limit = settings.LODESTONE_MESSAGE_MAX_CHARS
    if len(text) > limit:
        raise ValidationError({"text": f"The message is {len(text)} characters long; the limit is {limit}."})
    return text


def _message_rate_check(user: AbstractBaseUser) -> None:
    """Every message starts a model run: at most LODESTONE_RATE_MESSAGES per user, whichever way
    it comes (API, chat form, socket, /v1, the chat command)."""
    wait = rate_hit(scope="messages", ident=str(user.pk), rate=rate_setting("LODESTONE_RATE_MESSAGES"))
    if wait is not None:
        seconds = math.ceil(wait)
        raise ApplicationError(
            f"Too many messages: wait {seconds} seconds before sending another.",
            status_code=429,
            extra={"retry_after": seconds},
        )


def message_post(*, conversation: Conversation, user: AbstractBaseUser, text: Any) -> tuple[Message, Run]:
    """Store the user's message, open a run for it and hand the run to the runner after commit."""
    if conversation.owner_id != user.pk:
        # Selectors already scope by owner; this guards direct service callers.
        raise ApplicationError("Conversation not found.", status_code=404)
    text = validate_message_text(text)
    _message_rate_check(user)
    runs_recover_stale(conversation_id=conversation.pk)  # a reply whose worker died blocks nothing
    waiting = Run.objects.filter(conversation=conversation, status=Run.Status.AWAITING_INPUT).first()
    if waiting is not None:
        # The team asked a question: a message sent now is the answer.
        return run_answer(run=waiting, user=user, text=text)
    try:
        with transaction.atomic():
            _title_from_first_message(conversation, text)
            run = Run.objects.create(conversation=conversation)
            message = message_append(
                conversation_id=conversation.pk, run_id=run.pk, source="user", type=Message.Type.USER, content=text
            )
    except IntegrityError as exc:
        # The partial unique index on active runs: another reply is still being written.
        raise ApplicationError("A reply is still running in this conversation: wait for it or stop it first.") from exc

    realtime.publish_on_commit(conversation.pk, realtime.message_event(message))
    realtime.publish_on_commit(conversation.pk, realtime.run_event(run))
    from conversations.runner import get_runner

    transaction.on_commit(lambda: get_runner().submit(run.pk))
    return message, run


def run_cancel(*, run: Run) -> Run:
    """Ask a run to stop. A queued run is cancelled at once; a running one stops at its next step;
    one whose executor is gone (see runs_recover_stale) ends now."""
    runs_recover_stale(conversation_id=run.conversation_id)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if not run.is_active:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.status == Run.Status.AWAITING_INPUT and not _input_is_live(run):
            # Parked for an answer with no executor waiting (swarm handoff, or after a restart).
            run.status = Run.Status.CANCELLED
            run.stop_reason = "Stopped by the user while waiting for an answer."
            run.finished_at = timezone.now()
            fields += ["status", "stop_reason", "finished_at"]
        if run.status == Run.Status.QUEUED:
            run.status = Run.Status.CANCELLED
            run.stop_reason = "Cancelled before it started."
            run.finished_at = timezone.now()
            fields += ["status", "stop_reason", "finished_at"]
        run.save(update_fields=fields)
    realtime.publish_on_commit(run.conversation_id, realtime.run_event(run))
    from conversations.runner import get_runner

    run_id = run.pk
    transaction.on_commit(lambda: get_runner().cancel(run_id))
    return run


def run_start(*, run_id: int) -> Run | None:
    """Mark a queued run running; ``None`` if it is no longer queued (cancelled, or taken)."""
    with transaction.atomic():
        now = timezone.now()
        updated = Run.objects.filter(pk=run_id, status=Run.Status.QUEUED).update(
            status=Run.Status.RUNNING, started_at=now, heartbeat_at=now
        )
        if not updated:
            return None
        return Run.objects.select_related("conversation__team", "conversation__agent__model_config").get(pk=run_id)


def run_finish(*, run_id: int, status: str, error: str = "", stop_reason: str = "") -> Run:
    """End a run; its token totals are the sum over its messages (each message keeps its own)."""
    with transaction.atomic():
        totals = Message.objects.filter(run_id=run_id).aggregate(
            prompt=Coalesce(Sum("prompt_tokens"), 0), completion=Coalesce(Sum("completion_tokens"), 0)
        )
        Run.objects.filter(pk=run_id).update(
            status=status,
            error=error[:4000],
            stop_reason=stop_reason[:1000],
            finished_at=timezone.now(),
            prompt_tokens=totals["prompt"],
            completion_tokens=totals["completion"],
        )
        return Run.objects.get(pk=run_id)


RESTART_REASON = "Interrupted: the server restarted while this reply was running."
STALE_REASON = "Interrupted: the process running this reply stopped (it showed no sign of life)."
WAITED_FOR_APPROVAL = " It was waiting for a tool call's approval. Send your message again to retry."


def _recover_orphans(runs: list[Run], *, reason: str) -> int:
    """Runs whose executor is gone. One parked for the user's answer keeps waiting: an answer now
    resumes it in a new run (see run_answer). Any other can never finish: it fails with ``reason``
    (its stored messages are kept; the conversation takes new messages). Returns how many failed."""
    failed = 0
    with transaction.atomic():
        for run in runs:
            error = reason
            if run.status == Run.Status.AWAITING_INPUT:
                request = _pending_request(run)
                if request is not None:
                    if request.payload.get("mode") == INPUT_LIVE:
                        request.payload = {**request.payload, "mode": INPUT_RESUME}
                        request.save(update_fields=["payload"])
                    continue
                error += WAITED_FOR_APPROVAL  # a tool call's approval, waited for inside the executor
            run.status = Run.Status.FAILED
            run.error = error
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            realtime.publish_on_commit(run.conversation_id, realtime.run_event(run))
            failed += 1
    return failed


def runs_fail_interrupted(*, reason: str = RESTART_REASON) -> int:
    """At start-up of a single-process server: no run of the previous process is executing."""
    return _recover_orphans(list(Run.objects.filter(status__in=Run.ACTIVE_STATUSES)), reason=reason)


def runs_recover_stale(*, conversation_id: int | None = None) -> int:
    """Runs whose executor stopped signing life (``heartbeat_at``, renewed every
    ``LODESTONE_RUN_HEARTBEAT_SECONDS``) for ``LODESTONE_RUN_STALE_SECONDS``: a worker killed in
    the middle of a reply. Checked before a new message or a stop, and periodically with Celery."""
    cutoff = timezone.now() - timedelta(seconds=settings.LODESTONE_RUN_STALE_SECONDS)
    runs = Run.objects.filter(status__in=[Run.Status.RUNNING, Run.Status.AWAITING_INPUT]).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    if conversation_id is not None:
        runs = runs.filter(conversation_id=conversation_id)
    return _recover_orphans(list(runs), reason=STALE_REASON)


def run_heartbeat(*, run_id: int) -> None:
    Run.objects.filter(pk=run_id, status__in=Run.ACTIVE_STATUSES).update(heartbeat_at=timezone.now())


# --- Human in the loop -------------------------------------------------------------------------
# A question to the user is an ``input_request`` message of a run that waits in ``awaiting_input``.
# ``mode`` says who takes the answer: ``live`` — the executor is still awaiting it (a user proxy
# agent's turn); ``resume`` — nobody is (a swarm handed off to the user, or the server restarted),
# so the answer ends that run and starts the next one with the answer as its task.
INPUT_LIVE = "live"
INPUT_RESUME = "resume"


def _pending_requests() -> Any:
    return Message.objects.filter(type=Message.Type.INPUT_REQUEST, payload__answered=False)


def _pending_request(run: Run) -> Message | None:
    return _pending_requests().filter(run_id=run.pk).order_by("-seq").first()


def _input_is_live(run: Run) -> bool:
    request = _pending_request(run)
    return request is not None and request.payload.get("mode") == INPUT_LIVE


def run_request_input(
    *, run_id: int, source: str, question: str, mode: str = INPUT_LIVE, agent_name: str = ""
) -> tuple[Message, Run] | None:
    """Park a running run for the user's answer; ``None`` if the run is no longer running
    (cancelled meanwhile). The caller publishes the returned message and run."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.status != Run.Status.RUNNING or run.cancel_requested:
            return None
        message = message_append(
            conversation_id=run.conversation_id,
            run_id=run.pk,
            source=source,
            type=Message.Type.INPUT_REQUEST,
            content=question,
            payload={"mode": mode, "answered": False, "agent_name": agent_name or source},
        )
        run.status = Run.Status.AWAITING_INPUT
        run.save(update_fields=["status"])
    return message, run


def run_answer(*, run: Run, user: AbstractBaseUser, text: Any) -> tuple[Message, Run]:
    """The user's answer to the run's question: stored as the user's message, then taken by the
    waiting executor (``live``) or by a new run that continues the conversation (``resume``)."""
    if run.conversation.owner_id != user.pk:
        raise ApplicationError("Run not found.", status_code=404)
    text = validate_message_text(text)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        request = _pending_request(run)
        if run.status != Run.Status.AWAITING_INPUT or request is None:
            raise ApplicationError("This run is not waiting for an answer.")
        request.payload = {**request.payload, "answered": True}
        request.save(update_fields=["payload"])
        live = request.payload.get("mode") == INPUT_LIVE
        if live:
            run.status = Run.Status.RUNNING
            run.save(update_fields=["status"])
            answering = run
        else:
            # Runs' token totals are their messages': finish before the next run takes the answer.
            run = run_finish(run_id=run.pk, status=Run.Status.COMPLETED, stop_reason=run.stop_reason or "Answered.")
            answering = Run.objects.create(conversation_id=run.conversation_id)
        message = message_append(
            conversation_id=run.conversation_id,
            run_id=answering.pk,
            source="user",
            type=Message.Type.USER,
            content=text,
            payload={"answer_to": request.seq},
        )
    realtime.publish_on_commit(run.conversation_id, realtime.message_event(message))
    realtime.publish_on_commit(run.conversation_id, realtime.run_event(run))
    if not live:
        realtime.publish_on_commit(run.conversation_id, realtime.run_event(answering))
        from conversations.runner import get_runner

        transaction.on_commit(lambda: get_runner().submit(answering.pk))
    return message, answering


def run_input_detach(*, run_id: int) -> bool:
    """The executor of a run waiting for an answer is going away (server shutdown): keep the run
    waiting, and let the answer start a new run. ``False`` if the run was not waiting."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        request = _pending_request(run)
        if run.status != Run.Status.AWAITING_INPUT or request is None:
            return False
        request.payload = {**request.payload, "mode": INPUT_RESUME}
        request.save(update_fields=["payload"])
    return True


def answer_for(*, run_id: int, request_seq: int) -> tuple[str | None, bool]:
    """For the executor waiting on a live question: ``(answer or None, still waiting)``; it stops
    waiting when the run was cancelled or its question detached (shutdown)."""
    answer = (
        Message.objects.filter(run_id=run_id, type=Message.Type.USER, seq__gt=request_seq)
        .order_by("seq")
        .values_list("content", flat=True)
        .first()
    )
    if answer is not None:
        return answer, False
    live = Message.objects.filter(
        run_id=run_id, seq=request_seq, payload__mode=INPUT_LIVE, run__status=Run.Status.AWAITING_INPUT
    ).exists()
    return None, live


PAUSED_QUESTION = "Paused. Send a message to continue, or press Resume."


def run_pause(*, run: Run) -> Run:
    """Stop a running team at once (the turn in flight is dropped) and park the run in ``awaiting_input``
    (its state is kept); ``run_resume`` or any message continues it. A queued run is cancelled;
    a waiting run stays as it is."""
    if run.status == Run.Status.QUEUED:
        return run_cancel(run=run)
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != Run.Status.RUNNING:
            return run
        run.cancel_requested = True
        run.pause_requested = True
        run.save(update_fields=["cancel_requested", "pause_requested"])
    realtime.publish_on_commit(run.conversation_id, realtime.run_event(run))
    from conversations.runner import get_runner

    run_id = run.pk
    transaction.on_commit(lambda: get_runner().cancel(run_id))
    return run


def run_park_paused(*, run_id: int) -> tuple[Message, Run] | None:
    """The executor of a paused run stopped: park it for the user (``None`` if it was a plain cancel)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if not run.pause_requested or run.status != Run.Status.RUNNING:
            return None
        run.cancel_requested = False
        run.pause_requested = False
        run.save(update_fields=["cancel_requested", "pause_requested"])
        return run_request_input(
            run_id=run_id, source="lodestone", question=PAUSED_QUESTION, mode=INPUT_RESUME, agent_name="Paused"
        )


def run_resume(*, run: Run, user: AbstractBaseUser, text: Any = "Continue.") -> tuple[Message, Run]:
    """Continue a paused (or otherwise waiting) run: the same as answering it."""
    return run_answer(run=run, user=user, text=text)
