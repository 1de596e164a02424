"""The default sandbox: Debian's ``bubblewrap`` (``bwrap``).

The code runs as an unprivileged user (65534) in new user, PID, network, IPC, UTS and cgroup
namespaces, with all capabilities dropped, in a new session (no terminal injection), killed with its
parent. Its filesystem is: ``/usr`` read-only (with ``/usr/local`` hidden), ``/lib``, ``/lib64`` and
``/bin`` as symlinks into it, a private ``/proc`` and minimal ``/dev``, an empty ``/tmp``, and
``/workspace`` (the job's directory, read-write). Nothing else of the host exists inside: not
``/etc``, not ``/home``, not the project. The network namespace has no interface but a downed
loopback. rlimits and the wall-clock deadline apply as for every sandbox.
"""

from __future__ import annotations

import shutil
import tempfile

from tools import conf
from tools.sandbox.base import MINIMAL_ENV, SandboxJob, SandboxResult, give_to_sandbox_user, run_process
from tools.sandbox.registry import register_sandbox


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_argv(bwrap: str, workspace: str, tmp: str) -> list[str]:
    argv = [
        bwrap,
        "--unshare-all",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--cap-drop",
        "ALL",
        "--die-with-parent",
        "--new-session",
        # The code is PID 1 of its namespace and bwrap's own child: reaped by bwrap, and when it
        # ends the kernel kills and reaps everything else in the namespace (no orphans on the host).
        "--as-pid-1",
        "--ro-bind",
        "/usr",
        "/usr",
        "--tmpfs",
        "/usr/local",
        "--symlink",
        "usr/lib",
        "/lib",
        "--symlink",
        "usr/lib64",
        "/lib64",
        "--symlink",
        "usr/bin",
        "/bin",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--bind",
        tmp,
        "/tmp",  # noqa: S108 - the sandbox's own /tmp: a fresh private folder bound there
        "--bind",
        workspace,
        "/workspace",
        "--remount-ro",
        "/",
        "--chdir",
        "/workspace",
        "--clearenv",
    ]
    for key, value in MINIMAL_ENV.items():
        argv += ["--setenv", key, value]
    return argv


@register_sandbox("bubblewrap")
class BubblewrapSandbox:
    name = "bubblewrap"
    isolation = (
        "bubblewrap: new user/PID/network/IPC/UTS namespaces, no capabilities, read-only /usr only, "
        "private /tmp and /workspace, no network; plus CPU, memory, file-size, process and output limits"
    )

    async def run(self, job: SandboxJob) -> SandboxResult:
        bwrap = bwrap_path()
        if bwrap is None:
            raise RuntimeError("bubblewrap (bwrap) is not installed")
        python = str(conf.get("LODESTONE_SANDBOX_PYTHON"))
        with tempfile.TemporaryDirectory(prefix="lodestone-job-") as tmp:
            workspace = str(job.workspace) if job.workspace else tempfile.mkdtemp(dir=tmp, prefix="ws-")
            scratch = tempfile.mkdtemp(dir=tmp, prefix="tmp-")
            give_to_sandbox_user(tmp, workspace, scratch)
            argv = [*bwrap_argv(bwrap, workspace, scratch), python, "-I", "-c", job.program]
            return await run_process(argv, job=job, cwd=tmp, env=dict(MINIMAL_ENV), name=self.name)
