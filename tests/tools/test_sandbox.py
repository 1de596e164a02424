"""Escape attempts against the sandbox, each contained and asserted (bubblewrap + rlimits)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import REPO
from tools.sandbox import Limits, SandboxJob, get_sandbox, reset_sandbox, sandbox_status
from tools.sandbox.base import SANDBOX_UID

pytestmark = pytest.mark.usefixtures("bwrap")

LIMITS = Limits(cpu_seconds=2, wall_seconds=5, memory_mb=256, output_bytes=10_000, max_processes=16)


async def run(program: str, limits: Limits = LIMITS, **kwargs: object):  # type: ignore[no-untyped-def]
    sandbox = get_sandbox()
    assert sandbox.name == "bubblewrap"
    return await sandbox.run(SandboxJob(program=program, limits=limits, **kwargs))  # type: ignore[arg-type]


@pytest.fixture
def listener() -> Iterator[int]:
    """A TCP server on the host's loopback that records whether anyone connected."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    connected: list[bool] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
                connected.append(True)
                conn.close()
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()
    assert connected == [], "the sandbox reached a server on the host"


async def test_plain_code_runs_as_nobody_in_its_workspace() -> None:
    result = await run("import os; print(os.getuid(), os.getcwd(), *sorted(os.listdir('/')))")
    assert result.ok, result.stderr
    uid, cwd, *root = result.stdout.split()
    assert uid == str(SANDBOX_UID) and cwd == "/workspace"
    assert root == ["bin", "dev", "lib", "lib64", "proc", "tmp", "usr", "workspace"]


async def test_no_network_not_even_the_hosts_loopback(listener: int) -> None:
    program = f"""
import socket
for address in [("127.0.0.1", {listener}), ("1.1.1.1", 80), ("8.8.8.8", 53)]:
    try:
        socket.create_connection(address, timeout=2)
        print("CONNECTED", address)
    except OSError as exc:
        print("blocked", address, exc.errno)
try:
    socket.getaddrinfo("example.org", 80)
    print("RESOLVED")
except OSError:
    print("no dns")
"""
    result = await run(program)
    assert result.ok, result.stderr
    assert "CONNECTED" not in result.stdout and "RESOLVED" not in result.stdout
    assert result.stdout.count("blocked") == 3


@pytest.mark.parametrize(
    "path",
    [
        "/etc/passwd",
        "/etc/shadow",
        str(REPO / "config" / "settings" / "base.py"),
        str(REPO / "var" / "secret_key"),
        str(REPO / ".env"),
        "/root/.bashrc",
    ],
)
async def test_files_outside_the_workspace_are_not_there(path: str) -> None:
    result = await run(f"print(open({path!r}).read())")
    assert not result.ok
    assert "FileNotFoundError" in result.stderr or "PermissionError" in result.stderr
    assert result.stdout == ""


async def test_the_servers_environment_secrets_are_not_visible(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LODESTONE_CANARY_SECRET", "canary-7f3a9")
    program = """
import os
print(sorted(os.environ))
print(repr(os.environ.get("DJANGO_SECRET_KEY")), repr(os.environ.get("LODESTONE_CANARY_SECRET")))
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            print(pid, open(f"/proc/{pid}/environ").read())
        except OSError as exc:
            print(pid, "unreadable")
"""
    result = await run(program)
    assert result.ok, result.stderr
    assert "canary-7f3a9" not in result.stdout
    assert "None None" in result.stdout
    assert str(os.getpid()) + " " not in result.stdout.replace("\n1 ", "\n")  # the server is not in its PID space


async def test_fork_bomb_is_stopped_and_leaves_nothing_behind() -> None:
    program = """
import os, time
children = 0
while True:
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        children += 1
    except OSError as exc:
        print("fork refused after", children, exc.errno, flush=True)
        break
time.sleep(60)
"""
    started = time.monotonic()
    result = await run(program)
    assert time.monotonic() - started < LIMITS.wall_seconds + 3
    assert result.timed_out
    refused_after = int(result.stdout.split()[3])
    assert refused_after < LIMITS.max_processes
    assert _gone_within(SANDBOX_UID, 5.0)


async def test_true_fork_bomb_is_contained() -> None:
    started = time.monotonic()
    result = await run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n")
    assert time.monotonic() - started < LIMITS.wall_seconds + 3
    assert not result.ok
    assert _gone_within(SANDBOX_UID, 5.0)


async def test_memory_bomb_fails_inside_the_limit() -> None:
    result = await run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 1024 * 1024))\n")
    assert not result.ok
    assert "MemoryError" in result.stderr or result.exit_code not in (0, None)
    assert "memory" in result.describe_failure() or "killed" in result.describe_failure()


