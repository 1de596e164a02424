"""Writes and orchestration for experiences: store, update, delete, retrieve, consolidate.

Vectors
    One namespace per embedder, ``experiences-<embedder name>``, so vectors of different models
    never meet. An experience of N chunks has the vector ids ``"<pk>:0" .. "<pk>:<N-1>"`` with the
    metadata ``experience`` (pk), ``chunk``, ``owner`` (user pk, 0 = shared), ``agent`` (pk, 0 =
    none), ``conversation`` (pk, 0 = none), ``kind``, ``importance`` and ``created`` (unix time).

Chunking
    A text is stored whole in the database but embedded in chunks of at most ``CHUNK_CHARS``
    characters (MiniLM reads ~256 word pieces, about 1,000 characters of English), cut at
    paragraph, sentence or word boundaries, each overlapping the previous by up to
    ``CHUNK_OVERLAP`` characters. Retrieval scores an experience by its best chunk. Texts longer
    than ``TEXT_MAX_CHARS`` are rejected.

Ranking (``experiences_retrieve_similar``)
    ``score = weight * (0.70 * similarity + 0.15 * recency + 0.15 * importance)`` where
    ``similarity`` is the best chunk's cosine similarity, ``recency = 0.5 ** (age_days /
    RECENCY_HALF_LIFE_DAYS)`` and ``weight`` (1, lowered to ``CONSOLIDATED_SOURCE_WEIGHT`` once an
    experience is merged into a consolidated memory) lets the summary outrank its sources.

Consistency
    The row is the truth. The vectors are upserted inside the row's transaction, so a failing
    embedder or store fails the write (no row without vectors); a vector whose row was rolled back
    is ignored by retrieval, which keeps only ids that exist in the database.
"""

from __future__ import annotations

import hashlib
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from asgiref.sync import async_to_sync
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from agents.models import Agent
from config import inputs
from conversations.models import Conversation, Message, Run
from memory import selectors
from memory.embeddings import Embedder, get_embedder
from memory.history import Revision, revision_record
from memory.models import Experience, MirrorOutbox
from memory.ports import memory_model_for
from memory.vector import Filter, VectorFilterError, VectorItem, VectorStore, get_vector_store
from memory.vector.filters import normalise_filter

logger = logging.getLogger(__name__)

TEXT_MAX_CHARS = 100_000
CHUNK_CHARS = 1_000
CHUNK_OVERLAP = 200
RECENCY_HALF_LIFE_DAYS = 30.0
W_SIMILARITY, W_RECENCY, W_IMPORTANCE = 0.70, 0.15, 0.15
CONSOLIDATED_SOURCE_WEIGHT = 0.3
CONSOLIDATION_THRESHOLD = 0.75
# Providers whose models are too small (or scripted) to write a summary: consolidate extractively.
EXTRACTIVE_PROVIDERS = frozenset({"local", "replay"})
# Metadata fields a caller may filter on; ``owner`` is always set by us.
FILTERABLE_FIELDS = frozenset({"agent", "kind", "conversation", "importance", "created"})
K_MAX = 100

UserLike = AbstractBaseUser | AnonymousUser


# --- Vector plumbing


def _embedder() -> Embedder:
    return get_embedder()


def _store(embedder: Embedder) -> VectorStore:
    store = get_vector_store(embedder.dimension)
    if store.dimension != embedder.dimension:
        raise ValidationError(
            f"The vector store holds {store.dimension}-dimensional vectors but the embedder "
            f"{embedder.name!r} makes {embedder.dimension}."
        )
    return store


def namespace_for(embedder: Embedder) -> str:
    return f"experiences-{embedder.name}"


def vector_ids(experience_id: int, chunk_count: int) -> list[str]:
    return [f"{experience_id}:{i}" for i in range(chunk_count)]


