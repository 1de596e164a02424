"""The monitoring view and API (staff): exact figures from rows written the way the product writes
them, what needs attention flagged, and who may look."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from conversations import monitoring, services
from conversations.models import Message, Run
from memory.models import Experience, MirrorOutbox
from tests import factories
from tools.models import Tool, ToolInvocation

pytestmark = pytest.mark.django_db


def at(seconds_ago: float) -> Any:
    return timezone.now() - timedelta(seconds=seconds_ago)


def make_run(conversation: Any, status: str, *, created: float, started: float | None, finished: float | None) -> Run:
    run = Run.objects.create(conversation=conversation, status=status)
    Run.objects.filter(pk=run.pk).update(
        created_at=at(created),
        started_at=at(started) if started is not None else None,
        finished_at=at(finished) if finished is not None else None,
        heartbeat_at=at(started) if started is not None else None,
    )
    run.refresh_from_db()
    return run


@pytest.fixture
def world() -> dict[str, Any]:
    alice = factories.user("alice")
    agent = factories.agent(factories.replay_model(["x"]), "helper", name="Helper")
    conversation = factories.conversation(alice, agent=agent)
    done = make_run(conversation, Run.Status.COMPLETED, created=600, started=599, finished=597)  # 1 s wait, 2 s
    for tokens, cost, latency in [((10, 5), "0.001000", 100), ((20, 5), "0.002000", 300)]:
        services.message_append(
            conversation_id=conversation.pk,
            run_id=done.pk,
            source="helper",
            type=Message.Type.TEXT,
            content="ok",
            payload={"agent_name": "Helper", "cost": cost},
            prompt_tokens=tokens[0],
            completion_tokens=tokens[1],
            latency_ms=latency,
        )
    failed = make_run(conversation, Run.Status.FAILED, created=500, started=497, finished=493)  # 3 s wait, 4 s
    Run.objects.filter(pk=failed.pk).update(error="The reply failed: Connection error.")
    make_run(conversation, Run.Status.CANCELLED, created=400, started=399, finished=398)
    old = make_run(conversation, Run.Status.COMPLETED, created=3 * 86400, started=None, finished=None)
    bob_chat = factories.conversation(factories.user("bob"), agent=agent)
    stale = make_run(bob_chat, Run.Status.RUNNING, created=300, started=299, finished=None)  # silent 299 s
    waiting = factories.conversation(factories.user("carol"), agent=agent)
    queued = make_run(waiting, Run.Status.QUEUED, created=90, started=None, finished=None)

    Experience.objects.create(owner=alice, text="a", kind="episodic")
    merged = Experience.objects.create(owner=alice, text="b", kind="semantic")
    Experience.objects.create(owner=alice, text="c", kind="episodic", consolidated_into=merged)
    MirrorOutbox.objects.create(experience_id=1, op="upsert", attempts=2, last_error="Firestore unreachable")

    tool = Tool.objects.get(name="calculator")
    for status in ["ok", "ok", "error"]:
        ToolInvocation.objects.create(tool=tool, tool_name=tool.name, status=status, duration_ms=10)
    return {"done": done, "failed": failed, "old": old, "stale": stale, "queued": queued}


def test_the_snapshot_has_exact_figures(world: dict[str, Any]) -> None:
    data = monitoring.snapshot(period="24h")
    runs = data["runs"]
    assert runs["total"] == 5  # the 3-day-old run is outside the period
    assert runs["by_status"] == {
        "queued": 1, "running": 1, "awaiting_input": 0, "completed": 1, "failed": 1, "cancelled": 1
    }  # fmt: skip
    assert runs["failure_rate"] == pytest.approx(1 / 3)
    assert (runs["wait_p50_ms"], runs["wait_p95_ms"]) == (1000, 3000)
    assert (runs["duration_p50_ms"], runs["duration_p95_ms"]) == (2000, 4000)
    assert (runs["prompt_tokens"], runs["completion_tokens"], runs["cost"]) == (30, 10, "0.003000")
    assert data["agents"] == [
        {
            "source": "helper",
            "name": "Helper",
            "messages": 2,
            "prompt_tokens": 30,
            "completion_tokens": 10,
            "cost": "0.003000",
            "latency_p50_ms": 100,
            "latency_p95_ms": 300,
        }
    ]
    active = {row["run_id"]: row for row in data["active_runs"]}
    assert set(active) == {world["stale"].pk, world["queued"].pk}
    assert active[world["stale"].pk]["stale"] and active[world["stale"].pk]["owner"] == "bob"
    assert active[world["queued"].pk]["stuck_in_queue"] and not active[world["queued"].pk]["stale"]
    assert data["attention"] == {"stale_runs": 1, "queued_too_long": 1}
    assert [f["run_id"] for f in data["recent_failures"]] == [world["failed"].pk]
    assert data["recent_failures"][0]["error"] == "The reply failed: Connection error."
    assert data["memory"]["by_kind"] == {"episodic": 2, "semantic": 1}
    assert data["memory"]["consolidated_sources"] == 1
    assert (data["memory"]["mirror_pending"], data["memory"]["mirror_failing"]) == (1, 1)
    assert data["memory"]["mirror_last_error"] == "Firestore unreachable"
    assert data["tools"]["calls"] == 3 and data["tools"]["errors"] == 1
    assert data["tools"]["failing"] == [{"tool": "calculator", "calls": 3, "errors": 1, "p95_ms": 10.0}]
    from django.db import connection

    assert data["system"]["database"] == connection.vendor and data["system"]["runner"] == "inline"
    assert monitoring.snapshot(period="7d")["runs"]["total"] == 6


def staff() -> User:
    """Someone who may watch the board: the permission, not staff status, lets them."""
    user = User.objects.create_user("ops", password="pw-Secret-123")
    user.user_permissions.add(Permission.objects.get(codename="view_monitoring"))
    return user


def test_the_page_shows_the_board_and_flags_what_needs_attention(world: dict[str, Any]) -> None:
    client = Client()
    client.force_login(staff())
    page = client.get("/monitoring/").content.decode()
    assert 'hx-trigger="every 10s"' in page and 'data-attention="1"' in page
    assert "stopped signing life" in page and "queued for over 30 s" in page and "Firestore mirror failing" in page
    assert f'data-run="{world["stale"].pk}" class="is-warning"' in page
    assert "The reply failed: Connection error." in page and 'data-agent="helper"' in page
    # An HTMX refresh gets the board alone, for the chosen period.
    board = client.get("/monitoring/?period=7d", HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in board and 'value="7d" selected' in board
    assert client.get("/monitoring/?period=nonsense").status_code == 200  # falls back to 24h


def test_only_the_monitoring_permission_may_look_not_staff() -> None:
    anonymous = Client().get("/monitoring/")
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    bare_staff = User.objects.create_user("staffer", is_staff=True)
    client, api = Client(), APIClient()
    assert api.get("/api/monitoring/").status_code == 401
    for refused in (factories.user(), bare_staff):
        client.force_login(refused)
        assert client.get("/monitoring/").status_code == 403  # logged in: no redirect back to the login
        assert 'href="/monitoring/"' not in client.get("/conversations/").content.decode()
        api.force_authenticate(refused)
        denied = api.get("/api/monitoring/")
        assert denied.status_code == 403
        assert denied.json()["detail"] == "You need the permission conversations.view_monitoring."
    for allowed in (staff(), User.objects.create_superuser("root")):
        client.force_login(allowed)
        assert client.get("/monitoring/").status_code == 200
        assert 'href="/monitoring/"' in client.get("/conversations/").content.decode()
        api.force_authenticate(allowed)
        assert api.get("/api/monitoring/").status_code == 200


def test_the_api_gives_the_same_snapshot(world: dict[str, Any]) -> None:
    api = APIClient()
    api.force_authenticate(staff())
    body = api.get("/api/monitoring/?period=1h").json()
    assert body["period"] == "1h" and body["runs"]["total"] == 5 and body["attention"]["stale_runs"] == 1
    response = api.get("/api/monitoring/?period=1y")
    assert response.status_code == 400 and "period" in response.json()


def test_the_command_prints_the_snapshot_and_checks(world: dict[str, Any]) -> None:
    import io
    import json

    from django.core.management import CommandError, call_command

    out = io.StringIO()
    call_command("monitoring", stdout=out)
    text = out.getvalue()
    assert "Runs in the last 24h: 5 (1 queued, 1 running, 1 completed, 1 failed, 1 cancelled)" in text
    assert f"#{world['stale'].pk} running" in text and "(no sign of life)" in text
    assert "Failed #" in text and "Connection error" in text
    with pytest.raises(CommandError, match=r"stopped signing life.*waiting for a worker.*Firestore mirror"):
        call_command("monitoring", "--check", stdout=io.StringIO())
    out = io.StringIO()
    call_command("monitoring", "--json", "--period", "7d", stdout=out)
    assert json.loads(out.getvalue())["runs"]["total"] == 6


def test_check_passes_when_all_is_well() -> None:
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command("monitoring", "--check", stdout=out)
    assert "Runs in the last 24h: 0" in out.getvalue()


def test_the_board_shows_the_local_model_queue_and_prompt_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    from agents.providers import model_queue

    monkeypatch.setattr(model_queue, "_CACHE_REPORTS", {})
    model_queue.report_cache(
        "/models/Qwen2.5-Coder-1.5B.gguf",
        lambda: {"generations": 4, "prompt_tokens": 1000, "reused_tokens": 750, "states": 3, "bytes": 3 * 1048576},
    )
    client = Client()
    client.force_login(staff())
    page = client.get("/monitoring/").content.decode()
    assert "Local model queue" in page and "0 waiting" in page
    assert "<code>Qwen2.5-Coder-1.5B.gguf</code>: 75% of prompt tokens reused over 4 generations" in page
    assert "3 kept states (3 MiB)" in page
