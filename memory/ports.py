"""The seam through which memory asks a language model to think (learn from a run, write a
consolidated summary) without knowing where models come from.

Memory sits below the apps that know model clients (``memory <- tools <- agents``), so it declares
what it needs here and a higher app installs it at start (``agents.apps``): a function from the
agent whose memories are concerned to a ``MemoryModel``. ``ClientMemoryModel`` is that model on any
AutoGen ``ChatCompletionClient``: it asks for JSON the strongest way the client supports.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from autogen_core.models import ChatCompletionClient, LLMMessage, SystemMessage, UserMessage
from pydantic import BaseModel

if TYPE_CHECKING:
    from agents.models import Agent

__all__ = [
    "ClientMemoryModel",
    "MemoryModel",
    "MemoryModelUnavailable",
    "memory_model_for",
    "set_memory_model_provider",
]


@runtime_checkable
class MemoryModel(Protocol):
    async def complete(self, *, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        """The model's reply to ``system`` + ``user``. With ``schema`` the caller wants JSON of that
        shape: constrained to it where the model supports that, asked for in words otherwise (the
        caller parses leniently either way)."""
        ...


MemoryModelProvider = Callable[["Agent"], MemoryModel]


class MemoryModelUnavailable(Exception):
    """No model can think for this agent's memories (none installed, or its model cannot be built)."""


_provider: MemoryModelProvider | None = None


def set_memory_model_provider(provider: MemoryModelProvider | None) -> MemoryModelProvider | None:
    """Install the provider (an app's ``ready``, or a test); returns the previous one."""
    global _provider
    previous, _provider = _provider, provider
    return previous


def memory_model_for(agent: Agent) -> MemoryModel:
    if _provider is None:
        raise MemoryModelUnavailable("No memory model is installed (the agents app installs one at start).")
    try:
        return _provider(agent)
    except MemoryModelUnavailable:
        raise
    except Exception as exc:
        raise MemoryModelUnavailable(f"No model for the memories of agent {agent.slug!r}: {exc}") from exc


class ClientMemoryModel:
    """A ``MemoryModel`` on an AutoGen chat client: with a schema, ``json_output=<schema>`` if the
    client has structured output, ``json_output=True`` if it has a JSON mode, plain text otherwise."""

    def __init__(self, client: ChatCompletionClient) -> None:
        self.client = client

    async def complete(self, *, system: str, user: str, schema: type[BaseModel] | None = None) -> str:
        messages: list[LLMMessage] = [SystemMessage(content=system), UserMessage(content=user, source="memory")]
        info = self.client.model_info
        json_output: bool | type[BaseModel] | None = None
        if schema is not None and info.get("structured_output", False):
            json_output = schema
        elif schema is not None and info.get("json_output", False):
            json_output = True
        result = await self.client.create(messages, json_output=json_output)
        return result.content if isinstance(result.content, str) else ""