def _embed(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    vectors = np.asarray(embedder.embed(list(texts)), dtype=np.float32)
    if vectors.shape != (len(texts), embedder.dimension):
        raise ValidationError(
            f"The embedder {embedder.name!r} returned shape {vectors.shape}, "
            f"expected ({len(texts)}, {embedder.dimension})."
        )
    return vectors


def chunk_text(text: str, *, size: int = CHUNK_CHARS, overlap: int = CHUNK_OVERLAP) -> list[str]:
    """Split ``text`` into chunks of at most ``size`` characters, preferring to cut after a
    paragraph, then a sentence, then a word; consecutive chunks overlap by up to ``overlap``."""
    text = text.strip()
    if len(text) <= size:
        return [text] if text else []
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            window = text[start:end]
            for pattern in ("\n\n", r"[.!?]\s", r"\s"):
                cuts = [m.end() for m in re.finditer(pattern, window)]
                cuts = [c for c in cuts if c > size // 2]
                if cuts:
                    end = start + cuts[-1]
                    break
        chunk = text[start:end].strip()
        if chunk:
            chunks.append(chunk)
        if end >= len(text):
            break
        # Step back for the overlap, to a word boundary, but always move forward.
        back = max(end - overlap, start + 1)
        space = text.find(" ", back, end)
        start = space + 1 if space != -1 else back
    return chunks


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _metadata(experience: Experience, chunk: int) -> dict[str, str | int | float | bool]:
    created = experience.created_at or timezone.now()
    return {
        "experience": experience.pk,
        "chunk": chunk,
        "owner": experience.owner_id or 0,
        "agent": experience.agent_id or 0,
        "conversation": experience.conversation_id or 0,
        "kind": experience.kind,
        "importance": float(experience.importance),
        "created": created.timestamp(),
    }


def _upsert_vectors(experience: Experience, chunks: list[str], vectors: np.ndarray, embedder: Embedder) -> None:
    store = _store(embedder)
    items = [
        VectorItem(id=vid, vector=vectors[i], metadata=_metadata(experience, i))
        for i, vid in enumerate(vector_ids(experience.pk, len(chunks)))
    ]
    store.upsert(items, namespace=namespace_for(embedder))


# --- Firestore mirror hook


def _mirror(experience_id: int, op: str) -> None:
    """Record a mirror write in the caller's transaction; drained after commit (memory.firebase)."""
    from memory import firebase

    if not firebase.mirror_enabled():
        return
    MirrorOutbox.objects.create(experience_id=experience_id, op=op)
    transaction.on_commit(firebase.schedule_drain)


# --- Validation


def _clean_text(text: Any) -> str:
    if not isinstance(text, str):
        raise ValidationError({"text": "The memory must be text."})
    text = text.strip()
    if not text:
        raise ValidationError({"text": "The memory is empty."})
    # Nothing is stored that cannot be read back and sent (UTF-8, PostgreSQL, Firestore).
    if problem := inputs.text_problem(text):
        raise ValidationError({"text": f"The memory {problem}."})
    if len(text) > TEXT_MAX_CHARS:
        raise ValidationError({"text": f"The memory is longer than {TEXT_MAX_CHARS} characters."})
    return text


def _clean_importance(importance: Any) -> float:
    try:
        value = float(importance)
    except (TypeError, ValueError):
        raise ValidationError({"importance": "Importance is a number between 0 and 1."}) from None
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValidationError({"importance": "Importance is a number between 0 and 1."})
    return value


def _clean_kind(kind: Any) -> str:
    if kind not in Experience.Kind.values:
        raise ValidationError({"kind": f"Kind is one of {', '.join(Experience.Kind.values)}."})
    return str(kind)


def _clean_metadata(metadata: Any) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ValidationError({"metadata": "Metadata must be a JSON object."})
    if problem := inputs.value_problem(metadata):
        raise ValidationError({"metadata": problem})
    return metadata


# --- Writes


def experience_store(
    *,
    text: str,
    kind: str = Experience.Kind.EPISODIC,
    owner: AbstractBaseUser | None = None,
    agent: Agent | None = None,
    conversation: Conversation | None = None,
    run: Run | None = None,
    importance: float = 0.5,
    metadata: dict[str, Any] | None = None,
    source_messages: Sequence[Message] = (),
    revision: Revision | None = None,
) -> Experience:
    """Store one memory: the row, its chunk vectors and (if configured) a mirror outbox entry.

    ``source_messages`` are its provenance (the messages it came from); ``revision`` says who or
    what made it, recorded in its history (without one, storing is not a revision).
    Storing the same text again for the same owner, agent and kind returns the existing memory
    (refreshed: the higher importance wins, the sources are added) instead of a duplicate.
    """
    text = _clean_text(text)
    kind = _clean_kind(kind)
    importance = _clean_importance(importance)
    metadata = _clean_metadata(metadata)
    digest = content_hash(text)
    owner_id = owner.pk if owner is not None else None

    existing = Experience.objects.filter(content_hash=digest, owner_id=owner_id, agent=agent, kind=kind).first()
    if existing is not None:
        return experience_update(
            experience=existing, importance=max(existing.importance, importance), source_messages=source_messages
        )

    embedder = _embedder()
    chunks = chunk_text(text)
    vectors = _embed(embedder, chunks)
    with transaction.atomic():
        experience = Experience.objects.create(
            owner_id=owner_id,
            agent=agent,
            conversation=conversation,
            run=run,
            kind=kind,
            text=text,
            importance=importance,
            metadata=metadata,
            content_hash=digest,
            embedding_model=f"{embedder.name}:{embedder.dimension}",
            chunk_count=len(chunks),
        )
        if source_messages:
            experience.source_messages.add(*source_messages)
        if revision is not None:
            revision_record(experience, revision, "store", old_text="", new_text=text)
        _upsert_vectors(experience, chunks, vectors, embedder)
        _mirror(experience.pk, MirrorOutbox.Op.UPSERT)
    return experience


def experience_update(
    *,
    experience: Experience,
    text: str | None = None,
    kind: str | None = None,
    importance: float | None = None,
    metadata: dict[str, Any] | None = None,
    source_messages: Sequence[Message] = (),
    revision: Revision | None = None,
) -> Experience:
    """Change a memory; a new text is re-embedded (vectors of chunks that no longer exist go) and
    recorded in its history (``revision``: who or what changed it; a plain ``Revision()`` if not
    given). ``source_messages`` are added to its provenance."""
    embedder = _embedder()
    old_chunks = experience.chunk_count
    old_text = experience.text
    reembed = False
    if text is not None:
        text = _clean_text(text)
        if text != experience.text:
            experience.text = text
            experience.content_hash = content_hash(text)
            reembed = True
    if kind is not None:
        experience.kind = _clean_kind(kind)
    if importance is not None:
        experience.importance = _clean_importance(importance)
    if metadata is not None:
        experience.metadata = _clean_metadata(metadata)
    if experience.embedding_model != f"{embedder.name}:{embedder.dimension}":
        reembed = True  # made by another embedder: bring it to the current one
    chunks = chunk_text(experience.text)
    vectors = _embed(embedder, chunks) if reembed else _current_vectors(experience, embedder, chunks)
    with transaction.atomic():
        experience.chunk_count = len(chunks)
        experience.embedding_model = f"{embedder.name}:{embedder.dimension}"
        experience.save()
        if source_messages:
            experience.source_messages.add(*source_messages)
        if experience.text != old_text:
            revision_record(experience, revision or Revision(), "update", old_text=old_text, new_text=experience.text)
        # Metadata (kind, importance) travels with the vectors: upsert them all again.
        _upsert_vectors(experience, chunks, vectors, embedder)
        stale = vector_ids(experience.pk, old_chunks)[len(chunks) :]
        if stale:
            _store(embedder).delete(stale, namespace=namespace_for(embedder))
        _mirror(experience.pk, MirrorOutbox.Op.UPSERT)
    return experience


def _current_vectors(experience: Experience, embedder: Embedder, chunks: list[str]) -> np.ndarray:
    ids = vector_ids(experience.pk, len(chunks))
    found = _store(embedder).fetch(ids, namespace=namespace_for(embedder))
    if all(vid in found for vid in ids):
        return np.stack([np.asarray(found[vid].vector, dtype=np.float32) for vid in ids])
    return _embed(embedder, chunks)  # missing vectors (e.g. a wiped store): rebuild them


def experience_delete(*, experience: Experience, revision: Revision | None = None) -> None:
    """Delete a memory and its vectors; its history keeps a revision with its last text (``revision``:
    who or what deleted it). Memories merged into it get their full weight back."""
    embedder = _embedder()
    pk = experience.pk
    with transaction.atomic():
        revision_record(experience, revision or Revision(), "delete", old_text=experience.text, new_text="")
        source_ids = list(experience.sources.values_list("pk", flat=True))
        Experience.objects.filter(pk__in=source_ids).update(
            weight=1.0, consolidated_into=None, updated_at=timezone.now()
        )
        for source_id in source_ids:
            _mirror(source_id, MirrorOutbox.Op.UPSERT)
        experience.delete()
        # Every chunk's vector goes in the same transaction (a store error keeps the row): in the
        # current embedder's namespace and, if another embedder of the same width made them, in its.
        ids = vector_ids(pk, max(experience.chunk_count, 1))
        namespaces = {namespace_for(embedder)}
        made_by, _, width = experience.embedding_model.partition(":")
        if made_by and width == str(embedder.dimension):
            namespaces.add(f"experiences-{made_by}")
        for namespace in sorted(namespaces):
            _store(embedder).delete(ids, namespace=namespace)
        _mirror(pk, MirrorOutbox.Op.DELETE)


def experience_reindex(*, experience: Experience) -> Experience:
    """Re-embed and re-upsert one memory (after changing the embedder or wiping the store)."""
    embedder = _embedder()
    chunks = chunk_text(experience.text)
    vectors = _embed(embedder, chunks)
    with transaction.atomic():
        experience.chunk_count = len(chunks)
        experience.embedding_model = f"{embedder.name}:{embedder.dimension}"
        experience.save(update_fields=["chunk_count", "embedding_model", "updated_at"])
        _upsert_vectors(experience, chunks, vectors, embedder)
    return experience


# --- Retrieval


@dataclass(frozen=True)
class Recalled:
    experience: Experience
    score: float
    similarity: float
    recency: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.experience.pk,
            "text": self.experience.text,
            "kind": self.experience.kind,
            "score": round(self.score, 4),
            "similarity": round(self.similarity, 4),
        }


def recency_of(created_at: datetime, now: datetime) -> float:
    age_days = max((now - created_at).total_seconds(), 0.0) / 86_400
    return float(0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS))


