"""A bounded, thread-safe LRU of embeddings keyed by the hash of the text, shared by the embedders."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from memory.embeddings import EmbedderError, Vectors


def content_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._rows: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._rows)

    def get(self, key: bytes) -> Vectors | None:
        with self._lock:
            row = self._rows.get(key)
            if row is None:
                self.misses += 1
                return None
            self._rows.move_to_end(key)
            self.hits += 1
            return row

    def put(self, key: bytes, row: Vectors) -> None:
        if self.max_entries <= 0:
            return
        row = row.copy()
        row.setflags(write=False)  # callers get copies; a cached row never changes
        with self._lock:
            self._rows[key] = row
            self._rows.move_to_end(key)
            while len(self._rows) > self.max_entries:
                self._rows.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._rows.clear()
            self.hits = self.misses = 0


def embed_with_cache(
    texts: Sequence[str], *, dimension: int, cache: EmbeddingCache, compute: Callable[[list[str]], Vectors]
) -> Vectors:
    """Rows for ``texts`` from the cache, computing the missing ones once each (duplicates included)."""
    if isinstance(texts, str):
        raise EmbedderError("embed() takes a sequence of texts, not one string.")
    for text in texts:
        if not isinstance(text, str) or not text.strip():
            raise EmbedderError("Cannot embed an empty text.")
    out = np.empty((len(texts), dimension), dtype=np.float32)
    missing: dict[bytes, list[int]] = {}
    for i, text in enumerate(texts):
        key = content_key(text)
        row = cache.get(key)
        if row is None:
            missing.setdefault(key, []).append(i)
        else:
            out[i] = row
    if missing:
        keys = list(missing)
        computed = compute([texts[missing[key][0]] for key in keys])
        if computed.shape != (len(keys), dimension):
            raise EmbedderError(f"The embedder returned shape {computed.shape}, expected {(len(keys), dimension)}.")
        for key, row in zip(keys, computed, strict=True):
            cache.put(key, row)
            out[missing[key]] = row
    return out


def l2_normalise(rows: Vectors) -> Vectors:
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise EmbedderError("The embedder returned a zero vector.")
    return (rows / norms).astype(np.float32, copy=False)
