"""OpenAI and any OpenAI-compatible endpoint (vLLM, LM Studio, llama.cpp server, Ollama's /v1)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from autogen_core.models import ChatCompletionClient, ModelFamily, ModelInfo
from autogen_ext.models.openai import OpenAIChatCompletionClient
from django.conf import settings

from agents.providers import ProviderError, register_provider

if TYPE_CHECKING:
    from agents.models import ModelConfig

_CLIENT_OPTIONS = {
    "temperature",
    "top_p",
    "max_tokens",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "timeout",
    "max_retries",
}


def _options(config: ModelConfig) -> dict[str, Any]:
    return {key: value for key, value in config.options.items() if key in _CLIENT_OPTIONS}


@register_provider("openai")
def openai_client(config: ModelConfig) -> ChatCompletionClient:
    api_key = config.api_key or settings.OPENAI_API_KEY
    if not api_key:
        raise ProviderError(f"Model {config.name!r} needs an OpenAI API key (in the admin, or OPENAI_API_KEY).")
    kwargs: dict[str, Any] = {"model": config.model, "api_key": api_key, **_options(config)}
    if config.base_url:
        kwargs["base_url"] = config.base_url
    return OpenAIChatCompletionClient(**kwargs)


@register_provider("openai_compatible")
def openai_compatible_client(config: ModelConfig) -> ChatCompletionClient:
    info = config.options.get("model_info") or {}
    model_info = ModelInfo(
        vision=bool(info.get("vision", False)),
        function_calling=bool(info.get("function_calling", False)),
        json_output=bool(info.get("json_output", False)),
        family=str(info.get("family", ModelFamily.UNKNOWN)),
        structured_output=bool(info.get("structured_output", False)),
    )
    return OpenAIChatCompletionClient(
        model=config.model,
        base_url=config.base_url,
        # Many local servers accept any key; the client library insists on one.
        api_key=config.api_key or "not-needed",
        model_info=model_info,
        **_options(config),
    )
