"""The conversation manager: who answers next, and why.

``select_agent`` is the routing rule for one message: an ``@name`` mention picks that agent;
otherwise capability routing picks the agent whose description and capabilities best match the
message (embedding similarity with the configured embedder; a lexical overlap score when no
embedder can be loaded), but only when the match is clear. ``SelectorRouter`` plugs that rule into
AutoGen's ``SelectorGroupChat`` as its ``selector_func``, and asks the selector model when routing
is not confident: with AutoGen's retry feedback, up to ``max_selector_attempts`` times, and then a
clear failure instead of AutoGen's silent fallback to the previous speaker. Every decision is
kept, with its reason, for the executor to store as a ``routing`` message.

``map_team_event`` turns the team-level AutoGen events (speaker selections, Magentic-One ledgers)
into the messages the chat shows.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

from autogen_agentchat.messages import (
    BaseAgentEvent,
    BaseChatMessage,
    HandoffMessage,
    SelectSpeakerEvent,
    TextMessage,
)
from autogen_agentchat.teams import BaseGroupChat
from autogen_core.models import AssistantMessage, ChatCompletionClient, LLMMessage, UserMessage
from pydantic import BaseModel, create_model

from agents.factory import DEFAULT_SELECTOR_PROMPT, MAX_SELECTOR_ATTEMPTS, TeamSpec
from agents.magentic import ORCHESTRATOR_NAME, TASK_LEDGER_PREFIX, LedgerEvent
from agents.models import Team
from agents.providers import model_client_for
from conversations.models import Message

if TYPE_CHECKING:
    from conversations.executor import MappedEvent

logger = logging.getLogger(__name__)

MENTION_RE = re.compile(r"(?<![\w@])@([A-Za-z_][A-Za-z0-9_]*)")
WORD_RE = re.compile(r"[a-z0-9]+")
# Capability routing decides only when the best match is clear.
EMBEDDING_MIN_SCORE = 0.15
EMBEDDING_MIN_MARGIN = 0.04
LEXICAL_MIN_MARGIN = 1.0
_STOPWORDS_TEXT = """a an and are as at be but by can could do does for from has have how i in is it its me my of on
or our please should so that the their them then there these this to us was we what when where which who why will
with would you your agent agents"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


class SelectorError(Exception):
    """The selector model named no valid speaker in all its attempts."""


@dataclass(frozen=True)
class Candidate:
    slug: str
    name: str
    description: str
    capabilities: tuple[str, ...] = ()

    @property
    def profile(self) -> str:
        tags = ", ".join(self.capabilities)
        return f"{self.name}: {self.description}" + (f" Capabilities: {tags}." if tags else "")


@dataclass
class RoutingDecision:
    agent: str
    method: str  # "mention" | "capability" | "model"
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_payload(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "method": self.method,
            "reason": self.reason,
            "scores": {k: round(v, 3) for k, v in self.scores.items()},
        }


def candidates_for(spec: TeamSpec) -> list[Candidate]:
    return [Candidate(a.slug, a.name, a.description, tuple(a.capabilities or ())) for a in spec.agents]


def mentioned_agent(text: str, candidates: Sequence[Candidate]) -> Candidate | None:
    """The one agent addressed as ``@slug`` (or ``@Name`` without spaces); ``None`` if none or several."""
    by_handle: dict[str, Candidate] = {}
    for candidate in candidates:
        by_handle[candidate.slug.lower()] = candidate
        by_handle.setdefault(re.sub(r"\s+", "_", candidate.name.strip()).lower(), candidate)
    found = {
        by_handle[m.lower()].slug: by_handle[m.lower()] for m in MENTION_RE.findall(text) if m.lower() in by_handle
    }
    return next(iter(found.values())) if len(found) == 1 else None


def _stem(word: str) -> str:
    for suffix in ("ing", "ers", "er", "ed", "es", "s"):
        if len(word) > len(suffix) + 2 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def _terms(text: str) -> set[str]:
    return {_stem(w) for w in WORD_RE.findall(text.lower()) if w not in STOPWORDS and len(w) > 1}


