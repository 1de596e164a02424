"""The tools REST API: visibility, creation (pending, 400 with the reason), direct invocation with
permission checks, the invocation log, and the schema staying warning-free."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from rest_framework.test import APIClient

from tests import factories
from tools.models import Tool, ToolInvocation

pytestmark = pytest.mark.django_db

SOURCE = 'def double(x: int) -> int:\n    """Twice x."""\n    return 2 * x\n'


def client_for(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def with_perms(user: User, *codenames: str) -> User:
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="tools", codename__in=codenames))
    return User.objects.get(pk=user.pk)  # fresh permission cache


def test_anonymous_is_401() -> None:
    assert APIClient().get("/api/tools/").status_code == 401


def test_list_shows_approved_tools_and_own_pending_ones() -> None:
    alice, bob = factories.user(), factories.user()
    Tool.objects.create(name="alices_tool", description="d", kind="python", created_by=alice)
    Tool.objects.create(name="hidden_tool", description="d", kind="python")
    names = {t["name"] for t in client_for(alice).get("/api/tools/?limit=200").json()["results"]}
    assert {"calculator", "current_time", "python_exec", "alices_tool"} <= names and "hidden_tool" not in names
    assert "alices_tool" not in {t["name"] for t in client_for(bob).get("/api/tools/?limit=200").json()["results"]}
    assert client_for(bob).get("/api/tools/hidden_tool/").status_code == 404
    assert client_for(bob).get("/api/tools/calculator/").json()["parameters"]["required"] == ["expression"]


def test_create_needs_the_permission() -> None:
    response = client_for(factories.user()).post("/api/tools/", {"source": SOURCE}, format="json")
    assert response.status_code == 403


@pytest.mark.usefixtures("bwrap")
def test_create_stores_a_pending_tool_after_a_sandboxed_test_run() -> None:
    user = with_perms(factories.user(), "add_tool")
    response = client_for(user).post("/api/tools/", {"source": SOURCE, "example_arguments": {"x": 21}}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["name"], body["status"], body["test_output"], body["version"]) == ("double", "pending", "42", 1)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"source": "def f(:"}, "does not parse"),
        ({"source": "import socket\n" + SOURCE}, "Import of 'socket' is not allowed"),
        ({"source": SOURCE, "example_arguments": {"x": "many"}}, "example arguments"),
        ({}, "required"),
    ],
)
def test_create_with_invalid_code_is_400_with_the_reason(payload: dict, reason: str) -> None:
    user = with_perms(factories.user(), "add_tool")
    response = client_for(user).post("/api/tools/", payload, format="json")
    assert response.status_code == 400
    assert reason in str(response.json())
    assert not Tool.objects.filter(kind="python").exists()


def test_invoke_checks_permission_status_and_arguments() -> None:
    plain = factories.user()
    assert client_for(plain).post("/api/tools/calculator/invoke/", {"arguments": {}}, format="json").status_code == 403
    user = with_perms(factories.user(), "invoke_tool")
    client = client_for(user)

    ok = client.post("/api/tools/calculator/invoke/", {"arguments": {"expression": "2**10"}}, format="json")
    assert ok.status_code == 200 and ok.json()["result"] == "1024" and ok.json()["status"] == "ok"

    bad = client.post("/api/tools/calculator/invoke/", {"arguments": {"expression": 5}}, format="json")
    assert bad.status_code == 400 and "expression: 5 is not of type 'string'" in bad.json()["detail"]

    Tool.objects.filter(name="calculator").update(status="disabled")
    assert client.post("/api/tools/calculator/invoke/", {"arguments": {}}, format="json").status_code == 404
    calls = list(ToolInvocation.objects.order_by("id").values_list("status", "user_id"))
    assert calls == [("ok", user.pk), ("invalid", user.pk)]


def test_invocations_are_listed_for_their_user_and_staff() -> None:
    user = with_perms(factories.user(), "invoke_tool")
    other = with_perms(factories.user(), "invoke_tool")
    client_for(user).post("/api/tools/calculator/invoke/", {"arguments": {"expression": "1+1"}}, format="json")
    client_for(other).post("/api/tools/calculator/invoke/", {"arguments": {"expression": "2+2"}}, format="json")
    mine = client_for(user).get("/api/tools/invocations/").json()["results"]
    assert [(c["tool_name"], c["result_summary"]) for c in mine] == [("calculator", "2")]
    staff = User.objects.create_user("boss", is_staff=True)
    assert client_for(staff).get("/api/tools/invocations/?tool=calculator").json()["count"] == 0
    auditor = with_perms(User.objects.create_user("auditor"), "view_toolinvocation")
    assert client_for(auditor).get("/api/tools/invocations/?tool=calculator").json()["count"] == 2


def test_approval_answer_api_is_owner_only() -> None:
    assert (
        client_for(factories.user()).post("/api/tools/approvals/999/", {"approve": True}, format="json").status_code
        == 404
    )


def test_schema_has_no_warnings(tmp_path: object) -> None:
    call_command("spectacular", "--fail-on-warn", "--validate", "--file", "/dev/null")
