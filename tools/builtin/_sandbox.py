from __future__ import annotations

from pathlib import Path

from tools.runtime import ToolCallError
from tools.sandbox import SandboxJob, SandboxResult, SandboxUnavailable, get_sandbox


async def sandbox_run(program: str, *, stdin: str = "", workspace: Path | None = None) -> SandboxResult:
    """Run in the sandbox; no safe sandbox here is a failed call whose text says why (the agent
    reads it, the user sees it on the tool card, the call is logged as an error)."""
    try:
        sandbox = get_sandbox()
    except SandboxUnavailable as exc:
        raise ToolCallError(str(exc)) from exc
    return await sandbox.run(SandboxJob(program=program, stdin=stdin, workspace=workspace))
