"""One real end-to-end run on the bundled local model (SmolLM2-135M on llama.cpp)."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from conversations import realtime, services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_executor import wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.localmodel]


async def test_local_model_streams_a_real_reply_that_is_persisted(inline_runner: InlineRunner) -> None:
    from channels.layers import get_channel_layer

    seeded = await sync_to_async(agent_services.demo_seed)()
    user = await sync_to_async(factories.user)()
    conversation = await sync_to_async(factories.conversation)(user, agent=seeded["agents"][0])
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(realtime.group_name(conversation.pk), channel)

    _, run = await sync_to_async(services.message_post)(
        conversation=conversation, user=user, text="Name one colour of the sky."
    )
    chunks: list[str] = []
    loop_ticks = 0

    async def ticker() -> None:
        # Proves the event loop stays responsive while the model generates.
        nonlocal loop_ticks
        while True:
            await asyncio.sleep(0.01)
            loop_ticks += 1

    tick_task = asyncio.create_task(ticker())
    while True:
        event = await asyncio.wait_for(layer.receive(channel), timeout=120)
        if event["type"] == realtime.CHUNK:
            chunks.append(event["text"])
        if event["type"] == realtime.RUN and event["run"]["status"] not in ("queued", "running"):
            break
    tick_task.cancel()
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    reply = await Message.objects.aget(conversation=conversation, source="assistant")
    assert reply.type == Message.Type.TEXT and reply.content.strip()
    assert len(chunks) > 1, "the reply was not streamed token by token"
    assert "".join(chunks).strip() == reply.content.strip()
    assert reply.completion_tokens > 0 and reply.prompt_tokens > 0
    assert loop_ticks > 5
