"""``memory_search`` and ``memory_store``: an agent reads and writes its experiences on purpose.

They act for whoever the run acts for: the executor sets a ``memory.autogen.MemoryScope`` (the
conversation's owner, the conversation, the run, the team's agents) around the run, and the
calling agent is the one whose turn it is. Outside a run there is no one to act for: they say so.
Async on purpose: a sync tool would run in a worker thread without the run's context variables.
"""

from __future__ import annotations

from typing import Annotated, Any

from asgiref.sync import sync_to_async

from tools.registry import builtin_tool

NO_SCOPE = "Error: the memory tools work only inside a conversation."


def _caller() -> tuple[Any, Any, Any] | None:
    """(scope, user, calling agent or None) of the run this call is made in; None outside one."""
    from django.contrib.auth import get_user_model

    from agents.models import Agent
    from memory.autogen import current_scope

    scope = current_scope()
    if scope is None or scope.user_id is None:
        return None
    user = get_user_model().objects.filter(pk=scope.user_id).first()
    if user is None:
        return None
    agent_id = scope.calling_agent_id()
    return scope, user, Agent.objects.filter(pk=agent_id).first() if agent_id else None


def _search(query: str, k: int) -> str:
    from django.core.exceptions import ValidationError

    from memory import services

    caller = _caller()
    if caller is None:
        return NO_SCOPE
    _, user, agent = caller
    try:
        found = services.experiences_retrieve_similar(context=query, user=user, k=max(1, min(int(k), 20)), agent=agent)
    except ValidationError as exc:
        return "Error: " + " ".join(exc.messages)
    if not found:
        return "No memories found."
    return "\n".join(f"[{r.experience.pk}] (score {r.score:.2f}) {r.experience.text}" for r in found)


def _store(text: str, importance: float, kind: str) -> str:
    from django.core.exceptions import ValidationError

    from conversations.models import Conversation, Run
    from memory import services

    caller = _caller()
    if caller is None:
        return NO_SCOPE
    scope, user, agent = caller
    try:
        experience = services.experience_store(
            text=text,
            kind=kind,
            importance=importance,
            owner=user,
            agent=agent,
            conversation=Conversation.objects.filter(pk=scope.conversation_id).first()
            if scope.conversation_id
            else None,
            run=Run.objects.filter(pk=scope.run_id).first() if scope.run_id else None,
            metadata={"source": "tool"},
        )
    except ValidationError as exc:
        return "Error: " + " ".join(exc.messages)
    return f"Stored memory {experience.pk}."


@builtin_tool(
    "memory_search",
    "Search your long-term memory (experiences from earlier conversations) for what is relevant to a query.",
)
async def memory_search(
    query: Annotated[str, "What to look for, in plain words"],
    k: Annotated[int, "How many memories to return (1-20)"] = 5,
) -> str:
    return await sync_to_async(_search)(query, k)


@builtin_tool("memory_store", "Remember something for later conversations (a fact, a lesson, a preference).")
async def memory_store(
    text: Annotated[str, "What to remember, as a self-contained sentence"],
    importance: Annotated[float, "How much it matters, 0 to 1"] = 0.5,
    kind: Annotated[str, "'semantic' for knowledge, 'episodic' for an event"] = "semantic",
) -> str:
    return await sync_to_async(_store)(text, importance, kind)