def rank_score(*, similarity: float, recency: float, importance: float, weight: float) -> float:
    return weight * (W_SIMILARITY * similarity + W_RECENCY * recency + W_IMPORTANCE * importance)


def _clean_filters(filters: Any) -> Filter:
    """The caller's filter, checked against the filter language every vector store speaks
    (``memory.vector.filters``) before any store sees it."""
    if filters is None:
        return {}
    if not isinstance(filters, dict):
        raise ValidationError({"filters": "Filters must be a JSON object."})
    unknown = sorted(str(field) for field in set(filters) - FILTERABLE_FIELDS)
    if unknown:
        raise ValidationError(
            {"filters": f"Unknown filter fields: {', '.join(unknown)}; use {', '.join(sorted(FILTERABLE_FIELDS))}."}
        )
    try:
        normalise_filter(filters)
    except VectorFilterError as exc:
        raise ValidationError({"filters": str(exc)}) from None
    return dict(filters)


def experiences_retrieve_similar(
    *,
    context: str,
    user: UserLike | None,
    k: int = 5,
    filters: Filter | None = None,
    agent: Agent | None = None,
    min_similarity: float = 0.0,
) -> list[Recalled]:
    """The ``k`` memories most worth recalling for ``context``, best first (ranking: module doc).

    ``user`` None searches every owner (system jobs); otherwise own and shared memories only.
    ``agent`` narrows to that agent's memories and the agent-less ones.
    """
    if not isinstance(context, str) or not context.strip():
        raise ValidationError({"query": "Say what to search for."})
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= K_MAX:
        raise ValidationError({"k": f"k is a whole number from 1 to {K_MAX}."})
    vector_filter = _clean_filters(filters)
    if user is not None:
        if not user.is_authenticated:
            return []
        vector_filter["owner"] = {"$in": [user.pk, 0]}
    if agent is not None:
        vector_filter["agent"] = {"$in": [agent.pk, 0]}

    embedder = _embedder()
    query = _embed(embedder, [context.strip()[: CHUNK_CHARS * 2]])[0]
    # Over-fetch: several chunks may belong to one memory, and the ranking reorders candidates.
    try:
        matches = _store(embedder).query(
            query, k=min(max(k * 4, 20), 1000), namespace=namespace_for(embedder), filter=vector_filter or None
        )
    except VectorFilterError as exc:  # a store stricter than the common language: still the caller's filter
        raise ValidationError({"filters": str(exc)}) from None
    best: dict[int, float] = {}
    for match in matches:
        pk = int(match.metadata.get("experience") or match.id.split(":", 1)[0])
        best[pk] = max(best.get(pk, -1.0), float(match.score))
    rows = selectors.experiences_by_ids(user=user, ids=list(best))
    now = timezone.now()
    recalled = []
    for pk, similarity in best.items():
        row = rows.get(pk)
        if row is None or similarity < min_similarity:
            continue  # a vector whose row is gone (rolled back, deleted) or not visible
        recency = recency_of(row.created_at, now)
        score = rank_score(similarity=similarity, recency=recency, importance=row.importance, weight=row.weight)
        recalled.append(Recalled(experience=row, score=score, similarity=similarity, recency=recency))
    recalled.sort(key=lambda r: (-r.score, -r.experience.pk))
    return recalled[:k]


