"""The permission matrix through the real AutoGen path (replay model): an agent sees and calls only
tools that are granted, enabled and approved; the grant is checked again at call time; arguments
are validated; failures become error results and the run goes on; every call is recorded."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from autogen_agentchat.messages import ToolCallExecutionEvent

from agents.factory import build_team, spec_for_agent
from agents.providers import model_client_for
from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import calculator_call, messages, tool, wait_for_run
from tools import services
from tools.models import Tool, ToolApproval, ToolGrant, ToolInvocation

pytestmark = pytest.mark.django_db(transaction=True)


async def _chat(responses: list, *, grant: str | None = None, needs_approval: bool = False, text: str = "6*7?"):
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(responses)
    agent = await sync_to_async(factories.agent)(model, "mathematician")
    if grant is not None:
        await sync_to_async(services.tool_grant_create)(
            agent=agent, tool=await sync_to_async(tool)(grant), needs_approval=needs_approval
        )
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text=text)
    return user, model, agent, conversation, run


def _offered(model) -> list[str]:  # type: ignore[no-untyped-def]
    from agents.models import ModelConfig

    client = model_client_for(ModelConfig.objects.get(pk=model.pk))
    calls = client.create_calls  # type: ignore[attr-defined]
    return [t.name if hasattr(t, "name") else t["name"] for t in calls[0]["tools"]]


async def test_granted_tool_is_offered_called_and_recorded(inline_runner: InlineRunner) -> None:
    user, model, agent, conversation, run = await _chat([calculator_call(), "It is 42."], grant="calculator")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(_offered)(model) == ["calculator"]
    rows = await sync_to_async(messages)(conversation.pk)
    assert [m.type for m in rows] == ["user", "tool_call", "tool_result", "text"]
    assert rows[2].payload["results"][0]["content"] == "42"
    call = await ToolInvocation.objects.select_related("tool").aget()
    assert (call.tool_name, call.status, call.result_summary) == ("calculator", "ok", "42")
    assert (call.agent_id, call.conversation_id, call.run_id, call.user_id) == (
        agent.pk,
        conversation.pk,
        run.pk,
        user.pk,
    )
    assert call.arguments == {"expression": "6*7"} and call.call_id == "c1"


async def test_not_granted_tool_is_neither_offered_nor_run(inline_runner: InlineRunner) -> None:
    _, model, _, conversation, run = await _chat([calculator_call(), "I could not."])
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(_offered)(model) == []
    rows = await sync_to_async(messages)(conversation.pk)
    result = rows[2].payload["results"][0]
    assert result["is_error"] is True and "not found" in result["content"]
    assert await ToolInvocation.objects.acount() == 0


@pytest.mark.parametrize("status", [Tool.Status.DISABLED, Tool.Status.PENDING])
async def test_disabled_or_pending_tool_is_not_offered(inline_runner: InlineRunner, status: str) -> None:
    await Tool.objects.filter(name="calculator").aupdate(status=status)
    _, model, _, conversation, run = await _chat([calculator_call(), "I could not."], grant="calculator")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(_offered)(model) == []
    assert (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]["is_error"] is True
    assert await ToolInvocation.objects.acount() == 0


async def test_requested_grant_is_not_usable(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Hi."])
    agent = await sync_to_async(factories.agent)(model, "asker")
    calculator = await sync_to_async(tool)("calculator")
    await sync_to_async(services.tool_grant_create)(agent=agent, tool=calculator, status=ToolGrant.Status.REQUESTED)
    spec = await sync_to_async(spec_for_agent)(agent)
    assert spec.tools == {}
    del user


@pytest.mark.parametrize("change", ["disable", "revoke", "pending"])
async def test_grant_is_checked_again_at_call_time(change: str) -> None:
    """The team was built while the tool was usable; by the time the model calls it, it is not."""
    model = await sync_to_async(factories.replay_model)([calculator_call(), "Understood."])
    agent = await sync_to_async(factories.agent)(model, "late")
    calculator = await sync_to_async(tool)("calculator")
    grant = await sync_to_async(services.tool_grant_create)(agent=agent, tool=calculator)
    spec = await sync_to_async(spec_for_agent)(agent)
    team = build_team(spec)
    if change == "disable":
        await sync_to_async(services.tool_disable)(tool=calculator)
    elif change == "revoke":
        await grant.adelete()
    else:
        await Tool.objects.filter(pk=calculator.pk).aupdate(status=Tool.Status.PENDING)

    results = [e async for e in team.run_stream(task="6*7?") if isinstance(e, ToolCallExecutionEvent)]

    result = results[0].content[0]
    assert result.is_error and "may not be called" in result.content
    call = await ToolInvocation.objects.aget()
    assert call.status == "denied"


async def test_bad_arguments_are_an_error_result_and_the_run_goes_on(inline_runner: InlineRunner) -> None:
    bad = {"tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expr": "1+1"}}]}
    _, _, _, conversation, run = await _chat([bad, "I passed a wrong argument."], grant="calculator")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    rows = await sync_to_async(messages)(conversation.pk)
    first = rows[2].payload["results"][0]
    assert first["is_error"] is True and "Invalid arguments" in first["content"] and "expression" in first["content"]
    statuses = [s async for s in ToolInvocation.objects.order_by("id").values_list("status", flat=True)]
    assert statuses == ["invalid"]
    assert rows[-1].content == "I passed a wrong argument."


async def test_needs_approval_approved_then_runs(inline_runner: InlineRunner) -> None:
    user, _, _, conversation, run = await _chat(
        [calculator_call(), "It is 42."], grant="calculator", needs_approval=True
    )
    await wait_for_run(run.pk, statuses=(Run.Status.AWAITING_INPUT,))
    approval = await ToolApproval.objects.aget()
    assert approval.status == "pending" and approval.arguments == {"expression": "6*7"}
    await sync_to_async(services.tool_approval_answer)(approval_id=approval.pk, user=user, approve=True)
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    rows = await sync_to_async(messages)(conversation.pk)
    assert [m.type for m in rows] == ["user", "tool_call", "approval", "tool_result", "text"]
    assert rows[2].payload["state"] == "approved" and rows[2].payload["tool"] == "calculator"
    assert rows[3].payload["results"][0]["content"] == "42"
    assert (await ToolInvocation.objects.aget()).status == "ok"


async def test_needs_approval_denied_tells_the_agent(inline_runner: InlineRunner) -> None:
    user, _, _, conversation, run = await _chat([calculator_call(), "Fine."], grant="calculator", needs_approval=True)
    await wait_for_run(run.pk, statuses=(Run.Status.AWAITING_INPUT,))
    approval = await ToolApproval.objects.aget()
    await sync_to_async(services.tool_approval_answer)(approval_id=approval.pk, user=user, approve=False)
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    rows = await sync_to_async(messages)(conversation.pk)
    result = rows[3].payload["results"][0]
    assert result["is_error"] is True and "denied" in result["content"]
    call = await ToolInvocation.objects.aget()
    assert call.status == "denied" and "denied" in call.error


async def test_another_user_cannot_answer_an_approval(inline_runner: InlineRunner) -> None:
    from config.errors import ApplicationError

    _, _, _, _, run = await _chat([calculator_call(), "Fine."], grant="calculator", needs_approval=True)
    await wait_for_run(run.pk, statuses=(Run.Status.AWAITING_INPUT,))
    approval = await ToolApproval.objects.aget()
    stranger = await sync_to_async(factories.user)()
    with pytest.raises(ApplicationError):
        await sync_to_async(services.tool_approval_answer)(approval_id=approval.pk, user=stranger, approve=True)
    await sync_to_async(conversation_services.run_cancel)(run=run)
    run = await asyncio.wait_for(wait_for_run(run.pk), 10)
    assert run.status == Run.Status.CANCELLED
    assert (await ToolApproval.objects.aget()).status == "expired"
