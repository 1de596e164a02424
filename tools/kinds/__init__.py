"""Tool kinds: how a tool of each ``Tool.Kind`` is executed. One module per kind, registered here.

Each implementation is a coroutine ``(spec, arguments, cancellation_token) -> str``. Governance
(grants, validation, timeouts, the invocation record) happens around it in ``tools.runtime``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from autogen_core import CancellationToken

if TYPE_CHECKING:
    from tools.runtime import ToolSpec

KindImpl = Callable[["ToolSpec", dict[str, Any], CancellationToken], Awaitable[str]]

_KINDS: dict[str, KindImpl] = {}


def register_kind(kind: str) -> Callable[[KindImpl], KindImpl]:
    def register(impl: KindImpl) -> KindImpl:
        _KINDS[kind] = impl
        return impl

    return register


def kind_impl(kind: str) -> KindImpl:
    from tools.kinds import builtin, http, mcp, python  # noqa: F401  (registration)

    try:
        return _KINDS[kind]
    except KeyError:
        raise LookupError(f"No implementation for tool kind {kind!r}.") from None
