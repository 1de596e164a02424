"""Starter prompts on the new-conversation page: the whole page, the htmx fragment that follows the
chosen team or agent, starting a conversation with a prompt, and who may see them."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from agents import services as agent_services
from agents.models import Agent, Team
from conversations.models import Conversation, Message, Run
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
NEW = reverse("conversations:new")


@pytest.fixture
def owner() -> User:
    return factories.user("alice")


@pytest.fixture
def client_in(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


@pytest.fixture
def team() -> Team:
    model = factories.replay_model(["Hello."])
    team = factories.round_robin([factories.agent(model, "writer"), factories.agent(model, "reviewer")])
    Team.objects.filter(pk=team.pk).update(starter_prompts=["Draft a haiku about <rain> & snow."])
    team.refresh_from_db()
    return team


@pytest.fixture
def solo() -> Agent:
    return factories.agent(
        factories.replay_model(["Hi."]), "solo", name="Solo Agent", starter_prompts=["What is 4817 * 2293?"]
    )


def button(prompt: str) -> str:
    return f'<button type="submit" name="first_message" value="{prompt}"'


def test_the_page_shows_the_prompts_of_the_first_choice(client_in: Client, team: Team, solo: Agent) -> None:
    response = client_in.get(NEW)
    html = response.content.decode()
    assert response.status_code == 200 and "<html" in html
    # Escaped once, in the value and in the label.
    assert button("Draft a haiku about &lt;rain&gt; &amp; snow.") in html
    assert "What is 4817" not in html
    assert f'<option value="team:{team.pk}" selected>' in html
    # The choice asks the same view for its fragment; no inline script anywhere (CSP).
    assert f'hx-get="{NEW}" hx-trigger="change" hx-target="#starter-prompts" hx-swap="outerHTML"' in html
    assert 'id="starter-prompts"' in html and "onclick" not in html and "<script>" not in html
    # The form's own button comes first, so Enter in the title does not send a prompt.
    assert html.index("Start conversation") < html.index('name="first_message"')


def test_a_choice_in_the_address_is_preselected(client_in: Client, team: Team, solo: Agent) -> None:
    html = client_in.get(NEW, {"counterpart": f"agent:{solo.pk}"}).content.decode()
    assert f'<option value="agent:{solo.pk}" selected>' in html
    assert button("What is 4817 * 2293?") in html and "haiku" not in html


def test_htmx_gets_only_the_prompts_of_the_new_choice(client_in: Client, team: Team, solo: Agent) -> None:
    response = client_in.get(NEW, {"counterpart": f"agent:{solo.pk}"}, headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<select" not in html
    assert html.strip().startswith('<div id="starter-prompts"')
    assert button("What is 4817 * 2293?") in html and "haiku" not in html
    assert "Solo Agent" in html

    # A choice that is not offered falls back to the first one, as the page does.
    html = client_in.get(NEW, {"counterpart": "team:999999"}, headers=HTMX).content.decode()
    assert "haiku" in html


def test_a_choice_without_prompts_renders_an_empty_fragment(client_in: Client, team: Team) -> None:
    quiet = factories.agent(factories.replay_model(["Hi."]), "quiet")
    html = client_in.get(NEW, {"counterpart": f"agent:{quiet.pk}"}, headers=HTMX).content.decode()
    assert 'id="starter-prompts"' in html and "first_message" not in html


def test_a_history_restore_gets_the_whole_page(client_in: Client, team: Team) -> None:
    headers = {**HTMX, "HX-History-Restore-Request": "true"}
    assert "<html" in client_in.get(NEW, headers=headers).content.decode()


def test_clicking_a_prompt_starts_the_conversation_with_it(client_in: Client, owner: User, solo: Agent) -> None:
    response = client_in.post(
        NEW, {"counterpart": f"agent:{solo.pk}", "title": "", "first_message": "What is 4817 * 2293?"}
    )
    conversation = Conversation.objects.get(owner=owner)
    assert response.status_code == 302
    assert response["Location"] == reverse("conversations:detail", args=[conversation.pk])
    [message] = Message.objects.filter(conversation=conversation)
    assert (message.type, message.source, message.content) == ("user", "user", "What is 4817 * 2293?")
    assert Run.objects.filter(conversation=conversation).count() == 1
    assert conversation.title == "What is 4817 * 2293?"


def test_without_a_prompt_the_conversation_starts_empty(client_in: Client, owner: User, solo: Agent) -> None:
    client_in.post(NEW, {"counterpart": f"agent:{solo.pk}", "first_message": "  "})
    conversation = Conversation.objects.get(owner=owner)
    assert not Message.objects.filter(conversation=conversation).exists() and not Run.objects.exists()


def test_a_refused_first_message_creates_nothing(client_in: Client, solo: Agent, settings: Any) -> None:
    settings.LODESTONE_MESSAGE_MAX_CHARS = 10
    response = client_in.post(NEW, {"counterpart": f"agent:{solo.pk}", "first_message": "x" * 11})
    assert response.status_code == 422
    assert "the limit is 10" in response.content.decode()
    assert not Conversation.objects.exists() and not Message.objects.exists()


@pytest.mark.parametrize("headers", [{}, HTMX])
def test_anonymous_visitors_are_sent_to_the_login(team: Team, headers: dict[str, str]) -> None:
    response = Client().get(NEW, {"counterpart": f"team:{team.pk}"}, headers=headers)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert "haiku" not in response.content.decode()


def test_the_demo_assistant_says_why_its_tools_are_unused_on_smollm2(client_in: Client, settings: Any) -> None:
    settings.LODESTONE_LOCAL_MODEL = "smollm2-135m"
    seeded = agent_services.demo_seed()
    assistant = Agent.objects.get(slug="assistant")
    html = client_in.get(NEW, {"counterpart": f"agent:{assistant.pk}"}, headers=HTMX).content.decode()
    assert 'role="note"' in html and "cannot call tools" in html and "calculator" in html
    assert "My favourite colour is teal." in html and "What is my favourite colour?" in html
    pair = Team.objects.get(slug="code-pair")
    html = client_in.get(NEW, {"counterpart": f"team:{pair.pk}"}, headers=HTMX).content.decode()
    assert "Write and run Python that prints the first 10 primes" in html and 'role="note"' not in html
    assert seeded["teams"]


def test_starter_prompts_are_editable_in_the_admin(settings: Any) -> None:
    admin = User.objects.create_superuser("root", "root@example.com", "pw-Secret-123")
    client = Client()
    client.force_login(admin)
    solo = factories.agent(factories.replay_model(["Hi."]), "editable")
    for url in (reverse("admin:agents_agent_change", args=[solo.pk]), reverse("admin:agents_team_add")):
        assert 'name="starter_prompts"' in client.get(url).content.decode()
