"""Prompt caching for the local model: every agent keeps its processed prefix.

llama.cpp reuses only the prefix its one context last processed, so in a team where agents take
turns (each with its own system prompt) every turn reprocessed the whole prompt: ~20 s for a
600-token prompt on the 1.5B model here. After each generation the key-value state of the context
is kept here, keyed by its tokens; before the next one, the state sharing the longest prefix with
the new prompt is restored if it beats what the context holds. A follow-up in a conversation then
processes only the new message, and a new conversation with an agent only what follows its system
prompt and tools.

llama-cpp-python has this hook (``Llama.set_cache``), but its ``save_state`` also copies the logits
buffer, 311 MB per state for Qwen's 152k-word vocabulary. ``PrefixCachingLlama`` saves the
sequence's key-value cells only (~12 KB per token on the 0.5B, ~28 KB on the 1.5B): restored
logits are never used, because llama.cpp re-evaluates at least the prompt's last token after a
restore.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import Llama
from llama_cpp.llama_cache import BaseLlamaCache

logger = logging.getLogger(__name__)

_SEQUENCE = 0  # llama-cpp-python's high-level API keeps everything in sequence 0


@dataclass(frozen=True)
class PrefixState:
    input_ids: np.ndarray  # the tokens whose key-value cells ``data`` holds
    data: bytes

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def llama_state_size(self) -> int:  # what llama-cpp-python's caches account by
        return len(self.data)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    size = min(len(a), len(b))
    if size == 0:
        return 0
    left, right = np.asarray(a[:size]), np.asarray(b[:size])
    differ = np.flatnonzero(left != right)
    return int(differ[0]) if differ.size else size


@dataclass
class CacheStats:
    generations: int = 0
    prompt_tokens: int = 0
    reused_tokens: int = 0  # prompt tokens not processed again, from the context or a restored state
    restores: int = 0  # times a kept state beat what the context held

    @property
    def hit_rate(self) -> float:
        return self.reused_tokens / self.prompt_tokens if self.prompt_tokens else 0.0


class PrefixStateCache(BaseLlamaCache):
    """Kept states, least recently used dropped first beyond ``capacity_bytes``; a lookup answers
    the state sharing the longest prefix with the given tokens."""

    def __init__(self, capacity_bytes: int) -> None:
        super().__init__(capacity_bytes)
        self._states: OrderedDict[tuple[int, ...], PrefixState] = OrderedDict()
        self._lock = threading.Lock()
        self.stats = CacheStats()

    @property
    def cache_size(self) -> int:
        return sum(state.llama_state_size for state in self._states.values())

    def _longest(self, key: Sequence[int]) -> tuple[tuple[int, ...] | None, int]:
        best: tuple[int, ...] | None = None
        best_length = 0
        for kept in self._states:
            length = _common_prefix(kept, key)
            if length > best_length:
                best, best_length = kept, length
        return best, best_length

    def __getitem__(self, key: Sequence[int]) -> PrefixState:  # type: ignore[override]
        with self._lock:
            best, _ = self._longest(key)
            if best is None:
                raise KeyError("No kept state shares a prefix with this prompt.")
            self._states.move_to_end(best)
            return self._states[best]

    def __contains__(self, key: Sequence[int]) -> bool:
        with self._lock:
            return self._longest(key)[0] is not None

    def __setitem__(self, key: Sequence[int], value: PrefixState) -> None:  # type: ignore[override]
        kept_key = tuple(int(t) for t in value.input_ids)
        with self._lock:
            # A state that is a prefix of the new one can do nothing the new one cannot.
            for older in [k for k in self._states if len(k) <= len(kept_key) and kept_key[: len(k)] == k]:
                del self._states[older]
            self._states[kept_key] = value
            while self.cache_size > self.capacity_bytes and len(self._states) > 1:
                self._states.popitem(last=False)
            if self.cache_size > self.capacity_bytes:
                self._states.clear()  # one state bigger than the whole budget: keep none

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "states": len(self._states),
                "bytes": self.cache_size,
                "capacity_bytes": self.capacity_bytes,
                "generations": self.stats.generations,
                "prompt_tokens": self.stats.prompt_tokens,
                "reused_tokens": self.stats.reused_tokens,
                "restores": self.stats.restores,
                "hit_rate": round(self.stats.hit_rate, 4),
            }


class PrefixCachingLlama(Llama):
    """A ``Llama`` whose saved states are its key-value cells only, with prompt reuse counted."""

    prefix_cache: PrefixStateCache
    last_prompt_tokens: int = 0
    last_reused_tokens: int = 0

    def use_prefix_cache(self, cache: PrefixStateCache) -> None:
        self.prefix_cache = cache
        if cache.capacity_bytes > 0:  # without a budget, only the counting
            self.set_cache(cache)

    def save_state(self) -> PrefixState:  # type: ignore[override]
        size = llama_cpp.llama_state_seq_get_size(self.ctx, _SEQUENCE)
        buffer = (ctypes.c_uint8 * size)()
        written = llama_cpp.llama_state_seq_get_data(self.ctx, buffer, size, _SEQUENCE)
        return PrefixState(input_ids=self._input_ids.copy(), data=bytes(buffer)[:written])

    def load_state(self, state: PrefixState) -> None:  # type: ignore[override]
        llama_cpp.llama_memory_seq_rm(llama_cpp.llama_get_memory(self.ctx), _SEQUENCE, 0, -1)
        buffer = (ctypes.c_uint8 * len(state.data)).from_buffer_copy(state.data)
        if not llama_cpp.llama_state_seq_set_data(self.ctx, buffer, len(state.data), _SEQUENCE):
            # The context is empty now: this prompt is processed from the start, which is slower
            # but right.
            logger.warning("llama.cpp could not restore a kept prompt state of %s tokens", state.n_tokens)
            self.n_tokens = 0
            return
        self.input_ids[: state.n_tokens] = state.input_ids
        self.n_tokens = state.n_tokens
        # The restored state has no logits: generate() must evaluate before it samples.
        self._requires_eval = True
        self.prefix_cache.stats.restores += 1

    def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:  # type: ignore[override]
        reused = min(_common_prefix(self._input_ids.tolist(), tokens), len(tokens))
        self.last_prompt_tokens, self.last_reused_tokens = len(tokens), reused
        stats = self.prefix_cache.stats
        stats.generations += 1
        stats.prompt_tokens += len(tokens)
        stats.reused_tokens += reused
        yield from super().generate(tokens, *args, **kwargs)
