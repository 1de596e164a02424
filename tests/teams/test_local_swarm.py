"""A two-agent Swarm on the local Qwen2.5-Coder-0.5B: AutoGen's handoffs are tools named
``transfer_to_<agent>``; the local client offers them to the model like any tool, and the model's
call of one becomes a HandoffMessage to the other agent, who then answers."""

from __future__ import annotations

from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.conditions import MaxMessageTermination
from autogen_agentchat.messages import HandoffMessage, TextMessage, ToolCallRequestEvent
from autogen_agentchat.teams import Swarm
from autogen_core.models import CreateResult

from agents.providers import local
from tests.agents.test_local_models import QWEN_05B, _require_part_packages


class OfferRecordingClient(local.LocalChatCompletionClient):
    """The local client, noting the names of the tools each request offered."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.offered: list[list[str]] = []

    async def create(self, *args: Any, **kwargs: Any) -> CreateResult:
        self.offered.append([tool.name for tool in kwargs.get("tools", [])])
        return await super().create(*args, **kwargs)


@pytest.mark.localmodel
@pytest.mark.timeout(900)
async def test_a_swarm_on_qwen_05b_hands_off_with_its_transfer_tool() -> None:
    _require_part_packages(QWEN_05B)
    path = str(local.local_model_path("qwen2.5-coder-0.5b"))
    client = OfferRecordingClient(
        model_path=path, n_ctx=2048, max_tokens=48, temperature=0, seed=7, n_threads=2, tool_calling=True
    )
    triage = AssistantAgent(
        "triage",
        model_client=client,
        handoffs=["mathematician"],
        system_message=(
            "You are a receptionist. You never answer questions yourself: "
            "for any question about numbers, transfer the conversation to the mathematician."
        ),
    )
    mathematician = AssistantAgent(
        "mathematician", model_client=client, system_message="You are a mathematician. Answer in one short sentence."
    )
    team = Swarm([triage, mathematician], termination_condition=MaxMessageTermination(3))

    events = [event async for event in team.run_stream(task="What is 12 + 30?")]

    assert client.offered[0] == ["transfer_to_mathematician"]  # the handoff was offered as a tool
    [request] = [e for e in events if isinstance(e, ToolCallRequestEvent)]
    assert [call.name for call in request.content] == ["transfer_to_mathematician"]
    [handoff] = [e for e in events if isinstance(e, HandoffMessage)]
    assert (handoff.source, handoff.target) == ("triage", "mathematician")
    answer = [e for e in events if isinstance(e, TextMessage) and e.source == "mathematician"]
    assert answer, events
    print("mathematician:", answer[0].content)
