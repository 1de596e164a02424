"""A component import creates shared teams, agents, model configs, pending tools and grants: it needs
the add permission for each, never mere staff status; and every row it creates is audited."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from agents.models import Agent, ModelConfig, Team
from agents.permissions import COMPONENT_IMPORT_PERMISSIONS, TEAM_ADMINISTRATOR_PERMISSIONS, permissions_named
from tests import factories
from tests.teams.test_components import STUDIO_TEAM
from tools.models import Tool, ToolGrant

pytestmark = pytest.mark.django_db

SHOUT = "def shout(text: str) -> str:\n    '''Shout the text.'''\n    return text.upper()\n"


def team_with_a_tool() -> dict[str, Any]:
    team = json.loads(json.dumps(STUDIO_TEAM))
    team["config"]["participants"][0]["config"]["workbench"][0]["config"]["tools"] = [
        {
            "provider": "autogen_core.tools.FunctionTool",
            "component_type": "tool",
            "version": 1,
            "component_version": 1,
            "label": "shout",
            "config": {"source_code": SHOUT, "name": "shout", "description": "Shout.", "global_imports": []},
        }
    ]
    return team


def upload() -> SimpleUploadedFile:
    return SimpleUploadedFile("team.json", json.dumps(team_with_a_tool()).encode(), content_type="application/json")


def nothing_created() -> bool:
    return not (Team.objects.exists() or Agent.objects.exists() or ModelConfig.objects.exists()) and not (
        Tool.objects.filter(name="shout").exists()
    )


def api_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_the_api_import_needs_every_add_permission_not_staff() -> None:
    assert api_for(None).post("/api/components/import/", {"file": upload()}, format="multipart").status_code == 401
    missing_one = factories.staff_user(*[p for p in COMPONENT_IMPORT_PERMISSIONS if p != "tools.add_tool"])
    for refused in (factories.user(), factories.staff_user(), missing_one):
        response = api_for(refused).post("/api/components/import/", {"file": upload()}, format="multipart")
        assert response.status_code == 403
        assert response.json()["detail"] == "You need the permissions " + ", ".join(COMPONENT_IMPORT_PERMISSIONS) + "."
    assert nothing_created()

    importer = factories.user()
    importer.user_permissions.add(*permissions_named(COMPONENT_IMPORT_PERMISSIONS))  # not staff
    created = api_for(importer).post("/api/components/import/", {"file": upload()}, format="multipart")
    assert created.status_code == 201, created.content
    root = User.objects.create_superuser("root")
    assert api_for(root).post("/api/components/import/", {"file": upload()}, format="multipart").status_code == 201
    assert Team.objects.count() == 2


def test_the_teams_page_import_needs_the_same_permissions() -> None:
    anonymous = Client().post("/agents/teams/", {"file": upload()})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith("/accounts/login/")
    client = Client()
    for refused in (factories.user(), factories.staff_user()):
        client.force_login(refused)
        assert "viz-import" not in client.get("/agents/teams/").content.decode()
        assert client.post("/agents/teams/", {"file": upload()}).status_code == 403
    assert nothing_created()

    for allowed in (factories.staff_user(*COMPONENT_IMPORT_PERMISSIONS), User.objects.create_superuser("root")):
        client.force_login(allowed)
        assert "viz-import" in client.get("/agents/teams/").content.decode()
        page = client.post("/agents/teams/", {"file": upload()})
        assert page.status_code == 200 and "Imported:" in page.content.decode()


def test_every_row_an_import_creates_is_audited_under_the_importer() -> None:
    importer = factories.staff_user(*COMPONENT_IMPORT_PERMISSIONS)
    created = api_for(importer).post("/api/components/import/", {"file": upload()}, format="multipart").json()
    team = Team.objects.get(slug=created["teams"][0])
    writer, reviewer = (m.agent for m in team.members.order_by("position"))
    model = ModelConfig.objects.get(name=created["model_configs"][0])
    shout = Tool.objects.get(name="shout")
    grant = ToolGrant.objects.get(agent=writer, tool=shout)
    summary = (
        f"Imported from AutoGen component JSON: teams {team.slug}; agents {writer.slug}, {reviewer.slug}; "
        f"model configs {model.name}; pending tools shout."
    )
    rows = [
        (e.user_id, e.action_flag, getattr(e.content_type, "model", ""), e.object_id, e.change_message)
        for e in LogEntry.objects.select_related("content_type").order_by("id")
    ]
    assert rows == [
        (
            importer.pk,
            ADDITION,
            "toolgrant",
            str(grant.pk),
            f"Granted tool shout to agent {writer.slug} (needs approval: no).",
        ),
        (importer.pk, ADDITION, "team", str(team.pk), summary),
        (importer.pk, ADDITION, "agent", str(writer.pk), summary),
        (importer.pk, ADDITION, "agent", str(reviewer.pk), summary),
        (importer.pk, ADDITION, "modelconfig", str(model.pk), summary),
        (importer.pk, ADDITION, "tool", str(shout.pk), summary),
    ]
    assert grant.created_by == importer


def test_a_refused_import_writes_no_entry() -> None:
    importer = factories.staff_user(*COMPONENT_IMPORT_PERMISSIONS)
    bad = SimpleUploadedFile("bad.json", b'{"provider": "nope.Team", "component_type": "team", "config": {}}')
    assert api_for(importer).post("/api/components/import/", {"file": bad}, format="multipart").status_code == 400
    assert not LogEntry.objects.exists()


def test_the_team_administrator_permissions_all_exist() -> None:
    assert permissions_named(TEAM_ADMINISTRATOR_PERMISSIONS).count() == len(set(TEAM_ADMINISTRATOR_PERMISSIONS))
    assert set(COMPONENT_IMPORT_PERMISSIONS) <= set(TEAM_ADMINISTRATOR_PERMISSIONS)
