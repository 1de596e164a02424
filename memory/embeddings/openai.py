"""Embeddings from any OpenAI-compatible ``/embeddings`` endpoint (OpenAI, vLLM, llama.cpp server, ...).

Settings: ``LODESTONE_OPENAI_EMBEDDINGS_BASE_URL``/``_MODEL``/``_API_KEY``/``_DIMENSIONS`` (env
``OPENAI_EMBEDDINGS_*``). The dimension is learnt from one probe request at start-up when it is not
configured, so a wrong model or an unreachable endpoint fails at once, not at the first memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import openai
from django.conf import settings

from memory.embeddings import EmbedderError, Vectors, register_embedder
from memory.embeddings.cache import EmbeddingCache, embed_with_cache, l2_normalise

BATCH_SIZE = 128
CACHE_ENTRIES = 20_000


class OpenAIEmbedder:
    name = "openai"

    def __init__(
        self,
        *,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        dimensions: int | None = None,
        batch_size: int = BATCH_SIZE,
        timeout: float = 30.0,
        max_retries: int = 2,
        cache_entries: int = CACHE_ENTRIES,
    ) -> None:
        self.model = model
        self.batch_size = batch_size
        self._requested_dimensions = dimensions or None
        # Self-hosted endpoints usually take no key; the client insists on one.
        self._client = openai.OpenAI(
            base_url=base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=max_retries
        )
        self.cache = EmbeddingCache(cache_entries)
        self.dimension = self._requested_dimensions or self._request(["dimension probe"]).shape[1]

    def embed(self, texts: Sequence[str]) -> Vectors:
        return embed_with_cache(texts, dimension=self.dimension, cache=self.cache, compute=self._compute)

    def _compute(self, texts: list[str]) -> Vectors:
        parts = [self._request(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        rows = np.vstack(parts)
        if rows.shape[1] != self.dimension:
            raise EmbedderError(
                f"The endpoint returned {rows.shape[1]}-dimensional embeddings, expected {self.dimension} "
                f"(model {self.model!r})."
            )
        return rows

    def _request(self, texts: list[str]) -> Vectors:
        extra: dict[str, Any] = {}
        if self._requested_dimensions:
            extra["dimensions"] = self._requested_dimensions
        try:
            response = self._client.embeddings.create(model=self.model, input=texts, encoding_format="float", **extra)
        except openai.OpenAIError as exc:
            raise EmbedderError(f"The embeddings endpoint failed ({type(exc).__name__}): {exc}") from exc
        data = sorted(response.data, key=lambda item: item.index)
        if [item.index for item in data] != list(range(len(texts))):
            raise EmbedderError(f"The embeddings endpoint returned {len(data)} embeddings for {len(texts)} texts.")
        rows = np.asarray([item.embedding for item in data], dtype=np.float32)
        if rows.ndim != 2 or rows.shape[1] == 0:
            raise EmbedderError("The embeddings endpoint returned no vectors.")
        return l2_normalise(rows)


@register_embedder("openai")
def openai_embedder() -> OpenAIEmbedder:
    return OpenAIEmbedder(
        model=settings.LODESTONE_OPENAI_EMBEDDINGS_MODEL,
        base_url=settings.LODESTONE_OPENAI_EMBEDDINGS_BASE_URL,
        api_key=settings.LODESTONE_OPENAI_EMBEDDINGS_API_KEY or settings.OPENAI_API_KEY,
        dimensions=settings.LODESTONE_OPENAI_EMBEDDINGS_DIMENSIONS or None,
    )
