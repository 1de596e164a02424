"""Python tools created by users or agents: the function runs only in the sandbox."""

from __future__ import annotations

import json
import secrets
from typing import TYPE_CHECKING, Any

from autogen_core import CancellationToken

from tools.kinds import register_kind
from tools.sandbox import Limits, SandboxJob, SandboxResult, SandboxUnavailable, get_sandbox

if TYPE_CHECKING:
    from tools.runtime import ToolSpec

# Runs inside the sandbox: define the function, call it with the JSON arguments, print the result
# after a marker only this call knows (what the function itself prints comes before it).
RUNNER = """
import json, sys
payload = json.loads(sys.stdin.read())
namespace = {"__name__": "lodestone_tool"}
exec(compile(payload["source"], "<tool>", "exec"), namespace)
result = namespace[payload["function"]](**payload["arguments"])
try:
    text = json.dumps(result)
except (TypeError, ValueError):
    text = json.dumps(str(result))
sys.stdout.write("\\n" + payload["marker"] + text)
"""


class PythonToolError(Exception):
    pass


async def run_python_function(
    source: str, function: str, arguments: dict[str, Any], *, limits: Limits | None = None
) -> tuple[Any, SandboxResult]:
    """Call ``function`` from ``source`` with ``arguments`` in the sandbox: (return value, raw result)."""
    marker = f"\x1e{secrets.token_hex(8)}:"
    payload = json.dumps({"source": source, "function": function, "arguments": arguments, "marker": marker})
    job = SandboxJob(program=RUNNER, stdin=payload, limits=limits or Limits.from_settings())
    try:
        sandbox = get_sandbox()
    except SandboxUnavailable as exc:
        raise PythonToolError(str(exc)) from exc
    result = await sandbox.run(job)
    if not result.ok or marker not in result.stdout:
        reason = result.describe_failure() if not result.ok else "the function returned no result"
        if result.ok and result.output_truncated:
            reason = "the output was larger than the sandbox allows"
        raise PythonToolError(reason)
    text = result.stdout.rsplit(marker, 1)[1]
    return json.loads(text), result


@register_kind("python")
async def call_python(spec: ToolSpec, arguments: dict[str, Any], token: CancellationToken) -> str:
    function = str(spec.config.get("function") or spec.name)
    try:
        value, _ = await run_python_function(spec.source, function, arguments)
    except PythonToolError as exc:
        from tools.runtime import ToolCallError

        raise ToolCallError(f"Tool {spec.name!r} failed in the sandbox: {exc}") from exc
    return value if isinstance(value, str) else json.dumps(value)
