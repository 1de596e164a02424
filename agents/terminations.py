"""Termination conditions of our own, on AutoGen's public ``TerminationCondition`` interface."""

from __future__ import annotations

import re
from collections.abc import Sequence

from autogen_agentchat.base import TerminatedException
from autogen_agentchat.conditions import TextMentionTermination
from autogen_agentchat.messages import BaseAgentEvent, BaseChatMessage, StopMessage

_FENCED_BLOCK = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)


class StopWordTermination(TextMentionTermination):
    """``TextMentionTermination`` that reads the stop word only in a message's prose.

    Small models write the stop word as the last line of their code block ("print(total)\\nTERMINATE"),
    which ended a coder + executor team before its code ran. So the word counts outside fenced
    blocks only, and with ``code_pending`` (a team with a code executor) not in a message that still
    carries code: the answer comes after the output has been seen. Exported as the plain condition
    (``agents.components``): the difference is only in what counts as a mention.
    """

    def __init__(self, text: str, *, code_pending: bool = False) -> None:
        super().__init__(text)
        self._code_pending = code_pending

    async def __call__(self, messages: Sequence[BaseAgentEvent | BaseChatMessage]) -> StopMessage | None:
        if self.terminated:
            raise TerminatedException("Termination condition has already been reached")
        for message in messages:
            if not isinstance(message, BaseChatMessage):
                continue
            text = message.to_text()
            prose = _FENCED_BLOCK.sub("", text)
            if self._code_pending and prose != text:
                continue
            if self._termination_text in prose:
                return await super().__call__([message])
        return None
