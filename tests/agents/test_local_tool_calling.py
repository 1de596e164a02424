"""Tool calling on the local provider: which models are offered tools, and one real run of an
AutoGen AssistantAgent on Qwen2.5-Coder-0.5B (from its installed part packages) that calls a
calculator, gets the result back and answers with it."""

from __future__ import annotations

import ast
import json
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_agentchat.messages import (
    ModelClientStreamingChunkEvent,
    TextMessage,
    ToolCallExecutionEvent,
    ToolCallRequestEvent,
)
from autogen_core.tools import FunctionTool

from agents.models import ModelConfig
from agents.providers import local
from tests.agents.test_local_models import QWEN_05B, _require_part_packages, gguf_bytes, write

_OPERATORS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def evaluate(expression: str) -> float:
    """Arithmetic only: numbers and + - * /."""

    def value(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
            return _OPERATORS[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not arithmetic: {expression!r}")

    return value(ast.parse(expression, mode="eval").body)  # type: ignore[no-any-return]


def local_config(model: str, **options: Any) -> ModelConfig:
    return ModelConfig(name="local", provider=ModelConfig.Provider.LOCAL, model=model, options=options)


# --- Which models are offered tools -------------------------------------------------------------


def test_only_the_qwen_catalogue_models_declare_function_calling(tmp_path: Path) -> None:
    assert local.local_model_tool_calling("qwen2.5-coder-0.5b") is True
    assert local.local_model_tool_calling("qwen2.5-coder-1.5b") is True
    assert local.local_model_tool_calling("smollm2-135m") is False
    # The default (the bundled SmolLM2) keeps its behaviour: no tools, so AssistantAgent refuses them.
    assert local.local_model_tool_calling("") is False
    smollm = local.local_client(local_config(""))
    assert smollm.model_info["function_calling"] is False
    # A GGUF named by path is judged by its header.
    qwen_file = write(tmp_path / "q.gguf", gguf_bytes())
    assert local.local_client(local_config(str(qwen_file))).model_info["function_calling"] is True
    other = write(tmp_path / "o.gguf", gguf_bytes(architecture="llama", name="SmolLM2 135M Instruct"))
    assert local.local_client(local_config(str(other))).model_info["function_calling"] is False


# --- The real thing -----------------------------------------------------------------------------


@pytest.mark.localmodel
async def test_an_assistant_agent_on_qwen_05b_calls_the_calculator_and_answers_with_its_result(
    tmp_path: Path, settings: Any
) -> None:
    _require_part_packages(QWEN_05B)
    settings.LODESTONE_MODEL_DIR = tmp_path / "models"
    client = local.local_client(
        local_config("qwen2.5-coder-0.5b", n_ctx=1024, max_tokens=64, temperature=0, seed=7, n_threads=2)
    )
    assert client.model_info["function_calling"] is True
    asked: list[str] = []

    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression such as 2 + 3 * 4."""
        asked.append(expression)
        result = evaluate(expression)
        return str(int(result) if result == int(result) else result)

    agent = AssistantAgent(
        "assistant",
        model_client=client,
        tools=[FunctionTool(calculator, description="Evaluate an arithmetic expression.")],
        system_message="You are a helpful assistant.",
        reflect_on_tool_use=True,
        model_client_stream=True,
    )
    events: list[Any] = [item async for item in agent.run_stream(task="What is 17 * 23? Use the calculator.")]

    requests = [e for e in events if isinstance(e, ToolCallRequestEvent)]
    assert len(requests) == 1, events
    [call] = requests[0].content
    assert call.name == "calculator"
    arguments = json.loads(call.arguments)
    assert set(arguments) == {"expression"} and evaluate(arguments["expression"]) == 391
    assert asked == [arguments["expression"]]
    [execution] = [e for e in events if isinstance(e, ToolCallExecutionEvent)]
    assert [(r.content, r.is_error) for r in execution.content] == [("391", False)]

    result = events[-1]
    assert isinstance(result, TaskResult)
    final = result.messages[-1]
    assert isinstance(final, TextMessage) and final.source == "assistant"
    assert "391" in final.content
    # The call was never streamed as chat text; the answer was, and the chunks are the answer.
    chunks = [e.content for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    assert "".join(chunks).strip() == final.content
    assert '"name"' not in "".join(chunks)


@pytest.mark.localmodel
async def test_with_the_calculator_offered_qwen_05b_answers_a_plain_question_directly_and_streams_it(
    tmp_path: Path, settings: Any
) -> None:
    _require_part_packages(QWEN_05B)
    settings.LODESTONE_MODEL_DIR = tmp_path / "models"
    client = local.local_client(
        local_config("qwen2.5-coder-0.5b", n_ctx=1024, max_tokens=32, temperature=0, seed=7, n_threads=2)
    )

    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression such as 2 + 3 * 4."""
        raise AssertionError("the calculator was called for a question about geography")

    agent = AssistantAgent(
        "assistant",
        model_client=client,
        tools=[FunctionTool(calculator, description="Evaluate an arithmetic expression.")],
        system_message="You are a helpful assistant.",
        model_client_stream=True,
    )
    events: list[Any] = [item async for item in agent.run_stream(task="What is the capital of France?")]

    assert not [e for e in events if isinstance(e, ToolCallRequestEvent)]
    final = events[-1].messages[-1]
    assert isinstance(final, TextMessage) and "Paris" in final.content
    chunks = [e.content for e in events if isinstance(e, ModelClientStreamingChunkEvent)]
    assert len(chunks) > 1 and "".join(chunks).strip() == final.content
