"""Token and cost totals (reads): per run, per agent and per conversation, summed from the messages,
each of which carries its tokens and its cost at its model's prices (``payload.cost``, written by
the executor with the message)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from conversations.models import Conversation, Message


def parse_cost(value: object) -> Decimal:
    """A stored cost (a decimal string in ``payload.cost``) as a Decimal, 0 when missing or bad."""
    try:
        return Decimal(str(value or "0"))
    except ArithmeticError:
        return Decimal(0)


def cost_of(message: Message) -> Decimal:
    """A message's cost at its model's prices (``payload.cost``), 0 when it has none."""
    return parse_cost(message.payload.get("cost"))


def _bucket() -> dict[str, Any]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "cost": Decimal(0), "messages": 0}


def conversation_usage(*, conversation: Conversation) -> dict[str, Any]:
    """``{"total", "runs": {run_id: ...}, "agents": {source: ...}}``, costs as decimal strings."""
    total = _bucket()
    runs: dict[int, dict[str, Any]] = defaultdict(_bucket)
    agents: dict[str, dict[str, Any]] = defaultdict(_bucket)
    names: dict[str, str] = {}
    for message in Message.objects.filter(conversation=conversation).exclude(type=Message.Type.USER).order_by("seq"):
        buckets = [total, agents[message.source]] + ([runs[message.run_id]] if message.run_id else [])
        names.setdefault(message.source, str(message.payload.get("agent_name") or message.source))
        for bucket in buckets:
            bucket["prompt_tokens"] += message.prompt_tokens
            bucket["completion_tokens"] += message.completion_tokens
            bucket["cost"] += cost_of(message)
            bucket["messages"] += 1

    def out(bucket: dict[str, Any]) -> dict[str, Any]:
        return {**bucket, "cost": str(bucket["cost"].quantize(Decimal("0.000001")))}

    return {
        "total": out(total),
        "runs": {run_id: out(b) for run_id, b in runs.items()},
        "agents": {source: {**out(b), "name": names[source]} for source, b in agents.items()},
    }
