"""Fixtures for the REST API tests: users, API clients, a replay-backed agent and team."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from agents.models import Agent, Team
from tests import factories


class RecordingRunner:
    """Stands in for the runner when a sync test only needs to see that a run was handed over."""

    def __init__(self) -> None:
        self.submitted: list[int] = []
        self.cancelled: list[int] = []

    def submit(self, run_id: int) -> None:
        self.submitted.append(run_id)

    def cancel(self, run_id: int) -> None:
        self.cancelled.append(run_id)


@pytest.fixture
def recording_runner(monkeypatch: pytest.MonkeyPatch) -> RecordingRunner:
    fake = RecordingRunner()
    monkeypatch.setattr("conversations.runner.get_runner", lambda: fake)
    return fake


@pytest.fixture
def user(db: None) -> User:
    return factories.user("alice")


@pytest.fixture
def other_user(db: None) -> User:
    return factories.user("mallory")


@pytest.fixture
def anon() -> APIClient:
    return APIClient()


@pytest.fixture
def api(user: User) -> APIClient:
    """Logged in as ``user`` through the session, as a browser would be."""
    client = APIClient()
    client.force_login(user)
    return client


@pytest.fixture
def other_api(other_user: User) -> APIClient:
    client = APIClient()
    client.force_login(other_user)
    return client


@pytest.fixture
def agent(db: None) -> Agent:
    return factories.agent(factories.replay_model(["Hello."]), "helper", name="Helper")


@pytest.fixture
def team(db: None) -> Team:
    model = factories.replay_model(["One.", "Two."])
    writer = factories.agent(model, "writer", name="Writer")
    reviewer = factories.agent(model, "reviewer", name="Reviewer")
    return factories.round_robin([writer, reviewer], max_messages=3)
