"""The OpenAPI schema and its Swagger UI, served with local assets."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from agents.models import Agent
from conversations.apis import MessageOutputSerializer, RunOutputSerializer
from conversations.models import Message, Run
from conversations.realtime import serialize_message, serialize_run
from tests import factories

pytestmark = pytest.mark.django_db

ENDPOINTS = {
    "/api/agents/": {"get"},
    "/api/teams/": {"get"},
    "/api/conversations/": {"get", "post"},
    "/api/conversations/{conversation_id}/": {"get"},
    "/api/conversations/{conversation_id}/messages/": {"get", "post"},
    "/api/runs/{run_id}/": {"get"},
    "/api/runs/{run_id}/cancel/": {"post"},
}


def test_schema_is_served_and_lists_every_endpoint(client: Client) -> None:
    response = client.get("/api/schema/")

    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for path, methods in ENDPOINTS.items():
        assert path in paths, path
        assert set(paths[path]) >= methods, path
    assert set(schema["components"]["securitySchemes"]) == {"cookieAuth", "tokenAuth"}
    # The model config is described by name and provider only.
    assert set(schema["components"]["schemas"]["ModelConfigSummary"]["properties"]) == {"name", "provider"}


def test_schema_generates_without_warnings(tmp_path: Path) -> None:
    target = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(target))
    assert "/api/conversations/{conversation_id}/messages/" in target.read_text()


def test_swagger_ui_uses_local_assets_only(client: Client) -> None:
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/" in html
    # The start-up script is a file of its own (a strict CSP allows no inline script); it points at the schema.
    script = re.search(r'<script src="(/api/docs/\?[^"]*script[^"]*)"', html)
    assert script is not None
    assert "/api/schema/" in client.get(script.group(1).replace("&amp;", "&")).content.decode()
    assert "'unsafe-inline'" not in response["Content-Security-Policy"].split("script-src")[1].split(";")[0]
    for cdn in ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com"):
        assert cdn not in html
    # Every script and stylesheet is ours, and is actually served.
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', html)
    assert assets
    for asset in assets:
        assert asset.startswith("/static/"), asset
        assert client.get(asset).status_code == 200, asset


def test_documented_shapes_match_what_the_socket_sends(agent: Agent, user: User) -> None:
    # The API renders messages and runs with realtime.serialize_*; the schema must describe those.
    conversation = factories.conversation(user, agent=agent)
    run = Run.objects.create(conversation=conversation)
    message = Message.objects.create(conversation=conversation, run=run, seq=1, source="user", type="user")

    assert set(MessageOutputSerializer().fields) == set(serialize_message(message))
    assert set(RunOutputSerializer().fields) == set(serialize_run(run))


def test_every_operation_documents_the_errors_it_can_answer(client: Client) -> None:
    paths = yaml.safe_load(client.get("/api/schema/").content)["paths"]

    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            kinds = {p["in"] for p in operation.get("parameters", [])}
            assert "401" in responses, (method, path)
            if "requestBody" in operation or "query" in kinds:
                assert "400" in responses, (method, path)
            if "path" in kinds:
                assert "404" in responses, (method, path)
            for code, response in responses.items():
                if code.startswith("4"):  # a JSON body: the error one unless the operation gives its own
                    assert "schema" in response["content"]["application/json"], (method, path, code)
            assert responses["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    limit = next(p for p in paths["/api/conversations/"]["get"]["parameters"] if p["name"] == "limit")
    assert limit["schema"] == {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}


def test_unknown_api_paths_answer_json(client: Client) -> None:
    response = client.get("/api/runs/not-a-number/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
