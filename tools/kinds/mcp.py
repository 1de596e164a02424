"""MCP tools: discovered from an ``McpServer``, called through autogen-ext's MCP workbench."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from autogen_core import CancellationToken

from tools.kinds import register_kind

if TYPE_CHECKING:
    from tools.runtime import ToolSpec


@register_kind("mcp")
async def call_mcp(spec: ToolSpec, arguments: dict[str, Any], token: CancellationToken) -> str:
    from tools.mcp import call_server_tool, server_params
    from tools.models import McpServer
    from tools.runtime import ToolCallError

    server_id = int(spec.config.get("server_id") or 0)
    server = await sync_to_async(McpServer.objects.filter(pk=server_id, enabled=True).first)()
    if server is None:
        raise ToolCallError(f"The MCP server of {spec.name!r} is gone or disabled.")
    text, is_error = await call_server_tool(server_params(server), str(spec.config.get("tool")), arguments)
    if is_error:
        raise ToolCallError(f"Tool {spec.name!r} (MCP) reported an error: {text}")
    return text
