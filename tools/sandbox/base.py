"""The sandbox seam: run untrusted Python in a separate process under limits.

Implementations (``bubblewrap``, ``rlimit``) register with ``register_sandbox``; settings choose one
(``LODESTONE_SANDBOX``). Every implementation runs ``python3 -I`` in a new process with a minimal
environment (no variable of the server's), a private working directory, rlimits on CPU time,
address space, file size and processes, a wall-clock deadline after which the whole process group
is killed, a cap on the bytes of output read back, and a watcher (``tools.sandbox.watch``) that
kills the call when all its processes together pass the call's CPU, memory or workspace limit.

Workspaces: the server never walks a tree the sandbox controls with privileges. When it runs as
root, a workspace directory is handed to the sandbox user once (``workspace_open``: the directory
itself, by descriptor, never its contents), and calls on one workspace are serialized
(``workspace_session``: an asyncio lock plus a file lock outside the workspace), so that measuring
the workspace after a call happens while none of its sandboxed processes is alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import fcntl
import os
import resource
import signal
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools import conf
from tools.sandbox.watch import CallWatcher, workspace_full, workspace_usage


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_mb: int = 256
    output_bytes: int = 64_000
    max_processes: int = 32
    file_bytes: int = 8_000_000
    # A persistent workspace may not grow past this (a call that pushes it over is killed).
    workspace_mb: int = 100

    @classmethod
    def from_settings(cls, **overrides: float) -> Limits:
        values = {
            "cpu_seconds": int(conf.get("LODESTONE_SANDBOX_CPU_SECONDS")),
            "wall_seconds": float(conf.get("LODESTONE_SANDBOX_WALL_SECONDS")),
            "memory_mb": int(conf.get("LODESTONE_SANDBOX_MEMORY_MB")),
            "output_bytes": int(conf.get("LODESTONE_SANDBOX_OUTPUT_BYTES")),
            "max_processes": int(conf.get("LODESTONE_SANDBOX_MAX_PROCESSES")),
            "file_bytes": int(conf.get("LODESTONE_SANDBOX_FILE_BYTES")),
            "workspace_mb": int(conf.get("LODESTONE_SANDBOX_WORKSPACE_MB")),
        }
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


@dataclass
class SandboxResult:
    exit_code: int | None
    stdout: str
    stderr: str
    duration_ms: int
    timed_out: bool = False
    output_truncated: bool = False
    sandbox: str = ""
    # Why the watcher killed the call (a per-call CPU, memory or workspace limit), else "".
    limit: str = ""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out and not self.limit

    def stopped_at_limit(self) -> str:
        """The limit the sandbox stopped the code at, or "" when it ended by itself (even failing)."""
        if self.ok:
            return ""
        if self.limit or self.timed_out:
            return self.describe_failure()
        if self.output_truncated:
            return "the code wrote more output than the sandbox allows and was killed"
        reason = self.describe_failure()
        signalled = self.exit_code is not None and (self.exit_code < 0 or self.exit_code > 128)
        if "MemoryError" in self.stderr or (signalled and "Traceback" not in self.stderr):
            return reason
        return ""

    def describe_failure(self) -> str:
        if self.limit:
            return self.limit
        if self.timed_out:
            return "the code ran out of time and was killed"
        code = self.exit_code
        if code is not None and code > 128 and "Traceback" not in self.stderr:
            code = 128 - code  # bubblewrap reports a child killed by signal N as 128 + N
        if code is not None and code < 0:
            sig = -code
            name = signal.Signals(sig).name if sig in signal.Signals.__members__.values() else str(sig)
            if sig == signal.SIGXCPU:
                return "the code used up its CPU time and was killed"
            if sig == signal.SIGKILL:
                return "the code was killed at a hard limit (CPU time, or memory)"
            if sig == signal.SIGXFSZ:
                return "the code wrote a file larger than the sandbox allows and was killed"
            if sig == signal.SIGSYS:
                return "the code made a system call the sandbox forbids and was killed"
            return f"the code was killed by {name}"
        tail = self.stderr.strip().splitlines()[-1:] or [f"exit code {self.exit_code}"]
        if "MemoryError" in self.stderr:
            return "the code ran out of memory (MemoryError)"
        return tail[0][:500]


@dataclass(frozen=True)
class SandboxJob:
    """``program``: Python source to run as the main script. ``workspace``: a directory mounted
    read-write as the working directory (``/workspace``); ``None``: a fresh empty one."""

    program: str
    stdin: str = ""
    workspace: Path | None = None
    limits: Limits = field(default_factory=Limits.from_settings)


class Sandbox(Protocol):
    name: str
    isolation: str

    async def run(self, job: SandboxJob) -> SandboxResult: ...


_libc = ctypes.CDLL(None, use_errno=True)
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000
_CLONE_NEWNS = 0x00020000


def _private_bind(source: str, source_fd: int, target: str) -> None:
    """In a mount namespace of this child only, bind the directory ``source`` onto ``target``.
    As root, before dropping to the sandbox user: that user need not be able to reach the
    workspace's real path (under var/, which is 0700), only ``target``. The kernel binds only
    paths of the caller's own mount namespace, so the path is bound and then checked to be the
    directory already open as ``source_fd`` (its parents are the server's: the code cannot swap it)."""
    if _libc.unshare(_CLONE_NEWNS) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare: {os.strerror(code)}")
    for src, dest, flags in ((None, b"/", _MS_REC | _MS_PRIVATE), (os.fsencode(source), os.fsencode(target), _MS_BIND)):
        if _libc.mount(src, dest, None, flags, None) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mount {dest!r}: {os.strerror(code)}")
    bound, expected = os.stat(target, follow_symlinks=False), os.fstat(source_fd)
    if (bound.st_dev, bound.st_ino) != (expected.st_dev, expected.st_ino):
        raise OSError(f"{source} changed while it was being bound")


def rlimit_setter(limits: Limits, bind: tuple[str, int, str] | None = None) -> Callable[[], None]:
    """Runs in the child between fork and exec: hard limits the code cannot raise again."""

    def apply() -> None:
        os.setsid()
        if bind is not None:
            _private_bind(*bind)
        memory = limits.memory_mb * 1024 * 1024
        for which, soft, hard in (
            # CPU: SIGXCPU at the soft limit (a readable death), SIGKILL a second later.
            (resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1),
            (resource.RLIMIT_AS, memory, memory),
            (resource.RLIMIT_DATA, memory, memory),
            (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
            (resource.RLIMIT_NPROC, limits.max_processes, limits.max_processes),
            (resource.RLIMIT_CORE, 0, 0),
            (resource.RLIMIT_NOFILE, 256, 256),
        ):
            resource.setrlimit(which, (soft, hard))
        if os.geteuid() == 0:
            # root ignores RLIMIT_NPROC (a fork bomb would not stop) and could undo the rest:
            # the sandbox runs as the unprivileged "nobody" instead.
            os.setgroups([])
            os.setgid(SANDBOX_UID)
            os.setuid(SANDBOX_UID)

    return apply


# The unprivileged user untrusted code runs as when the server runs as root.
SANDBOX_UID = 65534

MINIMAL_ENV = {
    "PATH": "/usr/bin:/bin",
    "HOME": "/workspace",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONIOENCODING": "utf-8",
}


async def _read_capped(stream: asyncio.StreamReader, budget: list[int], out: bytearray, flood: asyncio.Event) -> None:
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            return
        room = budget[0]
        if room > 0:
            out.extend(chunk[:room])
        budget[0] -= len(chunk)
        if budget[0] < 0:
            flood.set()  # more output than allowed: stop the process, keep what fits


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        process.kill()


@dataclass(frozen=True)
class Watch:
    """What the watcher of one call looks at (see ``tools.sandbox.watch``)."""

    namespace: bool = True
    tmpfs: tuple[str, ...] = ()
    workspace: Path | None = None
    workspace_limit: int = 0


async def run_process(
    argv: list[str],
    *,
    job: SandboxJob,
    cwd: str,
    env: dict[str, str],
    name: str,
    pass_fds: Sequence[int] = (),
    watch: Watch | None = None,
    bind: tuple[str, int, str] | None = None,
) -> SandboxResult:
    """Start ``argv`` under the job's rlimits, feed stdin, read capped output, enforce the deadline
    and (with ``watch``) the per-call totals."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        preexec_fn=rlimit_setter(job.limits, bind),
        close_fds=True,
        pass_fds=tuple(pass_fds),
    )
    budget = [job.limits.output_bytes]
    stdout, stderr = bytearray(), bytearray()
    flood = asyncio.Event()
    assert process.stdin and process.stdout and process.stderr
    readers = asyncio.gather(
        _read_capped(process.stdout, budget, stdout, flood), _read_capped(process.stderr, budget, stderr, flood)
    )

    async def feed() -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            process.stdin.write(job.stdin.encode())  # type: ignore[union-attr]
            await process.stdin.drain()  # type: ignore[union-attr]
            process.stdin.close()  # type: ignore[union-attr]

    watcher = (
        CallWatcher(
            cpu_seconds=job.limits.cpu_seconds,
            memory_bytes=job.limits.memory_mb * 1024 * 1024,
            root_pid=process.pid,
            namespace=watch.namespace,
            tmpfs=watch.tmpfs,
            workspace=watch.workspace,
            workspace_limit=watch.workspace_limit,
        )
        if watch
        else None
    )
    timed_out = False
    limit = ""
    flood_wait: asyncio.Future[Any] = asyncio.ensure_future(flood.wait())
    watch_wait: asyncio.Future[Any] = asyncio.ensure_future(watcher.watch() if watcher else asyncio.Event().wait())
    done_wait: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(feed(), readers, process.wait()))
    try:
        done, _ = await asyncio.wait(
            {flood_wait, watch_wait, done_wait}, timeout=job.limits.wall_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            timed_out = True
        if watch_wait in done:
            limit = watch_wait.result()
        if done_wait not in done:
            _kill_group(process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(done_wait), 5)
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        flood_wait.cancel()
        watch_wait.cancel()
        # Whatever the code left behind in its session (daemonised children) goes too.
        _kill_group(process)
        if not done_wait.done():
            done_wait.cancel()
        # Reap it here, so its pipes and transport close on this loop (not at garbage collection).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)
        with contextlib.suppress(Exception):
            await asyncio.gather(done_wait, watch_wait, return_exceptions=True)
        if watcher is not None:
            # Killing bubblewrap kills its namespace only asynchronously (parent-death signal): wait
            # until the namespace's first process is dead, which the kernel allows only once every
            # other process in it is gone.
            await watcher.end()
    return SandboxResult(
        exit_code=process.returncode,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        duration_ms=int((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        output_truncated=budget[0] < 0,
        sandbox=name,
        limit=limit,
    )


def hand_to_sandbox_user(fd: int) -> None:
    """When the server runs as root the code runs as ``SANDBOX_UID``: give it one directory, by an
    open descriptor (no path, no walk: nothing the code does can redirect it)."""
    if os.geteuid() == 0 and os.fstat(fd).st_uid != SANDBOX_UID:
        os.fchown(fd, SANDBOX_UID, SANDBOX_UID)


def workspace_open(path: Path) -> int:
    """The workspace directory, created if missing, opened without following a symbolic link in
    its last component and owned by the sandbox user. The caller closes the descriptor."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        hand_to_sandbox_user(fd)
    except BaseException:
        os.close(fd)
        raise
    return fd


_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def workspace_session(path: Path) -> AsyncIterator[None]:
    """One call at a time per workspace: in this process (asyncio) and across processes (an
    ``flock`` on ``<workspace>.lock`` beside it, which the sandbox cannot reach)."""
    key = os.fspath(path)
    lock = _locks.setdefault(asyncio.get_running_loop(), {}).setdefault(key, asyncio.Lock())
    async with lock:
        lock_fd = os.open(f"{key}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            while True:
                try:
                    fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.02)
            yield
        finally:
            os.close(lock_fd)  # releases the flock


def workspace_limit_check(path: Path, limit: int) -> str:
    """After a call (inside ``workspace_session``, no process of the workspace alive): over the limit?"""
    used = workspace_usage(path)
    return workspace_full(used, limit) if used > limit else ""
