"""The browser chat end to end: Debian's Chromium (through Playwright) against a live Daphne server.

The server runs the embedded defaults (``config.settings.local``: SQLite, in-memory channel layer,
inline runner) in its own var directory, with scripted replay models that stream slowly enough to
watch: the test sees tokens arrive in the live bubble while the run is still going, then the stored
messages, then the same history after a reload. Nothing here is mocked in the browser.
"""

from __future__ import annotations

import os
import re
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import REPO, live_daphne

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
USERNAME, PASSWORD = "e2e-user", "e2e-Secret-pw-417"
API_TOKEN = "lds_e2e0e2e0" + "k" * 43  # an API key in the format accounts.services makes
WRITER_TEXT = (
    "Lodestones are naturally magnetised pieces of magnetite. Sailors once hung them on threads so they "
    "would swing north, the first compasses. Today the word means something that guides and attracts, "
    "which is why this project carries the name."
)
REVIEWER_TEXT = (
    "Accurate and concise. One improvement: mention that lightning strikes are thought to magnetise "
    "them, which explains why they are rare, and give an **example** of a famous lodestone in a museum."
)
NARRATOR_TEXT = " ".join(f"word{n}" for n in range(120))  # long enough to stop half-way
SCREENSHOT = Path("/tmp/lodestone-chat.png")
SCREENSHOT_STREAMING = Path("/tmp/lodestone-chat-streaming.png")

SETUP_SCRIPT = textwrap.dedent(
    f"""
    from django.contrib.auth import get_user_model
    from agents import services
    from agents.models import Team

    duo_model = services.model_config_create(
        name="Replay duo", provider="replay",
        options={{"responses": [{WRITER_TEXT!r}, {REVIEWER_TEXT!r}], "chunk_delay": 0.05}},
    )
    writer = services.agent_create(slug="writer", name="Writer", description="Answers.", model_config=duo_model)
    reviewer = services.agent_create(slug="reviewer", name="Reviewer", description="Reviews.", model_config=duo_model)
    services.team_create(
        slug="duo", name="Writer and Reviewer", kind=Team.Kind.ROUND_ROBIN, agents=[writer, reviewer], max_messages=3
    )
    narrator_model = services.model_config_create(
        name="Replay narrator", provider="replay", options={{"responses": [{NARRATOR_TEXT!r}], "chunk_delay": 0.05}}
    )
    services.agent_create(slug="narrator", name="Narrator", description="Talks at length.", model_config=narrator_model)
    careful_model = services.model_config_create(
        name="Replay careful", provider="replay",
        options={{"responses": [
            {{"tool_calls": [{{"id": "c1", "name": "calculator", "arguments": {{"expression": "6*7"}}}}]}},
            "The answer is 42.",
        ]}},
    )
    careful = services.agent_create(
        slug="careful", name="Careful", description="Asks first.", model_config=careful_model
    )
    from tools import services as tool_services
    from tools.models import Tool
    tool_services.tool_grant_create(agent=careful, tool=Tool.objects.get(name="calculator"), needs_approval=True)
    starter_model = services.model_config_create(
        name="Replay starter", provider="replay", options={{"responses": ["Started from a prompt."]}}
    )
    services.agent_create(
        slug="starter", name="Starter", description="Answers starter prompts.", model_config=starter_model,
        starter_prompts=["Say hello to the starter"],
    )
    Team.objects.filter(slug="duo").update(starter_prompts=["A prompt for the duo"])
    user = get_user_model().objects.create_user(username={USERNAME!r}, password={PASSWORD!r})
    from config.accounts.models import ApiKey, key_digest, key_prefix
    ApiKey.objects.create(user=user, name="e2e", prefix=key_prefix({API_TOKEN!r}), digest=key_digest({API_TOKEN!r}))
    from conversations import services as chat
    from agents.models import Agent
    long_chat = chat.conversation_create(owner=user, agent=Agent.objects.get(slug="narrator"), title="Long chat")
    for n in range(1, 131):
        chat.message_append(
            conversation_id=long_chat.pk, run_id=None, source="user" if n % 2 else "narrator",
            type="user" if n % 2 else "text", content=f"Line number {{n}}.",
        )
    """
)


