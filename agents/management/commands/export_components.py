from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.components import dump_gallery, dump_team
from agents.models import Team


class Command(BaseCommand):
    help = "Print teams as AutoGen component JSON: one team, or all of them as an AutoGen Studio gallery."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", help="Slug of one team (default: every team, as a gallery).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options.get("team"):
            team = Team.objects.filter(slug=options["team"]).first()
            if team is None:
                raise CommandError(f"No team {options['team']!r}.")
            data = dump_team(team)
        else:
            data = dump_gallery(list(Team.objects.all()))
        self.stdout.write(json.dumps(data, indent=2, ensure_ascii=False))
