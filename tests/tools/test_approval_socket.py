"""Approval in the chat, end to end through the socket: the paused call asks (an approval message),
the user answers over the socket, the run continues (or the agent is told it was denied)."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_consumer import connect, receive_until, run_ended
from tests.tools.helpers import calculator_call, tool, wait_for_run
from tools import services
from tools.models import ToolApproval, ToolInvocation

pytestmark = pytest.mark.django_db(transaction=True)


async def _setup(responses: list[Any]):  # type: ignore[no-untyped-def]
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(responses)
    agent = await sync_to_async(factories.agent)(model, "careful", name="Careful")
    await sync_to_async(services.tool_grant_create)(
        agent=agent, tool=await sync_to_async(tool)("calculator"), needs_approval=True
    )
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    return user, conversation


def _is_approval(event: dict[str, Any]) -> bool:
    return event["type"] == "conversation.message" and event["message"]["type"] == "approval"


@pytest.mark.parametrize("approve", [True, False])
async def test_approval_through_the_socket(inline_runner: InlineRunner, approve: bool) -> None:
    user, conversation = await _setup([calculator_call(), "It is 42." if approve else "Understood, I will not."])
    comm = await connect(user, conversation.pk)
    connected, _ = await comm.connect()
    assert connected

    await comm.send_json_to({"type": "message.post", "text": "6*7? ask first"})
    events = await receive_until(comm, _is_approval)
    approval_message = events[-1]["message"]
    assert approval_message["payload"]["tool"] == "calculator"
    assert approval_message["payload"]["arguments"] == {"expression": "6*7"}
    assert approval_message["payload"]["state"] == "pending"
    assert approval_message["content"] == "Careful wants to call calculator. Allow it?"
    waiting = await receive_until(
        comm, lambda e: e["type"] == "conversation.run" and e["run"]["status"] == "awaiting_input"
    )
    assert waiting

    # A malformed answer is refused with a readable error, nothing changes.
    await comm.send_json_to({"type": "tool.approval", "approval_id": approval_message["payload"]["approval_id"]})
    assert "true or false" in (await comm.receive_json_from())["error"]

    await comm.send_json_to(
        {"type": "tool.approval", "approval_id": approval_message["payload"]["approval_id"], "approve": approve}
    )
    events = await receive_until(comm, run_ended, limit=20)
    run = await Run.objects.aget(conversation=conversation)
    assert run.status == Run.Status.COMPLETED, run.error
    results = [
        e["message"] for e in events if e["type"] == "conversation.message" and e["message"]["type"] == "tool_result"
    ]
    result = results[0]["payload"]["results"][0]
    statuses = [e["run"]["status"] for e in events if e["type"] == "conversation.run"]
    assert "running" in statuses  # resumed after the answer
    approval = await ToolApproval.objects.aget()
    call = await ToolInvocation.objects.aget()
    if approve:
        assert result == {"call_id": "c1", "name": "calculator", "content": "42", "is_error": False}
        assert approval.status == "approved" and call.status == "ok"
    else:
        assert result["is_error"] and "denied: the user denied it" in result["content"]
        assert approval.status == "denied" and call.status == "denied"
    assert approval.decided_by_id == user.pk
    await comm.disconnect()


async def test_only_the_owner_can_answer_and_only_once(inline_runner: InlineRunner) -> None:
    user, conversation = await _setup([calculator_call(), "Fine."])
    comm = await connect(user, conversation.pk)
    await comm.connect()
    await comm.send_json_to({"type": "message.post", "text": "go"})
    approval_id = (await receive_until(comm, _is_approval))[-1]["message"]["payload"]["approval_id"]

    # Another user, through the chat's HTMX view: 404, as if it did not exist.
    stranger = await sync_to_async(factories.user)()
    client = Client()
    await sync_to_async(client.force_login)(stranger)
    answer = sync_to_async(client.post)
    response = await answer(f"/tools/approvals/{approval_id}/answer/", {"approve": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 404

    # The owner, through the same view: the card comes back decided.
    await sync_to_async(client.force_login)(user)
    response = await answer(f"/tools/approvals/{approval_id}/answer/", {"approve": "1"}, headers={"HX-Request": "true"})
    assert response.status_code == 200 and 'data-state="approved"' in response.content.decode()
    response = await answer(f"/tools/approvals/{approval_id}/answer/", {"approve": "0"}, headers={"HX-Request": "true"})
    assert response.status_code == 409
    await comm.send_json_to({"type": "tool.approval", "approval_id": approval_id, "approve": False})
    errors = await receive_until(comm, lambda e: e["type"] == "error")
    assert "already approved" in errors[-1]["error"]
    run = await wait_for_run((await Run.objects.aget(conversation=conversation)).pk)
    assert run.status == Run.Status.COMPLETED
    await comm.disconnect()


async def test_the_chat_page_shows_the_approval_card(inline_runner: InlineRunner) -> None:
    user, conversation = await _setup([calculator_call(), "Fine."])
    comm = await connect(user, conversation.pk, "format=html")
    await comm.connect()
    await comm.send_json_to({"type": "message.post", "text": "go"})
    html = ""
    while "data-approval" not in html:
        html = await comm.receive_from(timeout=10)
    assert 'data-state="pending"' in html and "Approve</button>" in html and "Deny</button>" in html
    approval = await ToolApproval.objects.aget()
    client = Client()
    await sync_to_async(client.force_login)(user)
    page = (await sync_to_async(client.get)(f"/conversations/{conversation.pk}/")).content.decode()
    assert f'data-approval="{approval.pk}"' in page
    await sync_to_async(services.tool_approval_answer)(approval_id=approval.pk, user=user, approve=True)
    await wait_for_run((await Run.objects.aget(conversation=conversation)).pk)
    page = (await sync_to_async(client.get)(f"/conversations/{conversation.pk}/")).content.decode()
    assert 'data-state="approved"' in page
    await comm.disconnect()
