"""A conversation started without a title is named after its first message."""

from __future__ import annotations

import pytest

from conversations import services
from conversations.models import Conversation
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("Where does the name lodestone come from?", "Where does the name lodestone come from?"),
        ("  Deploy   plan\nwith many details below", "Deploy plan"),
        (
            "Please summarise the incident report from last night, including every timeline detail we have",
            "Please summarise the incident report from last night…",
        ),
        ("x" * 80, "x" * 60 + "…"),
    ],
)
def test_title_from_text(text: str, title: str) -> None:
    assert services.title_from_text(text) == title


def test_the_first_message_names_an_untitled_conversation_and_later_ones_do_not(settings: object) -> None:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["One.", "Two."]), "namer")
    conversation = services.conversation_create(owner=user, agent=agent)
    assert conversation.title == f"Chat with {agent.name}"
    services.message_post(conversation=conversation, user=user, text="Plan the Q3 offsite")
    assert Conversation.objects.get(pk=conversation.pk).title == "Plan the Q3 offsite"
    for run in conversation.runs.all():
        services.run_cancel(run=run)
    services.message_post(conversation=conversation, user=user, text="Something else entirely")
    assert Conversation.objects.get(pk=conversation.pk).title == "Plan the Q3 offsite"


def test_a_chosen_title_is_kept() -> None:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["One."]), "keeper")
    conversation = services.conversation_create(owner=user, agent=agent, title="Offsite")
    services.message_post(conversation=conversation, user=user, text="Plan the Q3 offsite")
    assert Conversation.objects.get(pk=conversation.pk).title == "Offsite"