@dataclass
class LiveServer:
    url: str
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.exists() else ""


def _require(condition: bool, message: str) -> None:
    if not condition:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message + "; CI must provide it.")
        pytest.skip(message)


@pytest.fixture(scope="module")
def daphne_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    _require((REPO / "node_modules" / "htmx.org" / "dist" / "htmx.min.js").exists(), "node_modules missing: npm ci")
    var_dir = tmp_path_factory.mktemp("e2e-var")
    with live_daphne(var_dir, SETUP_SCRIPT) as (url, log):
        yield LiveServer(url=url, log=log)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    _require(CHROMIUM.exists(), f"{CHROMIUM} is missing (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser: object, daphne_server: LiveServer) -> Iterator[object]:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    context = browser.new_context(viewport={"width": 1280, "height": 860}, base_url=daphne_server.url)
    context.set_default_timeout(15_000)
    # A Content-Security-Policy violation fails the test like any console error.
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation', function (e) {"
        " console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI); });"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors  # type: ignore[attr-defined]
    try:
        yield page
    except Exception:
        print(daphne_server.log_tail())
        raise
    finally:
        context.close()


def sign_in_and_start(page: object, counterpart: str) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/conversations/$"))
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/conversations/$"))

    page.locator(".sidebar").get_by_role("link", name="New conversation").click()
    page.get_by_label("Talk to").select_option(label=counterpart)
    page.get_by_role("button", name="Start conversation").click()
    expect(page.locator(".chat-title h1")).to_have_text(f"Chat with {counterpart}")
    # The socket is open before we speak, so no streamed token is missed.
    expect(page.locator("#main.chat.is-live")).to_be_visible()


def test_chat_streams_a_team_reply_and_keeps_the_history(page: object, daphne_server: LiveServer) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    sign_in_and_start(page, "Writer and Reviewer")

    composer = page.locator("#composer textarea")
    composer.fill("Where does the name *lodestone* come from?")
    composer.press("Enter")
    expect(composer).to_have_value("")  # the fresh composer came back

    # Tokens stream into the live bubble while the run is still going: the Stop button is still there.
    live_text = page.locator("#live-text")
    expect(live_text).to_contain_text("Lodestones are", timeout=15_000)
    stop_button = page.locator("#run-status .btn-stop")
    expect(stop_button).to_be_visible()
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "running")
    expect(page.locator("#live-head .agent-name")).to_have_text("Writer")
    # Token by token: more text arrives. (Not page.wait_for_function with a string: polling it needs
    # eval, which the strict CSP refuses whenever the next token is not there at the first look.)
    expect(live_text).not_to_have_text(live_text.text_content() or "")
    assert not page.locator("#messages .msg-agent").count(), "nothing is stored before the agent finishes"
    page.screenshot(path=str(SCREENSHOT_STREAMING))

    # Then the stored messages, with the agents' names, and the run ends.
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "completed", timeout=30_000)
    expect(stop_button).to_have_count(0)
    expect(page.locator("#live")).to_be_hidden()
    assert_history(page)
    page.screenshot(path=str(SCREENSHOT), full_page=False)

    # A reload renders the whole history on the server, with the same partials.
    page.reload()
    expect(page.locator("#main.chat.is-live")).to_be_visible()
    assert_history(page)
    # Once the socket is connected it reports the latest run, as the live page showed it.
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "completed")
    check_resume_and_dedup(page)

    # Sidebar navigation swaps the chat panel in with htmx (the view's fragment rendering) and reconnects;
    # the panel comes from the server again, without the copy fed in above.
    page.locator(".sidebar .brand").click()
    expect(page).to_have_url(re.compile(r"/conversations/$"))
    # The conversation is named after its first message now.
    page.locator(".sidebar .conv-link", has_text="Where does the name *lodestone* come from?").click()
    expect(page).to_have_url(re.compile(r"/conversations/\d+/$"))
    expect(page.locator("#main.chat.is-live")).to_be_visible()
    expect(page).to_have_title(re.compile(re.escape("Where does the name *lodestone* come from?")))
    assert_history(page)

    # The script is used up: the next reply fails, and says so in place.
    composer = page.locator("#composer textarea")
    composer.fill("And one more thing?")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".run-notice-failed")).to_contain_text("No more mock responses", timeout=20_000)
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "failed")
    assert page.console_errors == []  # type: ignore[attr-defined]