# --- End of a run


def run_memory_agents(run: Run) -> list[Agent]:
    """The memory-enabled agents of a run's conversation (its agent, or its team's members in order)."""
    conversation = run.conversation
    if conversation.team_id is not None:
        agents = [m.agent for m in conversation.team.members.select_related("agent__model_config")]  # type: ignore[union-attr]
    else:
        agents = [conversation.agent] if conversation.agent else []
    return [a for a in agents if a.memory_enabled]


def completed_run(run_id: int) -> Run | None:
    """The run, if it completed; a failed, cancelled or unfinished run teaches nothing."""
    run = Run.objects.select_related("conversation__team", "conversation__agent__model_config").get(pk=run_id)
    return run if run.status == Run.Status.COMPLETED else None


def run_experiences_store(*, run_id: int) -> list[Experience]:
    """Episodic mode: each memory-enabled agent that spoke in a completed run stores the task and
    its outcome (its last text), verbatim, as an episodic memory of the conversation's owner, with
    the task's and the outcome's messages as its provenance. Other runs store nothing."""
    run = completed_run(run_id)
    if run is None:
        return []
    conversation = run.conversation
    agents = run_memory_agents(run)
    if not agents:
        return []
    messages = list(run.messages.order_by("seq"))
    task_message = next((m for m in messages if m.type == Message.Type.USER), None)
    task = task_message.content.strip() if task_message else ""
    stored = []
    for agent in agents:
        said = [m for m in messages if m.source == agent.slug and m.type == Message.Type.TEXT and m.content]
        if task_message is None or not task or not said:
            continue
        outcome = said[-1].content.strip()
        stored.append(
            experience_store(
                text=f"Task: {task}\nOutcome: {outcome}",
                kind=Experience.Kind.EPISODIC,
                owner=conversation.owner,
                agent=agent,
                conversation=conversation,
                run=run,
                importance=0.5,
                metadata={"source": "run", "run": run.pk},
                source_messages=[task_message, said[-1]],
            )
        )
    return stored


