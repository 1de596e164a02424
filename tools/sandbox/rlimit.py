"""The fallback sandbox: a separate process with rlimits, a minimal environment and a private
temporary working directory, but no namespaces. It does NOT stop network access or reading files
the server's user can read. Chosen only when bubblewrap is unavailable, and then loudly."""

from __future__ import annotations

import tempfile

from tools import conf
from tools.sandbox.base import MINIMAL_ENV, SandboxJob, SandboxResult, give_to_sandbox_user, run_process
from tools.sandbox.registry import register_sandbox


@register_sandbox("rlimit")
class RlimitSandbox:
    name = "rlimit"
    isolation = (
        "separate process with CPU, memory, file-size, process and output limits and an empty environment; "
        "NO filesystem or network isolation"
    )

    async def run(self, job: SandboxJob) -> SandboxResult:
        with tempfile.TemporaryDirectory(prefix="lodestone-job-") as tmp:
            cwd = str(job.workspace) if job.workspace else tmp
            give_to_sandbox_user(tmp, cwd)
            env = {**MINIMAL_ENV, "HOME": cwd, "TMPDIR": tmp}
            python = str(conf.get("LODESTONE_SANDBOX_PYTHON"))
            return await run_process([python, "-I", "-c", job.program], job=job, cwd=cwd, env=env, name=self.name)
