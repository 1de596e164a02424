"""The audit log: every change made through a tools service writes one LogEntry (who, action, which
object, what), in the change's own transaction; admins read it in a read-only admin."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.test import Client

from config.common.audit import audit_record
from tests import factories
from tools import services
from tools.models import McpServer, Tool, ToolGrant

pytestmark = pytest.mark.django_db


def entries() -> list[tuple[int, int, str, str, str, str]]:
    """(user id, action, model, object id, object repr, message), oldest first."""
    return [
        (e.user_id, e.action_flag, getattr(e.content_type, "model", ""), e.object_id, e.object_repr, e.change_message)
        for e in LogEntry.objects.select_related("content_type").order_by("id")
    ]


def pending_tool(name: str = "pending_one") -> Tool:
    return Tool.objects.create(name=name, description="d", kind=Tool.Kind.PYTHON, source="x")


def test_approve_and_disable_from_the_dashboard_are_audited() -> None:
    tool = pending_tool()
    approver = factories.staff_user("tools.approve_tool")
    client = Client()
    client.force_login(approver)
    client.post(f"/tools/{tool.pk}/approve/")
    client.post(f"/tools/{tool.pk}/disable/")
    assert entries() == [
        (approver.pk, CHANGE, "tool", str(tool.pk), "pending_one", "Approved python tool version 1 (was pending)."),
        (approver.pk, CHANGE, "tool", str(tool.pk), "pending_one", "Disabled python tool version 1 (was approved)."),
    ]


def test_admin_actions_go_through_the_audited_services() -> None:
    tool = pending_tool()
    root = User.objects.create_superuser("root")
    client = Client()
    client.force_login(root)
    client.post("/admin/tools/tool/", {"action": "approve", "_selected_action": [tool.pk]})
    assert entries() == [
        (root.pk, CHANGE, "tool", str(tool.pk), "pending_one", "Approved python tool version 1 (was pending).")
    ]


def test_grants_created_requested_activated_changed_and_revoked_are_audited() -> None:
    admin = factories.staff_user("tools.change_toolgrant")
    owner = factories.user()
    calculator = Tool.objects.get(name="calculator")
    agent = factories.agent(factories.replay_model(["x"]), "helper")

    requested = services.tool_grant_create(
        agent=agent, tool=calculator, status=ToolGrant.Status.REQUESTED, for_user_id=owner.pk
    )
    client = Client()
    client.force_login(admin)
    client.post(f"/tools/grants/{requested.pk}/activate/")
    services.tool_grant_create(agent=agent, tool=calculator, needs_approval=True, created_by=admin)
    services.tool_grant_create(agent=agent, tool=calculator, needs_approval=True, created_by=admin)  # no change
    services.tool_grant_revoke(grant=ToolGrant.objects.get(pk=requested.pk), by=admin)
    other = services.tool_grant_create(agent=agent, tool=Tool.objects.get(name="current_time"), created_by=admin)

    grant_id, repr_ = str(requested.pk), f"{agent} -> calculator"  # the agent's name
    assert [e[:5] for e in entries()] == [
        (owner.pk, ADDITION, "toolgrant", grant_id, repr_),
        (admin.pk, CHANGE, "toolgrant", grant_id, repr_),
        (admin.pk, CHANGE, "toolgrant", grant_id, repr_),
        (admin.pk, DELETION, "toolgrant", grant_id, repr_),
        (admin.pk, ADDITION, "toolgrant", str(other.pk), f"{agent} -> current_time"),
    ]
    assert [e[5] for e in entries()] == [
        "Agent helper asked for tool calculator: a requested grant, usable once activated.",
        "Activated the grant of tool calculator to agent helper.",
        "Grant of tool calculator to agent helper changed: status active, needs approval: yes.",
        "Revoked tool calculator from agent helper.",
        "Granted tool current_time to agent helper (needs approval: no).",
    ]


def test_a_test_run_is_audited_with_its_outcome_and_arguments() -> None:
    tester = factories.staff_user("tools.view_tool", "tools.test_tool")
    calculator = Tool.objects.get(name="calculator")
    client = Client()
    client.force_login(tester)
    client.post(f"/tools/{calculator.pk}/test/", {"arguments": '{"expression": "6*7"}'})
    client.post(f"/tools/{calculator.pk}/test/", {"arguments": "{oops"})  # not JSON: nothing ran
    client.post(f"/tools/{pending_tool().pk}/test/", {"arguments": "{}"})  # refused: nothing ran
    invocation = calculator.invocations.get()
    assert entries() == [
        (
            tester.pk,
            CHANGE,
            "tool",
            str(calculator.pk),
            "calculator",
            f"Test run of the approved builtin tool version {calculator.version}: ok (invocation #{invocation.pk}). "
            'Arguments: {"expression": "6*7"}',
        )
    ]


def test_creating_an_http_tool_is_audited_under_its_creator() -> None:
    creator = factories.user()
    tool = services.tool_create_http(
        name="weather",
        description="Weather.",
        method="get",
        url_template="https://api.example.org/weather/{city}",
        parameters={"properties": {"city": {"type": "string"}}},
        created_by=creator,
    )
    assert entries() == [
        (
            creator.pk,
            ADDITION,
            "tool",
            str(tool.pk),
            "weather",
            "Created HTTP tool GET https://api.example.org/weather/{city}, pending approval.",
        )
    ]


def test_creating_a_python_tool_through_the_api_is_audited(bwrap: str) -> None:
    from rest_framework.test import APIClient

    creator = factories.staff_user("tools.add_tool")
    api = APIClient()
    api.force_authenticate(creator)
    source = "import math\n\ndef area(r: float) -> float:\n    '''Area of a circle.'''\n    return math.pi * r * r\n"
    created = api.post("/api/tools/", {"source": source, "example_arguments": {"r": 1}}, format="json")
    assert created.status_code == 201, created.content
    again = api.post("/api/tools/", {"source": source + "\n", "example_arguments": {"r": 2}}, format="json")
    assert again.status_code == 201, again.content
    tool = Tool.objects.get(name="area")
    assert entries() == [
        (
            creator.pk,
            ADDITION,
            "tool",
            str(tool.pk),
            "area",
            "Created Python tool, version 1, pending approval. Imports: math.",
        ),
        (
            creator.pk,
            CHANGE,
            "tool",
            str(tool.pk),
            "area",
            "New version 2 of the Python tool, pending approval again. Imports: math.",
        ),
    ]


def test_an_agents_change_is_recorded_under_the_person_it_acted_for() -> None:
    from tools.builtin.meta import _find
    from tools.runtime import CallContext, CurrentCall, current_call
    from tools.selectors import tool_spec

    owner = factories.user()
    agent = factories.agent(factories.replay_model(["x"]), "asker")
    conversation = factories.conversation(owner, agent=agent)
    find_tools = Tool.objects.get(name="find_tools")
    spec = tool_spec(find_tools, services.tool_grant_create(agent=agent, tool=find_tools))
    reset = current_call.set(CurrentCall(spec, CallContext(conversation_id=conversation.pk)))
    try:
        assert "Asked an administrator" in _find("", "calculator")
    finally:
        current_call.reset(reset)
    grant = ToolGrant.objects.get(agent=agent, tool__name="calculator")
    assert entries() == [
        (
            owner.pk,
            ADDITION,
            "toolgrant",
            str(grant.pk),
            str(grant),
            "Agent asker asked for tool calculator: a requested grant, usable once activated.",
        )
    ]


def test_mcp_discovery_is_audited() -> None:
    import sys
    from pathlib import Path

    server_script = Path(__file__).with_name("mcp_stdio_server.py")
    server = McpServer.objects.create(name="demo", command=sys.executable, args=[str(server_script)])
    admin = factories.staff_user("tools.change_mcpserver")  # the admin action needs it; the service records
    services.mcp_server_discover(server=server, by=admin)
    Tool.objects.filter(name="demo_add").update(description="Changed here, so the server's is new again.")
    Tool.objects.create(name="demo_gone", description="d", kind=Tool.Kind.MCP, config={"server_id": server.pk})
    services.mcp_server_discover(server=server, by=admin)
    assert entries() == [
        (
            admin.pk,
            CHANGE,
            "mcpserver",
            str(server.pk),
            "demo",
            "Discovered 3 tool(s). New, pending: demo_add, demo_explode, demo_shout; changed, pending again: none; "
            "disabled: none.",
        ),
        (
            admin.pk,
            CHANGE,
            "mcpserver",
            str(server.pk),
            "demo",
            "Discovered 3 tool(s). New, pending: none; changed, pending again: demo_add; disabled: demo_gone.",
        ),
    ]


def test_no_person_no_entry_and_a_rolled_back_change_leaves_no_entry() -> None:
    tool = pending_tool()
    services.tool_approve(tool=tool, by=None)  # a system task: nobody to record
    assert LogEntry.objects.count() == 0
    admin = factories.staff_user()
    other = pending_tool("other")
    with pytest.raises(RuntimeError), transaction.atomic():
        services.tool_approve(tool=other, by=admin)
        raise RuntimeError("the surrounding change fails")
    assert LogEntry.objects.count() == 0 and Tool.objects.get(pk=other.pk).status == Tool.Status.PENDING


def test_audit_record_refuses_an_unknown_action() -> None:
    with pytest.raises(ValueError, match="Unknown audit action"):
        audit_record(user=factories.user(), obj=pending_tool(), action=9, message="x")


def test_the_audit_log_is_read_only_in_the_admin_and_needs_its_view_permission() -> None:
    tool = pending_tool()
    admin = factories.staff_user("tools.approve_tool")
    services.tool_approve(tool=tool, by=admin)
    # A Django admin form save lands in the same log.
    root = User.objects.create_superuser("root")
    client = Client()
    client.force_login(root)
    form = {"name": "srv", "transport": "stdio", "command": "true", "args": "[]", "env": "{}", "timeout_seconds": 30}
    assert client.post("/admin/tools/mcpserver/add/", {**form, "enabled": "on", "url": ""}).status_code == 302
    server = McpServer.objects.get(name="srv")
    assert [e[:5] for e in entries()] == [
        (admin.pk, CHANGE, "tool", str(tool.pk), "pending_one"),
        (root.pk, ADDITION, "mcpserver", str(server.pk), "srv"),
    ]

    entry = LogEntry.objects.get(user=admin)
    listing = client.get("/admin/admin/logentry/")
    assert listing.status_code == 200 and "Approved python tool version 1 (was pending)." in listing.content.decode()
    found = client.get("/admin/admin/logentry/", {"q": "was pending"}).content.decode()
    assert f"/admin/admin/logentry/{entry.pk}/change/" in found
    not_found = client.get("/admin/admin/logentry/", {"q": "no such words"}).content.decode()
    assert f"/admin/admin/logentry/{entry.pk}/change/" not in not_found
    by_user = client.get("/admin/admin/logentry/", {"user__id__exact": root.pk}).content.decode()
    assert f"/admin/admin/logentry/{entry.pk}/change/" not in by_user
    tool_type = ContentType.objects.get_for_model(Tool)
    by_type = client.get("/admin/admin/logentry/", {"content_type__id__exact": tool_type.pk, "action_flag__exact": 2})
    assert f"/admin/admin/logentry/{entry.pk}/change/" in by_type.content.decode()

    assert client.get("/admin/admin/logentry/add/").status_code == 403
    detail = client.get(f"/admin/admin/logentry/{entry.pk}/change/").content.decode()
    assert 'name="_save"' not in detail and "Approved python tool version 1" in detail
    assert client.post(f"/admin/admin/logentry/{entry.pk}/change/", {"change_message": "x"}).status_code == 403
    assert client.post(f"/admin/admin/logentry/{entry.pk}/delete/", {"post": "yes"}).status_code == 403
    assert LogEntry.objects.get(pk=entry.pk).change_message == "Approved python tool version 1 (was pending)."

    client.force_login(factories.staff_user())
    assert client.get("/admin/admin/logentry/").status_code == 403
    client.force_login(factories.staff_user("admin.view_logentry"))
    assert client.get("/admin/admin/logentry/").status_code == 200
