"""The coder + executor preset pair: AutoGen's CodeExecutorAgent with our sandbox as executor."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import sync_to_async

from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import messages, wait_for_run
from tools.code_executor import code_pair_create

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("bwrap")]


async def run_pair(script: list[str], *, prefix: str, text: str) -> tuple[Run, list[Any]]:
    """The preset pair on a scripted coder, one message posted: the finished run and its messages."""
    model = await sync_to_async(factories.replay_model)(script)
    team = await sync_to_async(code_pair_create)(model_config=model, prefix=prefix)
    user = await sync_to_async(factories.user)()
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text=text)
    run = await wait_for_run(run.pk, timeout=60)
    return run, await sync_to_async(messages)(conversation.pk)


CODE = "Here it is:\n\n```python\nimport os, socket\nprint(sum(range(10)))\nprint('/etc' in os.listdir('/'))\n```"


async def test_coder_writes_and_executor_runs_in_the_sandbox(inline_runner: InlineRunner) -> None:
    run, rows = await run_pair([CODE, "The sum is 45. TERMINATE"], prefix="t1", text="Sum of 0..9?")

    assert run.status == Run.Status.COMPLETED, run.error
    assert [(m.source, m.type) for m in rows] == [
        ("user", "user"),
        ("t1_coder", "text"),
        ("t1_executor", "text"),
        ("t1_coder", "text"),
    ]
    assert rows[2].content == "45\nFalse"  # ran, and saw no /etc: the sandbox's filesystem


async def test_failing_code_reports_the_error(inline_runner: InlineRunner) -> None:
    bad = "```python\nraise SystemExit('nope')\n```"
    run, rows = await run_pair([bad, "It failed. TERMINATE"], prefix="t2", text="go")
    assert run.status == Run.Status.COMPLETED, run.error
    executor_reply = rows[2]
    assert "nope" in executor_reply.content and "[failed:" in executor_reply.content


async def test_a_stop_word_written_with_the_code_waits_for_the_code_to_run(inline_runner: InlineRunner) -> None:
    # The 1.5B's habit: the stop word as the block's last line (not Python), or right after it.
    early = "```python\nprint(6 * 7)\nTERMINATE\n```\nTERMINATE"
    run, rows = await run_pair([early, "It is 42. TERMINATE"], prefix="t3", text="6*7?")

    assert run.status == Run.Status.COMPLETED, run.error
    assert [m.source for m in rows] == ["user", "t3_coder", "t3_executor", "t3_coder"]
    assert rows[2].content == "42"  # the block ran without its stop-word line
    assert rows[3].content == "It is 42. TERMINATE"
