from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
import redis

from tests.servers import REPO, VENV_BIN, free_port, require_program, stop, wait_until
from tests.services.vector_servers import needledb, pinecone_control_plane, postgres_pgvector  # noqa: F401 - fixtures


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = require_program("redis-server", "apt-get install redis-server")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}"
    wait_until(lambda: bool(redis.Redis.from_url(url).ping()), what="redis-server", process=process)
    yield url
    stop(process)


def start_celery_worker(
    *,
    broker_url: str,
    layer_url: str,
    database_path: Path,
    log_path: Path,
    extra_args: Sequence[str] = (),
    extra_env: Mapping[str, str] | None = None,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_BROKER_URL": broker_url,
        "REDIS_URL": layer_url,
        "DATABASE_URL": f"sqlite:///{database_path}",
        "LODESTONE_RUNNER": "celery",
        **(extra_env or {}),
    }
    log = log_path.open("wb")
    return subprocess.Popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "config",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-n",
            f"test-{os.getpid()}@%h",
            *extra_args,
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@contextlib.contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Point this process's Celery app at ``url`` for a while. Celery caches its connection pool
    and producer pool with the URL of first use, so changing ``conf.broker_url`` alone would keep
    publishing to the broker an earlier test used."""
    from config.celery import app

    def reset() -> None:
        # Only drop the references: kombu keeps pools in a registry keyed by URL, and a closed
        # one would be handed back to the next user of the same URL.
        app._pool = None
        app.amqp._producer_pool = None

    previous = app.conf.broker_url
    reset()
    app.conf.broker_url = url
    try:
        yield
    finally:
        reset()
        app.conf.broker_url = previous
