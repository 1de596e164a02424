"""The executor on AutoGen's ReplayChatCompletionClient: exact order, tools, state, cancel."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from conversations import services
from conversations.models import Conversation, Message, Run
from conversations.runner import InlineRunner
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


async def wait_for_run(run_id: int, timeout: float = 20.0) -> Run:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await Run.objects.aget(pk=run_id)
        if not run.is_active:
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")
        await asyncio.sleep(0.02)


def rows(conversation_id: int) -> list[tuple[int, str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("seq")
        .values_list("seq", "source", "type", "content")
    )


async def test_round_robin_messages_are_persisted_in_order(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Paris is the capital.", "Correct, and concise."])
    a = await sync_to_async(factories.agent)(model, "writer")
    b = await sync_to_async(factories.agent)(model, "reviewer")
    team = await sync_to_async(factories.round_robin)([a, b], max_messages=3)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Capital of France?")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(rows)(conversation.pk) == [
        (1, "user", "user", "Capital of France?"),
        (2, "writer", "text", "Paris is the capital."),
        (3, "reviewer", "text", "Correct, and concise."),
    ]
    assert "Maximum number of messages 3 reached" in run.stop_reason
    writer = await Message.objects.aget(conversation=conversation, seq=2)
    assert writer.completion_tokens == 4 and writer.prompt_tokens > 0
    assert writer.latency_ms is not None
    assert run.completion_tokens == 4 + 3


async def test_tool_call_is_persisted_as_call_and_result(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        [{"tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "6*7"}}]}, "It is 42."]
    )
    solo = await sync_to_async(factories.agent)(model, "mathematician", tool_names=["calculator"])
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)

    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="6 times 7?")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    messages = [m async for m in Message.objects.filter(conversation=conversation).order_by("seq")]
    assert [(m.seq, m.type) for m in messages] == [(1, "user"), (2, "tool_call"), (3, "tool_result"), (4, "text")]
    assert messages[1].payload["calls"] == [{"id": "c1", "name": "calculator", "arguments": '{"expression": "6*7"}'}]
    assert messages[2].payload["results"] == [
        {"call_id": "c1", "name": "calculator", "content": "42", "is_error": False}
    ]
    assert messages[3].content == "It is 42."


async def test_team_state_carries_earlier_turns_into_the_next_run(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Nice to meet you, Ada.", "Your name is Ada."])
    solo = await sync_to_async(factories.agent)(model, "friend")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)

    _, first = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="I am Ada.")
    await wait_for_run(first.pk)
    _, second = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Who am I?")
    second = await wait_for_run(second.pk)

    assert second.status == Run.Status.COMPLETED, second.error
    # The model saw the first exchange when answering the second message.
    from agents.models import ModelConfig
    from agents.providers import model_client_for

    config = await ModelConfig.objects.aget(pk=model.pk)
    client = model_client_for(config)
    seen = [m.content for m in client.create_calls[-1]["messages"]]  # type: ignore[attr-defined]
    assert "I am Ada." in seen and "Nice to meet you, Ada." in seen and "Who am I?" in seen
    state = (await Conversation.objects.aget(pk=conversation.pk)).team_state
    assert state and "agent_states" in state


async def test_cancel_mid_run_stops_and_keeps_what_was_said(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    slow = " ".join(f"word{i}" for i in range(400))
    model = await sync_to_async(factories.replay_model)(["First answer.", slow], chunk_delay=0.01)
    a = await sync_to_async(factories.agent)(model, "fast")
    b = await sync_to_async(factories.agent)(model, "slow")
    team = await sync_to_async(factories.round_robin)([a, b], max_messages=3)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Go")
    for _ in range(500):
        if await Message.objects.filter(conversation=conversation, source="fast").aexists():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # "slow" is streaming now
    await sync_to_async(services.run_cancel)(run=run)
    run = await wait_for_run(run.pk, timeout=5)

    assert run.status == Run.Status.CANCELLED
    assert [r[1] for r in await sync_to_async(rows)(conversation.pk)] == ["user", "fast"]
    # The conversation accepts the next message.
    _, nxt = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Again")
    assert nxt.status == Run.Status.QUEUED
    await sync_to_async(services.run_cancel)(run=nxt)


async def test_cancel_from_another_process_is_observed_through_the_database(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)([" ".join(["tok"] * 500)], chunk_delay=0.01)
    solo = await sync_to_async(factories.agent)(model, "talker")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Talk")
    await asyncio.sleep(0.3)
    # What run_cancel does in another process: only the flag in the database.
    await Run.objects.filter(pk=run.pk).aupdate(cancel_requested=True)
    run = await wait_for_run(run.pk, timeout=5)
    assert run.status == Run.Status.CANCELLED


async def test_model_error_fails_the_run_readably_and_keeps_the_user_message(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["only one answer"])
    solo = await sync_to_async(factories.agent)(model, "fragile")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)
    _, first = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="One")
    await wait_for_run(first.pk)
    _, second = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Two")
    second = await wait_for_run(second.pk)

    assert second.status == Run.Status.FAILED
    assert second.error.startswith("The reply failed:") and "No more mock responses" in second.error
    assert [r[3] for r in await sync_to_async(rows)(conversation.pk)] == ["One", "only one answer", "Two"]
