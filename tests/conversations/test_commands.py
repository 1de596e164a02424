from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from agents.models import Agent, Team
from conversations.models import Message, Run
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


def test_seed_demo_is_idempotent_and_prints_a_working_login(settings: Any, tmp_path: Path) -> None:
    settings.VAR_DIR = tmp_path
    first, second = io.StringIO(), io.StringIO()
    call_command("seed_demo", stdout=first)
    call_command("seed_demo", stdout=second)

    assert Agent.objects.filter(slug__in=["assistant", "critic"]).count() == 2
    # The demo shows memory at work on the assistant.
    assert dict(Agent.objects.filter(slug__in=["assistant", "critic"]).values_list("slug", "memory_enabled")) == {
        "assistant": True,
        "critic": False,
    }
    team = Team.objects.get(slug="duo")
    assert [m.agent.slug for m in team.members.order_by("position")] == ["assistant", "critic"]
    password = (tmp_path / "demo-credentials.txt").read_text().strip()
    assert f"password: {password}" in first.getvalue() and f"password: {password}" in second.getvalue()
    from django.test import Client

    assert Client().login(username="demo", password=password)


def test_chat_streams_a_team_reply_in_the_terminal() -> None:
    user = factories.user("cli")
    model = factories.replay_model(["Hello from the terminal.", "Agreed."])
    team = factories.round_robin([factories.agent(model, "one"), factories.agent(model, "two")], max_messages=3)
    out = io.StringIO()

    call_command("chat", "Hi there", team=team.slug, user=user.username, stdout=out)

    text = out.getvalue()
    assert "one: Hello from the terminal." in text and "two: Agreed." in text and "[completed]" in text
    assert list(Message.objects.order_by("seq").values_list("source", flat=True)) == ["user", "one", "two"]


def test_chat_reports_bad_input_and_failed_runs_as_command_errors() -> None:
    user = factories.user("cli2")
    solo = factories.agent(factories.replay_model(["only once"]), "solo")
    with pytest.raises(CommandError, match="The message is empty"):
        call_command("chat", "   ", agent=solo.slug, user=user.username, stdout=io.StringIO())
    call_command("chat", "first", agent=solo.slug, user=user.username, stdout=io.StringIO())
    with pytest.raises(CommandError, match="ended failed"):
        call_command("chat", "second", agent=solo.slug, user=user.username, stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="No user"):
        call_command("chat", "hi", user="nobody", stdout=io.StringIO())
    assert Run.objects.filter(status=Run.Status.FAILED).count() == 1
