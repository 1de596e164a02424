"""Embedders: text -> L2-normalised float32 vectors. Chosen by ``settings.LODESTONE_EMBEDDER``.

Implementations register with ``@register_embedder("name")`` in a module of this package;
``get_embedder()`` returns the process-wide instance (loaded once).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from django.conf import settings

Vectors = npt.NDArray[np.float32]


@runtime_checkable
class Embedder(Protocol):
    """Texts in, one L2-normalised float32 row per text out (shape ``(len(texts), dimension)``)."""

    name: str
    dimension: int

    def embed(self, texts: Sequence[str]) -> Vectors: ...


EmbedderFactory = Callable[[], Embedder]
_FACTORIES: dict[str, EmbedderFactory] = {}
_INSTANCES: dict[str, Embedder] = {}
_LOCK = threading.Lock()
# Modules of this package that register embedders.
BUILTIN_MODULES: tuple[str, ...] = ("local", "openai")


class EmbedderError(Exception):
    """An embedder that cannot be built or used (unknown name, missing model, endpoint down)."""


def register_embedder(name: str) -> Callable[[EmbedderFactory], EmbedderFactory]:
    def register(factory: EmbedderFactory) -> EmbedderFactory:
        _FACTORIES[name] = factory
        return factory

    return register


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(f"memory.embeddings.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"memory.embeddings.{module}":
                raise


def get_embedder(name: str | None = None) -> Embedder:
    name = name or settings.LODESTONE_EMBEDDER
    _load_builtins()
    with _LOCK:
        if name not in _INSTANCES:
            factory = _FACTORIES.get(name)
            if factory is None:
                raise EmbedderError(f"Unknown embedder {name!r}; choose one of {sorted(_FACTORIES)}.")
            _INSTANCES[name] = factory()
        return _INSTANCES[name]
