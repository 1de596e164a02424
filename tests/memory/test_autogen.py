"""The AutoGen adapter in a real run (replay model): recall into the model context, the "memory"
message, the episodic memory stored at the end, and the memory tools acting for the caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from autogen_core import CancellationToken
from autogen_core.memory import MemoryContent
from autogen_core.model_context import UnboundedChatCompletionContext
from autogen_core.models import SystemMessage, UserMessage

from agents.models import ModelConfig
from agents.providers import model_client_for
from conversations import services as conversation_services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from memory import services
from memory.autogen import MEMORY_HEADER, LodestoneMemory, MemoryScope, memory_scope
from memory.models import Experience
from tests import factories
from tests.conversations.test_executor import wait_for_run
from tools.registry import builtin_tools

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_vector_store(own_vector_store: Path, tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path


async def test_memory_enabled_agent_recalls_into_its_model_context(inline_runner: InlineRunner, settings: Any) -> None:
    settings.LODESTONE_MEMORY_MODE = "episodic"  # learn mode: tests/memory/test_learning.py
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Your favourite colour is teal."])
    agent = await sync_to_async(factories.agent)(model, "rememberer", memory_enabled=True)
    remembered = await sync_to_async(services.experience_store)(
        text="The user's favourite colour is teal.", owner=user, agent=agent, kind="semantic"
    )
    other = await sync_to_async(factories.user)()
    await sync_to_async(services.experience_store)(text="The user's favourite colour is red.", owner=other)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)

    _, run = await sync_to_async(conversation_services.message_post)(
        conversation=conversation, user=user, text="What is my favourite colour?"
    )
    run = await wait_for_run(run.pk)
    assert run.status == Run.Status.COMPLETED, run.error

    # The model was called with the recalled memory in a system message (and not the other user's).
    client = model_client_for(await ModelConfig.objects.aget(pk=model.pk))
    seen = [m.content for m in client.create_calls[-1]["messages"]]  # type: ignore[attr-defined]
    recalled = [c for c in seen if isinstance(c, str) and c.startswith(MEMORY_HEADER)]
    assert recalled and "favourite colour is teal" in recalled[0] and "red" not in recalled[0]

    # The recall is a stored "memory" message, before the answer, listing what was used.
    messages = [m async for m in Message.objects.filter(conversation=conversation).order_by("seq")]
    assert [m.type for m in messages] == ["user", "memory", "text"]
    memory = messages[1]
    assert memory.source == "rememberer" and memory.content == "Recalled 1 memory"
    [item] = memory.payload["memories"]
    assert item["id"] == remembered.pk and item["text"] == remembered.text and 0 < item["score"] <= 1

    # The run's task and outcome became an episodic memory of this user and agent (once the run
    # has completed), linked to the task's and the answer's messages.
    await inline_runner.wait_idle()
    stored = await Experience.objects.filter(run_id=run.pk).aget()
    assert stored.kind == "episodic" and stored.owner_id == user.pk and stored.agent_id == agent.pk
    assert stored.text == "Task: What is my favourite colour?\nOutcome: Your favourite colour is teal."
    sources = [m.seq async for m in stored.source_messages.order_by("seq")]
    assert sources == [messages[0].seq, messages[2].seq]


async def test_agent_without_memory_recalls_and_stores_nothing(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Blue?"])
    agent = await sync_to_async(factories.agent)(model, "forgetful")
    await sync_to_async(services.experience_store)(text="The user's favourite colour is teal.", owner=user)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(
        conversation=conversation, user=user, text="What is my favourite colour?"
    )
    run = await wait_for_run(run.pk)
    assert run.status == Run.Status.COMPLETED, run.error
    types = [t async for t in Message.objects.filter(conversation=conversation).values_list("type", flat=True)]
    assert "memory" not in types
    assert await Experience.objects.acount() == 1


async def test_memory_protocol_query_add_update_context_clear() -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["unused"])
    agent = await sync_to_async(factories.agent)(model, "proto", memory_enabled=True)
    memory = LodestoneMemory(agent=agent, user_id=user.pk)

    await memory.add(MemoryContent(content="Deployments happen on Tuesdays.", mime_type="text/plain"))
    await memory.add(MemoryContent(content="Kittens are small cats.", mime_type="text/plain"))
    result = await memory.query("When do we deploy?")
    assert result.results[0].content == "Deployments happen on Tuesdays."
    assert result.results[0].metadata and result.results[0].metadata["score"] > 0

    context = UnboundedChatCompletionContext()
    await context.add_message(UserMessage(content="Which day is deployment day?", source="user"))
    update = await memory.update_context(context)
    assert update.memories.results[0].content == "Deployments happen on Tuesdays."
    last = (await context.get_messages())[-1]
    assert isinstance(last, SystemMessage) and "Tuesdays" in last.content and "Kittens" not in last.content

    await memory.clear()
    assert await Experience.objects.acount() == 0
    assert (await memory.query("When do we deploy?")).results == []
    await memory.close()


async def test_memory_tools_act_for_the_scope_of_the_run() -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["unused"])
    agent = await sync_to_async(factories.agent)(model, "tooluser")
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    tools = builtin_tools()
    store, search = tools["memory_store"].as_autogen(), tools["memory_search"].as_autogen()
    token = CancellationToken()

    # Outside a run there is nobody to act for.
    assert "only inside a conversation" in await search.run_json({"query": "x"}, token)

    scope = MemoryScope(user_id=user.pk, conversation_id=conversation.pk, agents={agent.slug: agent.pk})
    with memory_scope(scope):
        answer = await store.run_json({"text": "The build server is called Hopper.", "importance": 0.7}, token)
        assert answer.startswith("Stored memory ")
        found = await search.run_json({"query": "What is the build server's name?"}, token)
        bad = await store.run_json({"text": "   "}, token)
    stored = await Experience.objects.aget()
    assert (stored.owner_id, stored.agent_id, stored.conversation_id) == (user.pk, agent.pk, conversation.pk)
    assert stored.kind == "semantic" and stored.importance == 0.7 and stored.metadata == {"source": "tool"}
    assert f"[{stored.pk}]" in found and "Hopper" in found
    assert bad.startswith("Error:")
