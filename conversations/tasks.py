"""Celery tasks: thin interfaces that take ids and call the executor."""

from __future__ import annotations

import asyncio

from celery import shared_task


@shared_task(name="conversations.run_execute", acks_late=True, ignore_result=True)
def run_execute(run_id: int) -> None:
    from conversations.executor import execute_run

    # A run that was already taken (redelivery after a worker crash) is skipped by the executor.
    asyncio.run(execute_run(run_id))


@shared_task(name="conversations.recover_stale_runs", ignore_result=True)
def recover_stale_runs() -> int:
    from conversations.services import runs_recover_stale

    return runs_recover_stale()
