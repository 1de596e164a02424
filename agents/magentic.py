"""Magentic-One with its ledgers visible: AutoGen's orchestrator only logs the progress ledger and its
re-planning to a trace logger; this subclass also puts them on the team's output stream as
``LedgerEvent``s, so the executor can store them as ``ledger`` messages."""

from __future__ import annotations

import ast
import asyncio
from collections.abc import Callable
from typing import Any, Literal

from autogen_agentchat.base import TerminationCondition
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, MessageFactory
from autogen_agentchat.teams import MagenticOneGroupChat
from autogen_agentchat.teams._group_chat._events import GroupChatTermination
from autogen_agentchat.teams._group_chat._magentic_one._magentic_one_orchestrator import MagenticOneOrchestrator

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


class LedgerOrchestrator(MagenticOneOrchestrator):
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
