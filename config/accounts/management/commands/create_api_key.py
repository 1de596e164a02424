from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from config.accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create a named API key for a user and print it (once: only its hash is stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True, help="What the key is for.")
        parser.add_argument(
            "--expires-days", type=int, default=None, help="Expire after this many days (default: never)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        user = get_user_model().objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        days: int | None = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1.")
        try:
            api_key, key = api_key_create(
                user=user, name=options["name"], expires_at=timezone.now() + timedelta(days=days) if days else None
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        expiry = f"expires {api_key.expires_at:%Y-%m-%d %H:%M} UTC" if api_key.expires_at else "never expires"
        self.stderr.write(f"API key {api_key.name!r} for {user.get_username()} ({expiry}); it is not shown again:")
        self.stdout.write(key)
