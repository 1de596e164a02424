"""Escape attempts against the sandbox, each contained and asserted (bubblewrap + rlimits)."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import REPO
from tools.sandbox import Limits, SandboxJob, SandboxUnavailable, get_sandbox, reset_sandbox, sandbox_status
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
    # Killed for its CPU time, not at the (longer) wall-clock deadline; no timing asserted, the
    # machine may be loaded.
    result = await run("while True:\n    pass\n")
    assert not result.ok and not result.timed_out
    assert "CPU time" in result.describe_failure()


async def test_sleeping_forever_is_killed_at_the_wall_clock_deadline() -> None:
    result = await run("import time\ntime.sleep(600)\n", Limits(cpu_seconds=2, wall_seconds=1.5))
    assert result.timed_out and result.duration_ms >= 1400
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
        shutil.rmtree(workspace, ignore_errors=True)


def test_missing_bubblewrap_refuses_untrusted_code(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tools.sandbox import bubblewrap

    monkeypatch.setattr(bubblewrap, "bwrap_path", lambda: None)
    reset_sandbox()
    with caplog.at_level(logging.ERROR, logger="tools.sandbox"), pytest.raises(SandboxUnavailable) as refused:
        get_sandbox()
    assert "Untrusted code is refused" in str(refused.value) and "bubblewrap (bwrap) is not installed" in str(
        refused.value
    )
    assert "LODESTONE_SANDBOX=rlimit" in str(refused.value)
    status = sandbox_status()
    assert status.refused and status.degraded and "bubblewrap" in status.reason
    assert any("SANDBOX UNAVAILABLE" in r.getMessage() for r in caplog.records)
    with pytest.raises(SandboxUnavailable):  # the refusal is remembered, not re-probed into a fallback
        get_sandbox()
    reset_sandbox()


def test_a_probe_that_fails_once_is_tried_again_before_code_is_refused(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from tools.sandbox import bubblewrap
    from tools.sandbox.base import SandboxResult

    real_run = bubblewrap.BubblewrapSandbox.run
    calls: list[int] = []

    async def flaky_run(self: bubblewrap.BubblewrapSandbox, job: SandboxJob) -> SandboxResult:
        calls.append(1)
        if len(calls) == 1:  # as a fork beside gRPC's threads once did in CI
            return SandboxResult(exit_code=1, stdout="", stderr="epoll_wait error: Bad file descriptor", duration_ms=1)
        return await real_run(self, job)

    monkeypatch.setattr(bubblewrap.BubblewrapSandbox, "run", flaky_run)
    reset_sandbox()
    with caplog.at_level(logging.WARNING, logger="tools.sandbox"):
        sandbox = get_sandbox()
    assert isinstance(sandbox, bubblewrap.BubblewrapSandbox) and len(calls) == 2
    assert any("failed once" in r.getMessage() for r in caplog.records)
    reset_sandbox()


def test_the_unsafe_sandbox_runs_only_when_named(
    settings: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    settings.LODESTONE_SANDBOX = "rlimit"  # type: ignore[attr-defined]
    reset_sandbox()
    with caplog.at_level(logging.ERROR, logger="tools.sandbox"):
        sandbox = get_sandbox()
    assert sandbox.name == "rlimit" and sandbox_status().degraded and not sandbox_status().refused
    assert any("SANDBOX DEGRADED" in r.getMessage() for r in caplog.records)
    reset_sandbox()


def test_an_architecture_without_a_seccomp_table_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform

    monkeypatch.setattr(platform, "machine", lambda: "riscv64")
    reset_sandbox()
    with pytest.raises(SandboxUnavailable, match="no seccomp filter for the riscv64 architecture"):
        get_sandbox()
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


# --- The seccomp filter (tools/sandbox/seccomp.py)

SYSCALL_PROBE = """
import ctypes, errno, os, subprocess, threading
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def call(name, nr, *args):
    ctypes.set_errno(0)
    result = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    print(name, result, errno.errorcode.get(ctypes.get_errno(), ctypes.get_errno()))
for name, nr in {numbers}.items():
    if name == "clone":
        call("clone-newuser", nr, 0x10000000 | 17, 0, 0, 0, 0)
        call("clone-newns", nr, 0x00020000 | 17, 0, 0, 0, 0)
    else:
        call(name, nr, 0, 0, 0, 0, 0)
