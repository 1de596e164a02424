"""Builtin tools: functions registered in code with ``@builtin_tool``, run in the server process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autogen_core import CancellationToken

from tools.kinds import register_kind
from tools.registry import builtin_tools

if TYPE_CHECKING:
    from tools.runtime import ToolSpec


@register_kind("builtin")
async def call_builtin(spec: ToolSpec, arguments: dict[str, Any], token: CancellationToken) -> str:
    builtin = builtin_tools().get(spec.name)
    if builtin is None:
        raise LookupError(f"The builtin tool {spec.name!r} is not installed in this server.")
    tool = builtin.as_autogen()
    # FunctionTool runs sync functions in a worker thread and awaits async ones.
    result = await tool.run_json(arguments, token)
    return tool.return_value_as_string(result)
