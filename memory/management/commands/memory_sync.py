from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from memory import firebase
from memory.firebase.client import MirrorError
from memory.firebase.outbox import memory_sync, outbox_drain


class Command(BaseCommand):
    help = "Re-sync the Firestore mirror: write every experience, delete documents of deleted ones."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pending", action="store_true", help="Only send the pending outbox entries.")

    def handle(self, *args: Any, **options: Any) -> None:
        if not firebase.mirror_enabled():
            raise CommandError("The Firestore mirror is off: set FIREBASE_PROJECT_ID (see .env.example).")
        if options["pending"]:
            result = outbox_drain()
            if result.failed:
                raise CommandError(f"Firestore is not reachable; {result.failed} entries wait for the next try.")
            self.stdout.write(self.style.SUCCESS(f"{result.sent} pending changes sent."))
            return
        try:
            written, deleted = memory_sync()
        except MirrorError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{written} experiences written, {deleted} stale documents deleted."))