def check_resume_and_dedup(page: object) -> None:
    """chat.js: sockets (re)connect with after=<highest seq on the page>, and a message fragment whose
    seq the page already shows is dropped (fed through the real socket's message handler)."""
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    assert "after=3" in page.evaluate("LodestoneChat.socket.url")
    reconnect_url = page.evaluate(
        """() => {
            const live = LodestoneChat.socket;
            const socket = htmx.createWebSocket(live.url.replace(/after=\\d+/, 'after=0'));
            const url = socket.url;
            socket.close();
            LodestoneChat.socket = live;
            return url;
        }"""
    )
    assert "after=3" in reconnect_url and "format=html" in reconnect_url
    page.evaluate(
        """() => {
            const again = document.querySelector('#messages [data-seq="2"]').outerHTML;
            const feed = (html) => LodestoneChat.socket.dispatchEvent(new MessageEvent('message', {data: html}));
            feed('<div hx-swap-oob="beforeend:#messages">' + again + '</div>');
            feed('<div hx-swap-oob="beforeend:#messages">' + again.replaceAll('"2"', '"99"') + '</div>');
        }"""
    )
    # The copy with a new seq went in, the duplicate did not.
    expect(page.locator("#messages [data-seq]")).to_have_count(4)
    expect(page.locator('#messages [data-seq="2"]')).to_have_count(1)
    expect(page.locator('#messages [data-seq="99"]')).to_have_count(1)


def assert_history(page: object) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    expect(page.locator("#messages [data-seq]")).to_have_count(3)
    expect(page.locator("#messages .msg-user")).to_contain_text("Where does the name lodestone come from?")
    expect(page.locator("#messages .msg-agent .agent-name")).to_have_text(["Writer", "Reviewer"])
    agents = page.locator("#messages .msg-agent .prose")
    expect(agents.nth(0)).to_contain_text("naturally magnetised pieces of magnetite")
    expect(agents.nth(1)).to_contain_text("Accurate and concise")
    expect(agents.nth(1).locator("strong")).to_have_text("example")  # markdown, rendered on the server
    expect(page.locator("#messages .msg-user em")).to_have_text("lodestone")