# --- Consolidation


def _sentences(text: str) -> list[str]:
    parts = re.split(r"(?<=[.!?])\s+|\n+", text)
    return [p.strip() for p in parts if len(p.strip()) > 2]


def extractive_summary(texts: list[str], *, embedder: Embedder | None = None, max_chars: int = 600) -> str:
    """The sentences closest to the cluster's centre, without near-repeats, in their first order."""
    embedder = embedder or _embedder()
    sentences: list[str] = []
    for text in texts:
        for sentence in _sentences(text):
            if sentence not in sentences:
                sentences.append(sentence)
    if not sentences:
        return texts[0][:max_chars]
    vectors = _embed(embedder, sentences)
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    order = np.argsort(-(vectors @ centre))
    chosen: list[int] = []
    length = 0
    for i in order:
        if any(float(vectors[i] @ vectors[j]) > 0.9 for j in chosen):
            continue  # says what a chosen sentence says
        if chosen and length + len(sentences[i]) > max_chars:
            continue
        chosen.append(int(i))
        length += len(sentences[i]) + 1
        if length >= max_chars:
            break
    return " ".join(sentences[i] for i in sorted(chosen))[: max(max_chars, len(sentences[chosen[0]]))]


async def _model_summaries(clusters: list[list[Experience]]) -> dict[int, str]:
    """Cluster index -> the summary its agent's model wrote (through the ``memory.ports`` seam),
    for clusters whose agent has a model worth asking. All calls share one event loop (the model
    clients are process-wide)."""
    written: dict[int, str] = {}
    for index, sources in enumerate(clusters):
        agent = sources[0].agent
        if agent is None or agent.model_config.provider in EXTRACTIVE_PROVIDERS:
            continue
        listing = "\n".join(f"- {s.text}" for s in sources)
        try:
            reply = await memory_model_for(agent).complete(
                system="You distil memories. Reply with the lasting lesson only, in at most three sentences.",
                user=f"Merge these related memories into one:\n{listing}",
            )
        except Exception as exc:  # a model outage (or none installed) must not stop consolidation
            logger.warning("Model summary failed for agent %s, using an extractive one: %s", agent.slug, exc)
            continue
        if reply.strip():
            written[index] = reply.strip()[:TEXT_MAX_CHARS]
    return written


