"""Writes for tools: builtin rows, grants, approvals, invocation records."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from tools.models import Tool, ToolGrant, ToolInvocation, ToolVersion
from tools.registry import builtin_tools

if TYPE_CHECKING:
    from agents.models import Agent
    from tools.runtime import CallContext, Outcome, ToolSpec

SUMMARY_CHARS = 2000


def tools_sync_builtin(*, using: str = "default") -> list[Tool]:
    """One approved ``builtin`` row per registered builtin tool. Idempotent: an existing row keeps
    its status (an administrator may have disabled it) and gets the code's description and schema."""
    rows = []
    for builtin in builtin_tools().values():
        parameters = builtin.parameters()
        tool = Tool.objects.using(using).filter(name=builtin.name).first()
        if tool is None:
            tool = Tool(
                name=builtin.name,
                description=builtin.description,
                kind=Tool.Kind.BUILTIN,
                parameters=parameters,
                status=Tool.Status.APPROVED,
                approved_at=timezone.now(),
            )
            tool.save(using=using)
            ToolVersion.objects.using(using).create(
                tool=tool, version=1, description=tool.description, parameters=parameters
            )
        elif tool.kind == Tool.Kind.BUILTIN and (tool.description, tool.parameters) != (
            builtin.description,
            parameters,
        ):
            tool.description, tool.parameters, tool.version = builtin.description, parameters, tool.version + 1
            tool.save(using=using)
            ToolVersion.objects.using(using).create(
                tool=tool, version=tool.version, description=tool.description, parameters=parameters
            )
        rows.append(tool)
    return rows


def tool_grant_create(
    *,
    agent: Agent,
    tool: Tool,
    needs_approval: bool = False,
    status: str = ToolGrant.Status.ACTIVE,
    created_by: AbstractBaseUser | None = None,
) -> ToolGrant:
    grant, created = ToolGrant.objects.get_or_create(
        agent=agent,
        tool=tool,
        defaults={"needs_approval": needs_approval, "status": status, "created_by": created_by},
    )
    if not created and (grant.needs_approval, grant.status) != (needs_approval, status):
        grant.needs_approval, grant.status = needs_approval, status
        grant.save(update_fields=["needs_approval", "status"])
    return grant


@transaction.atomic
def tool_grants_from_names(*, agent: Agent, names: Sequence[str]) -> list[ToolGrant]:
    """Grants for the builtin tools named in the deprecated ``Agent.tool_names``."""
    if not names:
        return []
    missing = [n for n in names if not Tool.objects.filter(name=n).exists()]
    if missing:
        tools_sync_builtin()
    grants = []
    for name in names:
        tool = Tool.objects.filter(name=name).first()
        if tool is None:
            raise ValidationError({"tool_names": f"Unknown tool: {name}."})
        grants.append(tool_grant_create(agent=agent, tool=tool))
    return grants


def tool_grant_revoke(*, grant: ToolGrant) -> None:
    grant.delete()


def tool_approve(*, tool: Tool, by: AbstractBaseUser | None) -> Tool:
    tool.status = Tool.Status.APPROVED
    tool.approved_by = by  # type: ignore[assignment]
    tool.approved_at = timezone.now()
    tool.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
    return tool


def tool_disable(*, tool: Tool) -> Tool:
    tool.status = Tool.Status.DISABLED
    tool.save(update_fields=["status", "updated_at"])
    return tool


def tool_grant_activate(*, grant: ToolGrant) -> ToolGrant:
    grant.status = ToolGrant.Status.ACTIVE
    grant.save(update_fields=["status"])
    return grant


def tool_invocation_record(
    *, spec: ToolSpec, context: CallContext, call_id: str, arguments: Any, outcome: Outcome
) -> int:
    user_id = context.user_id
    if user_id is None and context.conversation_id is not None:
        from conversations.models import Conversation

        user_id = Conversation.objects.filter(pk=context.conversation_id).values_list("owner_id", flat=True).first()
    invocation = ToolInvocation.objects.create(
        tool_id=spec.tool_id if Tool.objects.filter(pk=spec.tool_id).exists() else None,
        tool_name=spec.name,
        agent_id=spec.agent_id,
        conversation_id=context.conversation_id,
        run_id=context.run_id,
        user_id=user_id,
        call_id=call_id[:200],
        arguments=arguments if isinstance(arguments, dict) else {"_raw": repr(arguments)[:2000]},
        result_summary=outcome.result[:SUMMARY_CHARS],
        status=outcome.status,
        error=outcome.error[:SUMMARY_CHARS],
        duration_ms=max(0, outcome.duration_ms),
    )
    return invocation.pk


# --- Approval in the chat ---------------------------------------------------------------------


