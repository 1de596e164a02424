from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.services import demo_seed, demo_user_ensure


class Command(BaseCommand):
    help = (
        "Create or update the demo: the login, the local model's config, the demo agents (an assistant "
        "with tools and memory, a critic, a researcher, a writer, a coder and a sandboxed executor) and "
        "teams (round robin, selector, coder + executor, Magentic-One). Idempotent. Refused under "
        "production settings unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force",
            action="store_true",
            help="Run even under production settings (creates a known login whose password is kept in a file).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        credentials_file = settings.VAR_DIR / "demo-credentials.txt"
        if settings.LODESTONE_PRODUCTION:
            if not options["force"]:
                raise CommandError(
                    "seed_demo is for local installations: under production settings it would create the "
                    f"login 'demo' and write its password in plaintext to {credentials_file}. "
                    "Pass --force to do it anyway."
                )
            for line in (
                "WARNING: seeding demo data under PRODUCTION settings (--force).",
                f"WARNING: the login 'demo' gets a password stored in plaintext in {credentials_file}.",
                "WARNING: change that password (or deactivate the user) and delete the file once you are done.",
            ):
                self.stderr.write(self.style.ERROR(line))
        seeded = demo_seed()
        user, password = demo_user_ensure(
            credentials_file=credentials_file, is_admin=settings.LODESTONE_DEMO_USER_IS_ADMIN
        )
        self.stdout.write(self.style.SUCCESS(f"Demo data ready, on the model config {seeded['model_config'].name!r}:"))
        for team in seeded["teams"]:
            self.stdout.write(f"  team  {team.slug}: {team.name}")
        for agent in seeded["agents"]:
            self.stdout.write(f"  agent {agent.slug}: {agent.description}")
        if not seeded["tool_calling"]:
            self.stdout.write(
                self.style.WARNING(
                    f"  note  {settings.LODESTONE_LOCAL_MODEL} cannot call tools: the assistant answers without its "
                    "tools (calculator, clock, memory, python_exec). Set LODESTONE_LOCAL_MODEL=qwen2.5-coder-0.5b "
                    "or qwen2.5-coder-1.5b in .env to see them used."
                )
            )
        role = "admin" if user.is_superuser else "plain user, not an admin"
        self.stdout.write(self.style.SUCCESS(f"  login  username: {user.username}  password: {password}  ({role})"))
