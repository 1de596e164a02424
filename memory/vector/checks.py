"""A Django system check of the memory backends' settings, so a typo fails at start-up (``manage.py
check``, ``migrate``, ``runserver``, Daphne) rather than at the first memory. Register it from
``MemoryConfig.ready()``: ``checks.register(memory_backend_settings)``."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error

from memory import embeddings, vector
from memory.embeddings.minilm_onnx import PRECISIONS
from memory.learning import MODES


def memory_backend_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    embeddings._load_builtins()
    vector._load_builtins()
    if settings.LODESTONE_EMBEDDER not in embeddings._FACTORIES:
        errors.append(
            Error(
                f"Unknown embedder {settings.LODESTONE_EMBEDDER!r} (LODESTONE_EMBEDDER).",
                hint=f"Choose one of {', '.join(sorted(embeddings._FACTORIES))}.",
                id="memory.E001",
            )
        )
    if settings.LODESTONE_EMBEDDER == "local" and settings.LODESTONE_LOCAL_EMBEDDER_PRECISION not in PRECISIONS:
        errors.append(
            Error(
                f"Unknown local embedder precision {settings.LODESTONE_LOCAL_EMBEDDER_PRECISION!r} "
                "(LODESTONE_LOCAL_EMBEDDER_PRECISION).",
                hint=f"Choose one of {', '.join(PRECISIONS)}.",
                id="memory.E006",
            )
        )
    store = settings.LODESTONE_VECTOR_STORE
    if store not in vector._FACTORIES:
        errors.append(
            Error(
                f"Unknown vector store {store!r} (VECTOR_STORE).",
                hint=f"Choose one of {', '.join(sorted(vector._FACTORIES))}.",
                id="memory.E002",
            )
        )
    if store == "pinecone" and not settings.PINECONE_API_KEY:
        errors.append(Error("VECTOR_STORE=pinecone needs PINECONE_API_KEY.", id="memory.E003"))
    if store == "pinecone" and not (settings.PINECONE_INDEX_HOST or settings.PINECONE_INDEX):
        errors.append(Error("VECTOR_STORE=pinecone needs PINECONE_INDEX_HOST (or PINECONE_INDEX).", id="memory.E004"))
    if store == "pgvector" and "postgresql" not in settings.DATABASES["default"]["ENGINE"]:
        errors.append(Error("VECTOR_STORE=pgvector needs a PostgreSQL DATABASE_URL.", id="memory.E005"))
    mode = getattr(settings, "LODESTONE_MEMORY_MODE", "learn")
    if mode not in MODES:
        errors.append(
            Error(
                f"Unknown memory mode {mode!r} (LODESTONE_MEMORY_MODE).",
                hint=f"Choose one of {', '.join(sorted(MODES))}.",
                id="memory.E007",
            )
        )
    return errors