def tool_approval_request(
    *, spec: ToolSpec, arguments: dict[str, Any], context: CallContext, call_id: str
) -> tuple[Any, Any, Any]:
    """Store the request (a ``ToolApproval`` and a chat ``Message`` of type approval) and park the
    run in ``awaiting_input``. Returns (approval, message, run or None)."""
    from conversations import services as conversation_services
    from conversations.models import Message, Run
    from tools.models import ToolApproval

    with transaction.atomic():
        approval = ToolApproval.objects.create(
            tool_id=spec.tool_id,
            agent_id=spec.agent_id,
            conversation_id=context.conversation_id,  # type: ignore[misc]
            run_id=context.run_id,
            call_id=call_id[:200],
            arguments=arguments,
        )
        agent_name = ""
        source = "tools"
        if spec.agent_id is not None:
            from agents.models import Agent

            agent = Agent.objects.filter(pk=spec.agent_id).values("slug", "name").first()
            if agent:
                source, agent_name = agent["slug"], agent["name"]
        message = conversation_services.message_append(
            conversation_id=context.conversation_id,  # type: ignore[arg-type]
            run_id=context.run_id,
            source=source,
            type=Message.Type.APPROVAL,
            content=f"{agent_name or source} wants to call {spec.name}. Allow it?",
            payload=_approval_payload(approval, spec.name, agent_name or source),
        )
        approval.message = message
        approval.save(update_fields=["message"])
        run = None
        if context.run_id is not None:
            Run.objects.filter(pk=context.run_id, status=Run.Status.RUNNING).update(status=Run.Status.AWAITING_INPUT)
            run = Run.objects.get(pk=context.run_id)
    return approval, message, run


def _approval_payload(approval: Any, tool_name: str, agent_name: str) -> dict[str, Any]:
    return {
        "approval_id": approval.pk,
        "tool": tool_name,
        "arguments": approval.arguments,
        "call_id": approval.call_id,
        "state": approval.status,
        "agent_name": agent_name,
    }


def tool_approval_status(*, approval_id: int) -> tuple[str, bool]:
    """(status, whether the run was asked to stop)."""
    from tools.models import ToolApproval

    row = ToolApproval.objects.filter(pk=approval_id).values("status", "run__cancel_requested").first()
    if row is None:
        return ToolApproval.Status.EXPIRED, True
    return row["status"], bool(row["run__cancel_requested"])


def tool_approval_answer(
    *, approval_id: Any, user: AbstractBaseUser, approve: bool, conversation_id: int | None = None
) -> Any:
    """The conversation's owner says yes or no. Only a pending request of their own is answered
    (and, when ``conversation_id`` is given, only one of that conversation)."""
    from config.errors import ApplicationError
    from tools.models import ToolApproval

    try:
        approval_id = int(approval_id)
    except (TypeError, ValueError):
        raise ValidationError({"approval_id": "Give the id of the approval request."}) from None
    with transaction.atomic():
        approvals = ToolApproval.objects.select_for_update().filter(pk=approval_id, conversation__owner_id=user.pk)
        if conversation_id is not None:
            approvals = approvals.filter(conversation_id=conversation_id)
        approval = approvals.first()
        if approval is None:
            raise ApplicationError("Approval request not found.", status_code=404)
        expired_now = approval.status == ToolApproval.Status.PENDING and not _waits_for_answer(approval)
        if expired_now:
            _expire(approval)
        elif approval.status != ToolApproval.Status.PENDING:
            raise ApplicationError(f"This request was already {approval.status}.", status_code=409)
        else:
            approval.status = ToolApproval.Status.APPROVED if approve else ToolApproval.Status.DENIED
            approval.decided_by = user  # type: ignore[assignment]
            approval.decided_at = timezone.now()
            approval.save(update_fields=["status", "decided_by", "decided_at"])
    if expired_now:
        raise ApplicationError("This request expired: the reply it belonged to has ended.", status_code=409)
    return approval


def _waits_for_answer(approval: Any) -> bool:
    """A request is answerable while its run goes on (another call's answer may have set it
    running again); not once it has ended. An approval outside a run always is."""
    from conversations.models import Run

    if approval.run_id is None:
        return True
    return Run.objects.filter(pk=approval.run_id, status__in=Run.ACTIVE_STATUSES).exists()


def _expire(approval: Any) -> None:
    """Mark a pending request expired, and its chat card with it (the card stops offering buttons)."""
    from conversations import realtime
    from tools.models import ToolApproval

    approval.status = ToolApproval.Status.EXPIRED
    approval.decided_at = timezone.now()
    approval.save(update_fields=["status", "decided_at"])
    message = _card_shows_status(approval)
    if message is not None:
        realtime.publish_on_commit(message.conversation_id, realtime.message_update_event(message))


