"""AutoGen adapter: ``LodestoneMemory`` implements ``autogen_core.memory.Memory`` on top of the
experience services, and ``MemoryScope`` tells the memory tools who is calling.

Before each model call an ``AssistantAgent`` calls ``update_context``: we take the latest message
of its model context as the query, recall the best experiences of this agent's owner (own, this
agent's and agent-less shared ones) and add them as one system message. AutoGen then emits a
``MemoryQueryEvent`` listing them, which the executor stores as a ``memory`` message (the chat's
"recalled" card). Every ORM and embedding call runs in a worker thread (``sync_to_async``): the
adapter is built and used inside the event loop.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from autogen_core import CancellationToken, MessageHandlerContext
from autogen_core.memory import (
    Memory,
    MemoryContent,
    MemoryMimeType,
    MemoryQueryResult,
    UpdateContextResult,
)
from autogen_core.model_context import ChatCompletionContext
from autogen_core.models import SystemMessage
from django.contrib.auth import get_user_model

from agents.models import Agent
from memory import services
from memory.models import Experience

__all__ = ["LodestoneMemory", "MemoryScope", "current_scope", "memory_scope"]

DEFAULT_K = 5
# Below this cosine similarity a memory is noise, not a recollection (MiniLM: unrelated ~0-0.2).
DEFAULT_MIN_SIMILARITY = 0.3


def _user(user_id: int | None) -> Any:
    if user_id is None:
        return None
    return get_user_model().objects.filter(pk=user_id).first()


def _content(recalled: services.Recalled) -> MemoryContent:
    return MemoryContent(
        content=recalled.experience.text,
        mime_type=MemoryMimeType.TEXT,
        metadata={
            "experience_id": recalled.experience.pk,
            "kind": recalled.experience.kind,
            "score": round(recalled.score, 4),
            "similarity": round(recalled.similarity, 4),
        },
    )


def _query_text(query: str | MemoryContent) -> str:
    if isinstance(query, MemoryContent):
        return query.content if isinstance(query.content, str) else str(query.content)
    return query


class LodestoneMemory(Memory):
    """The experiences of one agent for one user (the conversation's owner)."""

    def __init__(
        self,
        *,
        agent: Agent,
        user_id: int | None,
        k: int = DEFAULT_K,
        min_similarity: float = DEFAULT_MIN_SIMILARITY,
    ) -> None:
        self._agent = agent
        self._user_id = user_id
        self._k = k
        self._min_similarity = min_similarity

    def _recall(self, text: str) -> list[services.Recalled]:
        user = _user(self._user_id)
        if user is None or not text.strip():
            return []
        return services.experiences_retrieve_similar(
            context=text, user=user, k=self._k, agent=self._agent, min_similarity=self._min_similarity
        )

    async def query(
        self, query: str | MemoryContent = "", cancellation_token: CancellationToken | None = None, **kwargs: Any
    ) -> MemoryQueryResult:
        recalled = await sync_to_async(self._recall)(_query_text(query))
        return MemoryQueryResult(results=[_content(r) for r in recalled])

    async def update_context(self, model_context: ChatCompletionContext) -> UpdateContextResult:
        messages = await model_context.get_messages()
        text = ""
        # The question is the latest text in the context (the task, or the previous speaker's turn);
        # our own earlier recollections are not.
        for message in reversed(messages):
            content = getattr(message, "content", None)
            if isinstance(message, SystemMessage) and str(content).startswith(MEMORY_HEADER):
                continue
            if isinstance(content, str) and content.strip():
                text = content
                break
        if not text:
            return UpdateContextResult(memories=MemoryQueryResult(results=[]))
        result = await self.query(text)
        if result.results:
            lines = [f"{i}. {_query_text(item)}" for i, item in enumerate(result.results, 1)]
            await model_context.add_message(SystemMessage(content=MEMORY_HEADER + "\n" + "\n".join(lines)))
        return UpdateContextResult(memories=result)

    async def add(self, content: MemoryContent, cancellation_token: CancellationToken | None = None) -> None:
        text = _query_text(content)
        metadata = dict(content.metadata or {})
        kind = metadata.pop("kind", Experience.Kind.EPISODIC)
        importance = metadata.pop("importance", 0.5)

        def store() -> None:
            services.experience_store(
                text=text,
                kind=kind,
                owner=_user(self._user_id),
                agent=self._agent,
                importance=importance,
                metadata=metadata,
            )

        await sync_to_async(store)()

    async def clear(self) -> None:
        """Forget this agent's memories of this user (shared ones stay)."""

        def clear_all() -> None:
            if self._user_id is None:
                return
            for experience in Experience.objects.filter(owner_id=self._user_id, agent=self._agent):
                services.experience_delete(experience=experience)

        await sync_to_async(clear_all)()

    async def close(self) -> None:
        return None


MEMORY_HEADER = "Relevant memories from earlier work (most relevant first):"


# --- Who is calling: the memory tools need the user, the conversation and the agent.


@dataclass(frozen=True)
class MemoryScope:
    user_id: int | None
    conversation_id: int | None = None
    run_id: int | None = None
    agents: dict[str, int] = field(default_factory=dict)  # AutoGen name (slug) -> Agent pk

    def calling_agent_id(self) -> int | None:
        """The agent whose turn it is: AutoGen names a team participant's runtime type
        ``<name>_<team id>`` and keys it by the team id; one-agent scopes need no lookup."""
        try:
            agent_id = MessageHandlerContext.agent_id()
        except RuntimeError:
            agent_id = None
        if agent_id is not None:
            suffix = f"_{agent_id.key}"
            name = agent_id.type[: -len(suffix)] if agent_id.type.endswith(suffix) else agent_id.type
            if name in self.agents:
                return self.agents[name]
        if len(self.agents) == 1:
            return next(iter(self.agents.values()))
        return None


_SCOPE: contextvars.ContextVar[MemoryScope | None] = contextvars.ContextVar("lodestone_memory_scope", default=None)


def current_scope() -> MemoryScope | None:
    return _SCOPE.get()


@contextmanager
def memory_scope(scope: MemoryScope) -> Iterator[MemoryScope]:
    """Set the scope for everything run inside (tasks created inside inherit it)."""
    token = _SCOPE.set(scope)
    try:
        yield scope
    finally:
        _SCOPE.reset(token)
