"""A run waiting for the busy local model says so in the chat, with its place, and can be stopped
while it waits; the real model (SmolLM2) runs it once its turn comes."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.models import ModelConfig
from agents.providers.model_queue import LOCAL_MODEL_QUEUE, model_wait_scope
from conversations import realtime, rendering, services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_executor import wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.localmodel]


async def _listen(conversation_id: int) -> tuple[Any, str]:
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(realtime.group_name(conversation_id), channel)
    return layer, channel


async def _next_run_event(layer: Any, channel: str, *, until: Any) -> dict[str, Any]:
    while True:
        event = await asyncio.wait_for(layer.receive(channel), timeout=120)
        if event["type"] == realtime.RUN and until(event["run"]):
            return dict(event["run"])


async def _local_conversation() -> tuple[Any, Any]:
    config = await sync_to_async(agent_services.model_config_create)(
        name="Local queue test",
        provider=ModelConfig.Provider.LOCAL,
        model="smollm2-135m",
        options={"max_tokens": 8, "temperature": 0.0},
    )
    agent = await sync_to_async(factories.agent)(config, slug="helper")
    user = await sync_to_async(factories.user)()
    return user, await sync_to_async(factories.conversation)(user, agent=agent)


async def test_a_queued_run_shows_its_place_then_runs_when_the_model_is_free(inline_runner: InlineRunner) -> None:
    user, conversation = await _local_conversation()
    layer, channel = await _listen(conversation.pk)
    with model_wait_scope("someone-else"):
        busy = await LOCAL_MODEL_QUEUE.acquire()  # another user's reply is generating
    try:
        _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Say hi.")
        waiting = await _next_run_event(layer, channel, until=lambda r: r.get("waiting_for_model"))
        assert waiting["status"] == Run.Status.RUNNING and waiting["waiting_for_model"] == 1
        shown = rendering.run_fragment(waiting)
        assert "Waiting for the local model (position 1)" in shown and "Stop" in shown
    finally:
        LOCAL_MODEL_QUEUE.release(busy)
    resumed = await _next_run_event(layer, channel, until=lambda r: r["status"] == Run.Status.RUNNING)
    assert "waiting_for_model" not in resumed
    assert (await wait_for_run(run.pk, timeout=120)).status == Run.Status.COMPLETED
    assert await Message.objects.filter(conversation=conversation, source="helper").aexists()


async def test_a_run_stopped_while_it_waits_for_the_model_is_cancelled_and_leaves_the_queue(
    inline_runner: InlineRunner,
) -> None:
    user, conversation = await _local_conversation()
    layer, channel = await _listen(conversation.pk)
    with model_wait_scope("someone-else"):
        busy = await LOCAL_MODEL_QUEUE.acquire()
    try:
        _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Say hi.")
        await _next_run_event(layer, channel, until=lambda r: r.get("waiting_for_model"))
        await sync_to_async(services.run_cancel)(run=await Run.objects.aget(pk=run.pk))
        stopped = await wait_for_run(run.pk)
        assert stopped.status == Run.Status.CANCELLED
        assert LOCAL_MODEL_QUEUE.waiting() == 0  # it gave up its place without ever running
    finally:
        LOCAL_MODEL_QUEUE.release(busy)
    assert not await Message.objects.filter(conversation=conversation, source="helper").aexists()
