"""Consolidation over time: every ``LODESTONE_CONSOLIDATE_INTERVAL_SECONDS``, everyone's episodic
memories are consolidated (``services.memory_consolidate(all_owners=True)``).

With a Celery broker this is Celery beat's job (``CELERY_BEAT_SCHEDULE`` in the settings; run
``celery -A config beat`` or a worker with ``-B``). On one machine without a broker, the server
process runs it on a background thread, started with the server (``config/asgi.py``). Either way a
single scheduler fires, so two consolidations of the same memories never race.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

logger = logging.getLogger(__name__)


def consolidate_everyone() -> int:
    from memory import services

    created = services.memory_consolidate(all_owners=True)
    if created:
        logger.info("Consolidated memories into %d semantic memories.", len(created))
    return len(created)


class PeriodicConsolidation:
    """A daemon thread that consolidates every ``interval`` seconds until stopped; a failure is
    logged and the next round comes as usual."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("The interval must be positive.")
        self.interval = interval
        self.rounds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lodestone-consolidation", daemon=True)

    def start(self) -> PeriodicConsolidation:
        self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                close_old_connections()
                consolidate_everyone()
            except Exception:
                logger.exception("Periodic memory consolidation failed; trying again in %s s", self.interval)
            finally:
                close_old_connections()
                self.rounds += 1


_server_schedule: PeriodicConsolidation | None = None
_server_lock = threading.Lock()


def start_server_schedule() -> PeriodicConsolidation | None:
    """Called once by the ASGI server: without a broker (so without Celery beat), consolidate on a
    background thread of this process. Idempotent."""
    global _server_schedule
    interval = settings.LODESTONE_CONSOLIDATE_INTERVAL_SECONDS
    if settings.CELERY_BROKER_URL or interval <= 0:
        return None
    with _server_lock:
        if _server_schedule is None:
            _server_schedule = PeriodicConsolidation(interval).start()
            logger.info("Memory consolidation runs every %s s in this process.", interval)
        return _server_schedule