def _card_shows_status(approval: Any) -> Any:
    """The request's chat card (a Message) updated to show the approval's status; None without one."""
    from conversations.models import Message

    message = Message.objects.filter(pk=approval.message_id).first() if approval.message_id else None
    if message is not None:
        message.payload = {**message.payload, "state": approval.status}
        message.save(update_fields=["payload"])
    return message


def approvals_expire_orphaned() -> int:
    """Pending requests whose run no longer waits (it failed after a restart, or ended) can never
    be answered: expire them. Runs at server start, after interrupted runs are failed."""
    from conversations.models import Run
    from tools.models import ToolApproval

    with transaction.atomic():
        orphaned = list(
            ToolApproval.objects.select_for_update()
            .filter(status=ToolApproval.Status.PENDING, run__isnull=False)
            .exclude(run__status__in=Run.ACTIVE_STATUSES)
        )
        for approval in orphaned:
            _expire(approval)
    return len(orphaned)


def tool_approval_expire(*, approval_id: int) -> None:
    from tools.models import ToolApproval

    ToolApproval.objects.filter(pk=approval_id, status=ToolApproval.Status.PENDING).update(
        status=ToolApproval.Status.EXPIRED, decided_at=timezone.now()
    )


def tool_approval_resume(*, approval_id: int) -> tuple[Any, Any]:
    """After the answer: the approval message shows the decision, the run is running again.
    Returns (updated message or None, run or None)."""
    from conversations.models import Run
    from tools.models import ToolApproval

    approval = ToolApproval.objects.select_related("tool").filter(pk=approval_id).first()
    if approval is None:
        return None, None
    with transaction.atomic():
        message = _card_shows_status(approval)
        run = None
        if approval.run_id is not None:
            Run.objects.filter(pk=approval.run_id, status=Run.Status.AWAITING_INPUT).update(status=Run.Status.RUNNING)
            run = Run.objects.get(pk=approval.run_id)
    return message, run


# --- Creation -----------------------------------------------------------------------------------


def tool_create_python(
    *,
    source: Any,
    example_arguments: Any = None,
    created_by: AbstractBaseUser | None = None,
    agent: Agent | None = None,
) -> tuple[Tool, str]:
    """Validate the source, test-run it in the sandbox with the example arguments, and store it as
    a pending tool (a new version if a Python tool of that name exists). Returns (tool, test output).
    Raises ``ValidationError`` with the reason for anything that is not a working tool."""
    from asgiref.sync import async_to_sync

    from tools.creation import validate_python_source
    from tools.kinds.python import PythonToolError, run_python_function
    from tools.runtime import validate_arguments

    validated = validate_python_source(source)
    arguments = {} if example_arguments is None else example_arguments
    problem = validate_arguments(validated.parameters, arguments)
    if problem is not None:
        raise ValidationError({"example_arguments": f"The example arguments do not fit the function: {problem}."})
    existing = Tool.objects.filter(name=validated.name).first()
    if existing is not None and existing.kind != Tool.Kind.PYTHON:
        raise ValidationError(
            {"source": f"A {existing.kind} tool named {validated.name!r} exists; rename the function."}
        )
    try:
        value, _ = async_to_sync(run_python_function)(str(source), validated.name, arguments)
    except PythonToolError as exc:
        raise ValidationError({"source": f"The test run in the sandbox failed: {exc}."}) from exc
    output = value if isinstance(value, str) else __import__("json").dumps(value)
    config = {
        "function": validated.name,
        "imports": validated.imports,
        "example_arguments": arguments,
        "example_result": output[:2000],
        "created_by_agent": agent.slug if agent is not None else "",
    }
    with transaction.atomic():
        if existing is None:
            tool = Tool.objects.create(
                name=validated.name,
                description=validated.description,
                kind=Tool.Kind.PYTHON,
                parameters=validated.parameters,
                status=Tool.Status.PENDING,
                source=str(source),
                config=config,
                created_by=created_by,  # type: ignore[misc]
            )
        else:
            tool = Tool.objects.select_for_update().get(pk=existing.pk)
            tool.description, tool.parameters, tool.source, tool.config = (
                validated.description,
                validated.parameters,
                str(source),
                config,
            )
            tool.version += 1
            tool.status = Tool.Status.PENDING  # a changed tool is approved again
            tool.approved_by, tool.approved_at = None, None
            tool.save()
        ToolVersion.objects.create(
            tool=tool,
            version=tool.version,
            description=tool.description,
            parameters=tool.parameters,
            source=tool.source,
            config=config,
            created_by=created_by,  # type: ignore[misc]
        )
    return tool, output


