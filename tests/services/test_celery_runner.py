"""A run executed by a real Celery worker process over a real Redis broker; its events reach a
socket in this process through the channels-redis layer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers
from django.conf import settings as django_settings
from django.test import override_settings

from config.errors import ApplicationError
from conversations import services
from conversations.models import Message, Run
from tests import factories
from tests.conversations.test_consumer import connect, run_ended
from tests.servers import stop, wait_until
from tests.services.conftest import celery_broker, start_celery_worker

pytestmark = [pytest.mark.services, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def celery_setup(redis_url: str, tmp_path: Path, transactional_db: Any) -> Iterator[dict[str, Any]]:
    broker_url, layer_url = f"{redis_url}/0", f"{redis_url}/1"
    database_path = Path(django_settings.DATABASES["default"]["NAME"])
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(
        broker_url=broker_url, layer_url=layer_url, database_path=database_path, log_path=log_path
    )
    wait_until(lambda: "ready." in log_path.read_text(), what="celery worker", limit=60, process=worker)
    layers = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [layer_url]}}}
    with (
        celery_broker(broker_url),
        override_settings(CHANNEL_LAYERS=layers, LODESTONE_RUNNER="celery", CELERY_BROKER_URL=broker_url),
    ):
        channel_layers.backends.clear()
        try:
            yield {"log": log_path}
        finally:
            channel_layers.backends.clear()
            stop(worker)


async def collect(comm: Any, limit: float = 60.0) -> list[dict[str, Any]]:
    events = []
    async with asyncio.timeout(limit):
        while True:
            event = await comm.receive_json_from(timeout=limit)
            events.append(event)
            if run_ended(event):
                return events


async def test_worker_runs_the_team_and_the_socket_hears_it(celery_setup: dict[str, Any]) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Worker says hi.", "Second agent too."])
    a = await sync_to_async(factories.agent)(model, "first")
    b = await sync_to_async(factories.agent)(model, "second")
    team = await sync_to_async(factories.round_robin)([a, b], max_messages=3)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    comm = await connect(user, conversation.pk)
    assert (await comm.connect())[0]
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Hello workers")
    events = await collect(comm)
    await comm.disconnect()

    log = celery_setup["log"].read_text()
    assert "conversations.run_execute" in log, log
    messages = [e["message"] for e in events if e["type"] == "conversation.message"]
    assert [(m["seq"], m["source"], m["content"]) for m in messages] == [
        (1, "user", "Hello workers"),
        (2, "first", "Worker says hi."),
        (3, "second", "Second agent too."),
    ]
    assert any(e["type"] == "conversation.chunk" for e in events), "tokens were not streamed through Redis"
    assert events[-1]["run"]["status"] == "completed"
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.COMPLETED
    assert await Message.objects.filter(conversation=conversation).acount() == 3


async def test_cancel_reaches_the_worker_through_the_database(celery_setup: dict[str, Any]) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)([" ".join(["slow"] * 600)], chunk_delay=0.02)
    solo = await sync_to_async(factories.agent)(model, "slowpoke")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)

    comm = await connect(user, conversation.pk)
    assert (await comm.connect())[0]
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Take your time")
    async with asyncio.timeout(60):
        while (await comm.receive_json_from(timeout=60))["type"] != "conversation.chunk":
            pass
    await sync_to_async(services.run_cancel)(run=run)
    events = await collect(comm, limit=15)
    await comm.disconnect()

    assert events[-1]["run"]["status"] == "cancelled"
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.CANCELLED


def test_a_killed_worker_does_not_block_the_conversation(redis_url: str, tmp_path: Path, transactional_db: Any) -> None:
    """SIGKILL the worker in the middle of a reply: its run stops signing life, and the next message
    fails it with a clear reason and is accepted (a stop or the beat sweep would do the same)."""
    import signal
    import time

    broker_url = f"{redis_url}/4"
    log_path = tmp_path / "worker.log"
    worker = start_celery_worker(
        broker_url=broker_url,
        layer_url=f"{redis_url}/5",
        database_path=Path(django_settings.DATABASES["default"]["NAME"]),
        log_path=log_path,
        extra_env={"LODESTONE_RUN_HEARTBEAT_SECONDS": "0.2"},
    )
    try:
        wait_until(lambda: "ready." in log_path.read_text(), what="celery worker", limit=60, process=worker)
        user = factories.user()
        model = factories.replay_model([" ".join(["slow"] * 600)], chunk_delay=0.02)
        conversation = factories.conversation(user, agent=factories.agent(model, "slowpoke"))
        with celery_broker(broker_url), override_settings(LODESTONE_RUNNER="celery", CELERY_BROKER_URL=broker_url):
            _, run = services.message_post(conversation=conversation, user=user, text="Take your time")
            # Running, and its heartbeat renewed by the worker (not just set at its start).
            wait_until(
                lambda: (
                    (r := Run.objects.get(pk=run.pk)).status == Run.Status.RUNNING
                    and r.heartbeat_at is not None
                    and r.started_at is not None
                    and (r.heartbeat_at - r.started_at).total_seconds() >= 0.3
                ),
                what="a heartbeat from the worker",
                limit=60,
                process=worker,
            )
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            with override_settings(LODESTONE_RUN_STALE_SECONDS=1.0):
                # Within the stale limit it is still taken for alive.
                with pytest.raises(ApplicationError, match="still running"):
                    services.message_post(conversation=conversation, user=user, text="Hello?")
                time.sleep(1.5)
                _, retry = services.message_post(conversation=conversation, user=user, text="Hello?")
            dead = Run.objects.get(pk=run.pk)
            assert dead.status == Run.Status.FAILED and dead.error == services.STALE_REASON
            assert retry.status == Run.Status.QUEUED
            services.run_cancel(run=retry)  # no worker is left to take it
    finally:
        stop(worker)
