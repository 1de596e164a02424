"""MCP servers through autogen-ext: server params from a ``McpServer`` row, tool discovery, calls.

A stdio server is started as a subprocess with only ``PATH``/``HOME``-style defaults of the MCP
library plus the row's ``env`` (never the server's own secrets); HTTP servers get the row's secret
headers. Each discovery and each call opens its own session (``McpWorkbench``)."""

from __future__ import annotations

import re
from typing import Any

from autogen_ext.tools.mcp import McpWorkbench, SseServerParams, StdioServerParams, StreamableHttpServerParams

from tools.models import McpServer

ServerParams = StdioServerParams | SseServerParams | StreamableHttpServerParams


def server_params(server: McpServer) -> ServerParams:
    if server.transport == McpServer.Transport.STDIO:
        return StdioServerParams(
            command=server.command,
            args=list(server.args),
            env={str(k): str(v) for k, v in server.env.items()} or None,
            read_timeout_seconds=float(server.timeout_seconds),
        )
    headers = server.secret_headers() or None
    if server.transport == McpServer.Transport.SSE:
        return SseServerParams(url=server.url, headers=headers, timeout=float(server.timeout_seconds))
    return StreamableHttpServerParams(url=server.url, headers=headers, timeout=float(server.timeout_seconds))


def tool_row_name(server: McpServer, tool_name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", tool_name)
    return f"{server.name}_{cleaned}"[:64]


async def list_server_tools(params: ServerParams) -> list[dict[str, Any]]:
    async with McpWorkbench(server_params=params) as workbench:
        return [dict(tool) for tool in await workbench.list_tools()]


async def call_server_tool(params: ServerParams, name: str, arguments: dict[str, Any]) -> tuple[str, bool]:
    """(text of the result, whether the server reported an error)."""
    async with McpWorkbench(server_params=params) as workbench:
        result = await workbench.call_tool(name, arguments)
    return result.to_text(), bool(result.is_error)
