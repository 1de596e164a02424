"""Through the API only: start a conversation, post a message, poll until the agent has answered.

The reply really runs: the inline runner executes it on this test's event loop with a replay model.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from rest_framework.test import APIClient

from config.accounts.services import api_key_create
from conversations.runner import InlineRunner
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


async def call(client: APIClient, method: str, url: str, data: Any = None) -> tuple[int, Any]:
    """One request through the sync test client, off the event loop the runner uses."""

    def request() -> tuple[int, Any]:
        response = client.post(url, data, format="json") if method == "post" else client.get(url, data)
        return response.status_code, response.json()

    return await sync_to_async(request)()


async def test_post_then_poll_until_the_reply_arrives(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Paris is the capital of France."])
    await sync_to_async(factories.agent)(model, "geographer", name="Geographer")
    _, key = await sync_to_async(api_key_create)(user=user, name="test")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")

    status, conversation = await call(client, "post", "/api/conversations/", {"agent": "geographer"})
    assert status == 201, conversation
    messages_url = f"/api/conversations/{conversation['id']}/messages/"

    status, posted = await call(client, "post", messages_url, {"text": "What is the capital of France?"})
    assert status == 202, posted
    assert posted["message"]["seq"] == 1
    assert posted["run"]["status"] == "queued"
    run_url = f"/api/runs/{posted['run']['id']}/"

    replies: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + 20
    while not replies:
        assert asyncio.get_running_loop().time() < deadline, "no reply within 20 s"
        await asyncio.sleep(0.05)
        status, page = await call(client, "get", messages_url, {"after": posted["message"]["seq"]})
        assert status == 200, page
        replies = page["results"]

    assert [(m["seq"], m["source"], m["type"], m["content"]) for m in replies] == [
        (2, "geographer", "text", "Paris is the capital of France.")
    ]
    assert replies[0]["run_id"] == posted["run"]["id"]

    run: dict[str, Any] = {}
    while run.get("status") in (None, "queued", "running"):
        assert asyncio.get_running_loop().time() < deadline, f"run still {run.get('status')}"
        await asyncio.sleep(0.05)
        status, run = await call(client, "get", run_url)
        assert status == 200, run
    assert run["status"] == "completed", run["error"]
    assert run["completion_tokens"] > 0

    status, everything = await call(client, "get", messages_url)
    assert [(m["seq"], m["source"], m["content"]) for m in everything["results"]] == [
        (1, "user", "What is the capital of France?"),
        (2, "geographer", "Paris is the capital of France."),
    ]
    status, detail = await call(client, "get", f"/api/conversations/{conversation['id']}/")
    assert detail["last_seq"] == 2 and detail["active_run"] is None