def lexical_scores(text: str, candidates: Sequence[Candidate]) -> dict[str, float]:
    """Shared content words between the message and each profile (capabilities count double)."""
    words = _terms(text)
    scores: dict[str, float] = {}
    for c in candidates:
        described = _terms(f"{c.name} {c.description}")
        tagged = _terms(" ".join(c.capabilities))
        scores[c.slug] = float(len(words & described) + 2 * len(words & tagged))
    return scores


class CapabilityScorer:
    """Scores candidates against a message by embedding similarity; profile vectors are computed
    once per scorer. Falls back to lexical overlap when no embedder can be loaded."""

    def __init__(self, candidates: Sequence[Candidate]) -> None:
        self._candidates = list(candidates)
        self._profiles: dict[str, Any] | None = None
        self._embedder: Any = None
        self.method = "embedding"
        try:
            from memory.embeddings import get_embedder

            self._embedder = get_embedder()
        except Exception as exc:  # no embedder installed or configured: lexical routing still works
            logger.info("Capability routing without embeddings: %s", exc)
            self.method = "lexical"

    def scores(self, text: str) -> dict[str, float]:
        if self._embedder is not None:
            try:
                return self._embedding_scores(text)
            except Exception as exc:
                logger.warning("Embedding failed, routing lexically: %s", exc)
                self._embedder, self.method = None, "lexical"
        return lexical_scores(text, self._candidates)

    def _embedding_scores(self, text: str) -> dict[str, float]:
        if self._profiles is None:
            vectors = self._embedder.embed([c.profile for c in self._candidates])
            self._profiles = {c.slug: vectors[i] for i, c in enumerate(self._candidates)}
        query = self._embedder.embed([text])[0]
        return {slug: float(vector @ query) for slug, vector in self._profiles.items()}

    def confident(self, scores: dict[str, float], allowed: Sequence[str]) -> tuple[str, float, float] | None:
        ranked = sorted(((scores.get(s, 0.0), s) for s in allowed), reverse=True)
        if not ranked:
            return None
        best_score, best = ranked[0]
        second = ranked[1][0] if len(ranked) > 1 else -math.inf
        if self.method == "embedding":
            ok = best_score >= EMBEDDING_MIN_SCORE and best_score - second >= EMBEDDING_MIN_MARGIN
        else:
            ok = best_score > 0 and best_score - second >= LEXICAL_MIN_MARGIN
        return (best, best_score, second) if ok else None


def select_agent(
    text: str,
    candidates: Sequence[Candidate],
    *,
    allowed: Sequence[str] | None = None,
    scorer: CapabilityScorer | None = None,
) -> RoutingDecision | None:
    """The routing rule for one message: an @mention, else a clear capability match, else ``None``
    (the caller asks the selector model)."""
    mentioned = mentioned_agent(text, candidates)
    if mentioned is not None and (allowed is None or mentioned.slug in allowed):
        return RoutingDecision(mentioned.slug, "mention", f"Addressed as @{mentioned.slug}.")
    allowed = list(allowed) if allowed is not None else [c.slug for c in candidates]
    if len(allowed) == 1:
        return RoutingDecision(allowed[0], "capability", "The only agent who may speak next.")
    scorer = scorer or CapabilityScorer(candidates)
    scores = scorer.scores(text)
    pick = scorer.confident(scores, allowed)
    if pick is None:
        return None
    best, best_score, second = pick
    how = "embedding similarity" if scorer.method == "embedding" else "shared keywords"
    margin = "" if second == -math.inf else f", next best {second:.2f}"
    return RoutingDecision(
        best,
        "capability",
        f"Best match of description and capabilities ({how} {best_score:.2f}{margin}).",
        scores={s: scores.get(s, 0.0) for s in allowed},
    )


def _mentions_in_answer(text: str, names: Sequence[str]) -> list[str]:
    """AutoGen's rule for a selector model's answer: whole-word names, ``_`` also as space or ``\\_``."""
    found = []
    for name in names:
        variants = "|".join(re.escape(v) for v in {name, name.replace("_", " "), name.replace("_", r"\_")})
        if re.search(rf"(?<=\W)({variants})(?=\W)", f" {text} "):
            found.append(name)
    return found


@lru_cache(maxsize=64)
def _speaker_choice(allowed: tuple[str, ...]) -> type[BaseModel]:
    """The structured answer of a selector model: ``{"speaker": <one of allowed>}``."""
    speaker: Any = Literal[allowed]  # a Literal of the names: an enum in the JSON schema
    return create_model("NextSpeaker", speaker=(speaker, ...))