def test_starter_prompts_follow_the_choice_and_start_the_conversation(page: object, daphne_server: LiveServer) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    sign_in_and_start(page, "Writer and Reviewer")
    page.locator(".sidebar").get_by_role("link", name="New conversation").click()
    # The first choice (the team) shows its prompts; choosing the agent swaps in the agent's (htmx).
    expect(page.get_by_role("button", name="A prompt for the duo")).to_be_visible()
    page.get_by_label("Talk to").select_option(label="Starter")
    prompt = page.get_by_role("button", name="Say hello to the starter")
    expect(prompt).to_be_visible()
    expect(page.get_by_role("button", name="A prompt for the duo")).to_have_count(0)
    expect(page).to_have_url(re.compile(r"/conversations/new/\?counterpart=agent%3A\d+$"))

    prompt.click()  # starts the conversation with it, and the reply follows
    expect(page.locator(".chat-title h1")).to_have_text("Say hello to the starter")
    expect(page.locator("#messages")).to_contain_text("Say hello to the starter")
    expect(page.locator("#messages .msg-agent")).to_contain_text("Started from a prompt.", timeout=15_000)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_stop_button_cancels_a_streaming_reply(page: object, daphne_server: LiveServer) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    sign_in_and_start(page, "Narrator")

    page.locator("#composer textarea").fill("Tell me everything.")
    page.get_by_role("button", name="Send").click()
    expect(page.locator("#live-text")).to_contain_text("word3")
    page.locator("#run-status .btn-stop").click()

    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "cancelled", timeout=15_000)
    expect(page.locator(".run-notice-cancelled")).to_contain_text("Stopped")
    expect(page.locator("#live")).to_be_hidden()  # the unfinished text is not kept
    expect(page.locator("#run-status .btn-stop")).to_have_count(0)
    assert "word119" not in (page.locator("#messages").text_content() or "")

    page.reload()
    expect(page.locator(".run-notice-cancelled")).to_contain_text("Stopped")
    expect(page.locator("#messages [data-seq]")).to_have_count(1)
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_an_approval_answered_elsewhere_updates_the_open_card_live(page: object, daphne_server: LiveServer) -> None:
    import httpx
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    sign_in_and_start(page, "Careful")
    page.locator("#composer textarea").fill("What is 6*7?")
    page.get_by_role("button", name="Send").click()
    card = page.locator("article.msg-approval")
    expect(card.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "awaiting_input")

    # Answered through the REST API (another device, an integration): the open page hears of it.
    approval_id = card.get_attribute("data-approval")
    response = httpx.post(
        f"{daphne_server.url}/api/tools/approvals/{approval_id}/",
        json={"approve": True},
        headers={"Authorization": f"Token {API_TOKEN}"},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    expect(card).to_have_attribute("data-state", "approved")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#messages")).to_contain_text("The answer is 42.")
    expect(page.locator("#run-status")).to_have_attribute("data-run-status", "completed")
    assert page.locator("article.msg-approval").count() == 1  # replaced in place, not appended
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_a_long_chat_shows_the_latest_messages_and_loads_earlier_ones(page: object, daphne_server: LiveServer) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.locator(".sidebar").get_by_role("link", name="Long chat").click()
    expect(page.locator("#main.chat.is-live")).to_be_visible()
    messages = page.locator("#messages [data-seq]")
    expect(messages).to_have_count(100)
    expect(messages.first).to_have_attribute("data-seq", "31")
    expect(messages.last).to_contain_text("Line number 130.")
    page.get_by_role("button", name="Show earlier messages").click()
    expect(messages).to_have_count(130)
    expect(messages.first).to_contain_text("Line number 1.")
    expect(page.get_by_role("button", name="Show earlier messages")).to_have_count(0)
    # Still live: a new message appends after the newest, not after the oldest shown.
    page.locator("#composer textarea").fill("And one more.")
    page.get_by_role("button", name="Send").click()
    expect(messages.nth(130)).to_contain_text("And one more.")
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_api_keys_page_creates_a_key_shown_once_that_works_then_revokes_it(
    page: object, daphne_server: LiveServer
) -> None:
    import httpx
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    response = page.goto("/conversations/")
    assert response is not None and "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".sidebar").get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()

    page.get_by_label("Name").fill("browser test")
    page.get_by_label("Expires after (days)").fill("7")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_label("The new API key")
    expect(shown).to_have_value(re.compile(r"^lds_"))
    key = shown.input_value()
    row = page.locator(".api-key-list tr", has_text="browser test")
    expect(row).to_contain_text(key[:12])
    assert key not in (row.text_content() or "")
    headers = {"Authorization": f"Token {key}"}
    assert httpx.get(f"{daphne_server.url}/api/conversations/", headers=headers, timeout=10).status_code == 200

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke").click()
    expect(page.locator(".api-key-list tr", has_text="browser test")).to_have_count(0)
    assert httpx.get(f"{daphne_server.url}/api/conversations/", headers=headers, timeout=10).status_code == 401
    page.reload()
    expect(page.get_by_label("The new API key")).to_have_count(0)  # shown once, never again
    assert page.console_errors == []  # type: ignore[attr-defined]


def test_swagger_ui_renders_under_the_content_security_policy(page: object, daphne_server: LiveServer) -> None:
    from playwright.sync_api import Page, expect

    assert isinstance(page, Page)
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(USERNAME)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    response = page.goto("/api/docs/")
    assert response is not None and "content-security-policy" in response.headers
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Lodestone API")
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.console_errors == []  # type: ignore[attr-defined]
