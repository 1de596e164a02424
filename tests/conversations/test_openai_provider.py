"""The openai_compatible provider through the real ``openai`` client over a real socket: an
endpoint that is down fails the run readably, and the next message works once it is back."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.models import ModelConfig
from conversations import services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from tests import factories
from tests.conversations.test_executor import wait_for_run
from tests.openai_server import FakeOpenAI
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


async def test_endpoint_down_then_back(inline_runner: InlineRunner) -> None:
    port = free_port()
    server = FakeOpenAI(port, "Back online and streaming.")
    config = await sync_to_async(agent_services.model_config_create)(
        name="compatible",
        provider=ModelConfig.Provider.OPENAI_COMPATIBLE,
        model="tiny-model",
        base_url=server.base_url,
        api_key="sk-test-not-real",
        options={"timeout": 5, "max_retries": 0},
    )
    user = await sync_to_async(factories.user)()
    solo = await sync_to_async(factories.agent)(config, "remote")
    conversation = await sync_to_async(factories.conversation)(user, agent=solo)

    _, down = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Are you there?")
    down = await wait_for_run(down.pk, timeout=60)
    assert down.status == Run.Status.FAILED
    assert down.error.startswith("The reply failed:") and "Connection error" in down.error
    assert await Message.objects.filter(conversation=conversation, type="user").acount() == 1

    server.start()
    try:
        _, back = await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Now?")
        back = await wait_for_run(back.pk, timeout=60)
    finally:
        server.stop()
    assert back.status == Run.Status.COMPLETED, back.error
    reply = await Message.objects.aget(conversation=conversation, source="remote")
    assert reply.content == "Back online and streaming."
    assert reply.completion_tokens == 4
    request = server.requests[-1]
    assert request["stream"] is True and request["model"] == "tiny-model"
    # A failed run leaves the team as it was before it (documented in docs/architecture.md).
    assert [m["content"] for m in request["messages"] if m["role"] == "user"] == ["Now?"]
