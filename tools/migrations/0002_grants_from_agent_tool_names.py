"""Agents named their builtin tools in ``Agent.tool_names`` (now deprecated): each name becomes an
active ``ToolGrant``, and each builtin tool a ``Tool`` row (approved, as builtin tools were usable)."""

from __future__ import annotations

from typing import Any

from django.db import migrations
from django.utils import timezone


def grants_from_tool_names(apps: Any, schema_editor: Any) -> None:
    from tools.registry import builtin_tools

    Agent = apps.get_model("agents", "Agent")
    Tool = apps.get_model("tools", "Tool")
    ToolVersion = apps.get_model("tools", "ToolVersion")
    ToolGrant = apps.get_model("tools", "ToolGrant")
    db = schema_editor.connection.alias
    known = builtin_tools()
    for agent in Agent.objects.using(db).all():
        for name in agent.tool_names or []:
            if not isinstance(name, str) or name not in known:
                continue  # a name no builtin answers to any more: nothing to grant
            tool = Tool.objects.using(db).filter(name=name).first()
            if tool is None:
                builtin = known[name]
                tool = Tool.objects.using(db).create(
                    name=name,
                    description=builtin.description,
                    kind="builtin",
                    parameters=builtin.parameters(),
                    status="approved",
                    approved_at=timezone.now(),
                )
                ToolVersion.objects.using(db).create(
                    tool=tool, version=1, description=tool.description, parameters=tool.parameters
                )
            ToolGrant.objects.using(db).get_or_create(agent=agent, tool=tool, defaults={"status": "active"})


class Migration(migrations.Migration):
    dependencies = [("tools", "0001_initial")]

    operations = [migrations.RunPython(grants_from_tool_names, migrations.RunPython.noop)]