def _speaker_in_json(answer: str, names: Sequence[str]) -> list[str] | None:
    """The speaker a JSON answer names (``[]`` for an unknown name); ``None`` if it is no such JSON."""
    try:
        value = json.loads(answer)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("speaker"), str):
        return None
    return [value["speaker"]] if value["speaker"] in names else []


class SelectorRouter:
    """``selector_func`` of a selector team: our routing first, the selector model as fallback."""

    def __init__(self, spec: TeamSpec, *, model_client: ChatCompletionClient | None = None) -> None:
        self.spec = spec
        self.candidates = candidates_for(spec)
        self.names = [c.slug for c in self.candidates]
        self.scorer = CapabilityScorer(self.candidates)
        self.prompt = spec.selector_prompt or DEFAULT_SELECTOR_PROMPT
        self.allow_repeated = spec.allow_repeated_speaker
        self.max_attempts = MAX_SELECTOR_ATTEMPTS
        self._client = model_client
        self.decisions: deque[RoutingDecision] = deque()

    @property
    def client(self) -> ChatCompletionClient:
        if self._client is None:
            self._client = model_client_for(self.spec.orchestrator_config())
        return self._client

    async def select(self, thread: Sequence[BaseAgentEvent | BaseChatMessage]) -> str:
        chat = [m for m in thread if isinstance(m, BaseChatMessage)]
        previous = next((m.source for m in reversed(chat) if m.source in self.names), None)
        allowed = [n for n in self.names if self.allow_repeated or n != previous] or list(self.names)
        text = chat[-1].to_model_text() if chat else ""
        decision = await asyncio.to_thread(select_agent, text, self.candidates, allowed=allowed, scorer=self.scorer)
        if decision is None:
            decision = await self._ask_model(chat, allowed)
        self.decisions.append(decision)
        return decision.agent

    async def _ask_model(self, chat: Sequence[BaseChatMessage], allowed: list[str]) -> RoutingDecision:
        """Asks the selector model, with AutoGen's feedback on a bad answer. A client with structured
        output is asked for ``{"speaker": <one of allowed>}`` (an enum, so a constrained local model
        can only name a valid speaker); others answer in text, parsed by AutoGen's rule."""
        roles = "\n".join(re.sub(r"\s+", " ", f"{c.slug}: {c.description}").strip() for c in self.candidates)
        history = "\n".join(f"{m.source}: {m.to_model_text()}".rstrip() + "\n" for m in chat)
        prompt = self.prompt.format(roles=roles, participants=str(allowed), history=history)
        speaker_schema = _speaker_choice(tuple(allowed)) if self.client.model_info.get("structured_output") else None
        if speaker_schema is not None:
            prompt += f'\n\nAnswer in JSON: {{"speaker": "<one of {", ".join(allowed)}>"}}'
        messages: list[LLMMessage] = [UserMessage(content=prompt, source="user")]
        prompt_tokens = completion_tokens = 0
        answer = ""
        for attempt in range(1, self.max_attempts + 1):
            if speaker_schema is not None:
                result = await self.client.create(messages, json_output=speaker_schema)
            else:
                result = await self.client.create(messages)
            prompt_tokens += result.usage.prompt_tokens
            completion_tokens += result.usage.completion_tokens
            answer = result.content if isinstance(result.content, str) else str(result.content)
            named = _speaker_in_json(answer, self.names)
            if named is None:  # no JSON asked for, or none given: the names in the text
                named = _mentions_in_answer(answer, self.names)
            if len(named) == 1 and named[0] in allowed:
                why = "Routing was not confident; the selector model chose this agent"
                return RoutingDecision(
                    named[0],
                    "model",
                    f"{why}{f' on attempt {attempt}' if attempt > 1 else ''}.",
                    prompt_tokens=prompt_tokens,
                    completion_tokens=completion_tokens,
                )
            if not named:
                feedback = f"No valid name was mentioned. Please select from: {allowed}."
            elif len(named) > 1:
                feedback = f"Expected exactly one name to be mentioned. Please select only one from: {allowed}."
            else:
                feedback = f"Repeated speaker is not allowed, please select a different name from: {allowed}."
            messages += [
                AssistantMessage(content=answer, source="selector"),
                UserMessage(content=feedback, source="user"),
            ]
        raise SelectorError(
            f"The selector model named no valid speaker in {self.max_attempts} attempts "
            f"(last answer: {answer[:200]!r}; expected one of {', '.join(allowed)})."
        )

    def take_decision(self, agent: str) -> RoutingDecision:
        while self.decisions:
            decision = self.decisions.popleft()
            if decision.agent == agent:
                return decision
        return RoutingDecision(agent, "model", "Chosen by the selector model.")


