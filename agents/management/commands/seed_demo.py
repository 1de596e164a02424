from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from agents.services import demo_seed, demo_user_ensure


class Command(BaseCommand):
    help = "Create the demo login, the local model, two demo agents and a round-robin team (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        seeded = demo_seed()
        user, password = demo_user_ensure(credentials_file=settings.VAR_DIR / "demo-credentials.txt")
        self.stdout.write(self.style.SUCCESS("Demo data ready:"))
        self.stdout.write(f"  team  {seeded['team'].slug}: {seeded['team'].name}")
        for agent in seeded["agents"]:
            self.stdout.write(f"  agent {agent.slug}: {agent.description}")
        self.stdout.write(self.style.SUCCESS(f"  login  username: {user.username}  password: {password}"))
