"""Magentic-One with its ledgers visible: AutoGen's orchestrator only logs the progress ledger and its
re-planning to a trace logger; this subclass also puts them on the team's output stream as
``LedgerEvent``s, so the executor can store them as ``ledger`` messages.

A model client with structured output is asked for AutoGen's ledger schema, whose next speaker is
any string; ours asks for the same ledger with the next speaker one of the team's names, so a
grammar-constrained local model cannot name nobody (AutoGen gives up at once on an unknown name).
"""

from __future__ import annotations

import ast
import asyncio
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from typing import Any, Literal

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, MessageFactory
from autogen_agentchat.teams import MagenticOneGroupChat
from autogen_agentchat.teams._group_chat._events import GroupChatTermination
from autogen_agentchat.teams._group_chat._magentic_one._magentic_one_orchestrator import MagenticOneOrchestrator
from autogen_core import CancellationToken
from autogen_core.models import ChatCompletionClient, CreateResult, LLMMessage, ModelInfo, RequestUsage
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel, create_model

ORCHESTRATOR_NAME = "MagenticOneOrchestrator"
# ORCHESTRATOR_TASK_LEDGER_FULL_PROMPT starts with this line: the orchestrator's task ledger message.
TASK_LEDGER_PREFIX = "We are working to address the following user request:"
_PROGRESS = "Progress Ledger: "
_REPLAN = "Stall count exceeded"


class LedgerEvent(BaseAgentEvent):
    """A progress ledger (``kind="progress"``) or a re-plan after stalls (``kind="replan"``)."""

    content: str
    kind: str
    ledger: dict[str, Any] = {}
    type: Literal["LedgerEvent"] = "LedgerEvent"

    def to_text(self) -> str:
        return self.content


def progress_summary(ledger: dict[str, Any]) -> str:
    def answer(key: str) -> Any:
        value = ledger.get(key)
        return value.get("answer") if isinstance(value, dict) else value

    if answer("is_request_satisfied"):
        return "Progress: the request is satisfied."
    parts = [
        "progress" if answer("is_progress_being_made") else "no progress (stall)",
        "in a loop" if answer("is_in_loop") else "",
        f"next: {answer('next_speaker')}",
    ]
    return "Progress: " + ", ".join(p for p in parts if p) + "."


_LEDGER_KEYS = (
    "is_request_satisfied",
    "is_in_loop",
    "is_progress_being_made",
    "next_speaker",
    "instruction_or_question",
)


class _BooleanAnswer(BaseModel):
    reason: str
    answer: bool


class _TextAnswer(BaseModel):
    reason: str
    answer: str


def ledger_model(names: Sequence[str]) -> type[BaseModel]:
    """AutoGen's progress-ledger schema, with ``next_speaker.answer`` one of ``names``."""
    speaker: Any = Literal[tuple(names)]
    speaker_answer = create_model("LedgerSpeakerAnswer", reason=(str, ...), answer=(speaker, ...))
    fields: dict[str, Any] = {key: (_BooleanAnswer, ...) for key in _LEDGER_KEYS[:3]}
    return create_model(
        "TeamLedgerEntry", **fields, next_speaker=(speaker_answer, ...), instruction_or_question=(_TextAnswer, ...)
    )


class _TeamLedgerClient(ChatCompletionClient):
    """The orchestrator's model client, asked for the team's ledger schema instead of AutoGen's."""

    def __init__(self, client: ChatCompletionClient, names: Sequence[str]) -> None:
        self._client = client
        self._ledger = ledger_model(names)

    def _schema(self, json_output: bool | type[BaseModel] | None) -> bool | type[BaseModel] | None:
        if isinstance(json_output, type) and tuple(json_output.model_fields) == _LEDGER_KEYS:
            return self._ledger
        return json_output

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
        return await self._client.create(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=self._schema(json_output),
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )

    def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        return self._client.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=self._schema(json_output),
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        )

    async def close(self) -> None:
        await self._client.close()

    def actual_usage(self) -> RequestUsage:
        return self._client.actual_usage()

    def total_usage(self) -> RequestUsage:
        return self._client.total_usage()

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self._client.count_tokens(messages, tools=tools)

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return self._client.remaining_tokens(messages, tools=tools)

    @property
    def capabilities(self) -> Any:
        return self._client.model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._client.model_info


class LedgerOrchestrator(MagenticOneOrchestrator):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._model_client = _TeamLedgerClient(self._model_client, self._participant_names)

    async def _log_message(self, log_message: str) -> None:
        await super()._log_message(log_message)
        event: LedgerEvent | None = None
        if log_message.startswith(_PROGRESS):
            try:
                ledger = ast.literal_eval(log_message[len(_PROGRESS) :])
            except (ValueError, SyntaxError):
                ledger = {}
            if isinstance(ledger, dict):
                event = LedgerEvent(kind="progress", ledger=ledger, content=progress_summary(ledger), source=self._name)
        elif log_message.startswith(_REPLAN):
            event = LedgerEvent(
                kind="replan", content="Stalled too often: updating the facts and the plan.", source=self._name
            )
        if event is not None:
            await self._output_message_queue.put(event)


class LedgerMagenticOneGroupChat(MagenticOneGroupChat):
    """``MagenticOneGroupChat`` whose orchestrator publishes its ledgers."""

    def _create_group_chat_manager_factory(
        self,
        name: str,
        group_topic_type: str,
        output_topic_type: str,
        participant_topic_types: list[str],
        participant_names: list[str],
        participant_descriptions: list[str],
        output_message_queue: asyncio.Queue[BaseAgentEvent | BaseChatMessage | GroupChatTermination],
        termination_condition: TerminationCondition | None,
        max_turns: int | None,
        message_factory: MessageFactory,
    ) -> Callable[[], MagenticOneOrchestrator]:
        return lambda: LedgerOrchestrator(
            name,
            group_topic_type,
            output_topic_type,
            participant_topic_types,
            participant_names,
            participant_descriptions,
            max_turns,
            message_factory,
            self._model_client,
            self._max_stalls,
            self._final_answer_prompt,
            output_message_queue,
            termination_condition,
            self._emit_team_events,
        )
