"""The local embedder on the real int8 ONNX model (no mocks): shape, norm, meaning, batching, cache."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from memory.embeddings import Embedder, EmbedderError, get_embedder
from memory.embeddings.local import LocalEmbedder


@pytest.fixture(scope="module")
def embedder() -> LocalEmbedder:
    return LocalEmbedder()


def test_registry_returns_one_instance_per_process() -> None:
    first = get_embedder("local")
    assert isinstance(first, LocalEmbedder) and isinstance(first, Embedder)
    assert get_embedder("local") is first
    assert get_embedder() is first  # settings.LODESTONE_EMBEDDER defaults to "local"


def test_unknown_embedder_is_a_clear_error() -> None:
    with pytest.raises(EmbedderError, match="Unknown embedder 'nope'"):
        get_embedder("nope")


def test_shape_dtype_and_unit_norm(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed(["Hello world.", "A second, somewhat longer sentence about nothing."])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_similar_sentences_score_higher_than_unrelated(embedder: LocalEmbedder) -> None:
    pairs = [
        ("The cat sits on the mat.", "A kitten is resting on a rug.", "Quarterly revenue grew by ten percent."),
        (
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The train to Lyon leaves at noon.",
        ),
        (
            "The database migration failed with a lock timeout.",
            "Schema migration aborted: could not obtain lock.",
            "She planted tomatoes in the garden.",
        ),
    ]
    for anchor, similar, unrelated in pairs:
        a, s, u = embedder.embed([anchor, similar, unrelated])
        assert float(a @ s) > 0.45, (anchor, similar)
        assert float(a @ u) < 0.2, (anchor, unrelated)
        assert float(a @ s) > float(a @ u) + 0.3


def test_retrieval_picks_the_right_document(embedder: LocalEmbedder) -> None:
    documents = [
        "Paris is the capital of France.",
        "Python lists are ordered and mutable.",
        "Photosynthesis turns light into chemical energy in plants.",
        "The stock market fell sharply on Monday.",
    ]
    queries = [
        "What is France's capital city?",
        "How do plants make energy from sunlight?",
        "mutable sequences in Python",
    ]
    expected = [0, 2, 1]
    scores = embedder.embed(queries) @ embedder.embed(documents).T
    assert list(scores.argmax(axis=1)) == expected


def test_batching_equals_one_by_one_in_fp32() -> None:
    texts = [f"Sentence number {i} talks about {'long ' * (i % 13)}topics." for i in range(150)]
    fresh = LocalEmbedder(precision="fp32", batch_size=64, cache_entries=0)
    together = fresh.embed(texts)
    alone = np.vstack([fresh.embed([text]) for text in texts])
    # Padding changes nothing but float rounding in the masked mean.
    np.testing.assert_allclose(together, alone, atol=2e-5)


def test_batching_stays_close_to_one_by_one_in_int8() -> None:
    texts = [f"Sentence number {i} talks about {'long ' * (i % 13)}topics." for i in range(150)]
    fresh = LocalEmbedder(precision="int8", cache_entries=0)
    together = fresh.embed(texts)
    alone = np.vstack([fresh.embed([text]) for text in texts])
    # Activations are quantised with one scale per batch, so batch-mates move a vector slightly
    # (measured: cosine 0.986 at worst, 0.992 on average), never to another meaning.
    cosines = (together * alone).sum(axis=1)
    assert cosines.min() > 0.97 and cosines.mean() > 0.985, (cosines.min(), cosines.mean())
    # The same batch twice gives the same vectors: a batch's result does not depend on timing.
    again = LocalEmbedder(precision="int8", cache_entries=0).embed(texts[:32])
    np.testing.assert_allclose(fresh.embed(texts[:32]), again, atol=1e-6)


def test_long_text_is_truncated_at_256_tokens(embedder: LocalEmbedder) -> None:
    head = "word " * 300
    vectors = embedder.embed([head + "apple", head + "a completely different ending here"])
    # Both texts agree on the first 256 tokens, so the tails are cut off and the vectors are equal.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


def test_cache_by_content_and_bounded() -> None:
    embedder = LocalEmbedder(cache_entries=3)
    first = embedder.embed(["alpha", "beta", "alpha"])
    np.testing.assert_array_equal(first[0], first[2])
    assert len(embedder.cache) == 2 and embedder.cache.misses == 3
    again = embedder.embed(["beta"])
    assert embedder.cache.hits == 1
    np.testing.assert_array_equal(again[0], first[1])
    again[0, :] = 0  # a caller changing its result does not change the cache
    np.testing.assert_array_equal(embedder.embed(["beta"])[0], first[1])
    embedder.embed(["gamma", "delta", "epsilon"])
    assert len(embedder.cache) == 3


def test_empty_text_is_rejected(embedder: LocalEmbedder) -> None:
    with pytest.raises(EmbedderError, match="empty"):
        embedder.embed(["fine", "   "])
    with pytest.raises(EmbedderError, match="sequence of texts"):
        embedder.embed("one string")  # type: ignore[arg-type]


def test_thread_safe_under_concurrent_calls() -> None:
    embedder = LocalEmbedder(cache_entries=0)
    texts = [f"Concurrent sentence {i} about vectors and memory." for i in range(40)]
    expected = embedder.embed(texts)
    results: dict[int, np.ndarray] = {}
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            results[n] = embedder.embed(texts)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for got in results.values():
        np.testing.assert_allclose(got, expected, atol=2e-5)
