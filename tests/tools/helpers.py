"""Shared helpers for the tools tests."""

from __future__ import annotations

import asyncio
from typing import Any

from conversations.models import Message, Run
from tools.models import Tool


async def wait_for_run(run_id: int, timeout: float = 30.0, statuses: tuple[str, ...] | None = None) -> Run:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await Run.objects.aget(pk=run_id)
        if (statuses is None and not run.is_active) or (statuses is not None and run.status in statuses):
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")
        await asyncio.sleep(0.02)


def messages(conversation_id: int) -> list[Message]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("seq"))


def tool(name: str) -> Tool:
    return Tool.objects.get(name=name)


def calculator_call(expression: str = "6*7", call_id: str = "c1") -> dict[str, Any]:
    return {"tool_calls": [{"id": call_id, "name": "calculator", "arguments": {"expression": expression}}]}
