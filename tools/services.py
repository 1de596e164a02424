"""Writes for tools: builtin rows, grants, approvals, invocation records.

Every change a person makes here (or an agent makes for a person) is written to the audit log
(``config.common.audit``) in the same transaction as the change; a test run's entry follows the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from config import inputs
from config.common.audit import ADDITION, CHANGE, DELETION, audit_record
from config.common.permissions import user_has_perm
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


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def tool_grant_create(
    *,
    agent: Agent,
    tool: Tool,
    needs_approval: bool = False,
    status: str = ToolGrant.Status.ACTIVE,
    created_by: AbstractBaseUser | None = None,
    for_user_id: int | None = None,
) -> ToolGrant:
    """``for_user_id``: the person an agent acted for (a grant request from ``find_tools``), for the
    audit log when there is no ``created_by``."""
    with transaction.atomic():
        grant, created = ToolGrant.objects.get_or_create(
            agent=agent,
            tool=tool,
            defaults={"needs_approval": needs_approval, "status": status, "created_by": created_by},
        )
        changed = not created and (grant.needs_approval, grant.status) != (needs_approval, status)
        if changed:
            grant.needs_approval, grant.status = needs_approval, status
            grant.save(update_fields=["needs_approval", "status"])
        if created and status == ToolGrant.Status.REQUESTED:
            message = f"Agent {agent.slug} asked for tool {tool.name}: a requested grant, usable once activated."
        elif created:
            message = f"Granted tool {tool.name} to agent {agent.slug} (needs approval: {_yes_no(needs_approval)})."
        else:
            message = f"Grant of tool {tool.name} to agent {agent.slug} changed: status {status}, needs approval: "
            message += f"{_yes_no(needs_approval)}."
        if created or changed:
            audit_record(
                user=created_by or for_user_id, obj=grant, action=ADDITION if created else CHANGE, message=message
            )
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


def tool_grant_revoke(*, grant: ToolGrant, by: AbstractBaseUser | None = None) -> None:
    with transaction.atomic():
        # Recorded first: the entry names the grant by its id, which the delete clears.
        audit_record(
            user=by,
            obj=grant,
            action=DELETION,
            message=f"Revoked tool {grant.tool.name} from agent {grant.agent.slug}.",
        )
        grant.delete()


def tool_approve(*, tool: Tool, by: AbstractBaseUser | None) -> Tool:
    previous = tool.status
    with transaction.atomic():
        tool.status = Tool.Status.APPROVED
        tool.approved_by = by  # type: ignore[assignment]
        tool.approved_at = timezone.now()
        tool.save(update_fields=["status", "approved_by", "approved_at", "updated_at"])
        audit_record(
            user=by,
            obj=tool,
            action=CHANGE,
            message=f"Approved {tool.kind} tool version {tool.version} (was {previous}).",
        )
    return tool


def tool_disable(*, tool: Tool, by: AbstractBaseUser | None = None) -> Tool:
    previous = tool.status
    with transaction.atomic():
        tool.status = Tool.Status.DISABLED
        tool.save(update_fields=["status", "updated_at"])
        audit_record(
            user=by,
            obj=tool,
            action=CHANGE,
            message=f"Disabled {tool.kind} tool version {tool.version} (was {previous}).",
        )
    return tool


def tool_grant_activate(*, grant: ToolGrant, by: AbstractBaseUser | None = None) -> ToolGrant:
    with transaction.atomic():
        grant.status = ToolGrant.Status.ACTIVE
        grant.save(update_fields=["status"])
        audit_record(
            user=by,
            obj=grant,
            action=CHANGE,
            message=f"Activated the grant of tool {grant.tool.name} to agent {grant.agent.slug}.",
        )
    return grant


def call_user_id(*, context: CallContext) -> int | None:
    """The person a call is made for: the context's user, else the conversation's owner."""
    if context.user_id is not None or context.conversation_id is None:
        return context.user_id
    from conversations.models import Conversation

    return Conversation.objects.filter(pk=context.conversation_id).values_list("owner_id", flat=True).first()


def tool_invocation_record(
    *, spec: ToolSpec, context: CallContext, call_id: str, arguments: Any, outcome: Outcome
) -> int:
    user_id = call_user_id(context=context)
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
    for_user_id: int | None = None,
) -> tuple[Tool, str]:
    """Validate the source, test-run it in the sandbox with the example arguments, and store it as
    a pending tool (a new version if a Python tool of that name exists). Returns (tool, test output).
    Raises ``ValidationError`` with the reason for anything that is not a working tool.
    ``for_user_id``: the person the creating ``agent`` acted for, for the audit log."""
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
        by_agent = f" by agent {agent.slug}" if agent is not None else ""
        audit_record(
            user=created_by or for_user_id,
            obj=tool,
            action=ADDITION if existing is None else CHANGE,
            message=(
                f"Created Python tool{by_agent}, version 1, pending approval."
                if existing is None
                else f"New version {tool.version} of the Python tool{by_agent}, pending approval again."
            )
            + f" Imports: {', '.join(validated.imports) or 'none'}.",
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
        audit_record(
            user=created_by,
            obj=tool,
            action=ADDITION,
            message=f"Created HTTP tool {method} {url_template}, pending approval.",
        )
    return tool


# --- MCP servers --------------------------------------------------------------------------------


def mcp_server_discover(*, server: Any, by: AbstractBaseUser | None = None) -> list[Tool]:
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
    added: list[str] = []
    changed: list[str] = []
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
                added.append(name)
            elif (tool.description, tool.parameters, tool.config) != (description, parameters, config):
                tool.description, tool.parameters, tool.config = description, parameters, config
                tool.version += 1
                tool.status = Tool.Status.PENDING
                tool.save()
                changed.append(name)
            else:
                rows.append(tool)
                continue
            ToolVersion.objects.create(
                tool=tool, version=tool.version, description=description, parameters=parameters, config=config
            )
            rows.append(tool)
        gone = Tool.objects.filter(kind=Tool.Kind.MCP, config__server_id=server.pk).exclude(name__in=seen)
        disabled = sorted(gone.exclude(status=Tool.Status.DISABLED).values_list("name", flat=True))
        gone.update(status=Tool.Status.DISABLED)
        server.last_discovered_at = timezone.now()
        server.last_error = ""
        server.save(update_fields=["last_discovered_at", "last_error"])
        audit_record(
            user=by,
            obj=server,
            action=CHANGE,
            message=f"Discovered {len(rows)} tool(s). New, pending: {', '.join(sorted(added)) or 'none'}; "
            f"changed, pending again: {', '.join(sorted(changed)) or 'none'}; "
            f"disabled: {', '.join(disabled) or 'none'}.",
        )
    return rows


def tool_test_run_refusal(*, tool: Tool, user: AbstractBaseUser | Any) -> str:
    """Why ``user`` may not test-run ``tool`` ("" when they may). A test run executes the tool for
    real (its code in the sandbox, its HTTP request, its MCP call), outside any grant: it needs
    ``tools.test_tool``; a tool that is not approved (pending review, or disabled) is not yet (or no
    longer) trusted to run, so it also needs ``tools.approve_tool`` - the reviewer's permission."""
    if not user_has_perm(user, "tools.test_tool"):
        return "You may not test-run tools (permission tools.test_tool)."
    if tool.status != Tool.Status.APPROVED and not user_has_perm(user, "tools.approve_tool"):
        return f"The tool is {tool.status}: only someone who may approve tools (tools.approve_tool) may test-run it."
    return ""


