"""Grammar-constrained decoding on the real Qwen2.5-Coder-0.5B: structured output that validates
against its pydantic model, and a required tool call that is well-formed even for a question the
tool does not fit."""

from __future__ import annotations

import json

import pytest
from autogen_core import FunctionCall
from autogen_core.models import UserMessage
from autogen_core.tools import FunctionTool
from pydantic import BaseModel

from agents.models import ModelConfig
from agents.providers import local
from tests.agents.test_local_models import QWEN_05B, _require_part_packages


class City(BaseModel):
    name: str
    country: str
    population_millions: float


def weather(city: str, days: int) -> str:
    """The weather forecast for a city."""
    return "sunny"


@pytest.mark.localmodel
@pytest.mark.timeout(900)
async def test_qwen_05b_under_a_grammar_writes_valid_structured_output_and_well_formed_calls() -> None:
    _require_part_packages(QWEN_05B)
    path = str(local.local_model_path("qwen2.5-coder-0.5b"))
    client = local.LocalChatCompletionClient(
        model_path=path, n_ctx=1024, max_tokens=48, temperature=0, seed=7, n_threads=2, tool_calling=True
    )
    ask = [UserMessage(content="Tell me about Paris.", source="user")]
    result = await client.create(ask, json_output=City)
    assert result.finish_reason == "stop" and isinstance(result.content, str)
    city = City.model_validate_json(result.content)
    assert city.name == "Paris"

    tool = FunctionTool(weather, description="The weather forecast for a city.")
    question = [UserMessage(content="What is 17 * 23?", source="user")]
    called = await client.create(question, tools=[tool], tool_choice="required")
    assert called.finish_reason == "function_calls" and isinstance(called.content, list)
    [call] = called.content
    assert isinstance(call, FunctionCall) and call.name == "weather"
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"city", "days"}
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    print("structured:", result.content, "| call:", call.arguments)


def test_structured_output_needs_no_tools_and_json_output_is_declared_for_every_local_model() -> None:
    smollm = local.local_client(ModelConfig(name="s", provider=ModelConfig.Provider.LOCAL, model="smollm2-135m"))
    assert smollm.model_info["function_calling"] is False
    assert smollm.model_info["json_output"] is True and smollm.model_info["structured_output"] is True
