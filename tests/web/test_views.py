"""The browser chat's views through the Django test client: pages, HTMX fragments, errors in place."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from agents.models import Agent, Team
from conversations import services
from conversations.models import Conversation, Message, Run
from tests import factories

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


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
    return factories.round_robin([factories.agent(model, "writer"), factories.agent(model, "reviewer")])


@pytest.fixture
def solo() -> Agent:
    return factories.agent(factories.replay_model(["Hi."]), "solo", name="Solo Agent")


@pytest.fixture
def conversation(owner: User, team: Team) -> Conversation:
    return factories.conversation(owner, team=team)


def detail_url(conversation: Conversation) -> str:
    return reverse("conversations:detail", args=[conversation.pk])


def post_url(conversation: Conversation) -> str:
    return reverse("conversations:message-post", args=[conversation.pk])


def cancel_url(conversation: Conversation) -> str:
    return reverse("conversations:run-cancel", args=[conversation.pk])


# --- login and ownership


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("conversations:list", [], "get"),
        ("conversations:new", [], "get"),
        ("conversations:detail", [1], "get"),
        ("conversations:message-post", [1], "post"),
        ("conversations:run-cancel", [1], "post"),
    ],
)
def test_every_page_needs_a_login(name: str, args: list[int], method: str) -> None:
    url = reverse(name, args=args)
    response = getattr(Client(), method)(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_login_page_renders_styled_form() -> None:
    response = Client().get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'name="username"' in html and 'name="password"' in html
    assert "css/app.css" in html and "auth-card" in html


def test_login_then_lands_on_the_conversation_list(owner: User) -> None:
    client = Client()
    response = client.post(reverse("login"), {"username": "alice", "password": "pw-Secret-123"})
    assert response.status_code == 302 and response["Location"] == reverse("conversations:list")
    assert client.get(response["Location"]).status_code == 200


def test_another_users_conversation_is_404(conversation: Conversation) -> None:
    intruder = Client()
    intruder.force_login(factories.user("mallory"))
    assert intruder.get(detail_url(conversation)).status_code == 404
    assert intruder.get(detail_url(conversation), headers=HTMX).status_code == 404
    assert intruder.post(post_url(conversation), {"text": "hi"}).status_code == 404
    assert intruder.post(cancel_url(conversation), headers=HTMX).status_code == 404
    assert not Message.objects.filter(conversation=conversation).exists()


# --- list and new


def test_list_shows_only_my_conversations(client_in: Client, conversation: Conversation, team: Team) -> None:
    other = factories.conversation(factories.user("bob"), team=team)
    services_title = "Secret plans of bob"
    Conversation.objects.filter(pk=other.pk).update(title=services_title)
    response = client_in.get(reverse("conversations:list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert conversation.title in html
    assert services_title not in html
    assert reverse("conversations:new") in html


def test_new_form_offers_teams_and_single_agents(client_in: Client, team: Team, solo: Agent) -> None:
    response = client_in.get(reverse("conversations:new"))
    html = response.content.decode()
    assert response.status_code == 200
    assert f'value="team:{team.pk}"' in html and team.name in html
    assert f'value="agent:{solo.pk}"' in html and "Solo Agent" in html


def test_new_conversation_with_a_team_redirects_to_it(client_in: Client, owner: User, team: Team) -> None:
    response = client_in.post(reverse("conversations:new"), {"counterpart": f"team:{team.pk}", "title": ""})
    conversation = Conversation.objects.get(owner=owner)
    assert response.status_code == 302 and response["Location"] == detail_url(conversation)
    assert conversation.team == team and conversation.agent is None
    assert conversation.title == f"Chat with {team.name}"


def test_new_conversation_with_a_single_agent_and_a_title(client_in: Client, owner: User, solo: Agent) -> None:
    response = client_in.post(reverse("conversations:new"), {"counterpart": f"agent:{solo.pk}", "title": "Plans"})
    conversation = Conversation.objects.get(owner=owner)
    assert response.status_code == 302
    assert conversation.agent == solo and conversation.title == "Plans"


@pytest.mark.parametrize("counterpart", ["", "team:999999", "nonsense"])
def test_new_conversation_rejects_a_bad_choice_in_place(client_in: Client, team: Team, counterpart: str) -> None:
    response = client_in.post(reverse("conversations:new"), {"counterpart": counterpart})
    assert response.status_code == 422
    assert "field-error" in response.content.decode()
    assert not Conversation.objects.exists()


# --- detail


def test_detail_renders_history_with_the_socket_partials(
    client_in: Client, owner: User, conversation: Conversation
) -> None:
    _, run = services.message_post(conversation=conversation, user=owner, text="What is *up*?")
    services.message_append(
        conversation_id=conversation.pk,
        run_id=run.pk,
        source="writer",
        type=Message.Type.TEXT,
        content="All **good**.",
        prompt_tokens=12,
        completion_tokens=4,
        latency_ms=1234,
    )
    response = client_in.get(detail_url(conversation))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html and 'id="sidebar"' in html
    assert "{#" not in html and "{%" not in html  # no template syntax leaks into the page
    # the socket, resuming after the last message on the page
    assert f'ws-connect="/ws/conversations/{conversation.pk}/?after=2&amp;format=html"' in html
    assert 'hx-ext="ws"' in html and 'data-last-seq="2"' in html
    # both messages, in order, with the agent's name, markdown and the small print
    assert html.index('data-seq="1"') < html.index('data-seq="2"')
    assert "<em>up</em>" in html and "<strong>good</strong>" in html
    assert 'class="agent-name">writer<' in html
    assert "12 → 4 tok" in html and "1.2 s" in html
    # the run is still queued here (no runner in this test): the Stop button is on the page
    assert 'data-run-status="queued"' in html and cancel_url(conversation) in html
    # the vendored htmx files come from npm through staticfiles, nothing from a CDN
    assert "vendor/htmx/htmx.min.js" in html and "vendor/htmx-ext-ws/ws.min.js" in html
    assert "https://" not in re.sub(r'href="https://[^"]*"', "", html)


def test_detail_for_htmx_is_the_chat_panel_and_an_out_of_band_sidebar(
    client_in: Client, conversation: Conversation
) -> None:
    response = client_in.get(detail_url(conversation), headers=HTMX)
    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html and "<body" not in html
    assert html.lstrip().startswith("<title>")
    assert '<main id="main"' in html
    assert '<nav id="sidebar" class="sidebar" aria-label="Conversations" hx-swap-oob="true">' in html


def test_history_restore_gets_the_whole_page(client_in: Client, conversation: Conversation) -> None:
    response = client_in.get(detail_url(conversation), headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert "<html" in response.content.decode()


def test_tool_call_and_result_are_one_card(client_in: Client, owner: User, conversation: Conversation) -> None:
    _, run = services.message_post(conversation=conversation, user=owner, text="6*7?")
    common: dict[str, Any] = {"conversation_id": conversation.pk, "run_id": run.pk, "source": "writer"}
    services.message_append(
        **common,
        type=Message.Type.TOOL_CALL,
        content="calculator(...)",
        payload={"calls": [{"id": "c1", "name": "calculator", "arguments": '{"expression": "6*7"}'}]},
    )
    services.message_append(
        **common,
        type=Message.Type.TOOL_RESULT,
        content="42",
        payload={"results": [{"call_id": "c1", "name": "calculator", "content": "42", "is_error": False}]},
    )
    services.message_append(
        **common,
        type=Message.Type.TOOL_CALL,
        content="divide(...)",
        payload={"calls": [{"id": "c2", "name": "divide", "arguments": '{"a": 1, "b": 0}'}]},
    )
    services.message_append(
        **common,
        type=Message.Type.TOOL_RESULT,
        content="boom",
        payload={"results": [{"call_id": "c2", "name": "divide", "content": "ZeroDivisionError", "is_error": True}]},
    )
    html = client_in.get(detail_url(conversation)).content.decode()
    assert html.count('class="tool-card"') == 2
    card = html[html.index(f'id="call-{run.pk}-c1-results"') :]
    assert card.index("42") < card.index("divide")  # the result sits inside its call's card
    assert "&quot;expression&quot;: &quot;6*7&quot;" in html  # arguments, pretty-printed and escaped
    assert 'class="tool-result is-error"' in html and "ZeroDivisionError" in html
    assert 'data-seq="3"' not in html  # folded into the card, not a message of its own


def test_a_failed_run_shows_its_error_in_place(client_in: Client, owner: User, conversation: Conversation) -> None:
    _, run = services.message_post(conversation=conversation, user=owner, text="Hi")
    services.run_finish(run_id=run.pk, status=Run.Status.FAILED, error="The reply failed: model <b>exploded</b>")
    _, second = services.message_post(conversation=conversation, user=owner, text="Again")
    services.run_cancel(run=second)
    html = client_in.get(detail_url(conversation)).content.decode()
    assert f'id="run-{run.pk}-notice"' in html
    assert "model &lt;b&gt;exploded&lt;/b&gt;" in html
    assert html.index(f'id="run-{run.pk}-notice"') < html.index('data-seq="2"')
    assert f'id="run-{second.pk}-notice"' in html and "Stopped." in html
    assert 'data-run-status="idle"' in html  # nothing runs now: no Stop button
    assert cancel_url(conversation) not in html


# --- posting a message


def test_htmx_post_stores_the_message_and_returns_a_fresh_composer(
    client_in: Client, conversation: Conversation
) -> None:
    response = client_in.post(post_url(conversation), {"text": "  Hello team  "}, headers=HTMX)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="composer"') and "<html" not in html
    assert "Hello team" not in html  # the textarea is empty again
    message = Message.objects.get(conversation=conversation)
    assert (message.seq, message.type, message.content) == (1, Message.Type.USER, "Hello team")
    assert Run.objects.get(conversation=conversation).status == Run.Status.QUEUED


def test_plain_post_redirects_to_the_conversation(client_in: Client, conversation: Conversation) -> None:
    response = client_in.post(post_url(conversation), {"text": "Hello"})
    assert response.status_code == 302 and response["Location"] == detail_url(conversation)
    assert Message.objects.filter(conversation=conversation).count() == 1


@pytest.mark.parametrize(
    ("text", "error"),
    [("", "The message is empty."), ("   \n ", "The message is empty."), ("x" * 11, "the limit is 10")],
)
def test_bad_input_is_shown_in_place_with_422_and_nothing_is_stored(
    client_in: Client, conversation: Conversation, settings: object, text: str, error: str
) -> None:
    settings.LODESTONE_MESSAGE_MAX_CHARS = 10  # type: ignore[attr-defined]
    response = client_in.post(post_url(conversation), {"text": text}, headers=HTMX)
    assert response.status_code == 422
    html = response.content.decode()
    assert html.lstrip().startswith('<form id="composer"')
    assert error in html and 'class="form-error"' in html and 'aria-invalid="true"' in html
    assert not Message.objects.exists() and not Run.objects.exists()


def test_bad_input_without_htmx_renders_the_whole_page_with_the_error(
    client_in: Client, conversation: Conversation
) -> None:
    response = client_in.post(post_url(conversation), {"text": ""})
    assert response.status_code == 422
    html = response.content.decode()
    assert "<html" in html and "The message is empty." in html
    assert not Message.objects.exists()


def test_posting_while_a_reply_runs_is_a_409_in_place(client_in: Client, conversation: Conversation) -> None:
    assert client_in.post(post_url(conversation), {"text": "first"}, headers=HTMX).status_code == 200
    response = client_in.post(post_url(conversation), {"text": "second"}, headers=HTMX)
    assert response.status_code == 409
    html = response.content.decode()
    assert "still running" in html
    assert ">second</textarea>" in html  # the user's text is kept for a retry
    assert Message.objects.filter(conversation=conversation).count() == 1
    assert Run.objects.filter(conversation=conversation).count() == 1


def test_post_is_post_only(client_in: Client, conversation: Conversation) -> None:
    assert client_in.get(post_url(conversation)).status_code == 405
    assert client_in.get(cancel_url(conversation)).status_code == 405


# --- stopping a run


def test_htmx_cancel_stops_the_active_run(client_in: Client, owner: User, conversation: Conversation) -> None:
    _, run = services.message_post(conversation=conversation, user=owner, text="Hi")
    response = client_in.post(cancel_url(conversation), headers=HTMX)
    assert response.status_code == 204  # the socket announces the new status
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and run.cancel_requested


def test_plain_cancel_redirects_and_is_harmless_without_a_run(client_in: Client, conversation: Conversation) -> None:
    response = client_in.post(cancel_url(conversation))
    assert response.status_code == 302 and response["Location"] == detail_url(conversation)


# --- agent text never becomes markup


def test_agent_text_cannot_inject_html_or_script(client_in: Client, owner: User, conversation: Conversation) -> None:
    _, run = services.message_post(conversation=conversation, user=owner, text="<img src=x onerror=alert(1)>")
    services.message_append(
        conversation_id=conversation.pk,
        run_id=run.pk,
        source="writer",
        type=Message.Type.TEXT,
        content=(
            "<script>alert('x')</script> **bold** [click](javascript:alert(1)) "
            '<a href="https://evil.example" onclick="steal()">link</a> <iframe src="//evil"></iframe>'
        ),
    )
    services.message_append(
        conversation_id=conversation.pk,
        run_id=run.pk,
        source='"><script>alert(2)</script>',
        type=Message.Type.TEXT,
        content="hi",
    )
    html = client_in.get(detail_url(conversation)).content.decode()
    chat = html[html.index('id="messages"') : html.index('id="live"')]
    tags = Elements.of(chat)
    assert not {"script", "iframe", "img"} & {tag for tag, _ in tags}
    assert not [(tag, name) for tag, attrs in tags for name, _ in attrs if name.startswith("on")]
    assert not [value for _, attrs in tags for name, value in attrs if name == "href" and "javascript" in (value or "")]
    # shown as text instead, and markdown still works
    assert (
        "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in chat or "&lt;script&gt;alert('x')&lt;/script&gt;" in chat
    )
    assert "&lt;img src=x onerror=alert(1)&gt;" in chat
    assert "<strong>bold</strong>" in chat
    assert "&quot;&gt;&lt;script&gt;alert(2)&lt;/script&gt;" in chat  # a hostile agent name is escaped too


class Elements(HTMLParser):
    """Every start tag of an HTML text, with its attributes, as a browser's parser sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    @classmethod
    def of(cls, html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
        parser = cls()
        parser.feed(html)
        return parser.tags
