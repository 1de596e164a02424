"""Vector-store servers for tests/services: needledb (a Pinecone-compatible REST server, from the dev
dependencies) and a throwaway PostgreSQL cluster with pgvector. Imported by conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.servers import VENV_BIN, free_port, stop, wait_until

NEEDLEDB_KEY = "needledb-test-key"


def require_file(path: Path, hint: str) -> Path:
    """Like tests.servers.require_program, for a program that is not on PATH."""
    if not path.exists():
        message = f"{path} is missing ({hint})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must provide it.")
        pytest.skip(message)
    return path


class NeedleDB:
    def __init__(self, port: int) -> None:
        self.port = port
        self.api_key = NEEDLEDB_KEY
        self.url = f"http://127.0.0.1:{port}"

    def create_index(self, name: str, dimension: int) -> str:
        """Creates an index through needledb's own control plane (the SDK's v10 control plane does not
        match it) and returns the host the SDK's data plane uses."""
        response = httpx.post(
            f"{self.url}/indexes",
            json={"name": name, "dimension": dimension, "metric": "cosine"},
            headers={"Api-Key": self.api_key},
            timeout=10,
        )
        response.raise_for_status()
        return f"{self.url}/indexes/{name}"


class PineconeControlPlane:
    """Pinecone's ``GET /indexes/{name}`` (API 2025-10, what SDK v10 parses) in front of needledb,
    whose own control plane answers in an older shape: each request is forwarded to needledb and
    its answer rewritten (dimension and metric into ``schema``, a deployment, deletion protection).
    Names in ``initializing`` are reported as not ready, as Pinecone does while an index starts."""

    def __init__(self, needledb: NeedleDB) -> None:
        self.needledb = needledb
        self.initializing: set[str] = set()
        self.requests: list[str] = []
        plane = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                plane.requests.append(self.path)
                name = self.path.removeprefix("/indexes/")
                upstream = httpx.get(
                    f"{needledb.url}/indexes/{name}", headers={"Api-Key": self.headers.get("Api-Key", "")}, timeout=10
                )
                if upstream.status_code != 200:
                    error = {"code": "NOT_FOUND" if upstream.status_code == 404 else "UNAUTHENTICATED"}
                    self._send(upstream.status_code, {"error": {**error, "message": upstream.text}, "status": 404})
                    return
                index = upstream.json()
                ready = name not in plane.initializing
                self._send(
                    200,
                    {
                        "name": index["name"],
                        "host": index["host"] if ready else None,
                        "status": {"ready": ready, "state": "Ready" if ready else "Initializing"},
                        "schema": {
                            "fields": {
                                "values": {
                                    "type": "dense_vector",
                                    "dimension": index["dimension"],
                                    "metric": index["metric"],
                                }
                            }
                        },
                        "deployment": {"deployment_type": "managed", "cloud": "aws", "region": "us-east-1"},
                        "deletion_protection": "disabled",
                    },
                )

            def _send(self, status: int, body: dict[str, object]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def pinecone_control_plane(needledb: NeedleDB) -> Iterator[PineconeControlPlane]:
    plane = PineconeControlPlane(needledb)
    yield plane
    plane.close()


@pytest.fixture(scope="session")
def needledb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NeedleDB]:
    binary = require_file(VENV_BIN / "needledb", "pip install needledb==0.1.0, a dev dependency")
    port = free_port()
    data = tmp_path_factory.mktemp("needledb")
    log = (data / "server.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            "serve",
            "--data",
            str(data / "data"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env={**os.environ, "NEEDLEDB_API_KEY": NEEDLEDB_KEY},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = NeedleDB(port)
    wait_until(
        lambda: httpx.get(f"{server.url}/health", timeout=1).status_code == 200, what="needledb", process=process
    )
    yield server
    stop(process)
    log.close()


PG_BIN = Path("/usr/lib/postgresql/15/bin")


class Postgres:
    def __init__(self, port: int, socket_dir: Path) -> None:
        self.port = port
        self.socket_dir = socket_dir
        self.dsn = f"postgresql://postgres@127.0.0.1:{port}/lodestone"
        self.url = f"postgres://postgres@127.0.0.1:{port}/lodestone"


def _can_connect(dsn: str) -> bool:
    import psycopg

    with psycopg.connect(dsn, connect_timeout=2):
        return True


def _as_postgres(command: list[str]) -> list[str]:
    # initdb refuses to run as root: root runs the cluster as the postgres user.
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def postgres_pgvector() -> Iterator[Postgres]:
    """A throwaway PostgreSQL 15 cluster on a free port, with a database `lodestone` and pgvector."""
    with postgres_cluster() as server:
        yield server


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """The cluster itself (``tests/on_postgres.py`` runs part of the suite on it, outside pytest)."""
    import psycopg

    initdb = require_file(PG_BIN / "initdb", "apt-get install postgresql-15")
    sharedir = subprocess.run([str(PG_BIN / "pg_config"), "--sharedir"], capture_output=True, text=True, check=False)
    control = Path(sharedir.stdout.strip() or "/usr/share/postgresql/15") / "extension" / "vector.control"
    require_file(control, "run memory/vector/install-pgvector.sh as root (make system-deps does)")
    # Under /tmp with its own mode: pytest's tmp dirs are private to root, the cluster runs as postgres.
    root = Path(tempfile.mkdtemp(prefix="lodestone-pg-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    subprocess.run(
        _as_postgres([str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
    subprocess.run(
        _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    server = Postgres(port, sockets)
    try:
        wait_until(
            lambda: _can_connect(f"postgresql://postgres@127.0.0.1:{port}/postgres"),
            what="postgres",
        )
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{port}/postgres", autocommit=True) as conn:
            conn.execute("CREATE DATABASE lodestone")
        yield server
    finally:
        subprocess.run(
            _as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True
        )
        shutil.rmtree(root, ignore_errors=True)
