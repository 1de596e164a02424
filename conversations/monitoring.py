"""Reads for the monitoring view (staff): how runs, agents, memory and tools are doing across all
users over a period, and what needs attention now (active, stuck and failed runs). Everything is
computed from the rows the product already writes; nothing is sampled or kept elsewhere."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from agents.providers.model_queue import local_model_stats
from conversations.models import Message, Run
from conversations.usage import parse_cost

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "24h"
RECENT_FAILURES = 10
# A queued run older than this suggests no worker is taking runs.
QUEUED_WARNING_SECONDS = 30


def _percentile(values: list[float], fraction: float) -> float | None:
    from tools.selectors import percentile

    return percentile([round(v) for v in values], fraction) if values else None


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


def run_stats(*, since: datetime) -> dict[str, Any]:
    """Runs created since ``since``: counts by status, failure rate, queue wait and duration (ms,
    p50/p95), and the tokens and cost of their messages."""
    runs = list(Run.objects.filter(created_at__gte=since).values("status", "created_at", "started_at", "finished_at"))
    by_status = {status: 0 for status in Run.Status.values}
    waits, durations = [], []
    for run in runs:
        by_status[run["status"]] += 1
        if (wait := _seconds(run["created_at"], run["started_at"])) is not None:
            waits.append(wait * 1000)
        if (duration := _seconds(run["started_at"], run["finished_at"])) is not None:
            durations.append(duration * 1000)
    finished = sum(by_status[s] for s in Run.FINISHED_STATUSES)
    messages = Message.objects.filter(run__created_at__gte=since).exclude(type=Message.Type.USER)
    tokens = messages.aggregate(
        prompt=Coalesce(Sum("prompt_tokens"), 0), completion=Coalesce(Sum("completion_tokens"), 0)
    )
    prompt, completion = tokens["prompt"], tokens["completion"]
    # Costs are decimal strings inside the payload: only that key is read, not whole payloads.
    cost = sum((parse_cost(value) for value in messages.values_list("payload__cost", flat=True)), Decimal(0))
    return {
        "total": len(runs),
        "by_status": by_status,
        "failure_rate": by_status[Run.Status.FAILED] / finished if finished else None,
        "wait_p50_ms": _percentile(waits, 0.5),
        "wait_p95_ms": _percentile(waits, 0.95),
        "duration_p50_ms": _percentile(durations, 0.5),
        "duration_p95_ms": _percentile(durations, 0.95),
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost": str(cost.quantize(Decimal("0.000001"))),
    }


def agent_stats(*, since: datetime) -> list[dict[str, Any]]:
    """Per speaker (agents and the team's own messages) since ``since``: messages, tokens, cost and
    the latency of a message (time since the previous one of the run), busiest first."""
    rows: dict[str, dict[str, Any]] = {}
    messages = Message.objects.filter(created_at__gte=since, run__isnull=False).exclude(type=Message.Type.USER)
    fields = ("source", "payload__agent_name", "prompt_tokens", "completion_tokens", "payload__cost", "latency_ms")
    for source, name, prompt, completion, cost, latency in messages.values_list(*fields):
        row = rows.setdefault(
            source,
            {
                "source": source,
                "name": str(name or source),
                "messages": 0,
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "cost": Decimal(0),
                "latencies": [],
            },
        )
        row["messages"] += 1
        row["prompt_tokens"] += prompt
        row["completion_tokens"] += completion
        row["cost"] += parse_cost(cost)
        if latency is not None:
            row["latencies"].append(latency)
    out = []
    for row in sorted(rows.values(), key=lambda r: (-r["messages"], r["source"])):
        latencies = row.pop("latencies")
        out.append(
            {
                **row,
                "cost": str(row["cost"].quantize(Decimal("0.000001"))),
                "latency_p50_ms": _percentile(latencies, 0.5),
                "latency_p95_ms": _percentile(latencies, 0.95),
            }
        )
    return out


@dataclass(frozen=True)
class ActiveRun:
    run: Run
    age_seconds: float
    silent_seconds: float | None  # since the executor last signed life (running runs)

    @property
    def stale(self) -> bool:
        """No sign of life for the stale limit: its process is gone (recovered at the next touch)."""
        return (
            self.run.status == Run.Status.RUNNING
            and self.silent_seconds is not None
            and self.silent_seconds > settings.LODESTONE_RUN_STALE_SECONDS
        )

    @property
    def stuck_in_queue(self) -> bool:
        return self.run.status == Run.Status.QUEUED and self.age_seconds > QUEUED_WARNING_SECONDS

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run.pk,
            "conversation_id": self.run.conversation_id,
            "conversation": self.run.conversation.title,
            "owner": self.run.conversation.owner.get_username(),
            "status": self.run.status,
            "age_seconds": round(self.age_seconds, 1),
            "silent_seconds": None if self.silent_seconds is None else round(self.silent_seconds, 1),
            "stale": self.stale,
            "stuck_in_queue": self.stuck_in_queue,
        }


def active_runs() -> list[ActiveRun]:
    now = timezone.now()
    runs = Run.objects.filter(status__in=Run.ACTIVE_STATUSES).select_related("conversation__owner").order_by("id")

    def silent(run: Run) -> float | None:
        beat = run.heartbeat_at or run.started_at
        return (now - beat).total_seconds() if run.status == Run.Status.RUNNING and beat else None

    return [
        ActiveRun(run=run, age_seconds=(now - run.created_at).total_seconds(), silent_seconds=silent(run))
        for run in runs
    ]


def recent_failures(*, since: datetime, limit: int = RECENT_FAILURES) -> list[Run]:
    return list(
        Run.objects.filter(status=Run.Status.FAILED, created_at__gte=since)
        .select_related("conversation__owner")
        .order_by("-finished_at", "-id")[:limit]
    )


def system_facts() -> dict[str, Any]:
    """How this deployment is wired (from settings; no secrets)."""
    layer = settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", "")
    return {
        "database": connection.vendor,
        "runner": settings.LODESTONE_RUNNER,
        "celery": bool(settings.CELERY_BROKER_URL),
        "channel_layer": "redis" if "Redis" in layer else "in-memory",
        "embedder": settings.LODESTONE_EMBEDDER
        + (f" ({settings.LODESTONE_LOCAL_EMBEDDER_PRECISION})" if settings.LODESTONE_EMBEDDER == "local" else ""),
        "vector_store": settings.LODESTONE_VECTOR_STORE,
        "firestore_mirror": bool(settings.LODESTONE_FIREBASE_PROJECT_ID),
    }


def tool_summary(*, since: datetime) -> dict[str, Any]:
    """Tool calls since ``since``: totals, and the tools that failed, most failures first."""
    from tools.selectors import tool_stats

    stats = [s for s in tool_stats(since=since) if s.calls]
    calls, errors = sum(s.calls for s in stats), sum(s.errors for s in stats)
    failing = sorted((s for s in stats if s.errors), key=lambda s: (-s.errors, s.tool.name))
    return {
        "calls": calls,
        "errors": errors,
        "error_rate": errors / calls if calls else None,
        "failing": [
            {"tool": s.tool.name, "calls": s.calls, "errors": s.errors, "p95_ms": s.p95_ms} for s in failing[:5]
        ],
    }


def snapshot(*, period: str) -> dict[str, Any]:
    """Everything the monitoring view and ``GET /api/monitoring/`` show, for one period."""
    from memory.selectors import memory_health

    since = timezone.now() - PERIODS[period]
    active = active_runs()
    return {
        "period": period,
        "since": since.isoformat(),
        "runs": run_stats(since=since),
        "active_runs": [a.as_dict() for a in active],
        "attention": {
            "stale_runs": sum(a.stale for a in active),
            "queued_too_long": sum(a.stuck_in_queue for a in active),
        },
        "recent_failures": [
            {
                "run_id": run.pk,
                "conversation_id": run.conversation_id,
                "conversation": run.conversation.title,
                "owner": run.conversation.owner.get_username(),
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                "error": run.error,
            }
            for run in recent_failures(since=since)
        ],
        "agents": agent_stats(since=since),
        "memory": memory_health(),
        "tools": tool_summary(since=since),
        "system": system_facts(),
        "local_model": local_model_stats(),
    }
