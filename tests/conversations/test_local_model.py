"""One real end-to-end run on the configured local model (``LODESTONE_LOCAL_MODEL``; the test
settings keep the default, the bundled SmolLM2-135M on llama.cpp). The demo assistant has tools
granted, which a model without tool calling is not offered: these runs also show that this works."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

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


async def test_the_demo_assistant_remembers_across_conversations(
    inline_runner: InlineRunner, own_vector_store: Path, settings: Any
) -> None:
    """The real local model, the real embedder and the embedded store: what the demo assistant did
    in one conversation is recalled (and shown as a "recalled" card) in the next. Episodic mode
    (learn mode on a real model: tests/memory/test_learning_local_model.py)."""
    from memory.models import Experience

    settings.LODESTONE_MEMORY_MODE = "episodic"

    seeded = await sync_to_async(agent_services.demo_seed)()
    assistant = seeded["agents"][0]
    user = await sync_to_async(factories.user)()
    first = await sync_to_async(factories.conversation)(user, agent=assistant)
    _, run = await sync_to_async(services.message_post)(
        conversation=first, user=user, text="Our staging server listens on port 8081 behind nginx."
    )
    assert (await wait_for_run(run.pk)).status == Run.Status.COMPLETED
    await inline_runner.wait_idle()  # memory is stored once the run has completed
    memory = await Experience.objects.aget(owner=user, agent=assistant)
    assert "8081" in memory.text and memory.kind == "episodic"

    second = await sync_to_async(factories.conversation)(user, agent=assistant)
    _, run = await sync_to_async(services.message_post)(
        conversation=second, user=user, text="Which port does the staging server listen on?"
    )
    assert (await wait_for_run(run.pk)).status == Run.Status.COMPLETED, run.error
    recalled = await Message.objects.aget(conversation=second, type=Message.Type.MEMORY)
    assert any(item["id"] == memory.pk for item in recalled.payload["memories"])
