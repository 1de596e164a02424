"""Presets seed as editable rows; the routing rule on its own (mentions, lexical fallback)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from agents.models import Agent
from agents.presets import PRESETS
from conversations.manager import Candidate, lexical_scores, mentioned_agent, select_agent
from tests import factories


@pytest.mark.django_db
def test_seed_presets_creates_editable_rows_and_keeps_edits() -> None:
    model = factories.replay_model(["x"])
    out = StringIO()
    call_command("seed_presets", "--model", model.name, stdout=out)
    rows = {a.slug: a for a in Agent.objects.all()}
    assert set(rows) == {"planner", "researcher", "coder", "executor", "critic", "user_proxy"}
    assert all(rows[p.key].preset == p.key for p in PRESETS)
    assert rows["researcher"].memory_enabled and not rows["coder"].memory_enabled
    Agent.objects.filter(slug="coder").update(description="Edited.")
    call_command("seed_presets", "--model", model.name, stdout=StringIO())
    assert Agent.objects.get(slug="coder").description == "Edited."
    assert Agent.objects.count() == 6


CANDIDATES = [
    Candidate("planner", "Planner", "Breaks a goal into steps.", ("planning", "schedule")),
    Candidate("coder", "Coder", "Writes and fixes code.", ("python", "debugging")),
    Candidate("critic", "Critic", "Reviews answers.", ("review", "feedback")),
]


def test_mentions_pick_one_agent_only() -> None:
    assert mentioned_agent("@Coder please", CANDIDATES) == CANDIDATES[1]
    assert mentioned_agent("mail me at a@coder.io", CANDIDATES) is None
    assert mentioned_agent("@coder and @critic", CANDIDATES) is None
    decision = select_agent("@critic look", CANDIDATES, allowed=["planner", "critic"])
    assert decision is not None and decision.method == "mention" and decision.agent == "critic"


def test_lexical_fallback_scores_capabilities() -> None:
    scores = lexical_scores("Debugging my python script", CANDIDATES)
    assert max(scores, key=lambda k: scores[k]) == "coder"
    assert scores["planner"] == 0 and scores["critic"] == 0
