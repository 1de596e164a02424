"""Run the database-backed tests again with PostgreSQL as Django's database: what a deployment with
``DATABASE_URL`` runs on. ``make test`` runs this after the SQLite run.

    .venv/bin/python -m tests.on_postgres [pytest arguments]

A throwaway PostgreSQL 15 cluster (with pgvector) is started and removed. Without PostgreSQL on
this machine the run is skipped with a message; under ``CI=true`` that is a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# The suites whose tests touch the database in this process. tests/services and the browser tests
# start servers of their own (with their own databases); they ran in the SQLite run.
SUITES = ["tests/conversations", "tests/api", "tests/web", "tests/memory", "tests/tools", "tests/teams"]
IGNORED = ["tests/teams/test_visual_browser.py", "tests/api/test_schemathesis.py"]


def main(extra: list[str]) -> int:
    from tests.services.vector_servers import postgres_cluster

    try:
        cluster = postgres_cluster()
        server = cluster.__enter__()
    except (pytest.skip.Exception, pytest.fail.Exception) as exc:
        print(f"PostgreSQL run: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, pytest.fail.Exception) else 0
    try:
        print(f"PostgreSQL run: the database-backed tests on {server.url}", flush=True)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES]
        command += [f"--ignore={path}" for path in IGNORED] + extra
        env = {**os.environ, "DATABASE_URL": server.url}
        env.pop("LODESTONE_TEST_DB", None)  # a SQLite path: not this run's
        return subprocess.call(command, env=env)
    finally:
        cluster.__exit__(None, None, None)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
