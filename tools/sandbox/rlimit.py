"""The unsafe sandbox: a separate process with rlimits, a minimal environment and a private
temporary directory, but no namespaces. It does NOT stop network access or reading files the
sandbox's user can read. Used only when an administrator chooses it (``LODESTONE_SANDBOX=rlimit``);
``auto`` refuses untrusted code rather than fall back to it."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from tools import conf
from tools.sandbox.base import (
    MINIMAL_ENV,
    SandboxJob,
    SandboxResult,
    Watch,
    hand_to_sandbox_user,
    run_process,
    workspace_limit_check,
    workspace_open,
    workspace_session,
)
from tools.sandbox.registry import register_sandbox
from tools.sandbox.watch import MB, workspace_usage


@register_sandbox("rlimit")
class RlimitSandbox:
    name = "rlimit"
    isolation = (
        "separate process with CPU, memory, file-size, process and output limits and an empty environment; "
        "NO filesystem or network isolation"
    )

    async def run(self, job: SandboxJob) -> SandboxResult:
        if job.workspace is None:
            return await self._run(job, None)
        async with workspace_session(job.workspace):
            return await self._run(job, job.workspace)

    async def _run(self, job: SandboxJob, workspace: Path | None) -> SandboxResult:
        with tempfile.TemporaryDirectory(prefix="lodestone-job-") as tmp:
            # A fresh empty directory: handing it over by descriptor races with nothing.
            tmp_fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
            try:
                hand_to_sandbox_user(tmp_fd)
            finally:
                os.close(tmp_fd)
            disk_limit = 0
            if workspace is not None:
                os.close(workspace_open(workspace))
                disk_limit = max(job.limits.workspace_mb * MB, workspace_usage(workspace))
            cwd = str(workspace) if workspace is not None else tmp
            env = {**MINIMAL_ENV, "HOME": cwd, "TMPDIR": tmp}
            python = str(conf.get("LODESTONE_SANDBOX_PYTHON"))
            # No namespace here: the call's processes are its session (code that calls setsid escapes).
            watch = Watch(namespace=False, workspace=workspace, workspace_limit=disk_limit)
            result = await run_process(
                [python, "-I", "-c", job.program], job=job, cwd=cwd, env=env, name=self.name, watch=watch
            )
            if workspace is not None and not result.limit:
                with contextlib.suppress(OSError):
                    result.limit = workspace_limit_check(workspace, disk_limit)
            return result
