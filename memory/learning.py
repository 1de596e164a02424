"""What a memory-enabled agent keeps after a run (``LODESTONE_MEMORY_MODE``).

``episodic``
    The task and the agent's last answer, verbatim (``services.run_experiences_store``).

``learn`` (the default)
    As mem0 does: the model reads the run and *extracts* the few facts, preferences and lessons
    worth keeping, then *reconciles* each with the most similar memories the owner already has,
    deciding ADD, UPDATE <id>, DELETE <id> or NONE.

    A small model must not turn its own answers into facts. So the model is shown the user's words
    only, a candidate fact or preference is kept only if nearly all its words are the user's and none
    of the rest is the assistant's (``grounded``: "What is my favourite colour?" answered "Red." does
    not become "The user's favourite colour is red.", whoever invents it), and lessons (what to do
    next time, from the user's corrections) are kept only from a run that went without errors,
    grounded in the run's words.

    Only memories of the owner's own (never shared ones) are updated or deleted, only among the
    few shown to the model (it answers with their position, not a database id), a decision that
    does not parse is an ADD, and a DELETE whose candidate is not itself a negation ("no longer",
    "not", ...) replaces the memory's text instead (nothing is lost, nothing destroyed). Every change is a revision in
    the memory's history (``ExperienceRevision``) naming the run, and every memory links to the
    messages it came from (``Experience.source_messages``).

In either mode a failed, cancelled or unfinished run stores nothing: the services check that the
run completed.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ImproperlyConfigured, ValidationError
from pydantic import BaseModel, Field, field_validator
from pydantic import ValidationError as PydanticValidationError

from agents.models import Agent
from conversations.models import Message, Run
from memory import services
from memory.models import Experience
from memory.ports import MemoryModel, MemoryModelUnavailable, memory_model_for

logger = logging.getLogger(__name__)

__all__ = [
    "Decision",
    "Extraction",
    "Learned",
    "grounded",
    "parse_json",
    "run_memories_learn",
    "run_remember",
]

MAX_CANDIDATES = 5
CANDIDATE_MAX_CHARS = 500
USER_TEXT_MAX_CHARS = 4_000
AGENT_TEXT_MAX_CHARS = 2_000
RECONCILE_K = 5
# Below this cosine similarity an existing memory is about something else (MiniLM: unrelated ~0-0.2,
# "favourite colour is red" / "... is teal" ~0.8).
RECONCILE_MIN_SIMILARITY = 0.5
# A fact or preference may add one word of its own in four ("The user's favourite colour is
# red." from "What is my favourite colour?" adds "red" to three: not grounded); a lesson, one in two.
FACT_GROUNDED_SHARE = 0.75
GROUNDED_SHARE = 0.5
IMPORTANCE = {"fact": 0.7, "preference": 0.7, "lesson": 0.6}
Category = Literal["fact", "preference", "lesson"]
T = TypeVar("T", bound=BaseModel)


# --- What the model answers


def _strings(value: Any) -> list[str]:
    """A list of non-empty strings from whatever a small model wrote (a string, a list, dicts)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    out = []
    for item in value:
        if isinstance(item, dict):
            item = item.get("text") or item.get("fact") or next(iter(item.values()), "")
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
    return out


class Extraction(BaseModel):
    facts: list[str] = Field(default_factory=list, description="What the user stated, as short sentences.")
    preferences: list[str] = Field(default_factory=list, description="How the user likes things done.")
    lessons: list[str] = Field(default_factory=list, description="What to do differently next time.")

    @field_validator("facts", "preferences", "lessons", mode="before")
    @classmethod
    def _lenient(cls, value: Any) -> list[str]:
        return _strings(value)


