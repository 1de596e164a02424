from __future__ import annotations

from pathlib import Path

from tools.sandbox import SandboxJob, SandboxResult, get_sandbox


async def sandbox_run(program: str, *, stdin: str = "", workspace: Path | None = None) -> SandboxResult:
    return await get_sandbox().run(SandboxJob(program=program, stdin=stdin, workspace=workspace))
