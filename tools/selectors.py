"""Reads for tools: what an agent was granted, what a person may see, and the figures of calls."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Q, QuerySet

from config.common.permissions import user_has_perm
from tools.models import Tool, ToolGrant, ToolInvocation, schema_of
from tools.runtime import ToolSpec


def tool_spec(tool: Tool, grant: ToolGrant | None = None) -> ToolSpec:
    return ToolSpec(
        tool_id=tool.pk,
        name=tool.name,
        description=tool.description,
        kind=tool.kind,
        parameters=schema_of(tool),
        timeout_seconds=float(tool.timeout_seconds),
        version=tool.version,
        source=tool.source,
        config=dict(tool.config or {}),
        secret_headers=tool.secret_headers() if tool.secret_headers_encrypted else {},
        agent_id=grant.agent_id if grant else None,
        grant_id=grant.pk if grant else None,
        needs_approval=grant.needs_approval if grant else False,
    )


def usable_grants(agent_ids: Iterable[int]) -> QuerySet[ToolGrant]:
    """Grants that give an agent a tool right now: active grant, approved tool."""
    return (
        ToolGrant.objects.filter(
            agent_id__in=list(agent_ids), status=ToolGrant.Status.ACTIVE, tool__status=Tool.Status.APPROVED
        )
        .select_related("tool")
        .order_by("agent_id", "tool__name")
    )


def granted_tool_specs(agent_ids: Iterable[int]) -> dict[int, list[ToolSpec]]:
    """Agent id -> the tools it may call (granted, enabled and approved), as snapshots."""
    specs: dict[int, list[ToolSpec]] = {}
    for grant in usable_grants(agent_ids):
        specs.setdefault(grant.agent_id, []).append(tool_spec(grant.tool, grant))
    return specs


def call_permission(*, tool_id: int, grant_id: int | None) -> tuple[bool, bool, str]:
    """Checked again at call time: (allowed, needs_approval, reason when not allowed)."""
    tool = Tool.objects.filter(pk=tool_id).values("status").first()
    if tool is None:
        return False, False, "the tool no longer exists"
    if tool["status"] != Tool.Status.APPROVED:
        return False, False, f"the tool is {tool['status']}"
    if grant_id is None:
        return True, False, ""
    grant = ToolGrant.objects.filter(pk=grant_id, tool_id=tool_id).values("status", "needs_approval").first()
    if grant is None:
        return False, False, "the grant was revoked"
    if grant["status"] != ToolGrant.Status.ACTIVE:
        return False, False, "the grant is not active"
    return True, bool(grant["needs_approval"]), ""


def tool_list_visible(*, user: AbstractBaseUser | AnonymousUser) -> QuerySet[Tool]:
    """With ``tools.view_tool`` every tool; otherwise approved tools and the ones they created."""
    tools = Tool.objects.all().order_by("name")
    if user_has_perm(user, "tools.view_tool"):
        return tools
    return tools.filter(Q(status=Tool.Status.APPROVED) | Q(created_by_id=user.pk))


def tool_get_visible(*, user: AbstractBaseUser | AnonymousUser, name: str) -> Tool | None:
    return tool_list_visible(user=user).filter(name=name).first()


def invocation_list(*, user: AbstractBaseUser | AnonymousUser, tool: Tool | None = None) -> QuerySet[ToolInvocation]:
    """With ``tools.view_toolinvocation`` every call; otherwise the calls made for them (their
    runs, their direct calls)."""
    calls = ToolInvocation.objects.select_related("tool", "agent").order_by("-created_at", "-id")
    if not user_has_perm(user, "tools.view_toolinvocation"):
        calls = calls.filter(user_id=user.pk)  # type: ignore[misc]
    if tool is not None:
        calls = calls.filter(tool=tool)
    return calls


def percentile(values: list[int], fraction: float) -> float | None:
    """Nearest-rank percentile (the value below which ``fraction`` of the values fall)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


@dataclass(frozen=True)
class ToolStats:
    tool: Tool
    calls: int
    errors: int
    p50_ms: float | None
    p95_ms: float | None
    grants: list[ToolGrant]

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def tool_stats(*, since: datetime | None = None, until: datetime | None = None) -> list[ToolStats]:
    """Per tool: calls, errors (anything but ok), p50/p95 duration over the period."""
    calls = ToolInvocation.objects.exclude(tool=None)
    if since is not None:
        calls = calls.filter(created_at__gte=since)
    if until is not None:
        calls = calls.filter(created_at__lt=until)
    durations: dict[int, list[int]] = {}
    errors: dict[int, int] = {}
    for tool_id, status, duration in calls.values_list("tool_id", "status", "duration_ms"):
        durations.setdefault(tool_id, []).append(duration)
        if status != ToolInvocation.Status.OK:
            errors[tool_id] = errors.get(tool_id, 0) + 1
    stats = []
    for tool in Tool.objects.prefetch_related("grants__agent").order_by("name"):
        values = durations.get(tool.pk, [])
        stats.append(
            ToolStats(
                tool=tool,
                calls=len(values),
                errors=errors.get(tool.pk, 0),
                p50_ms=percentile(values, 0.5),
                p95_ms=percentile(values, 0.95),
                grants=list(tool.grants.all()),
            )
        )
    return stats


def pending_requests() -> dict[str, Any]:
    return {
        "tools": Tool.objects.filter(status=Tool.Status.PENDING).order_by("-created_at"),
        "grants": ToolGrant.objects.filter(status=ToolGrant.Status.REQUESTED).select_related("agent", "tool"),
    }
