"""StopWordTermination: the stop word counts in a message's prose, not in its code."""

from __future__ import annotations

from autogen_agentchat.messages import TextMessage

from agents.terminations import StopWordTermination


def said(text: str) -> list[TextMessage]:
    return [TextMessage(content=text, source="coder")]


async def test_the_stop_word_in_prose_ends_the_run_and_inside_a_code_block_does_not() -> None:
    condition = StopWordTermination("TERMINATE")
    assert await condition(said("```python\nprint(1)\nTERMINATE\n```")) is None
    assert await condition(said("```python\nx = 'TERMINATE'")) is None  # an unclosed block is code too
    stop = await condition(said("The answer is 1. TERMINATE"))
    assert stop is not None and "TERMINATE" in stop.content
    assert condition.terminated
    await condition.reset()
    assert not condition.terminated


async def test_with_code_pending_a_message_that_carries_code_does_not_end_the_run() -> None:
    condition = StopWordTermination("TERMINATE", code_pending=True)
    assert await condition(said("```python\nprint(1)\n```\nTERMINATE")) is None
    assert await condition(said("It printed 1. TERMINATE")) is not None
    plain = StopWordTermination("TERMINATE")
    assert await plain(said("```python\nprint(1)\n```\nTERMINATE")) is not None
