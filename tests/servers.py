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
import urllib.request
from collections.abc import Callable, Iterator
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


# Variables that would point a throwaway server at shared infrastructure instead of its own files.
_SHARED_INFRASTRUCTURE = {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "LODESTONE_RUNNER"}


def local_env(var_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a server on embedded defaults whose data lives in ``var_dir``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in _SHARED_INFRASTRUCTURE and not key.startswith("DJANGO_")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        LODESTONE_VAR_DIR=str(var_dir),
        PYTHONUNBUFFERED="1",
        LODESTONE_LOG_LEVEL="WARNING",
        **extra,
    )
    return env


@contextlib.contextmanager
def live_daphne(var_dir: Path, setup_script: str) -> Iterator[tuple[str, Path]]:
    """A real Daphne server on a free loopback port, on its own SQLite database under ``var_dir``:
    migrated, given data by ``setup_script`` (run by ``manage.py shell``), stopped afterwards.
    Yields its URL and its log file."""
    env = local_env(var_dir)
    python = str(VENV_BIN / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=REPO, env=env, check=True, capture_output=True)
    subprocess.run([python, "manage.py", "shell", "-c", setup_script], cwd=REPO, env=env, check=True)
    port = free_port()
    log = var_dir / "daphne.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "config.asgi:application"],
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: port_open(port), what="daphne", limit=30, process=process)
        # The first request binds the inline runner to the server's loop; make it a cheap one.
        wait_until(
            lambda: urllib.request.urlopen(f"{url}/accounts/login/", timeout=5).status == 200,  # noqa: S310
            what="daphne answering HTTP",
            limit=30,
            process=process,
        )
        yield url, log
    finally:
        stop(process)
