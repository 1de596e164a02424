"""Human in the loop: a user proxy asks, the run waits in awaiting_input, the answer (socket, API,
chat message) resumes it; cancel while waiting; an answer after a restart continues in a new run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from agents.models import Team
from conversations import services
from conversations.models import Conversation, Message, Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_consumer import connect, receive_until
from tests.teams.test_team_kinds import make_team, rows

pytestmark = pytest.mark.django_db(transaction=True)


async def wait_status(run_id: int, *statuses: str, timeout: float = 10.0) -> Run:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await Run.objects.aget(pk=run_id)
        if run.status in statuses:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run.status}, expected {statuses}")
        await asyncio.sleep(0.02)


async def asking_team(responses: list[Any]) -> tuple[User, Conversation]:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(responses)
    asker = await sync_to_async(factories.agent)(model, "asker")
    human = await sync_to_async(factories.agent)(model, "human", name="You", preset="user_proxy")
    team = await sync_to_async(make_team)([asker, human], Team.Kind.ROUND_ROBIN, max_messages=4)
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    return user, conversation


EXPECTED = [
    ("user", "user", "Greet me"),
    ("asker", "text", "What is your name?"),
    ("human", "input_request", "What is your name?"),
    ("user", "user", "Ada"),
    ("asker", "text", "Hello, Ada!"),
]


async def test_answer_through_the_api_resumes_the_run(inline_runner: InlineRunner) -> None:
    user, conversation = await asking_team(["What is your name?", "Hello, Ada!"])
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Greet me")
    run = await wait_status(run.pk, Run.Status.AWAITING_INPUT)

    client = APIClient()
    await sync_to_async(client.force_authenticate)(user)
    other = await sync_to_async(factories.user)()
    stranger = APIClient()
    await sync_to_async(stranger.force_authenticate)(other)
    assert (
        await sync_to_async(stranger.post)(f"/api/runs/{run.pk}/input/", {"text": "x"}, format="json")
    ).status_code == 404
    empty = await sync_to_async(client.post)(f"/api/runs/{run.pk}/input/", {"text": "  "}, format="json")
    assert empty.status_code == 400

    response = await sync_to_async(client.post)(f"/api/runs/{run.pk}/input/", {"text": "Ada"}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["run"]["id"] == run.pk
    run = await wait_status(run.pk, Run.Status.COMPLETED, Run.Status.FAILED)
    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(rows)(conversation.pk) == EXPECTED
    request = await Message.objects.aget(conversation=conversation, type="input_request")
    assert request.payload["answered"] is True and request.payload["agent_name"] == "You"

    again = await sync_to_async(client.post)(f"/api/runs/{run.pk}/input/", {"text": "Ada"}, format="json")
    assert again.status_code == 409


async def test_answer_through_the_socket_resumes_the_run(inline_runner: InlineRunner) -> None:
    user, conversation = await asking_team(["What is your name?", "Hello, Ada!"])
    comm = await connect(user, conversation.pk)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "message.post", "text": "Greet me"})
    events = await receive_until(
        comm, lambda e: e["type"] == "conversation.run" and e["run"]["status"] == "awaiting_input"
    )
    asked = [
        e["message"] for e in events if e["type"] == "conversation.message" and e["message"]["type"] == "input_request"
    ]
    assert asked and asked[0]["content"] == "What is your name?"

    await comm.send_json_to({"type": "input.answer", "text": "Ada"})
    events = await receive_until(comm, lambda e: e["type"] == "conversation.run" and e["run"]["status"] == "completed")
    said = [e["message"]["content"] for e in events if e["type"] == "conversation.message"]
    assert said == ["Ada", "Hello, Ada!"]
    await comm.disconnect()
    assert await sync_to_async(rows)(conversation.pk) == EXPECTED


async def test_cancel_while_awaiting_input(inline_runner: InlineRunner) -> None:
    user, conversation = await asking_team(["What is your name?"])
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Greet me")
    run = await wait_status(run.pk, Run.Status.AWAITING_INPUT)
    await sync_to_async(services.run_cancel)(run=run)
    run = await wait_status(run.pk, Run.Status.CANCELLED)
    # The conversation takes the next message.
    _, nxt = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Again")
    await sync_to_async(services.run_cancel)(run=nxt)


async def test_answer_after_a_restart_continues_in_a_new_run(inline_runner: InlineRunner) -> None:
    user, conversation = await asking_team(["What is your name?", "Hello, Ada!"])
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Greet me")
    run = await wait_status(run.pk, Run.Status.AWAITING_INPUT)
    # A server shutdown cancels the executor's task: the run stays waiting, its question is now
    # one a new run takes up (start-up recovery leaves waiting runs alone).
    task = inline_runner._tasks[run.pk]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sync_to_async(services.runs_fail_interrupted)()
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.AWAITING_INPUT
    request = await Message.objects.aget(conversation=conversation, type="input_request")
    assert request.payload["mode"] == "resume"

    message, nxt = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Ada")
    assert nxt.pk != run.pk
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.COMPLETED
    nxt = await wait_status(nxt.pk, Run.Status.COMPLETED, Run.Status.FAILED, Run.Status.AWAITING_INPUT)
    # The team continued after the proxy's turn: the asker answered, and the proxy asks again.
    assert nxt.status == Run.Status.AWAITING_INPUT, (nxt.error, await sync_to_async(rows)(conversation.pk))
    assert message.payload["answer_to"] == 3
    said = await sync_to_async(rows)(conversation.pk)
    assert said[3:] == [
        ("user", "user", "Ada"),
        ("asker", "text", "Hello, Ada!"),
        ("human", "input_request", "Hello, Ada!"),
    ]
    await sync_to_async(services.run_cancel)(run=nxt)
    assert (await wait_status(nxt.pk, Run.Status.CANCELLED)).status == Run.Status.CANCELLED


async def test_pause_parks_the_run_and_resume_continues_it(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    slow = " ".join(f"w{i}" for i in range(300))
    # A replay script moves on only when an answer is complete: the paused turn is answered again.
    model = await sync_to_async(factories.replay_model)(["First.", slow, "Third."], chunk_delay=0.005)
    a = await sync_to_async(factories.agent)(model, "fast")
    b = await sync_to_async(factories.agent)(model, "slow")
    c = await sync_to_async(factories.agent)(model, "last")
    team = await sync_to_async(make_team)([a, b, c], Team.Kind.ROUND_ROBIN, max_messages=3)
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Go")
    for _ in range(500):
        if await Message.objects.filter(conversation=conversation, source="fast").aexists():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # "slow" is streaming now

    client = APIClient()
    await sync_to_async(client.force_authenticate)(user)
    paused = await sync_to_async(client.post)(f"/api/runs/{run.pk}/pause/")
    assert paused.status_code == 200
    run = await wait_status(run.pk, Run.Status.AWAITING_INPUT, Run.Status.CANCELLED, Run.Status.COMPLETED)
    assert run.status == Run.Status.AWAITING_INPUT and not run.cancel_requested
    assert (await sync_to_async(rows)(conversation.pk))[-1] == (
        "lodestone",
        "input_request",
        "Paused. Send a message to continue, or press Resume.",
    )

    resumed = await sync_to_async(client.post)(f"/api/runs/{run.pk}/resume/")
    assert resumed.status_code == 202
    nxt = await wait_status(resumed.json()["id"], Run.Status.COMPLETED, Run.Status.FAILED)
    assert nxt.status == Run.Status.COMPLETED, nxt.error
    said = await sync_to_async(rows)(conversation.pk)
    # The interrupted turn was not stored; the team went on from its saved state.
    assert [s for s, _, _ in said] == ["user", "fast", "lodestone", "user", "slow", "last"]
    assert said[3][2] == "Continue." and said[4][2] == slow and said[5][2] == "Third."