def _clusters(vectors: np.ndarray, threshold: float, min_size: int) -> list[list[int]]:
    """Greedy clustering: each unassigned seed (in order) takes every unassigned item whose
    cosine similarity to it, and to the cluster's centroid, is at least ``threshold``."""
    sims = vectors @ vectors.T
    assigned = np.zeros(len(vectors), dtype=bool)
    clusters = []
    for seed in range(len(vectors)):
        if assigned[seed]:
            continue
        members = [seed] + [j for j in range(seed + 1, len(vectors)) if not assigned[j] and sims[seed, j] >= threshold]
        if len(members) >= min_size:
            centre = vectors[members].mean(axis=0)
            centre /= np.linalg.norm(centre) or 1.0
            members = [m for m in members if float(vectors[m] @ centre) >= threshold]
        if len(members) >= min_size:
            assigned[members] = True
            clusters.append(members)
    return clusters


def memory_consolidate(
    *,
    owner: AbstractBaseUser | None = None,
    agent: Agent | None = None,
    threshold: float = CONSOLIDATION_THRESHOLD,
    min_cluster: int = 2,
    all_owners: bool = False,
) -> list[Experience]:
    """Merge clusters of near-duplicate or related episodic memories (same owner and agent) into
    semantic memories, written by the agent's model (extractive for local and replay models).
    The sources point at the new memory (``consolidated_into``) and drop to
    ``CONSOLIDATED_SOURCE_WEIGHT``. Returns the new memories."""
    if not 0.0 < threshold <= 1.0:
        raise ValidationError({"threshold": "The threshold is a cosine similarity in (0, 1]."})
    if min_cluster < 2:
        raise ValidationError({"min_cluster": "A cluster has at least two memories."})
    candidates = Experience.objects.filter(
        kind=Experience.Kind.EPISODIC, consolidated_into__isnull=True, weight__gt=CONSOLIDATED_SOURCE_WEIGHT
    ).select_related("agent__model_config", "owner")
    if not all_owners:
        candidates = candidates.filter(owner_id=owner.pk if owner is not None else None)
    if agent is not None:
        candidates = candidates.filter(agent=agent)
    groups: dict[tuple[int | None, int | None], list[Experience]] = {}
    for row in candidates.order_by("created_at", "id"):
        groups.setdefault((row.owner_id, row.agent_id), []).append(row)

    embedder = _embedder()
    clusters: list[list[Experience]] = []
    for rows in groups.values():
        if len(rows) < min_cluster:
            continue
        vectors = _embed(embedder, [r.text[: CHUNK_CHARS * 2] for r in rows])
        clusters.extend([rows[i] for i in members] for members in _clusters(vectors, threshold, min_cluster))
    written = async_to_sync(_model_summaries)(clusters) if clusters else {}

    created: list[Experience] = []
    for index, sources in enumerate(clusters):
        text, method = written.get(index, ""), "model"
        if not text:
            text, method = extractive_summary([s.text for s in sources], embedder=embedder), "extractive"
        with transaction.atomic():
            merged = experience_store(
                text=text,
                kind=Experience.Kind.SEMANTIC,
                owner=sources[0].owner,
                agent=sources[0].agent,
                importance=max(s.importance for s in sources),
                metadata={"consolidated_from": [s.pk for s in sources], "method": method},
            )
            merged.source_messages.add(*{m for s in sources for m in s.source_messages.all()})
            for source in sources:
                source.consolidated_into = merged
                source.weight = min(source.weight, CONSOLIDATED_SOURCE_WEIGHT)
                source.save(update_fields=["consolidated_into", "weight", "updated_at"])
                # Its text stays; the revision says what it was merged into.
                revision_record(
                    source, Revision(by="consolidation"), "update", old_text=source.text, new_text=merged.text
                )
                _mirror(source.pk, MirrorOutbox.Op.UPSERT)
        created.append(merged)
    return created
