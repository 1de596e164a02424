"""Long chats: the page shows the latest messages and loads earlier ones a page at a time."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conversations import services
from conversations.models import Message
from tests import factories

pytestmark = pytest.mark.django_db


def long_conversation(count: int) -> tuple[Any, Any]:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["unused"]), "talker")
    conversation = factories.conversation(user, agent=agent)
    for i in range(count):
        services.message_append(
            conversation_id=conversation.pk, run_id=None, source="talker", type=Message.Type.TEXT, content=f"line {i}"
        )
    return user, conversation


def seqs(html: str) -> list[int]:
    import re

    return [int(s) for s in re.findall(r'data-seq="(\d+)"', html)]


def test_the_page_shows_the_latest_page_and_loads_earlier_ones(settings: Any) -> None:
    settings.LODESTONE_CHAT_PAGE_SIZE = 10
    user, conversation = long_conversation(25)
    client = Client()
    client.force_login(user)
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert seqs(page) == list(range(16, 26))
    assert f"/conversations/{conversation.pk}/history/?before=16" in page
    assert 'data-last-seq="25"' in page  # the socket resumes after the newest, not the oldest shown

    older = client.get(f"/conversations/{conversation.pk}/history/?before=16").content.decode()
    assert seqs(older) == list(range(6, 16)) and "?before=6" in older
    oldest = client.get(f"/conversations/{conversation.pk}/history/?before=6").content.decode()
    assert seqs(oldest) == list(range(1, 6)) and "Show earlier messages" not in oldest


def test_a_short_chat_has_no_button(settings: Any) -> None:
    user, conversation = long_conversation(3)
    client = Client()
    client.force_login(user)
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert seqs(page) == [1, 2, 3] and "Show earlier messages" not in page


def test_a_page_does_not_start_with_results_whose_call_is_older(settings: Any) -> None:
    settings.LODESTONE_CHAT_PAGE_SIZE = 3
    user, conversation = long_conversation(2)
    call: dict[str, Any] = {"calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "1+1"}}]}
    result: dict[str, Any] = {"results": [{"call_id": "c1", "name": "calculator", "content": "2", "is_error": False}]}
    steps: list[tuple[str, dict[str, Any]]] = [(Message.Type.TOOL_CALL, call), (Message.Type.TOOL_RESULT, result)]
    for type_, payload in steps:
        services.message_append(
            conversation_id=conversation.pk, run_id=None, source="talker", type=type_, payload=payload
        )
    services.message_append(conversation_id=conversation.pk, run_id=None, source="talker", type="text", content="ok")
    services.message_append(conversation_id=conversation.pk, run_id=None, source="talker", type="text", content="ok2")
    client = Client()
    client.force_login(user)
    # The newest three would be result (4), 5, 6: the result goes with its call on the older page.
    page = client.get(f"/conversations/{conversation.pk}/").content.decode()
    assert seqs(page) == [5, 6] and "?before=5" in page
    older = client.get(f"/conversations/{conversation.pk}/history/?before=5").content.decode()
    assert 3 in seqs(older) and "calculator" in older


@pytest.mark.parametrize("before", ["", "x", "0", "-3"])
def test_bad_before_is_a_400(before: str) -> None:
    user, conversation = long_conversation(1)
    client = Client()
    client.force_login(user)
    response = client.get(f"/conversations/{conversation.pk}/history/?before={before}")
    assert response.status_code == 400 and b"before=<seq>" in response.content


def test_history_is_owner_only() -> None:
    _, conversation = long_conversation(2)
    client = Client()
    client.force_login(factories.user())
    assert client.get(f"/conversations/{conversation.pk}/history/?before=2").status_code == 404
    assert Client().get(f"/conversations/{conversation.pk}/history/?before=2").status_code == 302  # to login


def test_the_sidebar_lists_recent_conversations_and_loads_more(settings: Any) -> None:
    settings.LODESTONE_SIDEBAR_PAGE_SIZE = 4
    user = factories.user()
    agent = factories.agent(factories.replay_model(["unused"]), "sidebar_agent")
    made = [services.conversation_create(owner=user, agent=agent, title=f"Chat {i}") for i in range(6)]
    factories.conversation(factories.user(), agent=agent)  # someone else's: never listed
    client = Client()
    client.force_login(user)
    page = client.get("/conversations/").content.decode()
    sidebar = page[page.index('id="sidebar"') : page.index('class="sidebar-links"')]
    assert [f"Chat {i}" in sidebar for i in range(6)] == [False, False, True, True, True, True]  # newest first
    assert "/conversations/sidebar/?offset=4" in sidebar
    more = client.get("/conversations/sidebar/?offset=4").content.decode()
    assert "Chat 1" in more and "Chat 0" in more and "Show more" not in more and "No conversations" not in more
    assert more.count("conv-link") == 2
    assert client.get("/conversations/sidebar/?offset=x").status_code == 400
    assert Client().get("/conversations/sidebar/?offset=0").status_code == 302
    assert len(made) == 6
