from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.models import ModelConfig
from agents.presets import presets_seed


class Command(BaseCommand):
    help = "Create the preset agents (planner, researcher, coder, executor, critic, user proxy) as editable rows."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", help="Name of the model config they use (default: the bundled local model).")

    def handle(self, *args: Any, **options: Any) -> None:
        config = None
        if options.get("model"):
            config = ModelConfig.objects.filter(name=options["model"]).first()
            if config is None:
                raise CommandError(f"No model config named {options['model']!r}.")
        for agent, created in presets_seed(model_config=config):
            state = "created" if created else "exists, kept as is"
            self.stdout.write(f"  {agent.slug:<12} {state}: {agent.description}")
        self.stdout.write(self.style.SUCCESS("Presets ready."))
