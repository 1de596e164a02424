"""GET /api/runs/{id}/ and POST /api/runs/{id}/cancel/."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from pytest_django import DjangoCaptureOnCommitCallbacks
from rest_framework.test import APIClient

from agents.models import Agent
from conversations import services
from conversations.models import Conversation, Run
from tests import factories
from tests.api.conftest import RecordingRunner

pytestmark = pytest.mark.django_db


def run_url(run_id: int) -> str:
    return f"/api/runs/{run_id}/"


def cancel_url(run_id: int) -> str:
    return f"/api/runs/{run_id}/cancel/"


@pytest.fixture
def conversation(user: User, agent: Agent) -> Conversation:
    return factories.conversation(user, agent=agent)


@pytest.fixture
def run(user: User, conversation: Conversation, recording_runner: RecordingRunner) -> Run:
    _, run = services.message_post(conversation=conversation, user=user, text="Hello?")
    return run


def test_get_run(api: APIClient, conversation: Conversation, run: Run) -> None:
    response = api.get(run_url(run.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == run.pk
    assert body["conversation_id"] == conversation.pk
    assert body["status"] == "queued"
    assert body["cancel_requested"] is False
    assert body["started_at"] is None and body["finished_at"] is None
    assert set(body) == {
        "id",
        "conversation_id",
        "status",
        "error",
        "stop_reason",
        "cancel_requested",
        "prompt_tokens",
        "completion_tokens",
        "created_at",
        "started_at",
        "finished_at",
    }


def test_get_a_failed_run_shows_the_reason(api: APIClient, run: Run) -> None:
    services.run_start(run_id=run.pk)
    services.run_finish(run_id=run.pk, status=Run.Status.FAILED, error="The reply failed: model offline.")

    body = api.get(run_url(run.pk)).json()

    assert body["status"] == "failed"
    assert body["error"] == "The reply failed: model offline."
    assert body["started_at"] and body["finished_at"]


def test_get_another_users_run_is_not_found(other_api: APIClient, run: Run) -> None:
    assert other_api.get(run_url(run.pk)).status_code == 404
    assert other_api.get(run_url(run.pk + 1000)).status_code == 404


def test_get_run_needs_authentication(anon: APIClient, run: Run) -> None:
    assert anon.get(run_url(run.pk)).status_code == 401


def test_cancel_a_queued_run(
    api: APIClient,
    run: Run,
    recording_runner: RecordingRunner,
    django_capture_on_commit_callbacks: DjangoCaptureOnCommitCallbacks,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(cancel_url(run.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "cancelled"
    assert body["cancel_requested"] is True
    assert body["stop_reason"] == "Cancelled before it started."
    run.refresh_from_db()
    assert run.status == Run.Status.CANCELLED and run.cancel_requested and run.finished_at is not None
    assert recording_runner.cancelled == [run.pk]


def test_cancel_a_running_run_asks_it_to_stop(api: APIClient, run: Run) -> None:
    services.run_start(run_id=run.pk)

    response = api.post(cancel_url(run.pk))

    assert response.status_code == 200
    assert response.json()["status"] == "running"
    assert response.json()["cancel_requested"] is True
    run.refresh_from_db()
    assert run.status == Run.Status.RUNNING and run.cancel_requested


def test_cancel_a_finished_run_returns_it_unchanged(api: APIClient, run: Run) -> None:
    services.run_start(run_id=run.pk)
    finished = services.run_finish(run_id=run.pk, status=Run.Status.COMPLETED, stop_reason="Done.")

    response = api.post(cancel_url(run.pk))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "completed"
    assert body["cancel_requested"] is False
    assert body["stop_reason"] == "Done."
    run.refresh_from_db()
    assert (run.status, run.cancel_requested, run.finished_at) == (
        Run.Status.COMPLETED,
        False,
        finished.finished_at,
    )


def test_cancel_another_users_run_is_not_found(other_api: APIClient, run: Run) -> None:
    response = other_api.post(cancel_url(run.pk))

    assert response.status_code == 404
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and not run.cancel_requested


def test_cancel_needs_authentication(anon: APIClient, run: Run) -> None:
    assert anon.post(cancel_url(run.pk)).status_code == 401
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and not run.cancel_requested


def test_get_on_cancel_is_not_allowed(api: APIClient, run: Run) -> None:
    assert api.get(cancel_url(run.pk)).status_code == 405
