"""The socket's HTML fragments (conversations.rendering) and the chat's template filters."""

from __future__ import annotations

import re
from typing import Any

import pytest

from conversations import rendering
from conversations.templatetags.chat import AGENT_HUES, dom_id, duration, name_hue, pretty_json, render_markdown


def message(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 1,
        "seq": 5,
        "run_id": 7,
        "source": "writer",
        "type": "text",
        "content": "",
        "payload": {},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "latency_ms": None,
        "created_at": "2026-11-24T10:00:00+00:00",
    }
    return {**base, **fields}


def run(**fields: Any) -> dict[str, Any]:
    base = {
        "id": 7,
        "conversation_id": 3,
        "status": "running",
        "error": "",
        "stop_reason": "",
        "cancel_requested": False,
        "prompt_tokens": 0,
        "completion_tokens": 0,
    }
    return {**base, **fields}


def test_message_fragment_appends_to_the_list_and_clears_the_live_bubble() -> None:
    html = rendering.message_fragment(message(content="Hi **there**", completion_tokens=3, latency_ms=250))
    assert html.startswith('<div hx-swap-oob="beforeend:#messages">')
    assert 'data-seq="5"' in html and "<strong>there</strong>" in html
    assert '<div id="live-text" class="live-text" hx-swap-oob="true"></div>' in html
    assert "250 ms" in html and "0 → 3 tok" in html


def test_user_message_fragment_leaves_the_live_bubble_alone() -> None:
    html = rendering.message_fragment(message(type="user", source="user", content="hello"))
    assert 'class="msg msg-user"' in html and "live-text" not in html


def test_chunk_fragment_names_the_speaker_and_appends_the_text_escaped() -> None:
    html = rendering.chunk_fragment({"run_id": 7, "source": "writer", "text": " <b>to"})
    # The speaker's colour is a class (no style attribute: the CSP allows none).
    hue = name_hue("writer")
    assert f'<header id="live-head" class="msg-head hue-{hue}" hx-swap-oob="true" data-run="7"' in html
    assert 'class="agent-name">writer<' in html
    assert '<div hx-swap-oob="beforeend:#live-text"> &lt;b&gt;to</div>' in html  # spacing kept, markup escaped


def test_tool_call_card_and_live_result_share_the_call_id() -> None:
    call = message(
        type="tool_call", payload={"calls": [{"id": "call:1/x", "name": "calculator", "arguments": '{"a": 1}'}]}
    )
    card = rendering.message_fragment(call)
    target = re.search(r'class="tool-results" id="([^"]+)"', card)
    assert target is not None and re.fullmatch(r"[A-Za-z0-9_-]+", target.group(1))
    result = rendering.message_fragment(
        message(
            seq=6,
            type="tool_result",
            payload={"results": [{"call_id": "call:1/x", "name": "calculator", "content": "2", "is_error": True}]},
        )
    )
    assert f'hx-swap-oob="beforeend:#{target.group(1)}"' in result
    assert 'class="tool-result is-error" data-seq="6"' in result


@pytest.mark.parametrize(
    ("fields", "expected", "stop_button"),
    [
        ({"status": "queued"}, "Waiting for the agents", True),
        ({"status": "running"}, "The agents are replying", True),
        ({"status": "running", "cancel_requested": True}, "Stopping", False),
        ({"status": "completed", "prompt_tokens": 10, "completion_tokens": 4}, "Done", False),
        ({"status": "cancelled", "stop_reason": "Stopped by the user."}, "Stopped", False),
        ({"status": "failed", "error": "The reply failed: boom"}, "The reply failed", False),
    ],
)
def test_run_fragment_updates_the_status_bar(fields: dict[str, Any], expected: str, stop_button: bool) -> None:
    html = rendering.run_fragment(run(**fields))
    assert f'id="run-status" class="run-status" data-run-status="{fields["status"]}" hx-swap-oob="true"' in html
    assert expected in html
    assert ("/conversations/3/cancel/" in html) is stop_button
    finished = fields["status"] in {"completed", "cancelled", "failed"}
    assert ('<div id="live-text" class="live-text" hx-swap-oob="true"></div>' in html) is finished


def test_a_failed_run_appends_its_error_to_the_chat() -> None:
    html = rendering.run_fragment(run(status="failed", error="The reply failed: <script>x</script>"))
    assert '<div hx-swap-oob="beforeend:#messages"><div class="run-notice run-notice-failed" id="run-7-notice"' in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "<script>" not in html


def test_error_fragment_replaces_the_socket_error_slot() -> None:
    html = rendering.error_fragment("The message is <empty>.")
    assert 'id="socket-error"' in html and 'hx-swap-oob="true"' in html and "&lt;empty&gt;" in html


def test_history_items_attach_run_outcomes_to_the_last_item_of_their_run() -> None:
    items = [message(seq=1, run_id=1), message(seq=2, run_id=1), message(seq=3, run_id=2)]
    result = rendering.history_items(items, [run(id=1, status="failed")])
    assert [i.get("run_notice", {}).get("id") for i in result] == [None, 1, None]
    assert "run_notice" not in items[1]  # the input is left alone


# --- filters


def test_markdown_renders_and_sanitises() -> None:
    assert render_markdown("# Title\n\n- a\n- b") == "<h1>Title</h1>\n<ul>\n<li>a</li>\n<li>b</li>\n</ul>"
    assert "<pre><code" in render_markdown("```\nx = 1\n```")
    assert render_markdown("<script>alert(1)</script>") == "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"
    link = render_markdown("[x](javascript:alert(1)) [y](https://example.org)")
    assert "javascript" not in link
    assert '<a href="https://example.org" rel="noopener noreferrer nofollow">y</a>' in link
    assert "onerror" not in render_markdown('![i](x" onerror="alert(1))')
    assert "<img" not in render_markdown("![image](https://example.org/x.png)")


def test_name_hue_is_stable_and_spread() -> None:
    assert name_hue("writer") == name_hue("writer")
    assert name_hue("writer") in AGENT_HUES
    assert len({name_hue(n) for n in ["writer", "reviewer", "critic", "assistant", "planner"]}) >= 4


def test_dom_id_and_small_formatters() -> None:
    assert dom_id("call_0_1") == "call_0_1"
    assert re.fullmatch(r"call1x-[0-9a-f]{8}", dom_id("call:1/x"))
    assert dom_id("a.b") != dom_id("a:b")
    assert pretty_json('{"a": [1, 2]}') == '{\n  "a": [\n    1,\n    2\n  ]\n}'
    assert pretty_json("not json") == "not json"
    assert duration(830) == "830 ms" and duration(1234) == "1.2 s" and duration(None) == ""
