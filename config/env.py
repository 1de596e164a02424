"""The only reader of ``os.environ``.

Settings modules ask this module for typed values, so every variable the project reads is
listed in one place (and documented in ``.env.example``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url

_MISSING = object()
_DOTENV = Path(__file__).resolve().parent.parent / ".env"


def _load_dotenv(path: Path) -> None:
    """KEY=VALUE lines of a local .env file; variables already set in the environment win."""
    if not path.is_file():
        return
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.removeprefix("export ").split("=", 1)
        os.environ.setdefault(key.strip(), value.strip().strip("'\""))


_load_dotenv(_DOTENV)


class ImproperlyConfiguredEnv(RuntimeError):
    """A required environment variable is missing or malformed."""


def get_str(name: str, default: Any = _MISSING) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _MISSING:
            raise ImproperlyConfiguredEnv(f"Set the environment variable {name} (see .env.example).")
        return str(default) if default is not None else ""
    return value


def get_optional(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def get_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfiguredEnv(f"{name} must be a boolean (true/false), got {value!r}.")


def get_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be an integer, got {value!r}.") from exc


def get_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfiguredEnv(f"{name} must be a number, got {value!r}.") from None
    if not number > 0:
        raise ImproperlyConfiguredEnv(f"{name} must be a positive number, got {value!r}.")
    return number


def get_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None or value == "":
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def get_database(name: str, default_url: str | None) -> dict[str, Any] | None:
    """Parse a database URL (``DATABASE_URL``); ``None`` when neither it nor a default is set."""
    url = os.environ.get(name) or default_url
    if not url:
        return None
    return dict(dj_database_url.parse(url, conn_max_age=0))
