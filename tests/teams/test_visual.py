"""The team visualization page: graph, edges with counts, active speaker, timeline; owner-scoped."""

from __future__ import annotations

import pytest
from django.test import Client

from agents.models import Team
from conversations import services
from conversations.models import Message, Run
from tests import factories
from tests.teams.test_team_kinds import make_team

pytestmark = pytest.mark.django_db


def test_graph_counts_who_spoke_after_whom_and_highlights_the_active_speaker() -> None:
    user = factories.user()
    model = factories.replay_model(["x"])
    a = factories.agent(model, "alpha", memory_enabled=True, tool_names=["calculator"])
    b = factories.agent(model, "beta")
    team = make_team([a, b], Team.Kind.ROUND_ROBIN, max_messages=3)
    conversation = factories.conversation(user, team=team)
    run = Run.objects.create(conversation=conversation, status=Run.Status.RUNNING)
    for source, type_ in [("user", "user"), ("alpha", "text"), ("beta", "text"), ("alpha", "text"), ("beta", "text")]:
        services.message_append(
            conversation_id=conversation.pk, run_id=run.pk, source=source, type=type_, content="hi", latency_ms=5
        )
    client = Client()
    client.force_login(user)
    page = client.get(f"/agents/teams/{team.slug}/?conversation={conversation.pk}")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-from="alpha" data-to="beta" data-count="2"' in html
    assert 'data-from="beta" data-to="alpha" data-count="1"' in html
    assert 'data-from="user" data-to="alpha" data-count="1"' in html
    assert 'class="viz-node active" data-agent="beta"' in html
    assert "calculator" in html and "🧠" in html
    assert f'data-run="{run.pk}"' in html and "4 turns" in html
    partial = client.get(f"/agents/teams/{team.slug}/?conversation={conversation.pk}", HTTP_HX_REQUEST="true")
    assert b"<main" not in partial.content and b"viz-graph" in partial.content

    stranger = Client()
    stranger.force_login(factories.user())
    assert stranger.get(f"/agents/teams/{team.slug}/?conversation={conversation.pk}").status_code == 404
    assert Message.objects.filter(conversation=conversation).count() == 5


def test_upload_with_the_import_permissions_imports_a_studio_team_and_refusals_show() -> None:
    import json

    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.teams.test_components import STUDIO_TEAM

    user = factories.user()
    client = Client()
    client.force_login(user)
    assert client.get("/agents/teams/").status_code == 200
    upload = SimpleUploadedFile("team.json", json.dumps(STUDIO_TEAM).encode())
    assert client.post("/agents/teams/", {"file": upload}).status_code == 403
    from agents.permissions import COMPONENT_IMPORT_PERMISSIONS, permissions_named

    user.user_permissions.add(*permissions_named(COMPONENT_IMPORT_PERMISSIONS))
    upload = SimpleUploadedFile("team.json", json.dumps(STUDIO_TEAM).encode())
    page = client.post("/agents/teams/", {"file": upload})
    assert page.status_code == 200 and b"Imported:" in page.content
    assert Team.objects.filter(name="Writer and reviewer").exists()
    bad = SimpleUploadedFile("bad.json", b'{"provider": "x.Y", "component_type": "team", "config": {}}')
    page = client.post("/agents/teams/", {"file": bad})
    assert page.status_code == 400 and b"x.Y" in page.content and b"Nothing was imported" in page.content
