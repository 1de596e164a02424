"""Granted tools as AutoGen tools, each call governed.

``governed_tools(specs)`` turns the tool snapshots an agent was granted into ``GovernedTool``s
(AutoGen ``BaseTool`` subclasses). Every call: re-checks the grant, validates the arguments against
the tool's JSON schema, asks the user when the grant needs approval, runs the kind's
implementation under a timeout, turns failures into error results, and records a
``ToolInvocation``. A failed call raises ``ToolCallError``: AutoGen hands its text to the model as an
error result and the run goes on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import jsonschema
from asgiref.sync import sync_to_async
from autogen_core import CancellationToken
from autogen_core.tools import BaseTool, ParametersSchema, ToolSchema
from pydantic import BaseModel, ConfigDict

from tools import conf
from tools.kinds import kind_impl

logger = logging.getLogger(__name__)

__all__ = [
    "CallContext",
    "GovernedTool",
    "ToolCallError",
    "ToolSpec",
    "call_context",
    "call_scope",
    "governed_tools",
    "invoke",
]


@dataclass(frozen=True)
class ToolSpec:
    """A snapshot of a tool (and the grant that gives it to an agent), read in one go from the
    database so that building the agent does no queries inside the event loop."""

    tool_id: int
    name: str
    description: str
    kind: str
    parameters: dict[str, Any]
    timeout_seconds: float
    version: int = 1
    source: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    secret_headers: dict[str, str] = field(default_factory=dict, repr=False)
    agent_id: int | None = None
    grant_id: int | None = None
    needs_approval: bool = False


@dataclass(frozen=True)
class CallContext:
    """Who a call is made for: set by the run executor (or the API) around the calls it causes."""

    run_id: int | None = None
    conversation_id: int | None = None
    user_id: int | None = None


call_context: ContextVar[CallContext] = ContextVar("lodestone_tool_call_context", default=CallContext())  # noqa: B039


@contextmanager
def call_scope(context: CallContext) -> Iterator[None]:
    """Calls made inside this block (and the tasks it starts) are made for ``context``."""
    reset = call_context.set(context)
    try:
        yield
    finally:
        call_context.reset(reset)


class ToolCallError(Exception):
    """A call that did not produce a result; its text is what the model is told."""


@dataclass
class Outcome:
    status: str
    result: str = ""
    error: str = ""
    duration_ms: int = 0
    invocation_id: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


# (spec, arguments, context, call_id) -> (approved, reason). Installed by tools.approval.
Approver = Callable[[ToolSpec, dict[str, Any], CallContext, str], Awaitable[tuple[bool, str]]]


async def _no_approver(
    spec: ToolSpec, arguments: dict[str, Any], context: CallContext, call_id: str
) -> tuple[bool, str]:
    return False, "this call needs a person's approval and there is no conversation to ask in"


def _approver() -> Approver:
    from tools.approval import ask_in_conversation

    return ask_in_conversation


def validate_arguments(schema: Mapping[str, Any], arguments: Any) -> str | None:
    """The reason the arguments do not match the schema, or ``None`` when they do."""
    if not isinstance(arguments, dict):
        return "arguments must be a JSON object"
    try:
        jsonschema.validate(arguments, dict(schema))
    except jsonschema.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"{where + ': ' if where else ''}{exc.message}"
    except jsonschema.SchemaError as exc:
        return f"the tool's schema is invalid: {exc.message}"
    return None


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n[... cut: {len(text) - limit} more characters]"


async def invoke(
    spec: ToolSpec,
    arguments: Any,
    *,
    context: CallContext | None = None,
    call_id: str = "",
    cancellation_token: CancellationToken | None = None,
    check_grant: bool = True,
) -> Outcome:
    """Run one governed call and record it. Never raises for a tool's own failure."""
    from tools import selectors, services

    context = context or call_context.get()
    token = cancellation_token or CancellationToken()
    started = time.monotonic()
    outcome: Outcome
    needs_approval = spec.needs_approval
    if check_grant:
        allowed, needs_approval, reason = await sync_to_async(selectors.call_permission)(
            tool_id=spec.tool_id, grant_id=spec.grant_id
        )
    else:
        allowed, reason = True, ""
    if not allowed:
        outcome = Outcome("denied", error=f"Tool {spec.name!r} may not be called: {reason}.")
    elif (problem := validate_arguments(spec.parameters, arguments)) is not None:
        outcome = Outcome("invalid", error=f"Invalid arguments for {spec.name!r}: {problem}.")
    else:
        try:
            approved, why = True, ""
            if needs_approval:
                approver = _approver() if context.conversation_id else _no_approver
                approved, why = await approver(spec, arguments, context, call_id)
            if not approved:
                outcome = Outcome("denied", error=f"The call to {spec.name!r} was denied: {why}.")
            else:
                started = time.monotonic()  # the duration is the tool's, not the wait for a person
                outcome = await _execute(spec, arguments, token, context)
        except asyncio.CancelledError:
            # The run was stopped mid-call. Ending the call with an error result (instead of
            # letting the cancellation escape into AutoGen's runtime, which then never goes idle)
            # lets the team wind down; the run itself ends cancelled.
            outcome = Outcome("error", error=f"The call to {spec.name!r} was cancelled.")
    outcome.duration_ms = int((time.monotonic() - started) * 1000)
    limit = int(conf.get("LODESTONE_TOOL_RESULT_MAX_CHARS"))
    outcome.result = _cut(outcome.result, limit)
    if not outcome.ok:
        logger.info("Tool %s call %s: %s", spec.name, outcome.status, outcome.error)
    outcome.invocation_id = await sync_to_async(services.tool_invocation_record)(
        spec=spec, context=context, call_id=call_id, arguments=arguments, outcome=outcome
    )
    return outcome


