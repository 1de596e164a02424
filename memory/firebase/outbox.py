"""Draining the mirror outbox, and re-syncing everything.

Every experience create, update and delete writes a ``MirrorOutbox`` row in its own transaction
(``memory.services``). After the commit ``schedule_drain`` sends what is pending: on a Celery
worker when a broker is configured (``memory.mirror_drain``), else on a background thread of this
process. A drain reads each experience's *current* row, so entries coalesce and replay safely.
When Firestore fails, nothing is lost: the entries stay, their ``attempts`` grow and every pending
entry waits ``backoff(attempts)`` (2, 4, 8 ... up to 300 seconds) before the next try, which the
drainer schedules itself. ``memory_sync`` rewrites the whole collection from the database.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from memory.firebase import client
from memory.models import Experience, MirrorOutbox

logger = logging.getLogger(__name__)

BACKOFF_MAX_SECONDS = 300
DRAIN_LIMIT = 500


def backoff_seconds(attempts: int) -> float:
    return float(min(2 ** max(attempts, 1), BACKOFF_MAX_SECONDS))


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    retry_in: float | None = None  # seconds until the next entry is due, when some remain


def _due() -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now())


def _documents(experience_ids: list[int]) -> tuple[list[dict], list[int]]:
    rows = {e.pk: e for e in Experience.objects.filter(pk__in=experience_ids).select_related("agent").order_by("pk")}
    sources: dict[int, list[int]] = {}
    for pk, into in Experience.objects.filter(consolidated_into_id__in=list(rows)).values_list(
        "pk", "consolidated_into_id"
    ):
        sources.setdefault(into, []).append(pk)
    upserts = [client.experience_document(row, sorted(sources.get(pk, []))) for pk, row in rows.items()]
    deletes = [pk for pk in experience_ids if pk not in rows]
    return upserts, deletes


def outbox_drain(*, limit: int = DRAIN_LIMIT) -> DrainResult:
    """Send the due entries (oldest first, coalesced per experience) in one batch write."""
    result = DrainResult()
    entries = list(MirrorOutbox.objects.filter(_due()).order_by("id")[:limit])
    if entries:
        experience_ids = list(dict.fromkeys(e.experience_id for e in entries))
        upserts, deletes = _documents(experience_ids)
        try:
            client.mirror_write(upserts, deletes)
        except Exception as exc:
            result.failed = len(entries)
            attempts = max(e.attempts for e in entries) + 1
            delay = backoff_seconds(attempts)
            logger.warning("Firestore mirror: %s entries wait %ss after: %s", len(entries), delay, exc)
            with transaction.atomic():
                MirrorOutbox.objects.filter(pk__in=[e.pk for e in entries]).update(
                    attempts=attempts,
                    next_attempt_at=timezone.now() + timedelta(seconds=delay),
                    last_error=str(exc)[:2000],
                )
        else:
            # Only the entries read: a change written meanwhile has its own, newer entry.
            MirrorOutbox.objects.filter(pk__in=[e.pk for e in entries]).delete()
            result.sent = len(entries)
    nxt = MirrorOutbox.objects.order_by("next_attempt_at").values_list("next_attempt_at", flat=True).first()
    if MirrorOutbox.objects.exists():
        result.retry_in = 0.0 if nxt is None else max((nxt - timezone.now()).total_seconds(), 0.0)
    return result


def memory_sync() -> tuple[int, int]:
    """Rewrite every experience's document and delete documents of experiences that are gone.
    Returns (written, deleted). The outbox entries pending before the sync are done with."""
    started = MirrorOutbox.objects.order_by("-id").values_list("id", flat=True).first() or 0
    ids = list(Experience.objects.order_by("pk").values_list("pk", flat=True))
    written = 0
    for start in range(0, len(ids), client.BATCH_SIZE):
        upserts, _ = _documents(ids[start : start + client.BATCH_SIZE])
        client.mirror_write(upserts, [])
        written += len(upserts)
    stale = sorted(client.mirrored_ids() - set(ids))
    client.mirror_write([], stale)
    MirrorOutbox.objects.filter(id__lte=started).delete()
    return written, len(stale)


# --- Scheduling


class _InlineDrainer:
    """Without a broker: drain on one background thread, retrying after the backoff."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = False
        self._again = False
        self._timer: threading.Timer | None = None

    def schedule(self, delay: float = 0.0) -> None:
        with self._lock:
            if delay > 0:
                if self._timer is None:
                    self._timer = threading.Timer(delay, self._fire)
                    self._timer.daemon = True
                    self._timer.start()
                return
            if self._running:
                self._again = True
                return
            self._running = True
        threading.Thread(target=self._run, name="lodestone-mirror-drain", daemon=True).start()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
        self.schedule()

    def _run(self) -> None:
        retry_in: float | None = None
        try:
            while True:
                close_old_connections()
                result = outbox_drain()
                with self._lock:
                    again, self._again = self._again, False
                if result.retry_in is None or result.failed:
                    retry_in = result.retry_in
                    if not again:
                        break
                elif result.retry_in > 0 and not again:
                    retry_in = result.retry_in
                    break
        except Exception:
            logger.exception("Firestore mirror drain crashed; will retry")
            retry_in = float(BACKOFF_MAX_SECONDS)
        finally:
            close_old_connections()
            with self._lock:
                self._running = False
                if retry_in is not None and self._timer is None:
                    self._timer = threading.Timer(max(retry_in, 0.5), self._fire)
                    self._timer.daemon = True
                    self._timer.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel a pending retry and wait for a running drain to end (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if self._timer is not None:
                    self._timer.cancel()
                    self._timer = None
                if not self._running:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("The mirror drain did not finish.")
            time.sleep(0.05)


_INLINE = _InlineDrainer()


def schedule_drain() -> None:
    if settings.CELERY_BROKER_URL:
        from memory.tasks import memory_mirror_drain_task

        memory_mirror_drain_task.delay()
    else:
        _INLINE.schedule()
