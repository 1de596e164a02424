"""What a newcomer gets on the default local model, end to end (issue 10, point 8): the seeded demo
assistant on ``local_models.DEFAULT_MODEL`` (llama.cpp, from its installed part packages), the real
embedder, the embedded vector store, the sandboxed tools, through ``message_post``, the inline runner
and the executor, as the chat sends a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.models import Agent, ModelConfig
from agents.providers import local_models
from conversations import services as conversation_services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from memory.models import Experience
from tests import factories
from tests.agents.test_local_models import _require_part_packages
from tests.conversations.test_executor import wait_for_run
from tools.models import ToolInvocation

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.localmodel]

SLOW = 900.0  # seconds: several generations of the default model on 2 cores


@pytest.fixture
def default_model(settings: Any) -> str:
    model = local_models.DEFAULT_MODEL
    _require_part_packages(local_models.packaged_model(model))
    settings.LODESTONE_LOCAL_MODEL = model
    settings.LODESTONE_MEMORY_MODE = "learn"
    return model


def _seeded_assistant() -> Agent:
    agent_services.demo_seed()
    assistant = Agent.objects.select_related("model_config").get(slug="assistant")
    # The demo's config, made repeatable: greedy decoding and a fixed seed.
    config: ModelConfig = assistant.model_config
    config.options = {**config.options, "temperature": 0, "seed": 7}
    config.save()
    return assistant


async def _ask(user: Any, assistant: Agent, text: str, runner: InlineRunner) -> tuple[Run, str]:
    conversation = await sync_to_async(factories.conversation)(user, agent=assistant)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text=text)
    run = await wait_for_run(run.pk, timeout=SLOW)
    assert run.status == Run.Status.COMPLETED, run.error
    await runner.wait_idle(limit_seconds=SLOW)  # and what memory learned after it
    answer = await Message.objects.filter(run=run, type=Message.Type.TEXT, source="assistant").alatest("seq")
    return run, answer.content


async def test_the_default_model_calls_the_calculator_for_17_times_23_and_answers_391(
    default_model: str, inline_runner: InlineRunner, own_vector_store: Path
) -> None:
    assistant = await sync_to_async(_seeded_assistant)()
    user = await sync_to_async(factories.user)()

    run, answer = await _ask(user, assistant, "What is 17 \N{MULTIPLICATION SIGN} 23?", inline_runner)

    call = await Message.objects.aget(run=run, type=Message.Type.TOOL_CALL)
    assert [c["name"] for c in call.payload["calls"]] == ["calculator"], call.payload
    invocation = await ToolInvocation.objects.aget(run_id=run.pk)
    assert invocation.tool_name == "calculator" and invocation.status == ToolInvocation.Status.OK
    assert "391" in invocation.result_summary
    assert "391" in answer, answer


async def test_the_default_model_learns_a_fact_and_recalls_it_in_a_new_conversation(
    default_model: str, inline_runner: InlineRunner, own_vector_store: Path
) -> None:
    assistant = await sync_to_async(_seeded_assistant)()
    user = await sync_to_async(factories.user)()

    first, _ = await _ask(user, assistant, "My favourite colour is teal.", inline_runner)

    memories = [e async for e in Experience.objects.filter(owner=user)]
    assert any("teal" in memory.text.lower() for memory in memories), [m.text for m in memories]

    second, answer = await _ask(user, assistant, "What is my favourite colour?", inline_runner)

    assert second.conversation_id != first.conversation_id
    assert "teal" in answer.lower(), answer
    recalled = await Message.objects.aget(run=second, type=Message.Type.MEMORY)
    assert any("teal" in item["text"].lower() for item in recalled.payload["memories"]), recalled.payload
