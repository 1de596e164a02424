"""Scripted responses (AutoGen's ReplayChatCompletionClient), for tests and demos.

``options``: ``responses`` — a list whose items are text, or ``{"tool_calls": [{"name", "arguments"}]}``;
``chunk_delay`` — seconds between streamed tokens, so a demo streams visibly. A text response
containing ``{prompt}`` has it replaced by what the model was asked (every message's text, joined by
`` | ``): a scripted model that echoes its prompt, so a test in another process can see it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelFamily, ModelInfo, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from autogen_ext.models.replay import ReplayChatCompletionClient
from pydantic import BaseModel

from agents.providers import ProviderError, register_provider

if TYPE_CHECKING:
    from agents.models import ModelConfig


PROMPT_MARKER = "{prompt}"


def prompt_text(messages: Sequence[LLMMessage]) -> str:
    return " | ".join(str(m.content) for m in messages)


class PacedReplayChatCompletionClient(ReplayChatCompletionClient):
    """The replay client with an optional pause between streamed tokens."""

    def __init__(self, chat_completions: Sequence[str | CreateResult], *, model_info: ModelInfo, chunk_delay: float):
        super().__init__(chat_completions, model_info=model_info)
        self._chunk_delay = chunk_delay

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        # The parent records what the model was asked only for create(); streaming is our path.
        self._create_calls.append({"messages": list(messages), "tools": tools, "json_output": json_output})
        index = self._current_index
        scripted = self.chat_completions[index] if index < len(self.chat_completions) else None
        if isinstance(scripted, str) and PROMPT_MARKER in scripted:
            self.chat_completions[index] = scripted.replace(PROMPT_MARKER, prompt_text(messages))
        try:
            async for item in self._paced(
                messages, tools, tool_choice, json_output, extra_create_args, cancellation_token
            ):
                yield item
        finally:
            if isinstance(scripted, str) and PROMPT_MARKER in scripted:
                self.chat_completions[index] = scripted  # the script stays as written

    async def _paced(
        self,
        messages: Sequence[LLMMessage],
        tools: Sequence[Tool | ToolSchema],
        tool_choice: Tool | Literal["auto", "required", "none"],
        json_output: bool | type[BaseModel] | None,
        extra_create_args: Mapping[str, Any],
        cancellation_token: CancellationToken | None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        async for item in super().create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        ):
            if cancellation_token is not None and cancellation_token.is_cancelled():
                raise asyncio.CancelledError()
            if self._chunk_delay and isinstance(item, str):
                await asyncio.sleep(self._chunk_delay)
            yield item


def parse_responses(raw: Any) -> list[str | CreateResult]:
    if not isinstance(raw, list) or not raw:
        raise ProviderError("A replay model needs options.responses: a non-empty list.")
    responses: list[str | CreateResult] = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            responses.append(item)
        elif isinstance(item, dict) and isinstance(item.get("tool_calls"), list):
            calls = [
                FunctionCall(
                    id=str(call.get("id") or f"call_{index}_{n}"),
                    name=str(call["name"]),
                    arguments=call["arguments"]
                    if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"]),
                )
                for n, call in enumerate(item["tool_calls"])
            ]
            responses.append(
                CreateResult(
                    finish_reason="function_calls",
                    content=calls,
                    usage=RequestUsage(prompt_tokens=0, completion_tokens=len(calls)),
                    cached=False,
                )
            )
        else:
            raise ProviderError(f"Replay response #{index} must be text or {{'tool_calls': [...]}}.")
    return responses


@register_provider("replay")
def replay_client(config: ModelConfig) -> ChatCompletionClient:
    model_info = ModelInfo(
        vision=False,
        function_calling=True,
        json_output=False,
        family=ModelFamily.UNKNOWN,
        structured_output=False,
    )
    return PacedReplayChatCompletionClient(
        parse_responses(config.options.get("responses")),
        model_info=model_info,
        chunk_delay=float(config.options.get("chunk_delay", 0.0)),
    )
