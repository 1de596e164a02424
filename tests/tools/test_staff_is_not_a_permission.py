"""Staff status grants nothing on the tools side: every page and endpoint asks for a named
permission. The issue's case first: a staff user with no permissions could test-run python_exec
with arbitrary code, a pending tool and a disabled HTTP tool."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from tests import factories
from tools import services
from tools.models import Tool, ToolGrant, ToolInvocation

pytestmark = pytest.mark.django_db

CODE = '{"code": "import os; print(os.listdir(\'/\'))"}'


def client_for(user: User | None) -> Client:
    client = Client()
    if user is not None:
        client.force_login(user)
    return client


def pending_python_tool() -> Tool:
    return Tool.objects.create(
        name="pending_one",
        description="Waits for review.",
        kind=Tool.Kind.PYTHON,
        source="def pending_one() -> str:\n    '''x'''\n    return 'ran'\n",
        parameters={"type": "object", "properties": {}},
    )


def disabled_http_tool() -> Tool:
    return Tool.objects.create(
        name="old_http",
        description="Disabled.",
        kind=Tool.Kind.HTTP,
        status=Tool.Status.DISABLED,
        config={"method": "GET", "url_template": "http://127.0.0.1:9/never"},
        parameters={"type": "object", "properties": {}},
    )


def test_staff_without_permissions_cannot_test_run_python_exec_a_pending_or_a_disabled_http_tool() -> None:
    bare_staff = factories.staff_user()
    client = client_for(bare_staff)
    python_exec = Tool.objects.get(name="python_exec")
    for tool, arguments in ((python_exec, CODE), (pending_python_tool(), "{}"), (disabled_http_tool(), "{}")):
        response = client.post(f"/tools/{tool.pk}/test/", {"arguments": arguments})
        assert response.status_code == 403, tool.name
        admin_page = client.post(f"/admin/tools/tool/{tool.pk}/test/", {"arguments": arguments})
        assert admin_page.status_code == 403, tool.name
    assert not ToolInvocation.objects.exists()


def test_test_run_needs_test_tool_and_an_unapproved_tool_also_needs_approve_tool() -> None:
    calculator = Tool.objects.get(name="calculator")
    pending, disabled = pending_python_tool(), disabled_http_tool()
    tester = factories.staff_user("tools.test_tool")
    client = client_for(tester)

    ok = client.post(f"/tools/{calculator.pk}/test/", {"arguments": '{"expression": "6*7"}'})
    assert ok.status_code == 200 and 'data-status="ok"' in ok.content.decode()
    for tool in (pending, disabled):
        refused = client.post(f"/tools/{tool.pk}/test/", {"arguments": "{}"})
        assert refused.status_code == 403
        assert f"The tool is {tool.status}: only someone who may approve tools" in refused.content.decode()
        assert client.post(f"/admin/tools/tool/{tool.pk}/test/", {"arguments": "{}"}).status_code == 403
    assert list(ToolInvocation.objects.values_list("tool__name", "user_id")) == [("calculator", tester.pk)]

    # A reviewer may try an unapproved tool: the calculator row, pending again, runs for them.
    reviewer = factories.staff_user("tools.test_tool", "tools.approve_tool")
    Tool.objects.filter(pk=calculator.pk).update(status=Tool.Status.PENDING)
    reviewed = client_for(reviewer).post(f"/tools/{calculator.pk}/test/", {"arguments": '{"expression": "2+2"}'})
    assert reviewed.status_code == 200 and ">4<" in reviewed.content.decode()
    # approve_tool alone is not test_tool.
    approver = factories.staff_user("tools.approve_tool")
    assert client_for(approver).post(f"/tools/{calculator.pk}/test/", {"arguments": "{}"}).status_code == 403


def test_superuser_may_test_run_anything_and_anonymous_goes_to_the_login() -> None:
    calculator = Tool.objects.get(name="calculator")
    Tool.objects.filter(pk=calculator.pk).update(status=Tool.Status.DISABLED)
    root = User.objects.create_superuser("root")
    response = client_for(root).post(f"/tools/{calculator.pk}/test/", {"arguments": '{"expression": "1+1"}'})
    assert response.status_code == 200 and 'data-status="ok"' in response.content.decode()
    anonymous = Client().post(f"/tools/{calculator.pk}/test/", {"arguments": "{}"})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")


def test_the_dashboard_offers_a_test_run_only_where_it_would_be_allowed() -> None:
    pending = pending_python_tool()
    viewer = client_for(factories.staff_user("tools.view_tool")).get("/tools/").content.decode()
    assert "/test/" not in viewer
    tester = client_for(factories.staff_user("tools.view_tool", "tools.test_tool")).get("/tools/").content.decode()
    calculator = Tool.objects.get(name="calculator")
    assert f"/tools/{calculator.pk}/test/" in tester and f"/tools/{pending.pk}/test/" not in tester
    reviewer = client_for(factories.staff_user("tools.view_tool", "tools.test_tool", "tools.approve_tool"))
    assert f"/tools/{pending.pk}/test/" in reviewer.get("/tools/").content.decode()


@pytest.mark.parametrize(
    ("path", "method", "permission"),
    [
        ("/tools/", "get", "tools.view_tool"),
        ("/tools/{tool}/approve/", "post", "tools.approve_tool"),
        ("/tools/{tool}/disable/", "post", "tools.approve_tool"),
        ("/tools/grants/{grant}/activate/", "post", "tools.change_toolgrant"),
    ],
)
def test_every_dashboard_page_asks_for_its_permission(path: str, method: str, permission: str) -> None:
    tool = pending_python_tool()
    agent = factories.agent(factories.replay_model(["x"]), "asker")
    grant = services.tool_grant_create(agent=agent, tool=tool, status=ToolGrant.Status.REQUESTED)
    url = path.format(tool=tool.pk, grant=grant.pk)

    anonymous = getattr(Client(), method)(url)
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    for refused in (factories.user(), factories.staff_user()):
        assert getattr(client_for(refused), method)(url).status_code == 403
    for allowed in (factories.staff_user(permission), User.objects.create_superuser(f"root{tool.pk}")):
        assert getattr(client_for(allowed), method)(url).status_code in (200, 302)
    tool.refresh_from_db()
    grant.refresh_from_db()
    if "approve" in path:
        assert tool.status == Tool.Status.APPROVED
    if "disable" in path:
        assert tool.status == Tool.Status.DISABLED
    if "activate" in path:
        assert grant.status == ToolGrant.Status.ACTIVE


def test_seeing_every_tool_and_every_call_is_a_permission_not_staff() -> None:
    pending = pending_python_tool()
    ToolInvocation.objects.create(tool_name="calculator", status="ok")
    bare_staff, api = factories.staff_user(), APIClient()
    api.force_authenticate(bare_staff)
    assert pending.name not in [t["name"] for t in api.get("/api/tools/?limit=200").json()["results"]]
    assert api.get("/api/tools/invocations/").json()["count"] == 0
    api.force_authenticate(factories.staff_user("tools.view_tool", "tools.view_toolinvocation"))
    assert pending.name in [t["name"] for t in api.get("/api/tools/?limit=200").json()["results"]]
    assert api.get("/api/tools/invocations/").json()["count"] == 1


def test_mcp_discovery_in_the_admin_needs_the_change_permission() -> None:
    from tools.models import McpServer

    McpServer.objects.create(name="srv", command="true")
    viewer = client_for(factories.staff_user("tools.view_mcpserver"))
    assert 'value="discover"' not in viewer.get("/admin/tools/mcpserver/").content.decode()
    changer = client_for(factories.staff_user("tools.view_mcpserver", "tools.change_mcpserver"))
    assert 'value="discover"' in changer.get("/admin/tools/mcpserver/").content.decode()
