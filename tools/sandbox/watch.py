"""Per-call totals the kernel's per-process rlimits do not give: CPU time, memory and workspace disk.

``CallWatcher`` samples ``/proc`` every ``INTERVAL`` seconds while a call runs. The call's processes
are those in the sandbox's PID namespace (``/proc/PID/ns/pid`` equal to that of the sandbox's first
process; for the rlimit sandbox, which has none, those in the call's session). It adds up their
CPU time (utime + stime + cutime + cstime, plus that of processes that vanished without a parent
reaping them), their private memory (``Pss_Anon``) plus what the call's tmpfs mounts hold (``/tmp``,
``/dev/shm``, a temporary ``/workspace``), and every ``DISK_EVERY`` samples the size of the
persistent workspace; at a limit it returns the reason and the caller kills the call.

What a sampler cannot see: a process that is born and gone between two samples while its parent
ignores SIGCHLD (so nobody's cutime gets its time); the wall-clock deadline bounds that.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

INTERVAL = 0.05
DISK_EVERY = 5
_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
MB = 1024 * 1024


def workspace_usage(path: Path | str) -> int:
    """Bytes a workspace takes: allocated blocks, at least 4 KiB per entry (so a million empty
    files count too). ``os.fwalk`` opens each directory relative to its parent without following
    symbolic links, so code that swaps a directory for a link cannot send this walk outside."""
    total = 0
    for _root, dirs, files, root_fd in os.fwalk(path, follow_symlinks=False):
        total += 4096
        for name in dirs + files:
            try:
                st = os.stat(name, dir_fd=root_fd, follow_symlinks=False)
            except OSError:
                continue
            total += max(st.st_blocks * 512, 4096)
    return total


@dataclass
class _Proc:
    ppid: int
    cpu: float  # own + reaped children's, seconds
    children_cpu: float


@dataclass
class CallWatcher:
    cpu_seconds: float
    memory_bytes: int
    root_pid: int  # bubblewrap (or the rlimit sandbox's python): the call's first process
    namespace: bool = True  # True: members share the PID namespace of root_pid's child
    tmpfs: tuple[str, ...] = ()  # paths inside the sandbox whose usage counts as memory
    workspace: Path | None = None
    workspace_limit: int = 0  # bytes; 0: not watched
    cpu_used: float = 0.0
    memory_used: int = 0
    _member: Callable[[int], bool] | None = None
    _anchor: int | None = None
    _ns: str | None = None
    _seen: dict[tuple[int, int], _Proc] = field(default_factory=dict)
    _lost_cpu: float = 0.0
    _ticks: int = 0

    async def watch(self) -> str:
        """Sample until a limit is crossed; return the reason (the caller cancels it otherwise)."""
        while True:
            await asyncio.sleep(INTERVAL)
            reason = self.sample()
            if reason:
                return reason

    def sample(self) -> str:
        self._ticks += 1
        if self._member is None and not self._resolve():
            return ""
        current: dict[tuple[int, int], _Proc] = {}
        memory = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            pid = int(entry)
            try:
                if not self._member(pid):  # type: ignore[misc]
                    continue
                key, proc = _read_stat(pid)
            except (OSError, ValueError, IndexError):
                continue
            current[key] = proc
            memory += _private_memory(pid)
        self._account_vanished(current)
        self._seen = current
        self.cpu_used = self._lost_cpu + sum(p.cpu + p.children_cpu for p in current.values())
        for path in self._tmpfs_paths():
            memory += _tmpfs_used(path)
        self.memory_used = max(self.memory_used, memory)
        if self.cpu_used > self.cpu_seconds:
            return (
                f"the code used up its CPU time ({self.cpu_used:.1f} s over {self.cpu_seconds:g} s for the "
                "whole call, all its processes together) and was killed"
            )
        if memory > self.memory_bytes:
            return (
                f"the code used more than its {self.memory_bytes // MB} MB of memory (its processes together "
                "with the files in /tmp and /dev/shm) and was killed"
            )
        if self.workspace is not None and self.workspace_limit and self._ticks % DISK_EVERY == 0:
            return self.check_workspace()
        return ""

    async def end(self, patience: float = 5.0) -> None:
        """Kill what is left of the call and return once its PID namespace is empty."""
        if self._anchor is None or self._ns is None:
            return
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            try:
                if os.readlink(f"/proc/{self._anchor}/ns/pid") != self._ns:
                    return  # the pid is someone else's now
                state = _state(self._anchor)
                if state in ("Z", "X"):
                    return
                os.kill(self._anchor, signal.SIGKILL)
            except (OSError, IndexError):
                return
            await asyncio.sleep(0.01)

    def check_workspace(self) -> str:
        if self.workspace is None or not self.workspace_limit:
            return ""
        used = workspace_usage(self.workspace)
        if used > self.workspace_limit:
            return workspace_full(used, self.workspace_limit)
        return ""

    def _resolve(self) -> bool:
        """Find what marks the call's processes: the namespace of bubblewrap's child, or the session."""
        if not self.namespace:
            self._member = lambda pid: os.getsid(pid) == self.root_pid
            return True
        try:
            children = Path(f"/proc/{self.root_pid}/task/{self.root_pid}/children").read_text().split()
            if not children:
                return False
            anchor = int(children[0])
            ns = os.readlink(f"/proc/{anchor}/ns/pid")
            if ns == os.readlink(f"/proc/{self.root_pid}/ns/pid"):
                return False  # bubblewrap has forked but not yet entered the new namespace
        except (OSError, ValueError):
            return False
        self._anchor, self._ns = anchor, ns
        self._member = lambda pid: os.readlink(f"/proc/{pid}/ns/pid") == ns
        return True

    def _tmpfs_paths(self) -> list[str]:
        if self._anchor is None:
            return []
        return [f"/proc/{self._anchor}/root{path}" for path in self.tmpfs]

    def _account_vanished(self, current: dict[tuple[int, int], _Proc]) -> None:
        """A process gone since the last sample took its CPU time along unless its parent reaped
        it (then the parent's cutime grew by as much): count what no living parent absorbed."""
        gone: dict[int, float] = {}
        for key, proc in self._seen.items():
            if key not in current:
                gone[proc.ppid] = gone.get(proc.ppid, 0.0) + proc.cpu + proc.children_cpu
        if not gone:
            return
        now_by_pid = {key[0]: proc for key, proc in current.items()}
        before_by_pid = {key[0]: proc for key, proc in self._seen.items()}
        for ppid, cpu in gone.items():
            parent, before = now_by_pid.get(ppid), before_by_pid.get(ppid)
            absorbed = parent.children_cpu - before.children_cpu if parent and before else 0.0
            if parent is None and before is not None:
                continue  # the parent vanished too: its own entry carries what it had reaped
            self._lost_cpu += max(0.0, cpu - absorbed)


def workspace_full(used: int, limit: int) -> str:
    return (
        f"the workspace went over its disk limit ({used / MB:.1f} MB of {limit / MB:g} MB) and the code "
        "was killed; delete files to make room"
    )


def _read_stat(pid: int) -> tuple[tuple[int, int], _Proc]:
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): state; ppid is 4, utime 14, stime 15, cutime 16, cstime 17, starttime 22.
    ppid = int(fields[1])
    own = (int(fields[11]) + int(fields[12])) / _TICKS
    children = (int(fields[13]) + int(fields[14])) / _TICKS
    return (pid, int(fields[19])), _Proc(ppid, own, children)


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _private_memory(pid: int) -> int:
    """Anonymous memory the process owns, shared pages split among their sharers (forks of one
    parent are not counted once each); the resident set when smaps_rollup is unreadable."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss_Anon:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _tmpfs_used(path: str) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 0
    return (st.f_blocks - st.f_bfree) * st.f_frsize
