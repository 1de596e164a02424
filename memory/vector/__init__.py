"""Vector stores: where embeddings live and are searched. Chosen by ``settings.LODESTONE_VECTOR_STORE``.

Implementations register with ``@register_vector_store("name")`` in a module of this package;
``get_vector_store()`` returns the process-wide instance.

Filters (``query`` and ``delete_where``) are Pinecone-style metadata filters, supported by every
backend: ``{"field": value}`` (equality), ``{"field": {"$eq"|"$ne"|"$gt"|"$gte"|"$lt"|"$lte": v}}``,
``{"field": {"$in"|"$nin": [v, ...]}}``, combined with AND when several fields are given.
Metadata values are str, int, float or bool.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from django.conf import settings

Metadata = dict[str, str | int | float | bool]
Filter = dict[str, Any]


@dataclass(frozen=True)
class VectorItem:
    id: str
    vector: npt.NDArray[np.float32]
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class Match:
    id: str
    score: float  # cosine similarity, higher is closer
    metadata: Metadata = field(default_factory=dict)


@dataclass(frozen=True)
class StoreStats:
    dimension: int
    count: int
    namespaces: dict[str, int]


@runtime_checkable
class VectorStore(Protocol):
    name: str
    dimension: int

    def upsert(self, items: Sequence[VectorItem], *, namespace: str = "") -> None: ...

    def query(
        self, vector: npt.NDArray[np.float32], *, k: int, namespace: str = "", filter: Filter | None = None
    ) -> list[Match]: ...

    def fetch(self, ids: Sequence[str], *, namespace: str = "") -> dict[str, VectorItem]: ...

    def delete(self, ids: Sequence[str], *, namespace: str = "") -> None: ...

    def delete_where(self, filter: Filter, *, namespace: str = "") -> int | None:
        """Delete the namespace's vectors whose metadata matches a non-empty ``filter``; how many, when known."""
        ...

    def stats(self) -> StoreStats: ...


VectorStoreFactory = Callable[[int], VectorStore]  # takes the embedder's dimension
_FACTORIES: dict[str, VectorStoreFactory] = {}
_INSTANCES: dict[tuple[str, int], VectorStore] = {}
_LOCK = threading.Lock()
BUILTIN_MODULES: tuple[str, ...] = ("embedded", "pgvector", "pinecone")


class VectorStoreError(Exception):
    """Unknown backend, unreachable server, or a dimension that does not match the index."""


class VectorFilterError(VectorStoreError):
    """A metadata filter outside the language above: the caller's mistake, not the store's."""


def register_vector_store(name: str) -> Callable[[VectorStoreFactory], VectorStoreFactory]:
    def register(factory: VectorStoreFactory) -> VectorStoreFactory:
        _FACTORIES[name] = factory
        return factory

    return register


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(f"memory.vector.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"memory.vector.{module}":
                raise


def get_vector_store(dimension: int, name: str | None = None) -> VectorStore:
    name = name or settings.LODESTONE_VECTOR_STORE
    _load_builtins()
    with _LOCK:
        key = (name, dimension)
        if key not in _INSTANCES:
            factory = _FACTORIES.get(name)
            if factory is None:
                raise VectorStoreError(f"Unknown vector store {name!r}; choose one of {sorted(_FACTORIES)}.")
            _INSTANCES[key] = factory(dimension)
        return _INSTANCES[key]


def reset_vector_stores() -> None:
    """Forget process-wide instances (tests, settings changes)."""
    with _LOCK:
        _INSTANCES.clear()
