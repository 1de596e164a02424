"""Reads for the team visualization page: the team as a graph (agents with their tools and memory),
who spoke after whom in one conversation, the active speaker of a live run, and a timeline per run."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from agents.models import Agent, Team
from conversations.models import Conversation, Message, Run

SPOKEN = (
    Message.Type.USER,
    Message.Type.TEXT,
    Message.Type.HANDOFF,
    Message.Type.TOOL_CALL,
    Message.Type.INPUT_REQUEST,
)
WIDTH, HEIGHT, RADIUS = 520, 420, 150
HOT_MESSAGES = 3  # edges among the last few turns light up


@dataclass
class Node:
    slug: str
    name: str
    x: float
    y: float
    tools: list[str] = field(default_factory=list)
    memory: bool = False
    is_user: bool = False
    turns: int = 0
    active: bool = False


@dataclass
class Edge:
    source: Node
    target: Node
    count: int
    hot: bool

    @property
    def path(self) -> dict[str, float]:
        """A line from the edge of one circle to the other, shifted sideways so a→b and b→a differ."""
        dx, dy = self.target.x - self.source.x, self.target.y - self.source.y
        length = math.hypot(dx, dy) or 1.0
        ux, uy = dx / length, dy / length
        ox, oy = -uy * 7, ux * 7
        r = 34
        x1, y1 = self.source.x + ux * r + ox, self.source.y + uy * r + oy
        x2, y2 = self.target.x - ux * (r + 6) + ox, self.target.y - uy * (r + 6) + oy
        return {"x1": x1, "y1": y1, "x2": x2, "y2": y2, "lx": (x1 + x2) / 2 + ox, "ly": (y1 + y2) / 2 + oy}


def _tools(agent: Agent) -> list[str]:
    names = list(agent.tool_names or [])
    from tools.models import ToolGrant

    names += [g.tool.name for g in ToolGrant.objects.filter(agent=agent).select_related("tool")]
    return sorted(set(names))


def team_graph(*, team: Team, conversation: Conversation | None) -> dict[str, Any]:
    agents = [m.agent for m in team.members.select_related("agent").order_by("position", "id")]
    cx, cy = WIDTH / 2, HEIGHT / 2 + 10
    nodes: dict[str, Node] = {"user": Node("user", "You", cx, 42, is_user=True)}
    count = len(agents)
    for i, agent in enumerate(agents):
        angle = math.pi / 2 + 2 * math.pi * (i + 0.5) / max(count, 1)
        nodes[agent.slug] = Node(
            agent.slug,
            agent.name,
            cx + RADIUS * math.cos(angle),
            cy + RADIUS * math.sin(angle) * 0.85,
            tools=_tools(agent),
            memory=agent.memory_enabled,
        )
    edges: list[Edge] = []
    active_run: Run | None = None
    if conversation is not None:
        speakers = [
            s
            for s in Message.objects.filter(conversation=conversation, type__in=SPOKEN)
            .order_by("seq")
            .values_list("source", flat=True)
            if s in nodes
        ]
        pairs = Counter(pairwise(speakers))
        tail = speakers[-HOT_MESSAGES - 1 :]
        recent = set(pairwise(tail))
        for (a, b), n in pairs.items():
            if a != b:
                edges.append(Edge(nodes[a], nodes[b], n, (a, b) in recent))
        for slug in speakers:
            nodes[slug].turns += 1
        active_run = conversation.runs.filter(status__in=Run.ACTIVE_STATUSES).first()
        if active_run is not None:
            latest = active_run.messages.exclude(type=Message.Type.USER).order_by("-seq").first()
            slug = ""
            if latest is not None:
                slug = (
                    latest.payload.get("routing", {}).get("agent")
                    if latest.type == Message.Type.ROUTING
                    else latest.source
                )
            if active_run.status == Run.Status.AWAITING_INPUT:
                slug = "user"
            if not slug and agents:
                slug = agents[0].slug
            if slug in nodes:
                nodes[slug].active = True
    return {"nodes": list(nodes.values()), "edges": edges, "width": WIDTH, "height": HEIGHT, "active_run": active_run}


def run_timeline(*, conversation: Conversation) -> list[dict[str, Any]]:
    runs = []
    for run in conversation.runs.order_by("created_at", "id").prefetch_related("messages"):
        turns = [m for m in sorted(run.messages.all(), key=lambda m: m.seq) if m.type != Message.Type.USER]
        longest = max([m.latency_ms or 0 for m in turns], default=0) or 1
        runs.append(
            {
                "run": run,
                "turns": [{"message": m, "width": max(2, int(100 * (m.latency_ms or 0) / longest))} for m in turns],
                "tokens": sum(m.prompt_tokens + m.completion_tokens for m in turns),
            }
        )
    return runs
