"""var/ holds the database, keys and workspaces: only the server's user may read any of it."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from django.conf import settings

from config.settings.base import _private_sqlite, _private_var


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_settings_make_var_private() -> None:
    assert mode(Path(settings.VAR_DIR)) == 0o700


def test_sqlite_wal_and_shm_files_inherit_the_private_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)  # an ordinary umask: without the fix SQLite makes 0644 files
    try:
        db = tmp_path / "db.sqlite3"
        _private_sqlite(db)
        connection = sqlite3.connect(db)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.execute("INSERT INTO t VALUES (1)")
        connection.commit()
        files = sorted(p.name for p in tmp_path.iterdir())
        assert files == ["db.sqlite3", "db.sqlite3-shm", "db.sqlite3-wal"]
        assert {name: mode(tmp_path / name) for name in files} == dict.fromkeys(files, 0o600)
        connection.close()
    finally:
        os.umask(old)


def test_older_readable_files_are_tightened_but_workspaces_are_not_walked(tmp_path: Path) -> None:
    var = tmp_path / "var"
    (var / "vectors").mkdir(parents=True, mode=0o755)
    (var / "vectors" / "index.npy").write_text("v")
    (var / "vectors" / "index.npy").chmod(0o644)
    (var / "db.sqlite3").write_text("")
    (var / "db.sqlite3").chmod(0o644)
    (var / "workspaces" / "conversation-1").mkdir(parents=True)
    (var / "workspaces" / "conversation-1" / "note.txt").write_text("sandbox's")
    (var / "workspaces" / "conversation-1" / "note.txt").chmod(0o644)
    var.chmod(0o755)
    _private_var(var)
    assert mode(var) == 0o700
    assert mode(var / "vectors") == 0o700 and mode(var / "vectors" / "index.npy") == 0o600
    assert mode(var / "db.sqlite3") == 0o600
    assert mode(var / "workspaces" / "conversation-1" / "note.txt") == 0o644  # not the server's to walk
