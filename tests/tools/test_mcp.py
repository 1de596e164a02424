"""MCP tools from a real stdio MCP server process (written with the ``mcp`` package)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import ValidationError

from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import messages, wait_for_run
from tools import services
from tools.models import McpServer, Tool, ToolInvocation
from tools.runtime import CallContext, invoke
from tools.selectors import tool_spec

SERVER = Path(__file__).with_name("mcp_stdio_server.py")


def make_server(name: str = "mathy") -> McpServer:
    server = McpServer(name=name, transport="stdio", command=sys.executable, args=[str(SERVER)])
    server.full_clean()
    server.save()
    return server


@pytest.mark.django_db
def test_discovery_registers_pending_rows_with_schemas() -> None:
    server = make_server()
    rows = services.mcp_server_discover(server=server)
    assert sorted(t.name for t in rows) == ["mathy_add", "mathy_explode", "mathy_shout"]
    add = Tool.objects.get(name="mathy_add")
    assert (add.kind, add.status, add.description) == ("mcp", "pending", "Add two integers.")
    assert add.parameters["properties"]["a"]["type"] == "integer" and add.parameters["required"] == ["a", "b"]
    assert add.config == {"server_id": server.pk, "tool": "add"}
    server.refresh_from_db()
    assert server.last_discovered_at is not None and server.last_error == ""

    # Idempotent: a second discovery changes nothing.
    services.tool_approve(tool=add, by=None)
    services.mcp_server_discover(server=server)
    add.refresh_from_db()
    assert (add.version, add.status) == (1, "approved")


@pytest.mark.django_db
def test_direct_calls_and_server_errors() -> None:
    server = make_server()
    services.mcp_server_discover(server=server)
    for tool in Tool.objects.filter(kind="mcp"):
        services.tool_approve(tool=tool, by=None)
    shout = async_to_sync(invoke)(
        tool_spec(Tool.objects.get(name="mathy_shout")), {"text": "hi"}, context=CallContext()
    )
    assert shout.ok and shout.result == "HI"
    boom = async_to_sync(invoke)(
        tool_spec(Tool.objects.get(name="mathy_explode")), {"reason": "test"}, context=CallContext()
    )
    assert boom.status == "error" and "exploded: test" in boom.error
    bad = async_to_sync(invoke)(
        tool_spec(Tool.objects.get(name="mathy_add")), {"a": "x", "b": 1}, context=CallContext()
    )
    assert bad.status == "invalid"


@pytest.mark.django_db
def test_a_server_that_does_not_start_is_a_readable_error() -> None:
    server = McpServer.objects.create(name="broken", transport="stdio", command="/nonexistent/mcp-server")
    with pytest.raises(ValidationError) as caught:
        services.mcp_server_discover(server=server)
    assert "Discovery failed" in str(caught.value)
    server.refresh_from_db()
    assert server.last_error


@pytest.mark.django_db(transaction=True)
async def test_agent_calls_an_mcp_tool(inline_runner: InlineRunner) -> None:
    server = await sync_to_async(make_server)()
    await sync_to_async(services.mcp_server_discover)(server=server)
    add = await Tool.objects.aget(name="mathy_add")
    await sync_to_async(services.tool_approve)(tool=add, by=None)
    model = await sync_to_async(factories.replay_model)(
        [{"tool_calls": [{"id": "m1", "name": "mathy_add", "arguments": {"a": 40, "b": 2}}]}, "It is 42."]
    )
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "mcp_user")
    await sync_to_async(services.tool_grant_create)(agent=agent, tool=add)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="?")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    result = (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]
    assert result["content"] == "42" and not result["is_error"]
    assert (await ToolInvocation.objects.aget()).status == "ok"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("transport", "cli", "path"), [("streamable_http", "streamable-http", "/mcp"), ("sse", "sse", "/sse")]
)
def test_http_transports_discover_and_call(transport: str, cli: str, path: str) -> None:
    """The same server over the network: streamable HTTP and SSE, as a real process on loopback."""
    import subprocess

    from tests.servers import free_port, port_open, stop, wait_until

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(SERVER), cli, str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_until(lambda: port_open(port), what=f"MCP server ({cli})", limit=30, process=process)
        server = McpServer(name=f"net{transport[:3]}", transport=transport, url=f"http://127.0.0.1:{port}{path}")
        server.full_clean()
        server.save()
        rows = services.mcp_server_discover(server=server)
        assert sorted(t.name.split("_", 1)[1] for t in rows) == ["add", "explode", "shout"]
        add = next(t for t in rows if t.name.endswith("_add"))
        services.tool_approve(tool=add, by=None)
        outcome = async_to_sync(invoke)(tool_spec(add), {"a": 2, "b": 40}, context=CallContext())
        assert outcome.ok and outcome.result == "42"
    finally:
        stop(process)
