"""Which Django permissions (``app_label.codename``) the agent-side features need, named in one place.

Being staff grants none of them: staff only opens the Django admin's door, and inside it every model
is governed by these permissions too. A superuser has them all."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Permission
from django.db.models import Q, QuerySet

# An import creates teams, agents, model configs, pending Python tools and the agents' grants:
# it needs the add permission for every one of them (checked before the file is read).
COMPONENT_IMPORT_PERMISSIONS: tuple[str, ...] = (
    "agents.add_team",
    "agents.add_agent",
    "agents.add_modelconfig",
    "tools.add_tool",
    "tools.add_toolgrant",
)


def _crud(app_label: str, model: str) -> tuple[str, ...]:
    return tuple(f"{app_label}.{action}_{model}" for action in ("add", "change", "delete", "view"))


# What a "team administrator" does: edit agents, teams and model configs (the admin), import
# components, review tools (approve, disable, test-run), grant tools to agents, read every tool call,
# watch the monitoring board, share memories, read the audit log. Staff status (to enter the admin)
# is separate: it is not a permission.
TEAM_ADMINISTRATOR_PERMISSIONS: tuple[str, ...] = (
    *_crud("agents", "agent"),
    *_crud("agents", "team"),
    *_crud("agents", "teammember"),
    *_crud("agents", "modelconfig"),
    *_crud("tools", "tool"),
    "tools.approve_tool",
    "tools.test_tool",
    "tools.invoke_tool",
    *_crud("tools", "toolgrant"),
    "tools.view_toolversion",
    "tools.view_toolinvocation",
    "tools.view_toolapproval",
    *_crud("tools", "mcpserver"),
    "conversations.view_monitoring",
    "memory.share_experience",
    "admin.view_logentry",
)


def permissions_named(names: Iterable[str]) -> QuerySet[Permission]:
    """The ``Permission`` rows for ``app_label.codename`` names, e.g. to give a user
    ``user.user_permissions.set(permissions_named(TEAM_ADMINISTRATOR_PERMISSIONS))``."""
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".", 1)
        query |= Q(content_type__app_label=app_label, codename=codename)
    return Permission.objects.filter(query)


__all__ = ["COMPONENT_IMPORT_PERMISSIONS", "TEAM_ADMINISTRATOR_PERMISSIONS", "permissions_named"]
