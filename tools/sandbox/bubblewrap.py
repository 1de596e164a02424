"""The default sandbox: Debian's ``bubblewrap`` (``bwrap``).

The code runs as an unprivileged user (65534) in new user, PID, network, IPC, UTS and cgroup
namespaces, with all capabilities dropped, under a seccomp filter (``tools.sandbox.seccomp``: no
new namespaces, mounts, ptrace, keyring, bpf, io_uring...), in a new session (no terminal
injection), killed with its parent. Its filesystem is: ``/usr`` read-only (with ``/usr/local``
hidden), ``/lib``, ``/lib64`` and ``/bin`` as symlinks into it, a private ``/proc`` and minimal
``/dev``, ``/tmp`` and ``/dev/shm`` as private tmpfs of the call's memory size, and ``/workspace``
(the job's directory, read-write, bound by descriptor; or a tmpfs of the workspace size). Nothing
else of the host exists inside: not ``/etc``, not ``/home``, not the project. The network
namespace has no interface but a downed loopback. rlimits, the wall-clock deadline and the
per-call totals (CPU, memory, workspace disk) apply as for every sandbox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from tools import conf
from tools.sandbox import seccomp
from tools.sandbox.base import (
    MINIMAL_ENV,
    SandboxJob,
    SandboxResult,
    Watch,
    run_process,
    workspace_limit_check,
    workspace_open,
    workspace_session,
)
from tools.sandbox.registry import register_sandbox
from tools.sandbox.watch import MB, workspace_usage


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def bwrap_argv(
    bwrap: str,
    *,
    workspace_fd: int | None,
    memory_bytes: int,
    workspace_bytes: int,
    seccomp_fd: int | None,
    workspace_path: str | None = None,
) -> list[str]:
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
        "--size",
        "65536",
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
        # RAM-backed scratch of the call's own, sized (the watcher also counts it as memory).
        "--size",
        str(memory_bytes),
        "--tmpfs",
        "/dev/shm",  # noqa: S108 - the sandbox's own, a private tmpfs
        "--size",
        str(memory_bytes),
        "--tmpfs",
        "/tmp",  # noqa: S108 - the sandbox's own /tmp, a private tmpfs
    ]
    if workspace_path is not None:
        argv += ["--bind", workspace_path, "/workspace"]
    elif workspace_fd is not None:
        argv += ["--bind-fd", str(workspace_fd), "/workspace"]
    else:
        argv += ["--size", str(workspace_bytes), "--tmpfs", "/workspace"]
    argv += ["--remount-ro", "/", "--chdir", "/workspace", "--clearenv"]
    for key, value in MINIMAL_ENV.items():
        argv += ["--setenv", key, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return argv


def _seccomp_memfd() -> int:
    program = seccomp.build_filter()
    fd = os.memfd_create("lodestone-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


@register_sandbox("bubblewrap")
class BubblewrapSandbox:
    name = "bubblewrap"
    isolation = (
        "bubblewrap: new user/PID/network/IPC/UTS namespaces, no capabilities, a seccomp filter, read-only "
        "/usr only, private sized /tmp, /dev/shm and /workspace, no network; plus per-call CPU, memory, "
        "workspace-disk, process and output limits"
    )

    def __init__(self, *, seccomp_filter: bool = True, watcher: bool = True) -> None:
        # Both are on in use; the switches exist for bench/sandbox.py, which measures their cost.
        self.seccomp_filter = seccomp_filter
        self.watcher = watcher

    async def run(self, job: SandboxJob) -> SandboxResult:
        bwrap = bwrap_path()
        if bwrap is None:
            raise RuntimeError("bubblewrap (bwrap) is not installed")
        if job.workspace is None:
            return await self._run(bwrap, job, None)
        async with workspace_session(job.workspace):
            return await self._run(bwrap, job, job.workspace)

    async def _run(self, bwrap: str, job: SandboxJob, workspace: Path | None) -> SandboxResult:
        python = str(conf.get("LODESTONE_SANDBOX_PYTHON"))
        limits = job.limits
        memory, workspace_cap = limits.memory_mb * MB, limits.workspace_mb * MB
        tmpfs: tuple[str, ...] = ("/tmp", "/dev/shm")  # noqa: S108 - paths inside the sandbox
        fds: list[int] = []
        try:
            seccomp_fd = _seccomp_memfd() if self.seccomp_filter else None
            if seccomp_fd is not None:
                fds.append(seccomp_fd)
            workspace_fd = None
            disk_limit = 0
            if workspace is not None:
                workspace_fd = workspace_open(workspace)
                fds.append(workspace_fd)
                # A workspace already over the limit (the limit was lowered) may shrink, not grow.
                disk_limit = max(workspace_cap, workspace_usage(workspace))
            else:
                tmpfs += ("/workspace",)
            bind: tuple[str, int, str] | None = None
            if workspace is not None and workspace_fd is not None and os.geteuid() == 0:
                # bubblewrap runs as the sandbox user, which cannot traverse var/ (0700): the
                # workspace is bound, in the child's own mount namespace, onto an empty folder it can.
                mount_point = tempfile.mkdtemp(prefix="lodestone-mnt-")
                os.chmod(mount_point, 0o711)  # noqa: S103 - empty on the host; only the bind shows in it
                bind = (os.fspath(workspace), workspace_fd, mount_point)
            argv = bwrap_argv(
                bwrap,
                workspace_fd=workspace_fd,
                memory_bytes=memory,
                workspace_bytes=workspace_cap,
                seccomp_fd=seccomp_fd,
                workspace_path=bind[2] if bind else None,
            )
            watch = Watch(tmpfs=tmpfs, workspace=workspace, workspace_limit=disk_limit) if self.watcher else None
            result = await run_process(
                [*argv, python, "-I", "-c", job.program],
                job=job,
                cwd="/",
                env=dict(MINIMAL_ENV),
                name=self.name,
                pass_fds=fds,
                watch=watch,
                bind=bind,
            )
        finally:
            for fd in fds:
                with contextlib.suppress(OSError):
                    os.close(fd)
            if bind is not None:
                with contextlib.suppress(OSError):
                    os.rmdir(bind[2])
        if workspace is not None and not result.limit:
            # No process of this call is alive now (its PID namespace is gone) and the session
            # lock keeps the next call out: the size measured here is final.
            result.limit = workspace_limit_check(workspace, disk_limit)
        return result