# Team kinds whose order AutoGen fixes, where an @mention addresses one agent for the next turn.
ADDRESSABLE_KINDS = (Team.Kind.ROUND_ROBIN, Team.Kind.SWARM)
MANAGER_SOURCE = "manager"


def mention_route(spec: TeamSpec, text: str) -> RoutingDecision | None:
    """An ``@name`` in a message to a round-robin or swarm team: that agent answers next (its
    decision, ``method: "mention"``); a mention of no agent, or of several, is ignored and said so
    (``method: "ignored"``, no agent). ``None`` without mentions or for other team kinds."""
    if spec.kind not in ADDRESSABLE_KINDS:
        return None
    handles = MENTION_RE.findall(text)
    if not handles:
        return None
    candidates = candidates_for(spec)
    mentioned = mentioned_agent(text, candidates)
    if mentioned is not None:
        return RoutingDecision(mentioned.slug, "mention", f"Addressed as @{mentioned.slug}.")
    named = ", ".join(f"@{h}" for h in dict.fromkeys(handles))
    known = {h.lower() for c in candidates for h in (c.slug, re.sub(r"\s+", "_", c.name.strip()))}
    if any(h.lower() in known for h in handles):
        reason = f"Several agents are addressed ({named}): the team keeps its usual order."
    else:
        reason = f"No agent of this team is called {named}: the team keeps its usual order."
    return RoutingDecision("", "ignored", reason)


async def address(team: BaseGroupChat, spec: TeamSpec, agent: str) -> None:
    """Make ``agent`` the next speaker of a loaded round-robin team, in its own state: the rotation
    then goes on after it, in this run and the next ones. (A swarm is addressed by its task: a
    ``HandoffMessage`` from the user to the agent: the executor's task.)"""
    state = dict(await team.save_state())
    for agent_state in state.get("agent_states", {}).values():
        if isinstance(agent_state, dict) and "next_speaker_index" in agent_state:
            agent_state["next_speaker_index"] = spec.participants.index(agent)
    await team.load_state(state)


def routing_event(spec: TeamSpec, decision: RoutingDecision) -> MappedEvent:
    """The stored ``routing`` message of a mention in a round-robin or swarm team."""
    from conversations.executor import MappedEvent

    name = next((a.name for a in spec.agents if a.slug == decision.agent), decision.agent)
    content = f"{name} answers next: {decision.reason}" if decision.agent else decision.reason
    return MappedEvent(Message.Type.ROUTING, MANAGER_SOURCE, content, {"routing": decision.as_payload()})


def router_for(spec: TeamSpec) -> SelectorRouter | None:
    return SelectorRouter(spec) if spec.kind == Team.Kind.SELECTOR else None


def map_team_event(event: BaseAgentEvent | BaseChatMessage, router: SelectorRouter | None) -> MappedEvent | None:
    """Team-level events -> chat messages: a speaker selection becomes a ``routing`` message with
    its reason; Magentic-One's task ledger, progress ledgers and re-plans become ``ledger`` cards.
    ``None`` for everything else (the executor's ``map_event`` handles agents' messages)."""
    from conversations.executor import MappedEvent

    if isinstance(event, SelectSpeakerEvent) and router is not None and event.content:
        agent = event.content[0]
        decision = router.take_decision(agent)
        name = next((c.name for c in router.candidates if c.slug == agent), agent)
        return MappedEvent(
            Message.Type.ROUTING,
            event.source,
            f"{name} answers next: {decision.reason}",
            {"routing": decision.as_payload()},
            prompt_tokens=decision.prompt_tokens,
            completion_tokens=decision.completion_tokens,
        )
    if isinstance(event, LedgerEvent):
        return MappedEvent(
            Message.Type.LEDGER, event.source, event.content, {"kind": event.kind, "ledger": event.ledger}
        )
    if (
        isinstance(event, TextMessage)
        and event.source.startswith(ORCHESTRATOR_NAME)
        and event.content.lstrip().startswith(TASK_LEDGER_PREFIX)
    ):
        tokens = event.models_usage
        return MappedEvent(
            Message.Type.LEDGER,
            event.source,
            event.content.strip(),
            {"kind": "task"},
            prompt_tokens=tokens.prompt_tokens if tokens else 0,
            completion_tokens=tokens.completion_tokens if tokens else 0,
        )
    return None


