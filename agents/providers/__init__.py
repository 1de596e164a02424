"""Model providers: ``ModelConfig.provider`` -> an AutoGen ``ChatCompletionClient``.

Each provider is one module that registers a factory with ``@register_provider``; nothing else
in the code branches on the provider name. Clients are cached per process and per config
version, so a local model loads once and a replay script keeps its place across runs.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from autogen_core.models import ChatCompletionClient

if TYPE_CHECKING:
    from agents.models import ModelConfig

ProviderFactory = Callable[["ModelConfig"], ChatCompletionClient]

_FACTORIES: dict[str, ProviderFactory] = {}
_CLIENTS: dict[tuple[int, str], ChatCompletionClient] = {}
_LOCK = threading.Lock()
_BUILTIN_MODULES = ("local", "openai", "replay")


class ProviderError(Exception):
    """A model config that cannot be turned into a client (unknown provider, bad options)."""


def register_provider(name: str) -> Callable[[ProviderFactory], ProviderFactory]:
    def register(factory: ProviderFactory) -> ProviderFactory:
        _FACTORIES[name] = factory
        return factory

    return register


def _load_builtin_providers() -> None:
    for module in _BUILTIN_MODULES:
        importlib.import_module(f"agents.providers.{module}")


def available_providers() -> list[str]:
    _load_builtin_providers()
    return sorted(_FACTORIES)


def model_client_for(config: ModelConfig) -> ChatCompletionClient:
    """The process-wide client for this config, built on first use."""
    _load_builtin_providers()
    key = (config.pk, config.updated_at.isoformat() if config.updated_at else "")
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            factory = _FACTORIES.get(config.provider)
            if factory is None:
                raise ProviderError(f"Unknown model provider {config.provider!r}.")
            # Drop clients of older versions of the same config.
            for stale in [k for k in _CLIENTS if k[0] == config.pk]:
                del _CLIENTS[stale]
            client = factory(config)
            _CLIENTS[key] = client
        return client


def clear_client_cache() -> None:
    with _LOCK:
        _CLIENTS.clear()


__all__ = [
    "ProviderError",
    "available_providers",
    "clear_client_cache",
    "model_client_for",
    "register_provider",
]
