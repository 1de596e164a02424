"""Dashboard figures computed from real ToolInvocation rows, access by permission, actions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from tests import factories
from tools import selectors, services
from tools.models import Tool, ToolGrant, ToolInvocation
from tools.selectors import percentile

pytestmark = pytest.mark.django_db


def record(tool: Tool, status: str, duration: int, *, age: timedelta = timedelta(minutes=5)) -> None:
    call = ToolInvocation.objects.create(tool=tool, tool_name=tool.name, status=status, duration_ms=duration)
    ToolInvocation.objects.filter(pk=call.pk).update(created_at=timezone.now() - age)


def staff(*perms: str) -> User:
    user = User.objects.create_user(f"staff{User.objects.count()}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tools", codename__in=perms))
    return user


def test_percentiles_are_nearest_rank() -> None:
    assert percentile([], 0.5) is None
    assert percentile([10, 20, 30, 40], 0.5) == 20
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([7], 0.95) == 7


def test_figures_per_tool_over_the_period() -> None:
    calc = Tool.objects.get(name="calculator")
    clock = Tool.objects.get(name="current_time")
    for duration in (10, 20, 30, 40, 50, 60, 70, 80, 90, 100):
        record(calc, "ok", duration)
    record(calc, "error", 500)
    record(calc, "timeout", 1000)
    record(calc, "ok", 99999, age=timedelta(days=3))  # outside a 24 h period
    record(clock, "denied", 0)

    stats = {s.tool.name: s for s in selectors.tool_stats(since=timezone.now() - timedelta(days=1))}
    calc_stats = stats["calculator"]
    assert (calc_stats.calls, calc_stats.errors) == (12, 2)
    assert calc_stats.error_rate == pytest.approx(2 / 12)
    assert calc_stats.p50_ms == 60 and calc_stats.p95_ms == 1000
    assert (stats["current_time"].calls, stats["current_time"].errors, stats["current_time"].p50_ms) == (1, 1, 0)
    assert stats["python_exec"].calls == 0 and stats["python_exec"].p95_ms is None
    week = {s.tool.name: s for s in selectors.tool_stats(since=timezone.now() - timedelta(days=7))}
    assert week["calculator"].calls == 13 and week["calculator"].p95_ms == 99999


def test_dashboard_needs_the_view_permission_and_shows_the_figures() -> None:
    client = Client()
    plain = factories.user()
    client.force_login(plain)
    assert client.get("/tools/").status_code == 403

    calc = Tool.objects.get(name="calculator")
    record(calc, "ok", 40)
    record(calc, "error", 80)
    agent = factories.agent(factories.replay_model(["x"]), "helper")
    services.tool_grant_create(agent=agent, tool=calc, needs_approval=True)
    client.force_login(staff("view_tool"))
    page = client.get("/tools/?period=7d")
    html = page.content.decode()
    assert page.status_code == 200
    row = html.split('id="tool-calculator"')[1].split("</tr>")[0]
    assert 'data-calls="2"' in row and "50%" in row and "helper (asks)" in row
    assert ">40<" in row and ">80<" in row  # p50, p95
    fragment = client.get("/tools/?period=1h", headers={"HX-Request": "true"})
    assert "<html" not in fragment.content.decode() and 'id="tool-calculator"' in fragment.content.decode()


def test_approve_disable_and_pending_requests_need_the_permission() -> None:
    tool = Tool.objects.create(name="pending_one", description="Waits.", kind="python", source="x")
    agent = factories.agent(factories.replay_model(["x"]), "asker")
    grant = services.tool_grant_create(agent=agent, tool=tool, status=ToolGrant.Status.REQUESTED)
    client = Client()
    client.force_login(staff("view_tool"))
    page = client.get("/tools/").content.decode()
    assert 'data-pending-tool="pending_one"' in page and f'data-pending-grant="{grant.pk}"' in page
    assert client.post(f"/tools/{tool.pk}/approve/").status_code == 403

    client.force_login(staff("approve_tool", "change_toolgrant"))
    assert client.post(f"/tools/{tool.pk}/approve/", headers={"HX-Request": "true"}).status_code == 200
    tool.refresh_from_db()
    assert tool.status == "approved" and tool.approved_by is not None
    client.post(f"/tools/grants/{grant.pk}/activate/")
    assert ToolGrant.objects.get(pk=grant.pk).status == "active"
    client.post(f"/tools/{tool.pk}/disable/")
    assert Tool.objects.get(pk=tool.pk).status == "disabled"


def test_test_run_from_the_dashboard_is_recorded() -> None:
    user = staff("view_tool", "test_tool")
    client = Client()
    client.force_login(user)
    calc = Tool.objects.get(name="calculator")
    ok = client.post(f"/tools/{calc.pk}/test/", {"arguments": '{"expression": "3*3"}'})
    assert ok.status_code == 200 and 'data-status="ok"' in ok.content.decode() and ">9<" in ok.content.decode()
    bad = client.post(f"/tools/{calc.pk}/test/", {"arguments": '{"nope": 1}'})
    assert bad.status_code == 400 and "Invalid arguments" in bad.content.decode()
    assert client.post(f"/tools/{calc.pk}/test/", {"arguments": "{oops"}).status_code == 400
    assert list(ToolInvocation.objects.order_by("id").values_list("status", "user_id")) == [
        ("ok", user.pk),
        ("invalid", user.pk),
    ]


def test_the_tools_link_follows_the_view_permission_not_staff() -> None:
    client = Client()
    client.force_login(staff("view_tool"))
    assert 'href="/tools/"' in client.get("/conversations/").content.decode()
    client.force_login(factories.user())
    assert 'href="/tools/"' not in client.get("/conversations/").content.decode()
    client.force_login(staff())
    assert 'href="/tools/"' not in client.get("/conversations/").content.decode()


def test_a_missing_sandbox_is_shown_on_the_dashboard(monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.sandbox import bubblewrap, reset_sandbox

    monkeypatch.setattr(bubblewrap, "bwrap_path", lambda: None)
    reset_sandbox()
    client = Client()
    client.force_login(staff("view_tool"))
    html = client.get("/tools/").content.decode()
    assert 'role="alert"' in html and "Sandbox unavailable, untrusted code is refused" in html
    assert "bubblewrap (bwrap) is not installed" in html and "LODESTONE_SANDBOX=rlimit" in html
    reset_sandbox()


def test_an_unsafe_sandbox_chosen_by_the_administrator_is_shown_as_degraded(settings: object) -> None:
    from tools.sandbox import reset_sandbox

    settings.LODESTONE_SANDBOX = "rlimit"  # type: ignore[attr-defined]
    reset_sandbox()
    client = Client()
    client.force_login(staff("view_tool"))
    html = client.get("/tools/").content.decode()
    assert 'role="alert"' in html and "Sandbox degraded" in html and "NO filesystem or network isolation" in html
    reset_sandbox()
