from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from agents.components import MAX_BYTES, ImportRejected, import_file


class Command(BaseCommand):
    help = "Import teams, agents and model clients from AutoGen component JSON (AutoGen Studio exports too)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", type=Path)

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path = options["file"]
        try:
            if path.stat().st_size > MAX_BYTES:
                raise CommandError(f"{path} is larger than {MAX_BYTES} bytes; nothing imported.")
            raw = path.read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc}") from exc
        try:
            result = import_file(raw)
        except ImportRejected as exc:
            raise CommandError("Nothing imported:\n  " + "\n  ".join(exc.problems)) from exc
        for kind, names in result.summary().items():
            for name in names:
                self.stdout.write(f"  {kind[:-1]:<12} {name}")
        self.stdout.write(self.style.SUCCESS("Imported."))
