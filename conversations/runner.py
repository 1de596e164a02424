"""Runners hand a run to the one executor, somewhere.

- ``inline`` (embedded default): an asyncio task on the ASGI server's own event loop, so the
  in-memory channel layer reaches the sockets. The loop is captured by ``ServerLoopMiddleware``
  on the first ASGI event.
- ``celery``: a task on a worker process (events travel through channels-redis).

``settings.LODESTONE_RUNNER`` picks one; ``get_runner()`` is the only lookup.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.conf import settings

logger = logging.getLogger(__name__)


class Runner(Protocol):
    def submit(self, run_id: int) -> None: ...

    def cancel(self, run_id: int) -> None: ...


class InlineRunner:
    """Runs on the server's loop; within one process, cancellation is immediate."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._lock = threading.Lock()
        self._recovered = False

    def bind_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def submit(self, run_id: int) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            # Not under the ASGI server (e.g. a WSGI deployment): say so in the chat, don't hang.
            from conversations import realtime, services

            logger.error("Run %s cannot start: the inline runner has no server event loop.", run_id)
            run = services.run_finish(
                run_id=run_id,
                status="failed",
                error="No runner is available: serve Lodestone with Daphne (make run), "
                "or set CELERY_BROKER_URL to run replies on Celery workers.",
            )
            realtime.publish_on_commit(run.conversation_id, realtime.run_event(run))
            return
        # A fresh context: the caller's (a sync_to_async worker thread) would make asgiref
        # believe the run is nested inside that thread and refuse to hop back to it.
        loop.call_soon_threadsafe(self._spawn, run_id, context=contextvars.Context())

    def _spawn(self, run_id: int) -> None:
        from conversations.executor import execute_run

        task = asyncio.get_running_loop().create_task(execute_run(run_id), name=f"run-{run_id}")
        self._tasks[run_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(run_id, None))

    def cancel(self, run_id: int) -> None:
        from conversations.executor import signal_cancel

        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(signal_cancel, run_id, context=contextvars.Context())

    async def wait_idle(self, limit_seconds: float = 30.0) -> None:
        """Wait until every run this runner started has ended (tests, shutdown)."""
        pending = [t for t in self._tasks.values() if not t.done()]
        if pending:
            await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), limit_seconds)

    def recover_once(self) -> None:
        """Runs left active by a previous process of this single-process server cannot finish."""
        with self._lock:
            if self._recovered:
                return
            self._recovered = True
        from conversations.services import runs_fail_interrupted

        count = runs_fail_interrupted()
        if count:
            logger.warning("Marked %d interrupted run(s) as failed after a restart.", count)


class CeleryRunner:
    def submit(self, run_id: int) -> None:
        from conversations.tasks import run_execute

        run_execute.delay(run_id)

    def cancel(self, run_id: int) -> None:
        # The worker's executor polls the run's cancel flag; nothing to send.
        return None


_RUNNERS: dict[str, Callable[[], Runner]] = {"inline": InlineRunner, "celery": CeleryRunner}
_instances: dict[str, Runner] = {}


def get_runner() -> Runner:
    name = settings.LODESTONE_RUNNER
    if name not in _RUNNERS:
        raise RuntimeError(f"Unknown LODESTONE_RUNNER {name!r}; choose one of {sorted(_RUNNERS)}.")
    if name not in _instances:
        _instances[name] = _RUNNERS[name]()
    return _instances[name]


class ServerLoopMiddleware:
    """ASGI middleware: gives the inline runner the server's loop on the first event it sees,
    fails runs that an earlier server process left unfinished, and calls ``on_start`` hooks
    (other apps' work that belongs to a serving process only, not to commands or tests)."""

    def __init__(self, app: Callable[..., Awaitable[Any]], *, on_start: Sequence[Callable[[], object]] = ()) -> None:
        self.app = app
        self.on_start = list(on_start)
        self._bound = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if not self._bound:
            self._bound = True
            runner = get_runner()
            if isinstance(runner, InlineRunner):
                runner.bind_loop(asyncio.get_running_loop())
                await sync_to_async(runner.recover_once)()
            for hook in self.on_start:
                await sync_to_async(hook)()
        return await self.app(scope, receive, send)