ctypes.set_errno(0)
print("libc.unshare", libc.unshare(0x10000000), errno.errorcode.get(ctypes.get_errno()))
pid = os.fork()
if pid == 0:
    os._exit(7)
print("fork", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
threads = [threading.Thread(target=lambda: None) for _ in range(4)]
[t.start() for t in threads]; [t.join() for t in threads]
print("threads ok")
print("subprocess", subprocess.run(["/usr/bin/true"]).returncode)
print("unshare-cmd", subprocess.run(["unshare", "-Ur", "true"], capture_output=True).returncode)
"""


async def test_seccomp_denies_namespaces_mounts_ptrace_keyring_bpf_and_the_rest() -> None:
    from tools.sandbox import seccomp

    table = seccomp.SYSCALLS[seccomp.host_architecture()]
    result = await run(SYSCALL_PROBE.replace("{numbers}", repr(table)))
    assert result.ok, result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    for name in seccomp.DENIED:
        assert lines[name] == "-1 EPERM", (name, lines[name])
    assert lines["clone3"] == "-1 ENOSYS"  # so that libc falls back to clone, whose flags are checked
    assert lines["clone-newuser"] == "-1 EPERM" and lines["clone-newns"] == "-1 EPERM"
    assert lines["libc.unshare"] == "-1 EPERM"
    assert lines["fork"] == "7" and lines["threads"] == "ok" and lines["subprocess"] == "0"
    assert lines["unshare-cmd"] != "0"  # util-linux's unshare cannot make a user namespace either


async def test_seccomp_kills_calls_through_another_abi() -> None:
    from tools.sandbox import seccomp

    if seccomp.host_architecture() != "x86_64":
        pytest.skip("the x32 ABI exists on x86_64 only")
    program = "import ctypes\nprint('before', flush=True)\nctypes.CDLL(None).syscall(0x40000000 | 39)\nprint('AFTER')\n"
    result = await run(program)
    assert result.stdout.strip() == "before"
    assert "system call the sandbox forbids" in result.describe_failure()


@pytest.mark.parametrize(
    "arch,header",
    [
        ("x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
        ("aarch64", "/usr/include/asm-generic/unistd.h"),
    ],
)
def test_seccomp_syscall_numbers_match_the_kernel_headers(arch: str, header: str) -> None:
    import re

    from tools.sandbox import seccomp

    path = Path(header)
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{header} is missing (apt-get install linux-libc-dev)")
        pytest.skip(f"{header} is missing (apt-get install linux-libc-dev)")
    numbers = {m[0]: int(m[1]) for m in re.findall(r"#define __NR(?:3264)?_(\w+)\s+(\d+)", path.read_text())}
    assert seccomp.SYSCALLS[arch] == {name: numbers[name] for name in seccomp.SYSCALLS[arch]}
    assert set(seccomp.DENIED) | {"clone", "clone3"} == set(seccomp.SYSCALLS[arch])


def test_seccomp_filter_is_a_well_formed_program() -> None:
    import struct

    from tools.sandbox import seccomp

    for arch in seccomp.SYSCALLS:
        program = seccomp.build_filter(arch)
        insns = list(struct.iter_unpack("=HBBI", program))
        assert insns[0] == (0x20, 0, 0, 4) and insns[1][3] == seccomp.AUDIT_ARCH[arch]
        assert insns[2] == (0x06, 0, 0, seccomp.RET_KILL_PROCESS)
        assert insns[-1] == (0x06, 0, 0, seccomp.RET_ALLOW)
        for i, (code, jt, jf, _k) in enumerate(insns):
            if code & 0x07 == 0x05:  # a jump: both targets inside the program
                assert i + 1 + max(jt, jf) < len(insns)
    with pytest.raises(seccomp.UnsupportedArchitecture):
        seccomp.build_filter("riscv64")


# --- Per-call totals (tools/sandbox/watch.py): CPU, memory with /tmp and /dev/shm, workspace disk


async def test_cpu_is_limited_per_call_not_per_process() -> None:
    program = """
import os
for _ in range(4):
    if os.fork() == 0:
        while True:
            pass
while True:
    pass
"""
    limits = Limits(cpu_seconds=2, wall_seconds=20, memory_mb=256, max_processes=16)
    result = await run(program, limits)
    assert not result.timed_out  # stopped by the call's total, long before the wall clock
    assert "used up its CPU time" in result.limit and "whole call" in result.limit
    assert result.describe_failure() == result.limit and result.stopped_at_limit() == result.limit
    assert _gone_within(SANDBOX_UID, 5.0)


async def test_memory_is_limited_per_call_across_processes() -> None:
    program = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        block = b"\\x01" * (90 * 1024 * 1024)
        time.sleep(30)
time.sleep(30)
"""
    limits = Limits(cpu_seconds=10, wall_seconds=20, memory_mb=256, max_processes=16)
    result = await run(program, limits)
    assert not result.timed_out
    assert "more than its 256 MB of memory" in result.limit


async def test_dev_shm_and_tmp_are_private_sized_and_count_as_memory() -> None:
    marker = f"lodestone-shm-{os.getpid()}-{time.monotonic_ns()}"
    program = f"""
import os, time
open("/dev/shm/{marker}", "w").write("x")
print(sorted(os.listdir("/dev/shm")), flush=True)
chunk = b"\\x01" * (4 * 1024 * 1024)
for i in range(40):
    with open(f"/dev/shm/f{{i}}", "wb") as f:
        f.write(chunk)
print("shm 160 MB", flush=True)
for i in range(40):
    with open(f"/tmp/f{{i}}", "wb") as f:
        f.write(chunk)
print("tmp 160 MB", flush=True)
time.sleep(30)
"""
    limits = Limits(cpu_seconds=10, wall_seconds=20, memory_mb=256)
    result = await run(program, limits)
    assert marker not in os.listdir("/dev/shm")  # not the host's /dev/shm
    assert result.stdout.splitlines()[0] == f"[{marker!r}]"
    assert "shm 160 MB" in result.stdout
    assert "more than its 256 MB of memory" in result.limit and "/dev/shm" in result.limit


async def test_tmp_is_a_sized_tmpfs() -> None:
    program = """
chunk = b"\\x01" * (4 * 1024 * 1024)
try:
    for i in range(20):
        with open(f"/tmp/f{i}", "wb") as f:
            f.write(chunk)
    print("WROTE")
except OSError as exc:
    print("refused", exc.errno)
"""
    # The watcher off: the kernel's tmpfs size alone stops it (64 MB).
    from tools.sandbox.bubblewrap import BubblewrapSandbox

    result = await BubblewrapSandbox(watcher=False).run(
        SandboxJob(program=program, limits=Limits(cpu_seconds=5, wall_seconds=10, memory_mb=64))
    )
    assert result.stdout.strip() == "refused 28", result.stderr  # ENOSPC


async def test_a_workspace_cannot_grow_past_its_disk_limit(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    limits = Limits(cpu_seconds=5, wall_seconds=10, workspace_mb=5)
    grow = """
import os
chunk = b"\\x01" * (1024 * 1024)
for i in range(8):
    with open(f"f{i}", "wb") as f:
        f.write(chunk)
print("wrote 8 MB")
"""
    first = await run(grow, limits, workspace=workspace)
    assert "the workspace went over its disk limit" in first.limit and "of 5 MB" in first.limit
    assert not first.ok and first.stopped_at_limit() == first.limit
    # Over the limit, code may still run and shrink it; it may not grow it further.
    more = await run("open('g', 'wb').write(b'x' * 3_000_000)\n", limits, workspace=workspace)
    assert "the workspace went over its disk limit" in more.limit
    shrink = await run(
        "import os\nfor name in os.listdir('.'):\n    os.remove(name)\nprint('clean')\n", limits, workspace=workspace
    )
    assert shrink.ok and shrink.stdout.strip() == "clean", shrink.describe_failure()
    again = await run("open('small', 'w').write('fits')\n", limits, workspace=workspace)
    assert again.ok, again.describe_failure()


async def test_a_created_tools_workspace_is_a_sized_tmpfs() -> None:
    program = """
chunk = b"\\x01" * (1024 * 1024)
try:
    for i in range(20):
        with open(f"/workspace/f{i}", "wb") as f:
            f.write(chunk)
    print("WROTE")
except OSError as exc:
    print("refused", exc.errno)
"""
    result = await run(program, Limits(cpu_seconds=5, wall_seconds=10, workspace_mb=5))
    assert result.stdout.strip() == "refused 28", result.stderr


# --- The root chown race: the server never walks a workspace as root


async def test_swapping_a_folder_for_a_link_never_makes_the_server_touch_outside_files(_workspaces: Path) -> None:
    import asyncio
    import stat

    if os.geteuid() != 0:
        pytest.skip("the race needs a server running as root")
    outside = Path(tempfile.mkdtemp(prefix="lodestone-outside-"))
    os.chmod(outside, 0o711)  # noqa: S103 - the host path is reachable; the files are root's 0600
    victims = [outside / f"secret-{i}" for i in range(20)] + [outside / "sub"]
    for victim in victims[:-1]:
        victim.write_text("root's")
        victim.chmod(0o600)
    victims[-1].mkdir(mode=0o700)
    before = {v: (v.lstat().st_uid, v.lstat().st_gid, stat.S_IMODE(v.lstat().st_mode)) for v in [outside, *victims]}
    workspace = _workspaces / "conversation-race"
    workspace.mkdir()  # root's, as an older version left it: the server hands over the folder only
    swapper = f"""
import os, time
# The same names as the files outside: a walk that resolves d/NAME while d is the link lands there.
os.makedirs("d/sub", exist_ok=True)
for i in range(20):
    open(f"d/secret-{{i}}", "w").close()
deadline = time.monotonic() + 3
swaps = 0
while time.monotonic() < deadline:
    os.rename("d", "d.real")
    os.symlink({str(outside)!r}, "d")
    os.unlink("d")
    os.rename("d.real", "d")
    swaps += 1
print("swaps", swaps)
"""
    limits = Limits(cpu_seconds=8, wall_seconds=15)
    calls = [run(swapper, limits, workspace=workspace)]

    async def later(delay: float):  # type: ignore[no-untyped-def]
        await asyncio.sleep(delay)  # while the swapper runs: each call starts, its setup overlaps the swaps
        return await run("import os\nprint(len(os.listdir('.')))\n", limits, workspace=workspace)

    calls += [later(0.6 + 0.05 * i) for i in range(40)]
    results = await asyncio.gather(*calls)
    assert results[0].ok and int(results[0].stdout.split()[1]) > 0, results[0].stderr
    assert all(r.ok for r in results[1:]), [r.describe_failure() for r in results[1:]]
    after = {v: (v.lstat().st_uid, v.lstat().st_gid, stat.S_IMODE(v.lstat().st_mode)) for v in [outside, *victims]}
    shutil.rmtree(outside)
    assert after == before
    assert all((uid, gid) == (0, 0) for uid, gid, _mode in before.values())
    # The workspace itself is the sandbox user's, from its creation.
    assert workspace.stat().st_uid == SANDBOX_UID


async def test_calls_on_one_workspace_are_serialized(tmp_path: Path) -> None:
    import asyncio

    workspace = tmp_path / "ws"
    program = """
import os, time
fd = os.open("counter", os.O_CREAT | os.O_RDWR)
if os.path.exists("busy"):
    print("OVERLAP")
open("busy", "w").close()
time.sleep(0.3)
os.remove("busy")
print("done")
"""
    results = await asyncio.gather(*[run(program, workspace=workspace) for _ in range(4)])
    assert [r.stdout.strip() for r in results] == ["done"] * 4, [r.stderr for r in results]
    assert (tmp_path / "ws.lock").exists()  # the cross-process lock lives beside, not inside


async def test_mountinfo_shows_only_the_workspaces_own_path() -> None:
    """Documented leak: /proc/self/mountinfo names the workspace's path on the host filesystem
    (a bind mount shows its source's path inside that filesystem; only a separate filesystem per
    workspace would hide it), plus /usr and the device and filesystem type. Nothing else."""
    result = await run("print(open('/proc/self/mountinfo').read())")
    assert result.ok, result.stderr
    roots = {line.split()[3] for line in result.stdout.splitlines() if line.strip()}
    host_paths = {root for root in roots if root not in ("/", "/newroot")}
    assert host_paths <= {"/usr", "/null", "/zero", "/full", "/random", "/urandom", "/tty", "/irq", "/bus"}
