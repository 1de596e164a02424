"""A restart of the single-process server: runs left active are failed, nothing stored is lost."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import Message, Run
from conversations.runner import InlineRunner, ServerLoopMiddleware
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


async def test_first_server_event_fails_runs_left_running_by_the_previous_process(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    solo = await sync_to_async(factories.agent)(await sync_to_async(factories.replay_model)(["x"]), "solo")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)
    # What a crashed server leaves behind: a stored user message and a run marked running.
    run = await Run.objects.acreate(conversation=conversation, status=Run.Status.RUNNING)
    await sync_to_async(services.message_append)(
        conversation_id=conversation.pk, run_id=run.pk, source="user", type="user", content="Still there?"
    )

    seen = []

    async def app(scope: dict, receive: object, send: object) -> None:
        seen.append(scope["type"])

    runner = InlineRunner()
    from conversations import runner as runner_module

    original = runner_module.get_runner
    runner_module.get_runner = lambda: runner  # a fresh process's runner
    try:
        middleware = ServerLoopMiddleware(app)
        await middleware({"type": "http"}, None, None)
        await middleware({"type": "http"}, None, None)
    finally:
        runner_module.get_runner = original

    assert seen == ["http", "http"]
    assert runner.loop is not None
    run = await Run.objects.aget(pk=run.pk)
    assert run.status == Run.Status.FAILED and run.error.startswith("Interrupted")
    assert await Message.objects.filter(conversation=conversation, content="Still there?").aexists()
    # The conversation takes new messages again.
    _, nxt = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Hello?")
    assert nxt.status == Run.Status.QUEUED
    await sync_to_async(services.run_cancel)(run=nxt)


def test_a_run_without_a_server_loop_fails_readably_instead_of_hanging() -> None:
    user = factories.user()
    solo = factories.agent(factories.replay_model(["x"]), "solo")
    conversation = factories.conversation(user, agent=solo)
    runner = InlineRunner()
    from conversations import runner as runner_module

    original = runner_module.get_runner
    runner_module.get_runner = lambda: runner
    try:
        _, run = services.message_post(conversation=conversation, user=user, text="Anyone?")
    finally:
        runner_module.get_runner = original
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "No runner is available" in run.error
