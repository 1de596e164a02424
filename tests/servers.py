"""Real servers for tests: started by the test session on loopback ports, stopped after.

A server whose program is missing skips its tests on a laptop, and fails them under CI=true
(`.ci/run` installs everything the suite needs).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"


def require_program(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed ({hint})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must provide it.")
        pytest.skip(message)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], bool], *, what: str, limit: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {process.returncode}")
        with contextlib.suppress(Exception):  # not up yet: refused, reset, protocol errors while starting
            if check():
                return
        time.sleep(0.1)
    raise TimeoutError(f"{what} did not come up within {limit}s")


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def stop(process: subprocess.Popen, grace: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
