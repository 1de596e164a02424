from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from config.accounts.models import ApiKey
from config.accounts.services import api_key_revoke


class Command(BaseCommand):
    help = "List a user's API keys, or revoke one by its prefix (as shown on the API keys page)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("prefix", nargs="?", help="The key's prefix; without it, the user's keys are listed.")

    def handle(self, *args: Any, **options: Any) -> None:
        keys = ApiKey.objects.filter(user__username=options["username"], revoked_at__isnull=True)
        prefix: str | None = options["prefix"]
        if prefix is None:
            for api_key in keys:
                expires = f"{api_key.expires_at:%Y-%m-%d}" if api_key.expires_at else "never"
                used = f"{api_key.last_used_at:%Y-%m-%d %H:%M}" if api_key.last_used_at else "never"
                self.stdout.write(f"{api_key.prefix}  {api_key.name}  last used {used}  expires {expires}")
            return
        matches = list(keys.filter(prefix=prefix.removesuffix("…")))
        if len(matches) != 1:
            raise CommandError(f"{len(matches)} keys of {options['username']!r} have the prefix {prefix!r}: give one.")
        api_key_revoke(api_key=matches[0])
        self.stdout.write(f"Revoked {matches[0]}.")
