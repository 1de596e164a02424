"""Request limits: login lockout (both login pages), bad API keys, message posting and /v1."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from config.accounts import services
from config.accounts.limits import client_ip
from conversations.models import Run
from tests import factories
from tests.api.conftest import RecordingRunner, recording_runner

__all__ = ["recording_runner"]  # the API tests' fixture, used here too

pytestmark = pytest.mark.django_db
PASSWORD = "right-Password-42"


@pytest.fixture
def lockout(settings: Any) -> None:
    settings.AXES_ENABLED = True
    settings.AXES_FAILURE_LIMIT = 3


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_after_n_bad_logins_the_next_is_refused_even_with_the_right_password(lockout: None, path: str) -> None:
    user = factories.user("alice")
    user.set_password(PASSWORD)
    user.is_staff = True  # the admin login accepts staff only
    user.save()
    client = Client()

    statuses = [client.post(path, {"username": "alice", "password": "wrong"}).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]  # the form again with its error; the 3rd failure locks
    refused = client.post(path, {"username": "alice", "password": PASSWORD})

    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_good_login_before_the_limit_resets_the_count(lockout: None) -> None:
    user = factories.user("alice")
    user.set_password(PASSWORD)
    user.save()
    for _ in range(2):
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    for _ in range(2):
        Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert Client().post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_bad_api_keys_get_429_after_the_limit_then_even_a_good_key(settings: Any) -> None:
    settings.LODESTONE_RATE_BAD_API_KEYS = "3/minute"
    _, good = services.api_key_create(user=factories.user("alice"), name="ok")
    client = APIClient()

    for _ in range(3):
        client.credentials(HTTP_AUTHORIZATION="Token lds_guess0000guessguessguess")
        assert client.get("/api/conversations/").status_code == 401
    response = client.get("/api/conversations/")
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many bad API keys from your address. Expected available in ")
    assert int(response["Retry-After"]) > 0
    client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert client.get("/api/conversations/").status_code == 429  # locked: no oracle for guesses
    # Another address is not affected.
    other = APIClient(REMOTE_ADDR="10.0.0.9")
    other.credentials(HTTP_AUTHORIZATION=f"Token {good}")
    assert other.get("/api/conversations/").status_code == 200


def test_posting_messages_is_limited_per_user(settings: Any, recording_runner: RecordingRunner) -> None:
    settings.LODESTONE_RATE_MESSAGES = "2/minute"
    user = factories.user("alice")
    agent = factories.agent(factories.replay_model(["Hi."]), "helper")
    client = APIClient()
    client.force_login(user)
    conversations = [factories.conversation(user, agent=agent) for _ in range(3)]

    for conversation in conversations[:2]:
        url = f"/api/conversations/{conversation.pk}/messages/"
        assert client.post(url, {"text": "hello"}, format="json").status_code == 202
    response = client.post(f"/api/conversations/{conversations[2].pk}/messages/", {"text": "hello"}, format="json")

    assert response.status_code == 429
    assert response.json()["detail"].startswith("Too many messages: wait ")
    assert response.json()["retry_after"] > 0
    assert Run.objects.count() == 2  # the refused message started no run
    # The chat form says so in place (htmx swaps a 429 in).
    page = Client()
    page.force_login(user)
    chat = page.post(f"/conversations/{conversations[2].pk}/messages/", {"text": "hi"}, HTTP_HX_REQUEST="true")
    assert chat.status_code == 429 and "Too many messages" in chat.content.decode()
    # Another user has their own allowance.
    bob = factories.user("bob")
    other = APIClient()
    other.force_login(bob)
    theirs = factories.conversation(bob, agent=agent)
    assert other.post(f"/api/conversations/{theirs.pk}/messages/", {"text": "hi"}, format="json").status_code == 202


def test_v1_is_limited_per_user_and_refuses_bad_keys_with_429(settings: Any) -> None:
    settings.LODESTONE_RATE_OPENAI = "2/minute"
    settings.LODESTONE_RATE_BAD_API_KEYS = "2/minute"
    _, key = services.api_key_create(user=factories.user("alice"), name="openai")
    client = Client()
    auth = f"Bearer {key}"

    assert client.get("/v1/models", HTTP_AUTHORIZATION=auth).status_code == 200
    assert client.get("/v1/models", HTTP_AUTHORIZATION=auth).status_code == 200
    limited = client.get("/v1/models", HTTP_AUTHORIZATION=auth)
    assert limited.status_code == 429 and int(limited["Retry-After"]) > 0
    assert json.loads(limited.content)["error"]["type"] == "rate_limit_error"

    stranger = Client(REMOTE_ADDR="10.0.0.7")
    for _ in range(2):
        assert stranger.get("/v1/models", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    locked = stranger.get("/v1/models", HTTP_AUTHORIZATION="Bearer nope")
    assert locked.status_code == 429
    assert "Too many bad API keys" in json.loads(locked.content)["error"]["message"]


def test_the_client_address_trusts_only_the_configured_proxies(settings: Any) -> None:
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.5")
    settings.LODESTONE_TRUSTED_PROXY_COUNT = 0
    assert client_ip(request) == "10.0.0.1"  # a client can send any X-Forwarded-For
    settings.LODESTONE_TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.5"  # what our one proxy saw, not what the client claimed
