"""A reply whose executing process died (a Celery worker killed mid-run) must not block its
conversation: its heartbeat goes stale, and the next message, a stop, or the periodic sweep fails
it with a clear reason. Live runs keep their heartbeat fresh and are never touched."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from config.errors import ApplicationError
from conversations import services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from conversations.tasks import recover_stale_runs
from tests import factories

pytestmark = pytest.mark.django_db


def conversation_with_run(status: str, *, silent_for: float) -> tuple[Any, Any, Run]:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["Hello."]), "talker")
    conversation = factories.conversation(user, agent=agent)
    beat = timezone.now() - timedelta(seconds=silent_for)
    run = Run.objects.create(conversation=conversation, status=status, started_at=beat, heartbeat_at=beat)
    services.message_append(
        conversation_id=conversation.pk, run_id=run.pk, source="user", type=Message.Type.USER, content="Hi"
    )
    return user, conversation, run


def test_a_new_message_fails_a_dead_run_and_starts_its_own(settings: Any) -> None:
    settings.LODESTONE_RUNNER = "celery"  # nothing executes here: only the bookkeeping is tested
    settings.CELERY_BROKER_URL = None
    user, conversation, run = conversation_with_run(Run.Status.RUNNING, silent_for=120)
    _, new_run = services.message_post(conversation=conversation, user=user, text="Anyone there?")
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and run.error == services.STALE_REASON
    assert new_run.pk != run.pk and new_run.status == Run.Status.QUEUED


def test_a_live_run_still_blocks_a_second_message() -> None:
    user, conversation, run = conversation_with_run(Run.Status.RUNNING, silent_for=5)
    with pytest.raises(ApplicationError, match="still running"):
        services.message_post(conversation=conversation, user=user, text="Me too")
    assert Run.objects.get(pk=run.pk).status == Run.Status.RUNNING


def test_stop_ends_a_dead_run_at_once() -> None:
    _, _, run = conversation_with_run(Run.Status.RUNNING, silent_for=120)
    stopped = services.run_cancel(run=run)
    assert stopped.status == Run.Status.FAILED and stopped.error == services.STALE_REASON


def test_a_dead_run_waiting_for_an_answer_keeps_waiting_for_a_new_run() -> None:
    _, _, run = conversation_with_run(Run.Status.RUNNING, silent_for=120)
    request, _ = services.run_request_input(run_id=run.pk, source="human", question="Name?")  # type: ignore[misc]
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=120))
    assert recover_stale_runs() == 0
    request.refresh_from_db()
    assert request.payload["mode"] == services.INPUT_RESUME
    assert Run.objects.get(pk=run.pk).status == Run.Status.AWAITING_INPUT


def test_a_dead_run_waiting_for_an_approval_fails_with_the_reason() -> None:
    _, _, run = conversation_with_run(Run.Status.AWAITING_INPUT, silent_for=120)
    assert recover_stale_runs() == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED
    assert run.error == services.STALE_REASON + services.WAITED_FOR_APPROVAL


def test_a_run_without_any_heartbeat_counts_from_its_start() -> None:
    _, _, run = conversation_with_run(Run.Status.RUNNING, silent_for=120)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=None)
    assert services.runs_recover_stale() == 1


@pytest.mark.django_db(transaction=True)
async def test_the_executor_keeps_its_heartbeat_fresh(inline_runner: InlineRunner, settings: Any) -> None:
    settings.LODESTONE_RUN_HEARTBEAT_SECONDS = 0.1
    user = await sync_to_async(factories.user)()
    slow = " ".join(f"w{i}" for i in range(40))
    model = await sync_to_async(factories.replay_model)([slow], chunk_delay=0.02)
    agent = await sync_to_async(factories.agent)(model, "slow")
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Go")
    await inline_runner.wait_idle()
    run = await Run.objects.aget(pk=run.pk)
    assert run.status == Run.Status.COMPLETED
    assert run.started_at is not None and run.heartbeat_at is not None
    assert run.heartbeat_at - run.started_at >= timedelta(seconds=0.3)  # renewed while it ran