def _answered_request(spec: TeamSpec, payload: dict[str, Any], conversation_id: int) -> Message | None:
    seq = payload.get("answer_to")
    if not isinstance(seq, int):
        return None
    return Message.objects.filter(conversation_id=conversation_id, seq=seq, type=Message.Type.INPUT_REQUEST).first()


def _is_user_proxy(spec: TeamSpec, slug: str) -> bool:
    from agents.factory import USER_PROXY_PRESET

    return any(a.slug == slug and a.preset == USER_PROXY_PRESET for a in spec.agents)


def task_for(
    spec: TeamSpec, *, conversation_id: int, text: str, answer_to: dict[str, Any] | None = None
) -> str | BaseChatMessage:
    """What the team is asked. A swarm whose last handoff went to the user resumes with the answer
    handed back to the agent that asked (AutoGen refuses a plain task there). A user proxy's
    question answered in a new run (after a restart): the answer is the proxy's message, and the
    team continues after the proxy's turn, as if it had not been interrupted."""
    request = _answered_request(spec, answer_to or {}, conversation_id)
    if request is not None and _is_user_proxy(spec, request.source):
        return TextMessage(source=request.source, content=text)
    if spec.kind != Team.Kind.SWARM:
        return text
    last = (
        Message.objects.filter(conversation_id=conversation_id, type=Message.Type.HANDOFF)
        .exclude(source="user")
        .order_by("-seq")
        .first()
    )
    if last is not None and last.payload.get("target") == "user" and last.source in spec.participants:
        return HandoffMessage(source="user", target=last.source, content=text)
    return text


def with_history(conversation_id: int, task: str | BaseChatMessage) -> str | BaseChatMessage | list[BaseChatMessage]:
    """The task preceded by the conversation's stored history (``services.history_append``: the
    earlier turns of an OpenAI-style request), as AutoGen task messages; the task alone without one."""
    turns = Message.objects.filter(conversation_id=conversation_id, run__isnull=True, payload__history=True)
    earlier: list[BaseChatMessage] = [TextMessage(source=m.source, content=m.content) for m in turns.order_by("seq")]
    if not earlier:
        return task
    return [*earlier, task if isinstance(task, BaseChatMessage) else TextMessage(source="user", content=task)]


def park_if_handed_to_user(run_id: int) -> bool:
    """A run whose team ended by handing off to the user waits for the answer (``resume`` mode:
    the answer starts the next run, which hands it back to the agent that asked)."""
    from conversations import services

    last = Message.objects.filter(run_id=run_id).exclude(type=Message.Type.USER).order_by("-seq").first()
    if last is None or last.type != Message.Type.HANDOFF or last.payload.get("target") != "user":
        return False
    name = last.payload.get("agent_name") or last.source
    parked = services.run_request_input(
        run_id=run_id,
        source=last.source,
        question=f"{name} hands the conversation to you: answer to continue.",
        mode=services.INPUT_RESUME,
        agent_name=name,
    )
    return parked is not None


def message_cost(spec: TeamSpec, source: str, prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """The price of one message at its model's prices (``ModelConfig`` per million tokens), as
    payload fields; empty when it used no tokens. Agents' messages are priced at their own model's
    rates, the team's own (routing, ledgers, Magentic-One's answers) at the orchestrator model's."""
    if not (prompt_tokens or completion_tokens):
        return {}
    agent = next((a for a in spec.agents if a.slug == source), None)
    config = agent.model_config if agent is not None else spec.orchestrator_config()
    cost = (
        Decimal(prompt_tokens) * config.prompt_price_per_million
        + Decimal(completion_tokens) * config.completion_price_per_million
    ) / Decimal(1_000_000)
    return {"cost": str(cost.quantize(Decimal("0.000001"))), "model_config": config.name}
