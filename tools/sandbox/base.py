"""The sandbox seam: run untrusted Python in a separate process under limits.

Implementations (``bubblewrap``, ``rlimit``) register with ``register_sandbox``; settings choose one
(``LODESTONE_SANDBOX``). Every implementation runs ``python3 -I`` in a new process with a minimal
environment (no variable of the server's), a private working directory, rlimits on CPU time,
address space, file size and processes, a wall-clock deadline after which the whole process group
is killed, and a cap on the bytes of output read back.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from tools import conf


@dataclass(frozen=True)
class Limits:
    cpu_seconds: int = 5
    wall_seconds: float = 10.0
    memory_mb: int = 256
    output_bytes: int = 64_000
    max_processes: int = 32
    file_bytes: int = 8_000_000

    @classmethod
    def from_settings(cls, **overrides: float) -> Limits:
        values = {
            "cpu_seconds": int(conf.get("LODESTONE_SANDBOX_CPU_SECONDS")),
            "wall_seconds": float(conf.get("LODESTONE_SANDBOX_WALL_SECONDS")),
            "memory_mb": int(conf.get("LODESTONE_SANDBOX_MEMORY_MB")),
            "output_bytes": int(conf.get("LODESTONE_SANDBOX_OUTPUT_BYTES")),
            "max_processes": int(conf.get("LODESTONE_SANDBOX_MAX_PROCESSES")),
            "file_bytes": int(conf.get("LODESTONE_SANDBOX_FILE_BYTES")),
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

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    def describe_failure(self) -> str:
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


def rlimit_setter(limits: Limits) -> Callable[[], None]:
    """Runs in the child between fork and exec: hard limits the code cannot raise again."""

    def apply() -> None:
        os.setsid()
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


async def run_process(argv: list[str], *, job: SandboxJob, cwd: str, env: dict[str, str], name: str) -> SandboxResult:
    """Start ``argv`` under the job's rlimits, feed stdin, read capped output, enforce the deadline."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=cwd,
        env=env,
        preexec_fn=rlimit_setter(job.limits),
        close_fds=True,
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

    timed_out = False
    flood_wait: asyncio.Future[Any] = asyncio.ensure_future(flood.wait())
    done_wait: asyncio.Future[Any] = asyncio.ensure_future(asyncio.gather(feed(), readers, process.wait()))
    try:
        done, _ = await asyncio.wait(
            {flood_wait, done_wait}, timeout=job.limits.wall_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            timed_out = True
        if done_wait not in done:
            _kill_group(process)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(done_wait), 5)
    except asyncio.CancelledError:
        _kill_group(process)
        raise
    finally:
        flood_wait.cancel()
        # Whatever the code left behind in its session (daemonised children) goes too.
        _kill_group(process)
        if not done_wait.done():
            done_wait.cancel()
        # Reap it here, so its pipes and transport close on this loop (not at garbage collection).
        with contextlib.suppress(Exception):
            await asyncio.wait_for(process.wait(), 5)
        with contextlib.suppress(Exception):
            await asyncio.gather(done_wait, return_exceptions=True)
    return SandboxResult(
        exit_code=process.returncode,
        stdout=stdout.decode("utf-8", "replace"),
        stderr=stderr.decode("utf-8", "replace"),
        duration_ms=int((time.monotonic() - started) * 1000),
        timed_out=timed_out,
        output_truncated=budget[0] < 0,
        sandbox=name,
    )


def give_to_sandbox_user(*paths: str) -> None:
    """When the server runs as root the code runs as ``SANDBOX_UID``: let it use its directories."""
    if os.geteuid() != 0:
        return
    for path in paths:
        os.chown(path, SANDBOX_UID, SANDBOX_UID)
        for root, dirs, files in os.walk(path):
            for name in dirs + files:
                with contextlib.suppress(OSError):
                    os.chown(os.path.join(root, name), SANDBOX_UID, SANDBOX_UID, follow_symlinks=False)
