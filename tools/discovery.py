"""Search the approved tools by what they do: semantic (memory's embedder) when it is available,
lexical otherwise. Used by the ``find_tools`` builtin."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from tools.models import Tool, schema_of

logger = logging.getLogger(__name__)
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class Found:
    name: str
    description: str
    parameters: dict[str, Any]
    score: float
    method: str


def _text(tool: Tool) -> str:
    return f"{tool.name.replace('_', ' ')}: {tool.description}"


def _lexical(query: str, tools: list[Tool], k: int) -> list[Found]:
    words = set(_WORD.findall(query.lower()))
    scored = []
    for tool in tools:
        text_words = _WORD.findall(_text(tool).lower())
        if not text_words or not words:
            continue
        hits = sum(1 for w in words if w in text_words or any(t.startswith(w) for t in text_words))
        if hits:
            scored.append((hits / len(words), tool))
    scored.sort(key=lambda pair: (-pair[0], pair[1].name))
    return [Found(t.name, t.description, schema_of(t), round(s, 3), "lexical") for s, t in scored[:k]]


def _semantic(query: str, tools: list[Tool], k: int) -> list[Found] | None:
    try:
        import numpy as np

        from memory.embeddings import get_embedder

        embedder = get_embedder()
        vectors = embedder.embed([query] + [_text(t) for t in tools])
    except Exception as exc:  # any embedder problem: fall back to words, say so in the log
        logger.info("find_tools: no semantic search (%s); using lexical search", exc)
        return None
    scores = np.asarray(vectors[1:]) @ np.asarray(vectors[0])
    order = sorted(range(len(tools)), key=lambda i: (-float(scores[i]), tools[i].name))[:k]
    return [
        Found(tools[i].name, tools[i].description, schema_of(tools[i]), round(float(scores[i]), 3), "semantic")
        for i in order
    ]


def tools_search(*, query: str, k: int = 5, semantic: bool = True) -> list[Found]:
    tools = list(Tool.objects.filter(status=Tool.Status.APPROVED).order_by("name"))
    if not tools or not query.strip():
        return []
    if semantic:
        found = _semantic(query, tools, k)
        if found is not None:
            return found
    return _lexical(query, tools, k)
