"""Builtin tools, registered in code by decorator.

``@builtin_tool(name, description)`` registers a function; ``tools.services.tools_sync_builtin``
(run after every ``migrate``) makes each one a ``Tool`` row of kind ``builtin``. Agents get their
tools from ``ToolGrant`` rows through ``tools.runtime.governed_tools``, never from this registry
directly. ``autogen_tools`` remains for code that still names builtin tools (ungoverned; deprecated).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from autogen_core.tools import FunctionTool

__all__ = ["BuiltinTool", "autogen_tools", "builtin_tool", "builtin_tools", "unknown_tool_names"]


@dataclass(frozen=True)
class BuiltinTool:
    name: str
    description: str
    func: Callable[..., Any]

    def as_autogen(self) -> FunctionTool:
        return FunctionTool(self.func, description=self.description, name=self.name, strict=False)

    def parameters(self) -> dict[str, Any]:
        """The JSON schema of the function's parameters, as AutoGen derives it from the signature."""
        return dict(self.as_autogen().schema.get("parameters") or {"type": "object", "properties": {}})


_REGISTRY: dict[str, BuiltinTool] = {}


def builtin_tool(name: str, description: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"A builtin tool named {name!r} is already registered.")
        _REGISTRY[name] = BuiltinTool(name=name, description=description, func=func)
        return func

    return register


def _load_builtins() -> None:
    # Importing the package registers every builtin module it lists.
    import tools.builtin  # noqa: F401


def builtin_tools() -> dict[str, BuiltinTool]:
    _load_builtins()
    return dict(_REGISTRY)


def unknown_tool_names(names: Iterable[str]) -> list[str]:
    known = builtin_tools()
    return [name for name in names if name not in known]


def autogen_tools(names: Iterable[str]) -> list[FunctionTool]:
    """Deprecated: ungoverned builtin tools by name (no grant check, no invocation record)."""
    known = builtin_tools()
    missing = [name for name in names if name not in known]
    if missing:
        raise LookupError(f"Unknown tools: {', '.join(missing)}")
    return [known[name].as_autogen() for name in names]
