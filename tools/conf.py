"""Tool settings with their defaults (override any of them in Django settings)."""

from __future__ import annotations

from typing import Any

from django.conf import settings

DEFAULTS: dict[str, Any] = {
    # Sandbox implementation: "auto" (bubblewrap if it works here, else untrusted code is refused),
    # "bubblewrap", "rlimit" (UNSAFE: a separate process with limits, no namespaces; only when an
    # administrator names it), or "disabled".
    "LODESTONE_SANDBOX": "auto",
    "LODESTONE_SANDBOX_CPU_SECONDS": 5,
    "LODESTONE_SANDBOX_WALL_SECONDS": 10,
    "LODESTONE_SANDBOX_MEMORY_MB": 256,
    "LODESTONE_SANDBOX_OUTPUT_BYTES": 64_000,
    "LODESTONE_SANDBOX_MAX_PROCESSES": 32,
    "LODESTONE_SANDBOX_FILE_BYTES": 8_000_000,
    # Disk a persistent workspace may use (allocated blocks, at least 4 KiB per file or folder).
    "LODESTONE_SANDBOX_WORKSPACE_MB": 100,
    # The interpreter inside the sandbox: the system's, not the server's virtualenv.
    "LODESTONE_SANDBOX_PYTHON": "/usr/bin/python3",
    # Where each agent's persistent workspace lives (one folder per agent, mounted at /workspace).
    "LODESTONE_WORKSPACES_DIR": None,
    # A tool result longer than this is cut before the model sees it.
    "LODESTONE_TOOL_RESULT_MAX_CHARS": 20_000,
    # How long a call that needs the user's approval waits for the answer.
    "LODESTONE_TOOL_APPROVAL_TIMEOUT_SECONDS": 600,
    "LODESTONE_TOOL_APPROVAL_POLL_SECONDS": 0.2,
    # Hosts the web_fetch builtin may fetch from (exact names, or ".example.org" for subdomains).
    "LODESTONE_WEB_FETCH_ALLOWED_HOSTS": ["en.wikipedia.org", "docs.python.org"],
    "LODESTONE_WEB_FETCH_MAX_BYTES": 200_000,
    # Modules Python tools may import (top-level names).
    "LODESTONE_TOOL_IMPORT_ALLOWLIST": [
        "math",
        "statistics",
        "json",
        "re",
        "datetime",
        "decimal",
        "fractions",
        "itertools",
        "functools",
        "collections",
        "string",
        "textwrap",
        "random",
        "hashlib",
        "base64",
        "typing",
        "dataclasses",
        "enum",
        "heapq",
        "bisect",
        "unicodedata",
        "difflib",
        "calendar",
        "zoneinfo",
    ],
}


def get(name: str) -> Any:
    return getattr(settings, name, DEFAULTS[name])
