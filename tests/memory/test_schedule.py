"""Consolidation over time without a broker: the server process's background schedule, on the real
embedder and a real database connection of its own (transactional test database)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import override_settings

from memory import schedule, services
from memory.models import Experience
from tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("own_vector_store")]

NEAR_DUPLICATES = [
    "The nightly backup failed because the disk was full.",
    "The nightly backup job failed since the disk is full.",
]


def wait_for(predicate: Any, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_periodic_consolidation_merges_new_memories_round_after_round() -> None:
    alice, bob = factories.user("alice"), factories.user("bob")
    for text in NEAR_DUPLICATES:
        services.experience_store(text=text, owner=alice)
    periodic = schedule.PeriodicConsolidation(interval=0.2).start()
    try:
        wait_for(lambda: Experience.objects.filter(kind="semantic", owner=alice).exists())
        # A later round picks up memories written since, for every owner.
        for text in ["Redis must bind to 127.0.0.1 only.", "Bind Redis to 127.0.0.1 only, nothing else."]:
            services.experience_store(text=text, owner=bob)
        wait_for(lambda: Experience.objects.filter(kind="semantic", owner=bob).exists())
    finally:
        periodic.stop()
    assert Experience.objects.filter(kind="semantic").count() == 2
    assert not periodic._thread.is_alive()


def test_a_failing_round_is_logged_and_the_next_one_runs(monkeypatch: Any, caplog: Any) -> None:
    calls: list[int] = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("vector store down")
        return 0

    monkeypatch.setattr(schedule, "consolidate_everyone", flaky)
    periodic = schedule.PeriodicConsolidation(interval=0.05).start()
    try:
        wait_for(lambda: len(calls) >= 2)
    finally:
        periodic.stop()
    assert "Periodic memory consolidation failed" in caplog.text


def test_the_server_starts_one_schedule_only_without_a_broker(monkeypatch: Any) -> None:
    monkeypatch.setattr(schedule, "_server_schedule", None)
    with override_settings(LODESTONE_CONSOLIDATE_INTERVAL_SECONDS=0):
        assert schedule.start_server_schedule() is None
    with override_settings(LODESTONE_CONSOLIDATE_INTERVAL_SECONDS=60, CELERY_BROKER_URL="redis://127.0.0.1:1"):
        assert schedule.start_server_schedule() is None  # Celery beat's job there
    with override_settings(LODESTONE_CONSOLIDATE_INTERVAL_SECONDS=60, CELERY_BROKER_URL=None):
        first = schedule.start_server_schedule()
        try:
            assert first is not None and first.interval == 60
            assert schedule.start_server_schedule() is first
        finally:
            assert first is not None
            first.stop()


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        schedule.PeriodicConsolidation(interval=0)


async def test_the_asgi_server_calls_its_start_hooks_once(monkeypatch: Any) -> None:
    from config.asgi import application
    from conversations import runner
    from conversations.runner import ServerLoopMiddleware

    # Leave the process's inline runner bound to whatever loop it has (this test's loop closes).
    monkeypatch.setattr(runner, "get_runner", lambda: object())

    assert isinstance(application, ServerLoopMiddleware)
    assert schedule.start_server_schedule in application.on_start
    calls: list[int] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        return None

    middleware = ServerLoopMiddleware(app, on_start=[lambda: calls.append(1)])
    for _ in range(3):
        await middleware({"type": "http"}, None, None)
    assert calls == [1]
