"""A call waiting for approval lives in its executor: after a crash and restart, its run fails with
a clear reason, the request expires (its chat card stops offering buttons), and answering it late
is a clear 409, never a run stuck in ``awaiting_input``."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from conversations import services as conversation_services
from conversations.models import Message, Run
from tests import factories
from tools import services
from tools.models import Tool, ToolApproval
from tools.runtime import CallContext, ToolSpec

pytestmark = pytest.mark.django_db


def approval_card(approval: ToolApproval) -> Message:
    assert approval.message_id is not None
    return Message.objects.get(pk=approval.message_id)


def waiting_for_approval() -> tuple[Any, Run, ToolApproval]:
    """The rows a run leaves when its process dies while a call waits for approval."""
    user = factories.user()
    agent = factories.agent(factories.replay_model(["unused"]), "worker")
    conversation = factories.conversation(user, agent=agent)
    run = Run.objects.create(conversation=conversation, status=Run.Status.RUNNING)
    tool = Tool.objects.get(name="calculator")
    spec = ToolSpec(
        tool_id=tool.pk,
        name=tool.name,
        description=tool.description,
        kind=tool.kind,
        parameters={},
        timeout_seconds=5,
        agent_id=agent.pk,
        needs_approval=True,
    )
    context = CallContext(run_id=run.pk, conversation_id=conversation.pk, user_id=user.pk)
    approval, _, run = services.tool_approval_request(
        spec=spec, arguments={"expression": "1+1"}, context=context, call_id="call-1"
    )
    assert run.status == Run.Status.AWAITING_INPUT
    return user, run, approval


def test_restart_fails_the_run_and_expires_the_request() -> None:
    user, run, approval = waiting_for_approval()
    asking_user = factories.user()  # a run waiting for a user's answer is left alone
    proxy_run = Run.objects.create(conversation=factories.conversation(asking_user, agent=run.conversation.agent))
    Run.objects.filter(pk=proxy_run.pk).update(status=Run.Status.RUNNING)
    conversation_services.run_request_input(run_id=proxy_run.pk, source="human", question="Name?")

    assert conversation_services.runs_fail_interrupted() == 1
    run.refresh_from_db()
    assert run.status == Run.Status.FAILED and "waiting for a tool call's approval" in run.error
    assert Run.objects.get(pk=proxy_run.pk).status == Run.Status.AWAITING_INPUT

    from tools.tasks import expire_orphaned_approvals  # what Celery beat runs every minute

    assert expire_orphaned_approvals() == 1
    approval.refresh_from_db()
    assert approval.status == ToolApproval.Status.EXPIRED
    card = approval_card(approval)
    assert card.payload["state"] == "expired"
    assert services.approvals_expire_orphaned() == 0

    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"/api/tools/approvals/{approval.pk}/", {"approve": True}, format="json")
    assert response.status_code == 409 and "already expired" in response.json()["detail"]
    # The conversation takes the next message.
    conversation_services.message_post(conversation=run.conversation, user=user, text="Again")


def test_answering_a_request_whose_run_ended_is_a_clear_409() -> None:
    user, run, approval = waiting_for_approval()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.FAILED)
    client = APIClient()
    client.force_authenticate(user)
    response = client.post(f"/api/tools/approvals/{approval.pk}/", {"approve": True}, format="json")
    assert response.status_code == 409
    assert "expired: the reply it belonged to has ended" in response.json()["detail"]
    approval.refresh_from_db()
    assert approval.status == ToolApproval.Status.EXPIRED
    assert approval_card(approval).payload["state"] == "expired"


def test_a_request_stays_answerable_while_its_run_goes_on() -> None:
    # Two calls waited; the first answer set the run running again: the second is still open.
    user, run, approval = waiting_for_approval()
    Run.objects.filter(pk=run.pk).update(status=Run.Status.RUNNING)
    answered = services.tool_approval_answer(approval_id=approval.pk, user=user, approve=False)
    assert answered.status == ToolApproval.Status.DENIED


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("html", [False, True])
async def test_an_open_chat_sees_the_card_expire_live(html: bool) -> None:
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.test import Client

    from config.asgi import application

    user, run, approval = await sync_to_async(waiting_for_approval)()
    client = Client()
    await sync_to_async(client.force_login)(user)
    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    path = f"/ws/conversations/{run.conversation_id}/" + ("?format=html" if html else "")
    # The app inside the server middleware: its start-up recovery would do what this test does.
    comm = WebsocketCommunicator(application.app, path, headers=headers)
    connected, _ = await comm.connect()
    assert connected
    await drain(comm)  # what the page already shows, the card among it
    await sync_to_async(conversation_services.runs_fail_interrupted)()
    await sync_to_async(services.approvals_expire_orphaned)()
    received = await drain(comm)
    updates = [r for r in received if "message_update" in r or 'data-update="1"' in r]
    assert len(updates) == 1, received
    update = updates[0]
    if html:
        assert 'data-update="1"' in update and 'hx-swap-oob="true"' in update
        card = await sync_to_async(approval_card)(approval)
        assert f'id="msg-{card.seq}"' in update and ">expired<" in update and "Approve" not in update
    else:
        assert '"conversation.message_update"' in update and '"state": "expired"' in update
    await comm.disconnect()


async def drain(comm: Any) -> list[str]:
    received = []
    while not await comm.receive_nothing(timeout=0.5):
        received.append(await comm.receive_from())
    return received
