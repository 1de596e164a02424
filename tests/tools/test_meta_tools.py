"""find_tools (semantic with memory's embedder, else lexical; requesting a tool) and create_tool,
called by an agent through the real AutoGen path."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async

from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import messages, wait_for_run
from tools.discovery import tools_search
from tools.models import Tool, ToolGrant

pytestmark = pytest.mark.django_db(transaction=True)


async def _run_agent(responses: list, tools: list[str]):  # type: ignore[no-untyped-def]
    model = await sync_to_async(factories.replay_model)(responses)
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "toolsmith", tool_names=tools)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="go")
    run = await wait_for_run(run.pk, timeout=60)
    assert run.status == Run.Status.COMPLETED, run.error
    return agent, (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]


def test_lexical_search_ranks_by_matching_words() -> None:
    found = tools_search(query="evaluate arithmetic expression", semantic=False)
    assert found[0].name == "calculator" and found[0].method == "lexical"
    assert found[0].parameters["required"] == ["expression"]
    assert tools_search(query="zzqx", semantic=False) == []


def test_semantic_search_uses_memorys_embedder() -> None:
    from memory.embeddings import get_embedder

    try:
        get_embedder().embed(["probe"])
    except Exception as exc:  # the local model is part of the install; without it, say why
        pytest.skip(f"memory's embedder is not available here: {exc}")
    found = tools_search(query="what time is it in Tokyo?", k=3)
    assert found[0].method == "semantic" and found[0].name == "current_time"


async def test_find_tools_and_request_one(inline_runner: InlineRunner) -> None:
    responses = [
        {
            "tool_calls": [
                {"id": "f1", "name": "find_tools", "arguments": {"query": "arithmetic", "request": "calculator"}}
            ]
        },
        "I asked for the calculator.",
    ]
    agent, result = await _run_agent(responses, ["find_tools"])
    assert not result["is_error"]
    lines = result["content"].splitlines()
    assert lines[0] == "Asked an administrator to grant you 'calculator'; it is usable once granted."
    assert any(json.loads(line)["name"] == "calculator" for line in lines[1:])
    grant = await ToolGrant.objects.select_related("tool").aget(agent=agent, tool__name="calculator")
    assert grant.status == "requested"


@pytest.mark.usefixtures("bwrap")
async def test_create_tool_from_an_agent_is_pending(inline_runner: InlineRunner) -> None:
    source = 'def triple(x: int) -> int:\n    """Three times x."""\n    return 3 * x\n'
    responses = [
        {
            "tool_calls": [
                {"id": "t1", "name": "create_tool", "arguments": {"source": source, "example_arguments": {"x": 5}}}
            ]
        },
        "Proposed.",
    ]
    agent, result = await _run_agent(responses, ["create_tool"])
    assert "Created tool 'triple' (version 1), pending" in result["content"] and "returned: 15" in result["content"]
    tool = await Tool.objects.aget(name="triple")
    assert (tool.status, tool.kind, tool.config["created_by_agent"]) == ("pending", "python", agent.slug)


async def test_create_tool_with_bad_code_tells_the_agent_why(inline_runner: InlineRunner) -> None:
    responses = [
        {
            "tool_calls": [
                {"id": "t1", "name": "create_tool", "arguments": {"source": "import os", "example_arguments": {}}}
            ]
        },
        "Oh well.",
    ]
    _, result = await _run_agent(responses, ["create_tool"])
    assert result["content"].startswith("Error: ") and "exactly one public function" in result["content"]
    assert not await Tool.objects.filter(kind="python").aexists()
