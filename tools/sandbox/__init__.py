"""Run untrusted Python outside the server process. See ``tools.sandbox.base``."""

from tools.sandbox.base import Limits, Sandbox, SandboxJob, SandboxResult
from tools.sandbox.registry import (
    SandboxUnavailable,
    get_sandbox,
    register_sandbox,
    reset_sandbox,
    sandbox_status,
)

__all__ = [
    "Limits",
    "Sandbox",
    "SandboxJob",
    "SandboxResult",
    "SandboxUnavailable",
    "get_sandbox",
    "register_sandbox",
    "reset_sandbox",
    "sandbox_status",
]
