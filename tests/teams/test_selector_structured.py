"""The selector's fallback question with structured output: a client that can keep to a JSON schema
is asked for ``{"speaker": <one of the allowed names>}``; others answer in text. Client doubles, and
one real question to Qwen2.5-Coder-0.5B, whose grammar-constrained answer is always a valid name."""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import Any, Literal

import pytest
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_core import CancellationToken
from autogen_core.models import (
    ChatCompletionClient,
    CreateResult,
    LLMMessage,
    ModelFamily,
    ModelInfo,
    RequestUsage,
)
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from agents.factory import TeamSpec
from agents.models import Agent, ModelConfig, Team
from agents.providers import local
from conversations.manager import SelectorRouter
from tests.agents.test_local_models import QWEN_05B, _require_part_packages


class AnswerDouble(ChatCompletionClient):
    """Answers each ``create`` with the next scripted text and records what it was asked."""

    def __init__(self, answers: Sequence[str], *, structured: bool) -> None:
        self.answers = list(answers)
        self.asked: list[dict[str, Any]] = []
        self._info = ModelInfo(
            vision=False,
            function_calling=False,
            json_output=structured,
            family=ModelFamily.UNKNOWN,
            structured_output=structured,
        )

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        self.asked.append({"messages": list(messages), "json_output": json_output})
        usage = RequestUsage(prompt_tokens=5, completion_tokens=2)
        return CreateResult(finish_reason="stop", content=self.answers.pop(0), usage=usage, cached=False)

    def create_stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        raise NotImplementedError

    async def close(self) -> None:
        pass

    def actual_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)

    def total_usage(self) -> RequestUsage:
        return RequestUsage(prompt_tokens=0, completion_tokens=0)

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 0

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return 1000

    @property
    def capabilities(self) -> Any:
        return self._info

    @property
    def model_info(self) -> ModelInfo:
        return self._info


def spec() -> TeamSpec:
    config = ModelConfig(name="m", provider=ModelConfig.Provider.LOCAL)
    agents = [
        Agent(slug="planner", name="Planner", description="Breaks a goal into steps.", model_config=config),
        Agent(slug="coder", name="Coder", description="Writes and fixes Python code.", model_config=config),
        Agent(slug="critic", name="Critic", description="Reviews code and gives feedback.", model_config=config),
    ]
    return TeamSpec(kind=Team.Kind.SELECTOR, agents=agents, participants=[a.slug for a in agents])


CHAT: list[BaseChatMessage] = [
    TextMessage(source="user", content="Hello!"),
    TextMessage(source="coder", content="def add(a, b):\n    return a + b"),
]


async def test_a_structured_client_is_asked_for_one_of_the_allowed_names_as_an_enum() -> None:
    client = AnswerDouble(['{"speaker": "critic"}'], structured=True)
    router = SelectorRouter(spec(), model_client=client)
    decision = await router._ask_model(CHAT, ["planner", "critic"])
    assert (decision.agent, decision.method) == ("critic", "model")
    assert (decision.prompt_tokens, decision.completion_tokens) == (5, 2)
    [asked] = client.asked
    schema_model = asked["json_output"]
    assert isinstance(schema_model, type) and issubclass(schema_model, BaseModel)
    schema = schema_model.model_json_schema()
    assert schema["required"] == ["speaker"]
    assert schema["properties"]["speaker"]["enum"] == ["planner", "critic"]  # not coder: it just spoke
    assert '{"speaker": "<one of planner, critic>"}' in asked["messages"][0].content


async def test_a_structured_answer_naming_no_allowed_speaker_gets_feedback_and_is_asked_again() -> None:
    # A remote model may ignore the schema: an unknown name, then the previous speaker, then text.
    client = AnswerDouble(['{"speaker": "gandalf"}', '{"speaker": "coder"}', "critic"], structured=True)
    router = SelectorRouter(spec(), model_client=client)
    decision = await router._ask_model(CHAT, ["planner", "critic"])
    assert decision.agent == "critic" and decision.reason.endswith("on attempt 3.")
    feedback = [asked["messages"][-1].content for asked in client.asked[1:]]
    assert feedback[0].startswith("No valid name was mentioned")
    assert feedback[1].startswith("Repeated speaker is not allowed")


async def test_a_text_client_is_asked_in_text_and_its_answer_parsed_by_autogen_s_rule() -> None:
    client = AnswerDouble(["I think the critic should speak."], structured=False)
    router = SelectorRouter(spec(), model_client=client)
    decision = await router._ask_model(CHAT, ["planner", "critic"])
    assert decision.agent == "critic"
    assert client.asked[0]["json_output"] is None
    assert "Answer in JSON" not in client.asked[0]["messages"][0].content


@pytest.mark.localmodel
async def test_qwen_05b_as_selector_names_a_valid_speaker_under_the_grammar(settings: Any) -> None:
    _require_part_packages(QWEN_05B)
    config = ModelConfig(
        name="local",
        provider=ModelConfig.Provider.LOCAL,
        model="qwen2.5-coder-0.5b",
        options={"n_ctx": 1024, "max_tokens": 32, "temperature": 0, "seed": 7, "n_threads": 2},
    )
    client = local.local_client(config)
    assert client.model_info["structured_output"] is True
    router = SelectorRouter(spec(), model_client=client)
    chat: list[BaseChatMessage] = [
        TextMessage(source="user", content="Please write a function that adds two numbers, then have it reviewed."),
        TextMessage(source="coder", content="def add(a, b):\n    return a + b"),
    ]
    decision = await router._ask_model(chat, ["planner", "critic"])
    assert decision.method == "model" and decision.agent in ("planner", "critic")
    assert "attempt" not in decision.reason  # valid on the first answer
    assert decision.completion_tokens > 0
    print("0.5B chose", decision.agent, json.dumps(decision.as_payload()))
