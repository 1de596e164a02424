"""Tools about tools: ``find_tools`` (search the approved tools; ask for one: a grant request for an
administrator) and ``create_tool`` (propose a Python tool: validated, test-run in the sandbox,
stored pending approval). They act for the calling agent (the governed call's context)."""

from __future__ import annotations

import json
from typing import Annotated, Any

from asgiref.sync import sync_to_async

from tools.registry import builtin_tool
from tools.runtime import current_call


def _calling_agent_id() -> int | None:
    call = current_call.get()
    return call.spec.agent_id if call else None


def _acting_for_user_id() -> int | None:
    """The person the calling agent works for (the audit log records agents' changes under them)."""
    from tools import services

    call = current_call.get()
    return services.call_user_id(context=call.context) if call else None


def _find(query: str, request: str) -> str:
    from agents.models import Agent
    from tools import services
    from tools.discovery import tools_search
    from tools.models import Tool, ToolGrant

    lines: list[str] = []
    if request:
        agent_id = _calling_agent_id()
        tool = Tool.objects.filter(name=request, status=Tool.Status.APPROVED).first()
        agent = Agent.objects.filter(pk=agent_id).first() if agent_id else None
        if tool is None:
            lines.append(f"There is no approved tool named {request!r}.")
        elif agent is None:
            lines.append("Only an agent can ask for a tool.")
        else:
            grant = ToolGrant.objects.filter(agent=agent, tool=tool).first()
            if grant is not None and grant.status == ToolGrant.Status.ACTIVE:
                lines.append(f"You already have {request!r}.")
            else:
                services.tool_grant_create(
                    agent=agent, tool=tool, status=ToolGrant.Status.REQUESTED, for_user_id=_acting_for_user_id()
                )
                lines.append(f"Asked an administrator to grant you {request!r}; it is usable once granted.")
    found = tools_search(query=query, k=5) if query.strip() else []
    for item in found:
        lines.append(json.dumps({"name": item.name, "description": item.description, "parameters": item.parameters}))
    if query.strip() and not found:
        lines.append("No tool matches.")
    return "\n".join(lines) or "Give a query, or the name of a tool to ask for."


@builtin_tool(
    "find_tools",
    "Search the available tools by what they do; returns names, descriptions and parameter schemas. "
    "To ask an administrator for one, pass its name as 'request'.",
)
async def find_tools(
    query: Annotated[str, "What the tool should do, e.g. 'convert currencies'"] = "",
    request: Annotated[str, "Name of a tool to ask an administrator for (optional)"] = "",
) -> str:
    return await sync_to_async(_find)(query, request)


def _create(source: str, example_arguments: dict[str, Any]) -> str:
    from django.core.exceptions import ValidationError

    from agents.models import Agent
    from tools import services

    agent_id = _calling_agent_id()
    agent = Agent.objects.filter(pk=agent_id).first() if agent_id else None
    try:
        tool, output = services.tool_create_python(
            source=source, example_arguments=example_arguments, agent=agent, for_user_id=_acting_for_user_id()
        )
    except ValidationError as exc:
        return "Error: " + " ".join(exc.messages)
    return (
        f"Created tool {tool.name!r} (version {tool.version}), pending an administrator's approval. "
        f"Test run with {json.dumps(example_arguments)} returned: {output}"
    )


@builtin_tool(
    "create_tool",
    "Propose a new tool: Python source with exactly one public, typed function with a docstring "
    "(standard-library imports only). It is test-run in a sandbox and waits for an administrator.",
)
async def create_tool(
    source: Annotated[str, "The Python source of the function"],
    example_arguments: Annotated[dict[str, Any], 'Arguments for the test run, e.g. {"x": 2}'],
) -> str:
    return await sync_to_async(_create)(source, example_arguments)
