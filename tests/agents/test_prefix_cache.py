"""The local model's prompt cache: each agent's processed prefix is kept and restored, and a
restored prefix gives exactly the reply a full reprocessing gives."""

from __future__ import annotations

import os

import numpy as np
import pytest
from autogen_core.models import LLMMessage, SystemMessage, UserMessage

from agents.providers.local import LocalChatCompletionClient, _load, local_model_path
from agents.providers.prefix_cache import PrefixState, PrefixStateCache


def _state(tokens: list[int], size: int = 10) -> PrefixState:
    return PrefixState(input_ids=np.array(tokens, dtype=np.intc), data=b"x" * size)


def test_a_lookup_answers_the_state_with_the_longest_shared_prefix() -> None:
    cache = PrefixStateCache(capacity_bytes=1000)
    cache[[1, 2, 3, 4]] = _state([1, 2, 3, 4])
    cache[[1, 2, 9, 9, 9]] = _state([1, 2, 9, 9, 9])
    cache[[7, 7]] = _state([7, 7])
    assert cache[[1, 2, 3, 4, 5, 6]].input_ids.tolist() == [1, 2, 3, 4]
    assert cache[[1, 2, 9, 0]].input_ids.tolist() == [1, 2, 9, 9, 9]
    assert [7, 1] in cache and [5] not in cache
    with pytest.raises(KeyError):
        cache[[5, 5]]


def test_the_least_recently_used_states_go_first_beyond_the_budget() -> None:
    cache = PrefixStateCache(capacity_bytes=25)
    cache[[1]] = _state([1])
    cache[[2]] = _state([2])
    assert cache[[1, 5]]  # a lookup makes [1] the most recently used
    cache[[3]] = _state([3])
    assert cache.snapshot()["states"] == 2
    assert [1] in cache and [3] in cache and [2] not in cache
    cache[[4]] = _state([4], size=100)  # bigger than the whole budget: nothing is kept
    assert cache.snapshot()["states"] == 0


def test_a_state_that_a_newer_one_extends_is_dropped() -> None:
    cache = PrefixStateCache(capacity_bytes=1000)
    cache[[1, 2]] = _state([1, 2])
    cache[[1, 2, 3]] = _state([1, 2, 3])
    assert cache.snapshot()["states"] == 1
    assert cache[[1, 2]].input_ids.tolist() == [1, 2, 3]


_PLANNER = "You are a planner. " + "Plan carefully and keep each plan to three short steps. " * 8
_CRITIC = "You are a critic. " + "Name the one weakest step of the plan and say why, briefly. " * 8


async def _two_agents_take_turns(client: LocalChatCompletionClient, turns: int) -> list[str]:
    history: list[LLMMessage] = [UserMessage(content="Plan a picnic in the park.", source="user")]
    replies = []
    for _ in range(turns):
        for name, system in (("planner", _PLANNER), ("critic", _CRITIC)):
            result = await client.create([SystemMessage(content=system), *history])
            assert isinstance(result.content, str)
            replies.append(result.content)
            history.append(UserMessage(content=result.content, source=name))
    return replies


@pytest.mark.localmodel
async def test_alternating_agents_reuse_their_prefixes_and_get_the_same_replies(settings) -> None:  # type: ignore[no-untyped-def]
    path = str(local_model_path("smollm2-135m"))

    async def replies_with(cache_mb: int, n_ctx: int) -> tuple[list[str], dict[str, float]]:
        settings.LODESTONE_LOCAL_PREFIX_CACHE_MB = cache_mb
        # A context size of its own: a separate model instance with a cache of this size.
        client = LocalChatCompletionClient(model_path=path, n_ctx=n_ctx, max_tokens=16, temperature=0.0, seed=7)
        replies = await _two_agents_take_turns(client, turns=2)
        # The instance the client loaded (its restores below prove it): threads from the setting.
        loaded = _load(path, n_ctx, settings.LODESTONE_LOCAL_THREADS)
        assert loaded.n_threads == loaded.n_threads_batch == len(os.sched_getaffinity(0))
        return replies, loaded.prefix_cache.snapshot()

    uncached, without = await replies_with(0, 2048 + 16)
    cached, kept = await replies_with(64, 2048 + 32)

    assert cached == uncached  # a restored prefix is exactly the processed one
    assert without["restores"] == 0 and without["hit_rate"] < 0.1
    # Each agent's second turn restored its own first turn instead of reprocessing it.
    assert kept["restores"] >= 2 and kept["hit_rate"] > 0.4
    assert 0 < kept["bytes"] <= 64 * 1024 * 1024