@dataclass(frozen=True)
class CurrentCall:
    spec: ToolSpec
    context: CallContext


# The call being executed, for builtin tools that need to know for whom (e.g. their workspace).
current_call: ContextVar[CurrentCall | None] = ContextVar("lodestone_current_tool_call", default=None)


async def _execute(
    spec: ToolSpec, arguments: dict[str, Any], token: CancellationToken, context: CallContext
) -> Outcome:
    impl = kind_impl(spec.kind)
    reset = current_call.set(CurrentCall(spec, context))
    try:
        result = await asyncio.wait_for(impl(spec, arguments, token), timeout=spec.timeout_seconds)
    except TimeoutError:
        return Outcome("timeout", error=f"Tool {spec.name!r} timed out after {spec.timeout_seconds:g} s.")
    except ToolCallError as exc:
        return Outcome("error", error=str(exc))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        logger.warning("Tool %s raised", spec.name, exc_info=True)
        return Outcome("error", error=f"Tool {spec.name!r} failed: {type(exc).__name__}: {exc}")
    finally:
        current_call.reset(reset)
    return Outcome("ok", result=str(result))


class _AnyArgs(BaseModel):
    model_config = ConfigDict(extra="allow")


class GovernedTool(BaseTool[_AnyArgs, Any]):
    """One granted tool as AutoGen sees it: our JSON schema, our checks around every call."""

    def __init__(self, spec: ToolSpec) -> None:
        super().__init__(_AnyArgs, str, spec.name, spec.description, strict=False)
        self.spec = spec

    @property
    def schema(self) -> ToolSchema:
        parameters = ParametersSchema(
            type="object",
            properties=dict(self.spec.parameters.get("properties", {})),
            required=list(self.spec.parameters.get("required", [])),
            additionalProperties=bool(self.spec.parameters.get("additionalProperties", False)),
        )
        return ToolSchema(name=self.spec.name, description=self.spec.description, parameters=parameters, strict=False)

    async def run(self, args: _AnyArgs, cancellation_token: CancellationToken) -> str:
        return await self._call(args.model_dump(), cancellation_token, "")

    async def run_json(
        self, args: Mapping[str, Any], cancellation_token: CancellationToken, call_id: str | None = None
    ) -> Any:
        return await self._call(dict(args), cancellation_token, call_id or "")

    async def _call(self, arguments: dict[str, Any], token: CancellationToken, call_id: str) -> str:
        outcome = await invoke(self.spec, arguments, call_id=call_id, cancellation_token=token)
        if not outcome.ok:
            raise ToolCallError(outcome.error)
        return outcome.result


def governed_tools(specs: list[ToolSpec]) -> list[GovernedTool]:
    return [GovernedTool(spec) for spec in specs]
