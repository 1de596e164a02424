"""Firestore mirror of experiences, fed through the ``MirrorOutbox`` table (see ``outbox``)."""

from __future__ import annotations

from django.conf import settings


def mirror_enabled() -> bool:
    """Mirroring is on when a Firebase project is configured (``FIREBASE_PROJECT_ID``)."""
    return bool(settings.LODESTONE_FIREBASE_PROJECT_ID)


def schedule_drain() -> None:
    """Send pending outbox entries soon (after the commit that wrote them)."""
    from memory.firebase.outbox import schedule_drain as schedule

    schedule()
