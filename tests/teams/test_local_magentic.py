"""Magentic-One on the local Qwen2.5-Coder-0.5B: the orchestrator asks for its progress ledger as
structured output (the local client says it can), the grammar holds the model to the ledger's
schema with the next speaker one of the team's names, and every ledger parses at the first try."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import pytest
from autogen_agentchat.agents import AssistantAgent
from autogen_agentchat.base import TaskResult
from autogen_core.models import CreateResult
from pydantic import BaseModel

from agents.magentic import LedgerEvent, LedgerMagenticOneGroupChat, ledger_model
from agents.providers import local
from tests.agents.test_local_models import QWEN_05B, _require_part_packages

LEDGER_KEYS = {
    "is_request_satisfied",
    "is_in_loop",
    "is_progress_being_made",
    "next_speaker",
    "instruction_or_question",
}


class RecordingClient(local.LocalChatCompletionClient):
    """The local client, noting the schema and the result of every structured request. A ledger
    takes the 0.5B 150-300 tokens, the facts and the plan any number: those get fewer, to save time."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.structured: list[tuple[type[BaseModel], CreateResult]] = []

    async def create_stream(self, *args: Any, **kwargs: Any) -> AsyncGenerator[str | CreateResult, None]:
        self._max_tokens = 400 if kwargs.get("json_output") else 96
        async for item in super().create_stream(*args, **kwargs):
            if isinstance(item, CreateResult) and isinstance(kwargs.get("json_output"), type):
                self.structured.append((kwargs["json_output"], item))
            yield item


@pytest.mark.localmodel
@pytest.mark.timeout(1800)  # the 0.5B writes a ledger of 150-300 tokens under a grammar, on 2 busy cores
async def test_a_magentic_one_team_on_qwen_05b_gets_valid_progress_ledgers_at_the_first_try() -> None:
    _require_part_packages(QWEN_05B)
    path = str(local.local_model_path("qwen2.5-coder-0.5b"))
    common: dict[str, Any] = {"model_path": path, "n_ctx": 4096, "temperature": 0, "seed": 7, "n_threads": 2}
    orchestrator = RecordingClient(**common)
    agent_client = local.LocalChatCompletionClient(max_tokens=48, **common)
    coder = AssistantAgent(
        "coder", model_client=agent_client, description="Writes Python code.", system_message="Write short code."
    )
    critic = AssistantAgent(
        "critic", model_client=agent_client, description="Reviews code.", system_message="Review code briefly."
    )
    team = LedgerMagenticOneGroupChat([coder, critic], model_client=orchestrator, max_turns=1)

    events = [event async for event in team.run_stream(task="Write a Python function that adds two numbers.")]

    assert isinstance(events[-1], TaskResult)  # no "Failed to parse ledger information after multiple retries"
    ledgers = [e for e in events if isinstance(e, LedgerEvent) and e.kind == "progress"]
    assert ledgers, events
    for event in ledgers:
        assert set(event.ledger) == LEDGER_KEYS
        assert all({"reason", "answer"} <= set(event.ledger[key]) for key in LEDGER_KEYS)
        assert isinstance(event.ledger["is_request_satisfied"]["answer"], bool)
        assert event.ledger["next_speaker"]["answer"] in ("coder", "critic")
    # Every structured request was the team's ledger schema, and each reply parsed: one request a ledger.
    print([result.content for _, result in orchestrator.structured])
    assert len(orchestrator.structured) == len(ledgers)
    team_ledger = ledger_model(["coder", "critic"]).model_json_schema()
    for schema, result in orchestrator.structured:
        assert schema.model_json_schema() == team_ledger
        assert result.finish_reason == "stop" and isinstance(result.content, str)
        schema.model_validate_json(result.content)
    print([(e.content, e.ledger["next_speaker"]) for e in ledgers])