async def test_infinite_loop_is_killed_by_the_cpu_limit() -> None:
    started = time.monotonic()
    result = await run("while True:\n    pass\n")
    elapsed = time.monotonic() - started
    assert not result.ok and elapsed < LIMITS.wall_seconds + 1
    assert "CPU time" in result.describe_failure()
    assert result.duration_ms < (LIMITS.cpu_seconds + 2) * 1000


async def test_sleeping_forever_is_killed_at_the_wall_clock_deadline() -> None:
    result = await run("import time\ntime.sleep(600)\n", Limits(cpu_seconds=2, wall_seconds=1.5))
    assert result.timed_out and 1400 <= result.duration_ms < 4000
    assert "ran out of time" in result.describe_failure()


async def test_output_flood_is_cut_at_the_limit() -> None:
    started = time.monotonic()
    result = await run("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n")
    assert time.monotonic() - started < 3
    assert result.output_truncated
    assert len(result.stdout) + len(result.stderr) <= LIMITS.output_bytes


async def test_workspace_is_the_only_writable_host_folder(tmp_path: Path) -> None:
    workspace = Path(os.environ.get("TMPDIR", "/tmp")) / f"ws-{os.getpid()}-{time.monotonic_ns()}"
    workspace.mkdir()
    try:
        program = """
import os
open("note.txt", "w").write("kept")
for target in ["/usr/evil", "/evil", "/proc/evil"]:
    try:
        open(target, "w").write("x")
        print("WROTE", target)
    except OSError:
        print("refused", target)
"""
        result = await run(program, workspace=workspace)
        assert result.ok, result.stderr
        assert "WROTE" not in result.stdout
        assert (workspace / "note.txt").read_text() == "kept"
    finally:
        import shutil

        shutil.rmtree(workspace, ignore_errors=True)


def test_missing_bubblewrap_falls_back_loudly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tools.sandbox import bubblewrap

    monkeypatch.setattr(bubblewrap, "bwrap_path", lambda: None)
    reset_sandbox()
    with caplog.at_level(logging.ERROR, logger="tools.sandbox"):
        sandbox = get_sandbox()
    assert sandbox.name == "rlimit"
    status = sandbox_status()
    assert status.degraded and "bubblewrap" in status.reason
    assert any("SANDBOX DEGRADED" in r.getMessage() for r in caplog.records)
    reset_sandbox()


def _gone_within(uid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _processes_of(uid):
        if time.monotonic() > deadline:
            left = _processes_of(uid)
            print({pid: Path(f"/proc/{pid}/status").read_text().splitlines()[:3] for pid in left})
            return False
        time.sleep(0.1)
    return True


def _processes_of(uid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                found.append(int(entry))
    return found


async def test_a_file_larger_than_the_limit_cannot_be_written() -> None:
    program = """
try:
    with open("big.bin", "wb") as f:
        f.write(b"x" * 3_000_000)
    print("WROTE")
except OSError as exc:
    print("refused", exc.errno)
"""
    result = await run(program, Limits(cpu_seconds=2, wall_seconds=5, file_bytes=1_000_000))
    assert "WROTE" not in result.stdout
    assert not result.ok or "refused" in result.stdout  # SIGXFSZ kills it, or the write fails
