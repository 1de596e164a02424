"""Specialized agents to start from: planner, researcher (with memory), coder, executor, critic and
a user proxy. ``presets_seed`` creates them as ordinary, editable rows (``Agent.preset`` says where
a row came from); it never overwrites a row that exists, so edits survive a re-seed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from agents.factory import USER_PROXY_PRESET
from agents.models import Agent, ModelConfig
from agents.services import agent_create, local_model_config_ensure


@dataclass(frozen=True)
class Preset:
    key: str
    name: str
    description: str
    system_message: str
    capabilities: tuple[str, ...]
    fields: dict[str, Any] = field(default_factory=dict)


PRESETS: tuple[Preset, ...] = (
    Preset(
        "planner",
        "Planner",
        "Breaks a goal into a short, ordered plan and says who should do each step.",
        "You are a planner. Break the user's goal into a short numbered plan of concrete steps. "
        "Name which team member should take each step. Do not do the steps yourself.",
        ("planning", "decomposition", "roadmap", "schedule"),
    ),
    Preset(
        "researcher",
        "Researcher",
        "Finds and summarises facts, recalling what earlier conversations established.",
        "You are a researcher. Gather the relevant facts, say where each comes from and how sure you are, "
        "and summarise them briefly. Say so when you do not know.",
        ("research", "facts", "sources", "summary"),
        {"memory_enabled": True},
    ),
    Preset(
        "coder",
        "Coder",
        "Writes, explains and fixes code.",
        "You are a software engineer. Write correct, minimal code in fenced blocks with the language named, "
        "and explain it in one or two sentences.",
        ("code", "programming", "python", "debugging"),
    ),
    Preset(
        "executor",
        "Executor",
        "Carries out concrete steps with its tools and reports the results exactly.",
        "You carry out the step you are given, using your tools when they help, and report exactly what "
        "happened, including errors. Do not invent results.",
        ("execution", "tools", "run", "calculate"),
    ),
    Preset(
        "critic",
        "Critic",
        "Reviews the previous answer for errors and gaps and asks for one concrete improvement.",
        "You are a critic. Check the previous answer for mistakes, gaps and unclear parts. Name the most "
        "important problem and one concrete fix. Say APPROVE if there is nothing left to fix.",
        ("review", "critique", "feedback", "quality"),
    ),
    Preset(
        USER_PROXY_PRESET,
        "You",
        "The person in the chat: asked when the team needs a decision or information only a human has.",
        "",
        ("human", "decision", "approval"),
    ),
)


def preset_get(key: str) -> Preset:
    for preset in PRESETS:
        if preset.key == key:
            return preset
    raise KeyError(f"No preset {key!r}; choose one of {', '.join(p.key for p in PRESETS)}.")


@transaction.atomic
def presets_seed(*, model_config: ModelConfig | None = None) -> list[tuple[Agent, bool]]:
    """One agent per preset (slug = preset key), on ``model_config`` or the local config of the
    configured local model (``LODESTONE_LOCAL_MODEL``). Returns ``(agent, created)`` pairs; existing
    rows are left as they are."""
    if model_config is None:
        model_config = local_model_config_ensure()
    seeded: list[tuple[Agent, bool]] = []
    for preset in PRESETS:
        existing = Agent.objects.filter(slug=preset.key).first()
        if existing is not None:
            seeded.append((existing, False))
            continue
        agent = agent_create(
            slug=preset.key,
            name=preset.name,
            description=preset.description,
            system_message=preset.system_message,
            capabilities=preset.capabilities,
            model_config=model_config,
            preset=preset.key,
            **preset.fields,
        )
        seeded.append((agent, True))
    return seeded
