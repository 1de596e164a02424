"""Learn mode end to end on a real small model: Qwen2.5-Coder-0.5B (llama.cpp, from its installed
part packages), the real embedder and the embedded vector store. What the user says in one
conversation is learned as a fact, linked to the message, and answers a question in the next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.models import ModelConfig
from conversations import services as conversation_services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from memory.models import Experience, ExperienceRevision
from tests import factories
from tests.agents.test_local_models import QWEN_05B, _require_part_packages
from tests.conversations.test_executor import wait_for_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.localmodel]

SLOW = 900.0  # seconds: two answers and two extractions on 2 shared cores


async def ask(user: Any, agent: Any, text: str, runner: InlineRunner) -> tuple[Run, str]:
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text=text)
    run = await wait_for_run(run.pk, timeout=SLOW)
    assert run.status == Run.Status.COMPLETED, run.error
    await runner.wait_idle(limit_seconds=SLOW)  # and what memory learned after it
    answer = await Message.objects.filter(run=run, type=Message.Type.TEXT).alatest("seq")
    return run, answer.content


async def test_qwen_05b_learns_a_stated_fact_and_recalls_it_in_a_new_conversation(
    inline_runner: InlineRunner, own_vector_store: Path, settings: Any
) -> None:
    _require_part_packages(QWEN_05B)
    settings.LODESTONE_MEMORY_MODE = "learn"
    model = await sync_to_async(agent_services.model_config_create)(
        name="qwen-05b",
        provider=ModelConfig.Provider.LOCAL,
        model="qwen2.5-coder-0.5b",
        options={"n_ctx": 2048, "max_tokens": 48, "temperature": 0, "seed": 7, "n_threads": 2},
    )
    agent = await sync_to_async(factories.agent)(
        model,
        "assistant",
        memory_enabled=True,
        system_message="You are a helpful assistant. Answer in one short sentence.",
    )
    user = await sync_to_async(factories.user)()

    first, _ = await ask(user, agent, "My favourite colour is teal.", inline_runner)

    learned = await Experience.objects.aget(owner=user)
    assert "teal" in learned.text.lower() and learned.kind == "semantic", learned.text
    assert learned.metadata["source"] == "learned" and learned.run_id == first.pk
    told = await Message.objects.aget(run=first, type=Message.Type.USER)
    assert [m.pk async for m in learned.source_messages.all()] == [told.pk]
    assert await ExperienceRevision.objects.filter(memory_id=learned.pk, cause="model_add", run=first).aexists()

    second, answer = await ask(user, agent, "What is my favourite colour?", inline_runner)

    assert "teal" in answer.lower(), answer
    recalled = await Message.objects.aget(run=second, type=Message.Type.MEMORY)
    assert learned.pk in [item["id"] for item in recalled.payload["memories"]]
    # The question taught nothing new: still the one memory, saying teal.
    assert [e.text async for e in Experience.objects.filter(owner=user)] == [learned.text]
