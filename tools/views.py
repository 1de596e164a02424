"""The tools dashboard (permission ``tools.view_tool``): figures per tool over a chosen period,
approve / disable (``tools.approve_tool``), activate grant requests (``tools.change_toolgrant``),
test-run with arguments (``tools.test_tool``; see ``services.tool_test_run_refusal``), pending
requests. Thin views over tools.selectors and tools.services; an htmx request gets the fragment it
swaps, any other request the whole page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from config.common.permissions import page_permission_required
from config.errors import ApplicationError
from tools import selectors, services
from tools.models import Tool, ToolGrant
from tools.sandbox import sandbox_status

PERIODS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
DEFAULT_PERIOD = "24h"


def _period(request: HttpRequest) -> str:
    value = request.GET.get("period", DEFAULT_PERIOD)
    return value if value in PERIODS else DEFAULT_PERIOD


def _context(request: HttpRequest) -> dict[str, Any]:
    period = _period(request)
    return {
        "period": period,
        "periods": list(PERIODS),
        "stats": selectors.tool_stats(since=timezone.now() - PERIODS[period]),
        "pending": selectors.pending_requests(),
        "sandbox": sandbox_status(),
        "can_approve": request.user.has_perm("tools.approve_tool"),
        "can_grant": request.user.has_perm("tools.change_toolgrant"),
        "can_test": request.user.has_perm("tools.test_tool"),
    }


@page_permission_required("tools.view_tool")
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    context = _context(request)
    if getattr(request, "htmx", False) and not request.htmx.history_restore_request:  # type: ignore[attr-defined]
        return render(request, "tools/partials/stats.html", context)
    return render(request, "tools/dashboard.html", context)


def _after_action(request: HttpRequest) -> HttpResponse:
    if getattr(request, "htmx", False):
        return render(request, "tools/partials/board.html", _context(request))
    return redirect("tools:dashboard")


@page_permission_required("tools.approve_tool")
@require_POST
def tool_approve_view(request: HttpRequest, tool_id: int) -> HttpResponse:
    services.tool_approve(tool=get_object_or_404(Tool, pk=tool_id), by=request.user)  # type: ignore[arg-type]
    return _after_action(request)


@page_permission_required("tools.approve_tool")
@require_POST
def tool_disable_view(request: HttpRequest, tool_id: int) -> HttpResponse:
    services.tool_disable(tool=get_object_or_404(Tool, pk=tool_id), by=request.user)  # type: ignore[arg-type]
    return _after_action(request)


@page_permission_required("tools.change_toolgrant")
@require_POST
def grant_activate_view(request: HttpRequest, grant_id: int) -> HttpResponse:
    services.tool_grant_activate(grant=get_object_or_404(ToolGrant, pk=grant_id), by=request.user)  # type: ignore[arg-type]
    return _after_action(request)


@page_permission_required("tools.test_tool")
@require_POST
def tool_test_view(request: HttpRequest, tool_id: int) -> HttpResponse:
    """Run the tool once with the given JSON arguments. A pending or disabled tool also needs
    ``tools.approve_tool`` (the service decides). Recorded as an invocation by this user."""
    tool = get_object_or_404(Tool, pk=tool_id)
    raw = request.POST.get("arguments", "") or "{}"
    context: dict[str, Any] = {"tool": tool, "arguments": raw}
    try:
        outcome = services.tool_test_run(tool=tool, raw_arguments=raw, user=request.user)  # type: ignore[arg-type]
    except PermissionDenied as exc:
        context["error"] = str(exc)
        return render(request, "tools/partials/test_result.html", context, status=403)
    except ValidationError as exc:
        context["error"] = " ".join(exc.messages)
        return render(request, "tools/partials/test_result.html", context, status=400)
    context["outcome"] = outcome
    status = 400 if outcome.status == "invalid" else 200
    return render(request, "tools/partials/test_result.html", context, status=status)


@login_required
@require_POST
def approval_answer_view(request: HttpRequest, approval_id: int) -> HttpResponse:
    """The chat's Approve / Deny buttons (the socket's ``tool.approval`` action does the same)."""
    try:
        approval = services.tool_approval_answer(
            approval_id=approval_id,
            user=request.user,  # type: ignore[arg-type]
            approve=request.POST.get("approve") == "1",
        )
    except ApplicationError as exc:
        return HttpResponse(exc.message, status=exc.status_code, content_type="text/plain")
    message = approval.message
    item = {
        "seq": message.seq if message else 0,
        "source": message.source if message else "tools",
        "content": message.content if message else "",
        "payload": {**(message.payload if message else {}), "state": approval.status},
    }
    if getattr(request, "htmx", False):
        return render(request, "tools/partials/approval_item.html", {"item": item})
    return redirect("conversations:detail", approval.conversation_id)