class Decision(BaseModel):
    event: Literal["ADD", "UPDATE", "DELETE", "NONE"]
    id: int | None = Field(default=None, description="The number of the existing memory to update or delete.")
    text: str = Field(default="", description="The memory's text after an ADD or UPDATE.")

    @field_validator("event", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("id", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, str):
            digits = re.search(r"\d+", value)
            return int(digits.group()) if digits else None
        return value

    @field_validator("text", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return value.strip() if isinstance(value, str) else ""


def parse_json(text: str) -> dict[str, Any] | None:
    """The first JSON object in a model's reply: the whole reply, a fenced block, or the first
    ``{...}`` that parses (models add prose around their JSON)."""
    text = text.strip()
    fenced = re.search(r"```(?:json)?\s*(.*?)```", text, re.DOTALL)
    for attempt in (text, fenced.group(1) if fenced else ""):
        try:
            value = json.loads(attempt)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for start in (m.start() for m in re.finditer(r"\{", text)):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _parse(reply: str, schema: type[T]) -> T | None:
    data = parse_json(reply)
    if data is None:
        return None
    try:
        return schema.model_validate(data)
    except PydanticValidationError:
        return None


# --- Grounding: are these the user's words?

_WORD = re.compile(r"[^\W_]+")
# fmt: off
_STOP = frozenset({
    "the", "and", "for", "are", "was", "were", "has", "have", "had", "this", "that", "these", "those", "with",
    "from", "into", "about", "your", "yours", "you", "user", "users", "user's", "they", "them", "their", "its",
    "it's", "not", "but", "also", "very", "just", "than", "then", "there", "here", "what", "which", "who", "whom",
    "when", "where", "why", "how", "can", "could", "should", "would", "will", "shall", "may", "might", "must",
    "does", "did", "done", "been", "being", "is", "am", "be", "of", "to", "in", "on", "at", "by", "as", "an", "or",
    "if", "so", "do", "my", "me", "mine", "our", "ours", "we", "i",
})
# fmt: on


# Negations: a candidate may negate only what the user negated; a candidate that only says something
# stopped being true makes a DELETE of what it contradicts keep nothing.
_NEGATION = re.compile(r"n't\b|\b(?:no longer|not|never|anymore|any more|stopped|no)\b", re.IGNORECASE)


# The words a memory sentence is framed with, which the user need not have said.
_FRAMING = frozenset({"prefers", "prefer", "likes", "like", "wants", "want", "called", "named", "uses", "has"})


_NUMBER = re.compile(r"\d+(?:[.:,]\d+)*")


def _numbers(text: str) -> set[str]:
    """The numbers in ``text``, by their digits ("4,721" and "4721" are one number)."""
    return {re.sub(r"\D", "", number) for number in _NUMBER.findall(text)}


def _content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in _STOP}


def _word_in(word: str, words: set[str]) -> bool:
    if word in words:
        return True
    # "favorite" / "favourite", "color" / "colour", "deploys" / "deploy"
    return len(word) >= 4 and any(difflib.SequenceMatcher(None, word, w).ratio() >= 0.8 for w in words)


def grounded(candidate: str, source: str, *, foreign: str = "", share: float = GROUNDED_SHARE) -> bool:
    """Whether the candidate says what ``source`` says: at least ``share`` of its content words
    (besides framing verbs such as "prefers") are in ``source``, spelling variants counting, and
    none of the others comes from ``foreign`` (what the assistant said: a fact about the user
    carrying a word only the assistant used is the assistant's claim)."""
    words = _content_words(candidate) - _FRAMING
    if not words:
        return False
    if _NEGATION.search(candidate) and not _NEGATION.search(source):
        return False  # "The user does not like pizza." from "Do I like pizza?"
    if _numbers(candidate) - _numbers(source):
        return False  # "standup at 10:00" from "standup at 9:45": a number nobody said is invented
    known = _content_words(source)
    missing = [w for w in words if not _word_in(w, known)]
    if foreign and any(_word_in(w, _content_words(foreign)) for w in missing):
        return False
    return 1 - len(missing) / len(words) >= share


# --- The run, as the model sees it


@dataclass
class Material:
    run: Run
    owner: AbstractBaseUser
    agent: Agent  # whose model learns, and whose memories these become
    user_messages: list[Message]
    agent_messages: list[Message]
    lessons_allowed: bool

    @property
    def user_text(self) -> str:
        return "\n".join(m.content.strip() for m in self.user_messages)[:USER_TEXT_MAX_CHARS]

    @property
    def agent_text(self) -> str:
        return "\n".join(f"{m.source}: {m.content.strip()}" for m in self.agent_messages)[:AGENT_TEXT_MAX_CHARS]


def _material(run_id: int) -> Material | None:
    run = services.completed_run(run_id)
    if run is None:
        return None
    agents = services.run_memory_agents(run)
    if not agents:
        return None
    messages = list(run.messages.order_by("seq"))
    user_messages = [m for m in messages if m.type == Message.Type.USER and m.content.strip()]
    if not user_messages:
        return None
    agent_messages = [m for m in messages if m.type == Message.Type.TEXT and m.content.strip()]
    spoke = {m.source for m in agent_messages}
    learner = next((a for a in agents if a.slug in spoke), agents[0])
    troubled = any(
        m.type == Message.Type.ERROR or (m.type == Message.Type.TOOL_RESULT and m.payload.get("is_error"))
        for m in messages
    )
    return Material(
        run=run,
        owner=run.conversation.owner,
        agent=learner,
        user_messages=user_messages,
        agent_messages=agent_messages,
        lessons_allowed=bool(agent_messages) and not troubled,
    )


# --- Extract

EXTRACT_SYSTEM = """You pick out what is worth remembering about the user from a conversation.
Reply with JSON only, in this shape: {"facts": [], "preferences": [], "lessons": []}
- facts: what the user stated about themselves, their work or their world. Short sentences about "the user".
- preferences: how the user likes the assistant to answer or work.
- lessons: usually empty. Only when the user corrected or complained about the assistant: what to do next time.
Questions, greetings and small talk are not facts. What the assistant said is never a fact.

Examples:
User: Hello, can you help me?
{"facts": [], "preferences": [], "lessons": []}
User: I live in Porto and my dog is called Rex.
{"facts": ["The user lives in Porto.", "The user's dog is called Rex."], "preferences": [], "lessons": []}
User: Please answer in bullet points.
{"facts": [], "preferences": ["The user wants answers in bullet points."], "lessons": []}
User: What time is it in Tokyo?
{"facts": [], "preferences": [], "lessons": []}
User: No, that is wrong: the server runs Debian, not Ubuntu.
{"facts": ["The server runs Debian."], "preferences": [], "lessons": ["Ask which system before assuming Ubuntu."]}"""


def _extract_prompt(material: Material) -> str:
    """The user's words only: shown the assistant's reply, Qwen2.5-Coder-0.5B files it (or the user's
    fact) under lessons, or states it as a fact about the user."""
    return f"User: {material.user_text}"


@dataclass(frozen=True)
class Candidate:
    category: Category
    text: str
    sources: tuple[Message, ...]


def candidates_from(extraction: Extraction, material: Material) -> list[Candidate]:
    """The extraction's items that are grounded in the run, without repeats, at most ``MAX_CANDIDATES``."""
    user_text = material.user_text
    everything = f"{user_text}\n{material.agent_text}"
    found: list[Candidate] = []
    seen: set[str] = set()
    items: list[tuple[Category, str]] = [("fact", t) for t in extraction.facts]
    items += [("preference", t) for t in extraction.preferences]
    if material.lessons_allowed:
        items += [("lesson", t) for t in extraction.lessons]
    for category, text in items:
        text = text.strip()[:CANDIDATE_MAX_CHARS]
        key = " ".join(_WORD.findall(text.lower()))
        if not key or key in seen:
            continue
        if not (
            grounded(text, everything)
            if category == "lesson"
            else grounded(text, user_text, foreign=material.agent_text, share=FACT_GROUNDED_SHARE)
        ):
            logger.info("Run %s: dropped an ungrounded %s: %r", material.run.pk, category, text)
            continue
        seen.add(key)
        sources = material.user_messages + (material.agent_messages if category == "lesson" else [])
        found.append(Candidate(category=category, text=text, sources=tuple(sources)))
    return found[:MAX_CANDIDATES]


# --- Reconcile

RECONCILE_SYSTEM = """You keep a user's memories up to date.
Compare the new information with the existing memories and choose one event:
- ADD: it is new (no existing memory says it).
- UPDATE: it changes or adds detail to an existing memory; give that memory's number and the memory's new text.
- DELETE: it shows an existing memory is no longer true and there is nothing new to keep; give its number.
- NONE: an existing memory already says it.
Reply with JSON only:
{"event": "ADD" | "UPDATE" | "DELETE" | "NONE", "id": <number or null>, "text": "<text for ADD or UPDATE>"}

Example:
Existing memories:
1. The user's dog is called Rex.
New information: The user's dog is now called Max.
{"event": "UPDATE", "id": 1, "text": "The user's dog is called Max."}"""


def _reconcile_prompt(candidate: Candidate, similar: Sequence[services.Recalled]) -> str:
    listing = "\n".join(f"{i}. {r.experience.text[:CANDIDATE_MAX_CHARS]}" for i, r in enumerate(similar, 1))
    return f"Existing memories:\n{listing}\nNew information: {candidate.text}"


def _similar(material: Material, candidate: Candidate) -> list[services.Recalled]:
    """The owner's own memories (not shared, not merged away) most like the candidate."""
    found = services.experiences_retrieve_similar(
        context=candidate.text,
        user=material.owner,
        k=RECONCILE_K,
        agent=material.agent,
        min_similarity=RECONCILE_MIN_SIMILARITY,
    )
    return [
        r for r in found if r.experience.owner_id == material.owner.pk and r.experience.consolidated_into_id is None
    ]


@dataclass(frozen=True)
class Plan:
    event: str
    target: Experience | None = None
    text: str = ""
    how: str = "model"  # "model", or why no model was asked


def _normalised(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


async def decide(model: MemoryModel, candidate: Candidate, similar: Sequence[services.Recalled]) -> Plan:
    if not similar:
        return Plan("ADD", text=candidate.text, how="nothing similar")
    for recalled in similar:
        if _normalised(recalled.experience.text) == _normalised(candidate.text):
            return Plan("NONE", target=recalled.experience, how="already remembered")
    reply = await model.complete(system=RECONCILE_SYSTEM, user=_reconcile_prompt(candidate, similar), schema=Decision)
    decision = _parse(reply, Decision)
    if decision is None:
        return Plan("ADD", text=candidate.text, how="unreadable decision")
    target = similar[decision.id - 1].experience if decision.id and 1 <= decision.id <= len(similar) else None
    if decision.event in ("UPDATE", "DELETE") and target is None:
        # An update of nothing keeps the information; a delete of nothing deletes nothing.
        return Plan("ADD", text=candidate.text, how="no such memory") if decision.event == "UPDATE" else Plan("NONE")
    if decision.event == "UPDATE":
        # The new text must still say the new information (a small model may write anything).
        text = decision.text if decision.text and grounded(candidate.text, decision.text) else candidate.text
        return Plan("UPDATE", target=target, text=text)
    if decision.event == "ADD":
        return Plan("ADD", text=candidate.text)
    if decision.event == "DELETE" and not _NEGATION.search(candidate.text):
        # The new information contradicts the memory but is itself worth keeping ("... is teal"
        # against "... is red"): deleting would lose both, so it replaces the memory's text.
        return Plan("UPDATE", target=target, text=candidate.text, how="a delete that brings new information")
    return Plan(decision.event, target=target)


@dataclass(frozen=True)
class Learned:
    """What became of one candidate."""

    event: str
    category: str
    candidate: str
    experience_id: int | None
    how: str = "model"
    text: str = field(default="")


def _apply(material: Material, candidate: Candidate, plan: Plan) -> Learned:
    revision = services.Revision.model(material.run)
    importance = IMPORTANCE[candidate.category]
    if plan.event == "ADD":
        experience = services.experience_store(
            text=plan.text,
            kind=Experience.Kind.SEMANTIC,
            owner=material.owner,
            agent=material.agent,
            conversation=material.run.conversation,
            run=material.run,
            importance=importance,
            metadata={"source": "learned", "category": candidate.category, "run": material.run.pk},
            source_messages=candidate.sources,
            revision=revision,
        )
        return Learned("ADD", candidate.category, candidate.text, experience.pk, plan.how, experience.text)
    target = plan.target
    if plan.event == "NONE" or target is None:
        return Learned("NONE", candidate.category, candidate.text, target.pk if target else None, plan.how)
    if plan.event == "UPDATE":
        experience = services.experience_update(
            experience=target,
            text=plan.text,
            importance=max(target.importance, importance),
            source_messages=candidate.sources,
            revision=revision,
        )
        return Learned("UPDATE", candidate.category, candidate.text, experience.pk, plan.how, experience.text)
    if plan.event == "DELETE":
        pk = target.pk
        services.experience_delete(experience=target, revision=revision)
        return Learned("DELETE", candidate.category, candidate.text, pk, plan.how)
    raise ValueError(f"Unknown memory event {plan.event!r}.")


async def run_memories_learn(*, run_id: int) -> list[Learned]:
    """Learn mode (module doc): extract from a completed run, reconcile, apply. A run that did not
    complete, or has no memory-enabled agent, learns nothing."""
    material = await sync_to_async(_material)(run_id)
    if material is None:
        return []
    model = memory_model_for(material.agent)
    reply = await model.complete(system=EXTRACT_SYSTEM, user=_extract_prompt(material), schema=Extraction)
    extraction = _parse(reply, Extraction)
    if extraction is None:
        logger.warning("Run %s: the model's extraction was not JSON: %r", run_id, reply[:200])
        return []
    learned = []
    for candidate in candidates_from(extraction, material):
        similar = await sync_to_async(_similar)(material, candidate)
        plan = await decide(model, candidate, similar)
        try:
            learned.append(await sync_to_async(_apply)(material, candidate, plan))
        except ValidationError as exc:  # e.g. a text that cannot be stored: skip this one
            logger.warning("Run %s: could not keep %r: %s", run_id, candidate.text, exc)
    return learned


# --- The entry point


async def _episodic(run_id: int) -> list[Any]:
    return await sync_to_async(services.run_experiences_store)(run_id=run_id)


async def _learn(run_id: int) -> list[Any]:
    return await run_memories_learn(run_id=run_id)


MODES: dict[str, Callable[[int], Awaitable[list[Any]]]] = {"episodic": _episodic, "learn": _learn}


async def run_remember(*, run_id: int) -> list[Any]:
    """After a run: what its memory-enabled agents keep, as ``LODESTONE_MEMORY_MODE`` says."""
    mode = getattr(settings, "LODESTONE_MEMORY_MODE", "learn")
    handler = MODES.get(mode)
    if handler is None:
        raise ImproperlyConfigured(f"LODESTONE_MEMORY_MODE is {mode!r}; use one of {', '.join(sorted(MODES))}.")
    try:
        return await handler(run_id)
    except MemoryModelUnavailable as exc:
        logger.warning("Run %s: no model to learn with: %s", run_id, exc)
        return []
