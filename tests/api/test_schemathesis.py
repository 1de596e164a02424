"""Schemathesis against a live Daphne server: generated requests (valid and invalid) to every
operation of the OpenAPI schema, as two users, must give no server error and only responses the
schema describes (status code, content type, body), and invalid input must be refused.

Bounded: a fixed seed, at most ``MAX_EXAMPLES`` cases per operation and phase, one worker. The
failures, if any, are printed (Schemathesis' own report, with a curl line to reproduce each).
"""

from __future__ import annotations

import re
import socket
import subprocess
import textwrap
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path

import pytest

from tests.servers import VENV_BIN, live_daphne

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = 15
SEED = 20261201
USERS = ("alice", "bob")
PASSWORD = "pw-Secret-123"
# Every check that judges one response; the stateful ones (links between operations) are not run.
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
    "response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method"
)

SETUP = textwrap.dedent(
    f"""
    from django.contrib.auth import get_user_model
    from agents import services as agents
    from agents.models import Team
    from conversations import services as conversations
    from memory import services as memory

    model = agents.model_config_create(name="Replay", provider="replay", options={{"responses": ["Fine."] * 500}})
    helper = agents.agent_create(slug="helper", name="Helper", description="Answers.", model_config=model)
    critic = agents.agent_create(slug="critic", name="Critic", description="Checks.", model_config=model)
    agents.team_create(slug="duo", name="Duo", kind=Team.Kind.ROUND_ROBIN, agents=[helper, critic], max_messages=3)
    for name in {USERS!r}:
        user = get_user_model().objects.create_user(username=name, password={PASSWORD!r})
        conversation = conversations.conversation_create(owner=user, agent=helper, title=f"{{name}}'s chat")
        conversations.message_append(
            conversation_id=conversation.pk, run_id=None, source="user", type="user", content="Hello."
        )
        memory.experience_store(text=f"{{name}} deploys on Fridays.", owner=user, agent=helper)
    """
)


def session_headers(url: str, username: str) -> list[str]:
    """Log in through the login page, as a browser does: the session cookie and the CSRF header
    that unsafe methods need. (The one place that knows how the fuzzer authenticates.)"""
    jar = CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(f"{url}/accounts/login/", timeout=30).read().decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, "no CSRF token on the login page"
    form = urllib.parse.urlencode(
        {"username": username, "password": PASSWORD, "csrfmiddlewaretoken": match.group(1)}
    ).encode()
    opener.open(f"{url}/accounts/login/", data=form, timeout=30)
    cookies = {cookie.name: cookie.value for cookie in jar}
    assert "sessionid" in cookies, f"logging in as {username} failed"
    return [
        f"Cookie: sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}",
        f"X-CSRFToken: {cookies['csrftoken']}",
    ]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    var_dir = tmp_path_factory.mktemp("schemathesis-var")
    with live_daphne(var_dir, SETUP) as (url, log):
        yield url, log


@pytest.mark.parametrize("username", USERS)
def test_generated_requests_get_only_documented_answers(
    server: tuple[str, Path], username: str, tmp_path: Path
) -> None:
    url, log = server
    headers = [part for header in session_headers(url, username) for part in ("-H", header)]
    command = [
        str(VENV_BIN / "st"),
        "run",
        f"{url}/api/schema/",
        "--checks",
        CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        str(SEED),
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--request-timeout",
        "60",
        "--no-color",
        "--output-truncate",
        "true",
        # Staff only (403 for both users) and tested on its own: Daphne's HTTP layer answers a malformed
        # multipart body with an empty 400 before Django sees it, which no schema can describe.
        "--exclude-operation-id",
        "components_import",
        *headers,
    ]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=900, check=False)

    report = done.stdout + done.stderr
    assert done.returncode == 0, f"{report}\n--- server log (tail) ---\n{log.read_text()[-4000:]}"
    # It really ran: every operation but the excluded one (28 since a memory's history has its own,
    # GET /api/memory/experiences/{id}/history/), about 1,200 cases.
    assert re.search(r"Tested: 28\b", report), report
    assert re.search(r"\b(\d{3,}) generated, \1 passed", report), report


def handshake_status(url: str, path: str, cookie: str | None) -> int:
    """The HTTP status a WebSocket upgrade request to ``path`` gets (101: the socket opens)."""
    host, port = urllib.parse.urlsplit(url).netloc.split(":")
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        f"Origin: {url}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
    ]
    if cookie:
        lines.append(f"Cookie: {cookie}")
    with socket.create_connection((host, int(port)), timeout=30) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        status_line = conn.recv(4096).split(b"\r\n", 1)[0].decode()
    return int(status_line.split()[1])


def test_a_socket_that_is_not_yours_is_refused_at_the_handshake(server: tuple[str, Path]) -> None:
    url, _ = server
    alice_cookie = session_headers(url, "alice")[0].removeprefix("Cookie: ")
    # Conversations 1 and 2 are alice's and bob's (SETUP); 999 does not exist.
    assert handshake_status(url, "/ws/conversations/1/", alice_cookie) == 101
    assert handshake_status(url, "/ws/conversations/2/", alice_cookie) == 403
    assert handshake_status(url, "/ws/conversations/999/", alice_cookie) == 403
    assert handshake_status(url, "/ws/conversations/1/", None) == 403
