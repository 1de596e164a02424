"""Per-conversation workspaces: a directory the sandbox mounts read-write at ``/workspace``.

When the server runs as root, each workspace directory belongs to the sandbox user (65534) from its
creation; the server does not walk it as root (``tools.sandbox.base``)."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from django.conf import settings

from tools import conf
from tools.runtime import CallContext, current_call
from tools.sandbox.base import workspace_open


def workspaces_root() -> Path:
    configured = conf.get("LODESTONE_WORKSPACES_DIR")
    return Path(configured) if configured else Path(settings.VAR_DIR) / "workspaces"


def workspace_for(context: CallContext) -> Path:
    """The conversation's workspace; outside a conversation, the user's; else a shared scratch."""
    if context.conversation_id is not None:
        name = f"conversation-{context.conversation_id}"
    elif context.user_id is not None:
        name = f"user-{context.user_id}"
    else:
        name = "anonymous"
    path = workspaces_root() / name
    # Created empty and handed to the sandbox user by descriptor, once; never walked by the server.
    os.close(workspace_open(path))
    return path


def current_workspace() -> Path:
    call = current_call.get()
    return workspace_for(call.context if call else CallContext())


def clean_relative_path(path: str) -> str:
    """A path inside the workspace, or ValueError. The sandbox confines the code anyway; this
    keeps the fallback sandbox (no namespaces) inside the workspace too."""
    if not isinstance(path, str) or not path.strip():
        raise ValueError("give a file name relative to the workspace")
    pure = PurePosixPath(path.strip())
    if pure.is_absolute() or ".." in pure.parts or "\x00" in path:
        raise ValueError("the path must stay inside the workspace (relative, no '..')")
    return os.fspath(pure)