def tool_create_http(
    *,
    name: str,
    description: str,
    method: str,
    url_template: str,
    parameters: dict[str, Any],
    headers: dict[str, str] | None = None,
    secret_headers: dict[str, str] | None = None,
    timeout_seconds: int = 30,
    created_by: AbstractBaseUser | None = None,
) -> Tool:
    """An HTTP tool, stored pending approval; secret headers encrypted at rest."""
    from tools.kinds.http import METHODS, check_url_template, template_fields

    method = method.upper()
    if method not in METHODS:
        raise ValidationError({"method": f"Use one of {', '.join(METHODS)}."})
    problem = check_url_template(url_template)
    if problem:
        raise ValidationError({"url_template": problem[0].upper() + problem[1:] + "."})
    properties = dict((parameters or {}).get("properties", {}))
    missing = [f for f in template_fields(url_template) if f not in properties]
    if missing:
        raise ValidationError({"parameters": f"The URL uses {', '.join(missing)}: declare them as parameters."})
    tool = Tool(
        name=name,
        description=description,
        kind=Tool.Kind.HTTP,
        parameters={"type": "object", **(parameters or {})},
        status=Tool.Status.PENDING,
        config={"method": method, "url_template": url_template, "headers": dict(headers or {})},
        timeout_seconds=timeout_seconds,
        created_by=created_by,  # type: ignore[misc]
    )
    tool.set_secret_headers(dict(secret_headers or {}))
    tool.full_clean()
    with transaction.atomic():
        tool.save()
        ToolVersion.objects.create(
            tool=tool,
            version=1,
            description=description,
            parameters=tool.parameters,
            config=tool.config,
            created_by=created_by,  # type: ignore[misc]
        )
    return tool


# --- MCP servers --------------------------------------------------------------------------------


def mcp_server_discover(*, server: Any) -> list[Tool]:
    """Ask the server for its tools and register each as a ``Tool`` row of kind ``mcp``: new ones
    pending approval, changed ones as a new version (pending again). Tools the server no longer
    offers are disabled. Errors are stored on the server row and raised as ``ValidationError``."""
    from asgiref.sync import async_to_sync

    from tools.mcp import list_server_tools, server_params, tool_row_name

    try:
        listed = async_to_sync(list_server_tools)(server_params(server))
    except Exception as exc:
        server.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        server.save(update_fields=["last_error"])
        raise ValidationError({"server": f"Discovery failed: {server.last_error}"}) from exc
    rows: list[Tool] = []
    seen: set[str] = set()
    with transaction.atomic():
        for item in listed:
            name = tool_row_name(server, str(item["name"]))
            seen.add(name)
            parameters = dict(item.get("parameters") or {"type": "object", "properties": {}})
            parameters.setdefault("type", "object")
            description = str(item.get("description") or item["name"])
            config = {"server_id": server.pk, "tool": item["name"]}
            tool = Tool.objects.filter(name=name).first()
            if tool is not None and tool.kind != Tool.Kind.MCP:
                continue  # a name another tool already uses: skipped, not overwritten
            if tool is None:
                tool = Tool.objects.create(
                    name=name,
                    description=description,
                    kind=Tool.Kind.MCP,
                    parameters=parameters,
                    config=config,
                    timeout_seconds=server.timeout_seconds,
                )
            elif (tool.description, tool.parameters, tool.config) != (description, parameters, config):
                tool.description, tool.parameters, tool.config = description, parameters, config
                tool.version += 1
                tool.status = Tool.Status.PENDING
                tool.save()
            else:
                rows.append(tool)
                continue
            ToolVersion.objects.create(
                tool=tool, version=tool.version, description=description, parameters=parameters, config=config
            )
            rows.append(tool)
        gone = Tool.objects.filter(kind=Tool.Kind.MCP, config__server_id=server.pk).exclude(name__in=seen)
        gone.update(status=Tool.Status.DISABLED)
        server.last_discovered_at = timezone.now()
        server.last_error = ""
        server.save(update_fields=["last_discovered_at", "last_error"])
    return rows


def tool_test_run(*, tool: Tool, raw_arguments: str, user: AbstractBaseUser) -> Outcome:
    """Run a tool once with JSON arguments (pending tools too: a test run before approval is what
    it is for), recorded as an invocation by this user. Bad JSON -> ValidationError."""
    import json

    from asgiref.sync import async_to_sync

    from tools import selectors
    from tools.runtime import CallContext, invoke

    try:
        arguments = json.loads(raw_arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ValidationError(f"The arguments are not JSON: {exc}.") from exc
    return async_to_sync(invoke)(
        selectors.tool_spec(tool), arguments, context=CallContext(user_id=user.pk), check_grant=False
    )
