"""What the monitoring page shows, in the terminal (or as JSON for scripts and cron checks)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations import monitoring


class Command(BaseCommand):
    help = "Show how runs, agents, memory and tools are doing; exit 1 with --check if anything needs attention."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--period", default=monitoring.DEFAULT_PERIOD, choices=list(monitoring.PERIODS))
        parser.add_argument("--json", action="store_true", help="Print the whole snapshot as JSON.")
        parser.add_argument(
            "--check",
            action="store_true",
            help="Exit with an error when a run stopped signing life, waits for a worker, or the mirror fails.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        data = monitoring.snapshot(period=options["period"])
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
        else:
            self._print(data)
        problems = self._problems(data)
        if options["check"] and problems:
            raise CommandError("; ".join(problems))

    def _print(self, data: dict[str, Any]) -> None:
        runs = data["runs"]
        statuses = ", ".join(f"{n} {status}" for status, n in runs["by_status"].items() if n)
        heading = f"Runs in the last {data['period']}: {runs['total']}"
        self.stdout.write(heading + (f" ({statuses})" if statuses else ""))
        if runs["duration_p50_ms"] is not None:
            self.stdout.write(
                f"  duration p50 {runs['duration_p50_ms']:.0f} ms, p95 {runs['duration_p95_ms']:.0f} ms; "
                f"queue wait p50 {runs['wait_p50_ms']:.0f} ms"
            )
        self.stdout.write(f"  tokens {runs['prompt_tokens']} -> {runs['completion_tokens']}, cost {runs['cost']}")
        self.stdout.write(f"Active runs: {len(data['active_runs'])}")
        for run in data["active_runs"]:
            flags = " (no sign of life)" if run["stale"] else " (waiting for a worker)" if run["stuck_in_queue"] else ""
            self.stdout.write(f"  #{run['run_id']} {run['status']} {run['age_seconds']:.0f} s, {run['owner']}{flags}")
        for failure in data["recent_failures"]:
            self.stdout.write(f"Failed #{failure['run_id']} ({failure['owner']}): {failure['error'][:160]}")
        memory, tools = data["memory"], data["tools"]
        self.stdout.write(
            f"Memory: {memory['experiences']} memories; mirror {memory['mirror_pending']} pending, "
            f"{memory['mirror_failing']} failing"
        )
        self.stdout.write(f"Tools: {tools['calls']} calls, {tools['errors']} errors")

    def _problems(self, data: dict[str, Any]) -> list[str]:
        problems = []
        if data["attention"]["stale_runs"]:
            problems.append(f"{data['attention']['stale_runs']} run(s) stopped signing life")
        if data["attention"]["queued_too_long"]:
            problems.append(f"{data['attention']['queued_too_long']} run(s) waiting for a worker")
        if data["memory"]["mirror_failing"]:
            problems.append(f"the Firestore mirror is failing: {data['memory']['mirror_last_error'][:160]}")
        return problems
