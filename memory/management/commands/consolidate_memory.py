from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import Agent
from memory import services


class Command(BaseCommand):
    help = (
        "Merge near-duplicate and related episodic memories into semantic ones, keeping provenance "
        "(every user's and the shared ones unless --user or --shared narrows it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        who = parser.add_mutually_exclusive_group()
        who.add_argument("--user", help="Only this user's memories (username).")
        who.add_argument("--shared", action="store_true", help="Only the shared memories.")
        parser.add_argument("--agent", help="Only this agent's memories (slug).")
        parser.add_argument(
            "--threshold",
            type=float,
            default=services.CONSOLIDATION_THRESHOLD,
            help=f"Cosine similarity that makes memories related (default {services.CONSOLIDATION_THRESHOLD}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = None
        if options["user"]:
            owner = get_user_model().objects.filter(username=options["user"]).first()
            if owner is None:
                raise CommandError(f"No user {options['user']!r}.")
        agent = None
        if options["agent"]:
            agent = Agent.objects.filter(slug=options["agent"]).first()
            if agent is None:
                raise CommandError(f"No agent {options['agent']!r}.")
        try:
            created = services.memory_consolidate(
                owner=owner,
                agent=agent,
                threshold=options["threshold"],
                all_owners=owner is None and not options["shared"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        for experience in created:
            sources = len(experience.metadata.get("consolidated_from", []))
            self.stdout.write(f"#{experience.pk} from {sources} memories: {experience.text[:100]}")
        self.stdout.write(self.style.SUCCESS(f"{len(created)} consolidated memories written."))