def tool_test_run(*, tool: Tool, raw_arguments: str, user: AbstractBaseUser) -> Outcome:
    """Run a tool once with JSON arguments, recorded as an invocation by this user and in the audit
    log. Refused (``PermissionDenied``) unless ``tool_test_run_refusal`` allows it; bad JSON ->
    ``ValidationError``. The run is not inside a transaction (it may take its timeout), so its audit
    entry is written once it has ended."""
    import json

    from asgiref.sync import async_to_sync

    from tools import selectors
    from tools.runtime import CallContext, invoke

    refusal = tool_test_run_refusal(tool=tool, user=user)
    if refusal:
        raise PermissionDenied(refusal)
    try:
        # The one decoder for client JSON: bounded depth, no NUL or lone surrogates.
        arguments = inputs.json_loads(raw_arguments or "{}")
    except inputs.JSONInputError as exc:
        raise ValidationError(f"The arguments are not JSON we can use: {exc}") from exc
    outcome = async_to_sync(invoke)(
        selectors.tool_spec(tool), arguments, context=CallContext(user_id=user.pk), check_grant=False
    )
    audit_record(
        user=user,
        obj=tool,
        action=CHANGE,
        message=f"Test run of the {tool.status} {tool.kind} tool version {tool.version}: {outcome.status} "
        f"(invocation #{outcome.invocation_id}). Arguments: {json.dumps(arguments)[:500]}",
    )
    return outcome
