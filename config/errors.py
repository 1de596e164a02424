from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    """A request that is well-formed but cannot be carried out now (409 by default)."""

    status_code = 409

    def __init__(self, message: str, *, status_code: int | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if status_code is not None:
            self.status_code = status_code
        self.extra = extra or {}
