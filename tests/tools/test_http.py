"""HTTP tools and web_fetch against a local HTTP server the test starts."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import ValidationError

from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import messages, tool, wait_for_run
from tools import services
from tools.models import Tool, ToolInvocation
from tools.runtime import CallContext, invoke
from tools.selectors import tool_spec

SEEN: list[dict] = []


class Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        record = {
            "method": self.command,
            "path": self.path,
            "authorization": self.headers.get("Authorization"),
            "x_plain": self.headers.get("X-Plain"),
            "body": self.rfile.read(length).decode() if length else "",
        }
        SEEN.append(record)
        if self.path.startswith("/redirect"):
            self.send_response(302)
            self.send_header("Location", "http://example.invalid/elsewhere")
            self.end_headers()
            return
        if self.path.startswith("/fail"):
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        if self.path.startswith("/page"):
            body = (
                b"<html><head><script>evil()</script></head>"
                b"<body><h1>Title</h1><p>Hello &amp; welcome</p></body></html>"
            )
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(body)
            return
        data = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    SEEN.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


WEATHER_PARAMS = {
    "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    "required": ["city"],
}


def _weather(base: str, method: str = "GET", path: str = "/weather/{city}") -> Tool:
    tool = services.tool_create_http(
        name="weather",
        description="Weather for a city.",
        method=method,
        url_template=base + path,
        parameters=WEATHER_PARAMS,
        headers={"X-Plain": "visible"},
        secret_headers={"Authorization": "Bearer s3cret-token"},
    )
    return services.tool_approve(tool=tool, by=None)


@pytest.mark.django_db(transaction=True)
async def test_agent_calls_an_http_tool_with_encrypted_secret_headers(server: str, inline_runner: InlineRunner) -> None:
    weather = await sync_to_async(_weather)(server)
    stored = await Tool.objects.aget(pk=weather.pk)
    assert "s3cret-token" not in stored.secret_headers_encrypted and stored.secret_headers_encrypted.startswith(
        "fernet:"
    )
    assert "s3cret-token" not in json.dumps(stored.config)

    model = await sync_to_async(factories.replay_model)(
        [{"tool_calls": [{"id": "w1", "name": "weather", "arguments": {"city": "São Paulo/x", "days": 2}}]}, "Sunny."]
    )
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "forecaster")
    await sync_to_async(services.tool_grant_create)(agent=agent, tool=stored)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="?")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    assert SEEN[0]["path"] == "/weather/S%C3%A3o%20Paulo%2Fx?days=2"
    assert SEEN[0]["authorization"] == "Bearer s3cret-token" and SEEN[0]["x_plain"] == "visible"
    result = (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]
    assert json.loads(result["content"])["method"] == "GET"
    call = await ToolInvocation.objects.aget()
    assert call.status == "ok" and "s3cret" not in json.dumps(call.arguments)


@pytest.mark.django_db
def test_post_sends_the_other_arguments_as_json(server: str) -> None:
    weather = _weather(server, method="POST", path="/forecast/{city}")
    from asgiref.sync import async_to_sync

    outcome = async_to_sync(invoke)(tool_spec(weather), {"city": "Oslo", "days": 3}, context=CallContext())
    assert outcome.ok
    assert (
        SEEN[0]["method"] == "POST"
        and SEEN[0]["path"] == "/forecast/Oslo"
        and json.loads(SEEN[0]["body"]) == {"days": 3}
    )


@pytest.mark.django_db
def test_http_errors_and_redirects_are_error_results(server: str) -> None:
    from asgiref.sync import async_to_sync

    failing = _weather(server, path="/fail/{city}")
    outcome = async_to_sync(invoke)(tool_spec(failing), {"city": "x"}, context=CallContext())
    assert outcome.status == "error" and "HTTP 500: boom" in outcome.error
    Tool.objects.filter(pk=failing.pk).update(config={**failing.config, "url_template": server + "/redirect/{city}"})
    outcome = async_to_sync(invoke)(tool_spec(Tool.objects.get(pk=failing.pk)), {"city": "x"}, context=CallContext())
    assert outcome.status == "error" and "redirect (not followed)" in outcome.error
    assert len(SEEN) == 2  # nothing went to the redirect's host


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("http://{host}/x", "never in the host"),
        ("ftp://example.org/{a}", "http:// or https://"),
        ("https://example.org/{undeclared}", "declare them as parameters"),
    ],
)
def test_unsafe_templates_are_refused(template: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        services.tool_create_http(
            name="t", description="d", method="GET", url_template=template, parameters={"properties": {"a": {}}}
        )
    assert reason in str(caught.value)


@pytest.mark.django_db
def test_web_fetch_only_from_allowed_hosts(server: str, settings: pytest.FixtureRequest) -> None:
    from asgiref.sync import async_to_sync

    spec = tool_spec(tool("web_fetch"))
    settings.LODESTONE_WEB_FETCH_ALLOWED_HOSTS = ["docs.python.org"]  # type: ignore[attr-defined]
    refused = async_to_sync(invoke)(spec, {"url": server + "/page"}, context=CallContext())
    assert refused.result == "Error: 127.0.0.1 is not an allowed host for web_fetch." and SEEN == []

    settings.LODESTONE_WEB_FETCH_ALLOWED_HOSTS = ["127.0.0.1"]  # type: ignore[attr-defined]
    page = async_to_sync(invoke)(spec, {"url": server + "/page"}, context=CallContext())
    assert page.result == "Title\nHello & welcome"
    redirected = async_to_sync(invoke)(spec, {"url": server + "/redirect"}, context=CallContext())
    assert redirected.result == "Error: example.invalid is not an allowed host for web_fetch."
