"""The admin: invocations read-only, approve/disable actions need the approve permission."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client

from tools.models import Tool, ToolInvocation

pytestmark = pytest.mark.django_db


def admin_client(*perms: str, superuser: bool = False) -> Client:
    if superuser:
        user = User.objects.create_superuser("root", password="pw")
    else:
        user = User.objects.create_user("editor", password="pw", is_staff=True)
        user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tools", codename__in=perms))
    client = Client()
    client.force_login(user)
    return client


def test_invocations_are_read_only() -> None:
    call = ToolInvocation.objects.create(tool_name="calculator", status="ok")
    client = admin_client(superuser=True)
    assert client.get("/admin/tools/toolinvocation/").status_code == 200
    assert client.get("/admin/tools/toolinvocation/add/").status_code == 403
    page = client.get(f"/admin/tools/toolinvocation/{call.pk}/change/").content.decode()
    assert 'name="_save"' not in page
    assert client.post(f"/admin/tools/toolinvocation/{call.pk}/delete/", {"post": "yes"}).status_code == 403


def test_approve_action_needs_the_permission() -> None:
    tool = Tool.objects.create(name="new_tool", description="d", kind="python")
    editor = admin_client("view_tool", "change_tool")
    page = editor.get("/admin/tools/tool/").content.decode()
    assert 'value="approve"' not in page
    approver = admin_client(superuser=True)
    approver.post("/admin/tools/tool/", {"action": "approve", "_selected_action": [tool.pk]})
    tool.refresh_from_db()
    assert tool.status == "approved" and tool.approved_by is not None
    approver.post("/admin/tools/tool/", {"action": "disable", "_selected_action": [tool.pk]})
    assert Tool.objects.get(pk=tool.pk).status == "disabled"


def test_agent_page_shows_grants_and_agent_pages_still_work() -> None:
    client = admin_client(superuser=True)
    assert client.get("/admin/agents/agent/add/").status_code == 200
    assert client.get("/admin/tools/mcpserver/add/").status_code == 200
    assert client.get("/admin/tools/tool/add/").status_code == 200


def test_admin_refuses_an_http_tool_with_a_placeholder_in_the_host() -> None:
    client = admin_client(superuser=True)
    response = client.post(
        "/admin/tools/tool/add/",
        {
            "name": "sneaky",
            "description": "d",
            "kind": "http",
            "parameters": '{"type": "object", "properties": {"host": {"type": "string"}}}',
            "status": "pending",
            "source": "",
            "config": '{"method": "GET", "url_template": "http://{host}/x"}',
            "timeout_seconds": "30",
            "secret_headers": "",
            "grants-TOTAL_FORMS": "0",
            "grants-INITIAL_FORMS": "0",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200 and "never in the host" in response.content.decode()
    assert not Tool.objects.filter(name="sneaky").exists()


def test_admin_test_run_uses_the_governed_path_and_records_it(admin_client: Any) -> None:
    calculator = Tool.objects.get(name="calculator")
    change = admin_client.get(f"/admin/tools/tool/{calculator.pk}/change/")
    assert f"/admin/tools/tool/{calculator.pk}/test/" in change.content.decode()

    page = admin_client.post(f"/admin/tools/tool/{calculator.pk}/test/", {"arguments": '{"expression": "6*7"}'})
    assert page.status_code == 200
    assert 'data-status="ok"' in page.content.decode() and "42" in page.content.decode()
    assert ToolInvocation.objects.filter(tool=calculator, status="ok").count() == 1

    bad = admin_client.post(f"/admin/tools/tool/{calculator.pk}/test/", {"arguments": "{not json"})
    assert bad.status_code == 400 and "not JSON" in bad.content.decode()
    deep = admin_client.post(f"/admin/tools/tool/{calculator.pk}/test/", {"arguments": "[" * 5000 + "]" * 5000})
    assert deep.status_code == 400 and "nested more than" in deep.content.decode()
    assert ToolInvocation.objects.filter(tool=calculator).count() == 1
