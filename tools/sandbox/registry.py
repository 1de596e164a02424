"""Sandbox implementations by name, and the one settings choose."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tools import conf
from tools.sandbox.seccomp import UnsupportedArchitecture, host_architecture

logger = logging.getLogger("tools.sandbox")

_SANDBOXES: dict[str, Callable[[], Any]] = {}


def register_sandbox(name: str) -> Callable[[type], type]:
    def register(cls: type) -> type:
        _SANDBOXES[name] = cls
        return cls

    return register


@dataclass(frozen=True)
class SandboxStatus:
    name: str
    isolation: str
    requested: str
    degraded: bool
    reason: str = ""

    @property
    def refused(self) -> bool:
        """No sandbox runs: every untrusted call is refused."""
        return self.name == "none"


# (the sandbox, or None when untrusted code is refused; its status)
_chosen: tuple[Any, SandboxStatus] | None = None


def _load() -> None:
    from tools.sandbox import bubblewrap, rlimit  # noqa: F401  (registration)


def _probe_bubblewrap() -> str:
    """'' when bubblewrap runs a Python here, else the reason it does not."""
    from tools.sandbox.base import Limits, SandboxJob
    from tools.sandbox.bubblewrap import BubblewrapSandbox, bwrap_path

    if bwrap_path() is None:
        return "bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
    try:
        host_architecture()
    except UnsupportedArchitecture as exc:
        return str(exc)
    job = SandboxJob(program="print('ok')", limits=Limits(cpu_seconds=5, wall_seconds=15))
    reason = ""
    # Twice before the verdict, which holds for the process: a child forked while gRPC's threads
    # run (the Firestore client) can fail once (CI saw an epoll error from its fork handler).
    for attempt in range(2):
        try:
            result = asyncio.run(BubblewrapSandbox().run(job))
        except Exception as exc:
            reason = f"bubblewrap failed to start: {exc}"
        else:
            if result.stdout.strip() == "ok":
                return ""
            reason = f"bubblewrap cannot run Python here: {(result.stderr or result.stdout).strip()[:300]}"
        if attempt == 0:
            logger.warning("Sandbox probe failed once, trying again: %s", reason)
    return reason


def _run_probe() -> str:
    # The probe runs its own event loop: do it in a thread when called from inside one.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return _probe_bubblewrap()
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_probe_bubblewrap).result()


class SandboxUnavailable(RuntimeError):
    """No sandbox that may run untrusted code here: the call is refused with this text."""


def _refusal(reason: str) -> str:
    return (
        f"Untrusted code is refused: no safe sandbox on this server ({reason}). An administrator can "
        "install bubblewrap, or accept the unsafe sandbox without namespaces with LODESTONE_SANDBOX=rlimit."
    )


def get_sandbox() -> Any:
    """The sandbox settings ask for. ``auto``: bubblewrap when it works here; otherwise untrusted
    code is refused (``SandboxUnavailable``, logged as an ERROR and shown on the dashboard): the
    unsafe ``rlimit`` sandbox runs only when an administrator names it."""
    global _chosen
    if _chosen is not None:
        if _chosen[0] is None:
            raise SandboxUnavailable(_chosen[1].reason)
        return _chosen[0]
    _load()
    requested = str(conf.get("LODESTONE_SANDBOX"))
    if requested == "disabled":
        raise SandboxUnavailable("Code execution is disabled (LODESTONE_SANDBOX=disabled).")
    if requested == "auto":
        reason = _run_probe()
        if reason:
            logger.error("SANDBOX UNAVAILABLE: %s. Untrusted code is refused.", reason)
            _chosen = (
                None,
                SandboxStatus("none", "no sandbox: untrusted code is refused", requested, True, _refusal(reason)),
            )
            raise SandboxUnavailable(_chosen[1].reason)
        sandbox = _SANDBOXES["bubblewrap"]()
        _chosen = (sandbox, SandboxStatus(sandbox.name, sandbox.isolation, requested, False))
        return _chosen[0]
    if requested not in _SANDBOXES:
        raise LookupError(f"Unknown sandbox {requested!r}; known: {', '.join(sorted(_SANDBOXES))}.")
    sandbox = _SANDBOXES[requested]()
    degraded = requested != "bubblewrap"
    reason = "LODESTONE_SANDBOX selects a sandbox without namespaces" if degraded else ""
    if degraded:
        logger.error("SANDBOX DEGRADED: %s (%s).", reason, sandbox.isolation)
    _chosen = (sandbox, SandboxStatus(sandbox.name, sandbox.isolation, requested, degraded, reason))
    return sandbox


def sandbox_status() -> SandboxStatus:
    try:
        get_sandbox()
    except Exception as exc:
        if _chosen is not None:
            return _chosen[1]
        return SandboxStatus(
            "none", "no sandbox: untrusted code is refused", str(conf.get("LODESTONE_SANDBOX")), True, str(exc)
        )
    assert _chosen is not None
    return _chosen[1]


def reset_sandbox() -> None:
    """Forget the choice (tests, settings changes)."""
    global _chosen
    _chosen = None
