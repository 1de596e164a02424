"""The openai embedder through the real ``openai`` client against a local OpenAI-compatible server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from django.test import override_settings

from memory import embeddings
from memory.embeddings import EmbedderError, get_embedder
from memory.embeddings.openai import OpenAIEmbedder
from tests.openai_embeddings_server import FakeEmbeddings, bag_of_words
from tests.servers import free_port


@pytest.fixture
def server() -> Iterator[FakeEmbeddings]:
    fake = FakeEmbeddings(free_port(), dimension=48)
    fake.start()
    yield fake
    fake.stop()


def make(server: FakeEmbeddings, **options: object) -> OpenAIEmbedder:
    return OpenAIEmbedder(model="tiny-embed", base_url=server.base_url, api_key="sk-test", max_retries=0, **options)  # type: ignore[arg-type]


def test_dimension_is_probed_and_vectors_are_normalised(server: FakeEmbeddings) -> None:
    embedder = make(server)
    assert embedder.dimension == 48
    vectors = embedder.embed(["red apples and green pears", "green pears and red apples", "a train timetable"])
    assert vectors.shape == (3, 48) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-6)
    expected = np.asarray(bag_of_words("a train timetable", 48), dtype=np.float32)
    np.testing.assert_allclose(vectors[2], expected / np.linalg.norm(expected), atol=1e-6)
    assert float(vectors[0] @ vectors[1]) > 0.99
    request = server.requests[-1]
    assert request["model"] == "tiny-embed" and request["encoding_format"] == "float"
    assert server.headers[-1]["authorization"] == "Bearer sk-test"


def test_batches_and_cache(server: FakeEmbeddings) -> None:
    embedder = make(server, batch_size=4)
    texts = [f"text number {i}" for i in range(10)]
    before = len(server.requests)
    first = embedder.embed(texts)
    assert [len(r["input"]) for r in server.requests[before:]] == [4, 4, 2]
    again = embedder.embed([*texts[:3], "one more"])
    assert len(server.requests) == before + 4 and server.requests[-1]["input"] == ["one more"]
    np.testing.assert_array_equal(again[:3], first[:3])


def test_configured_dimensions_are_requested(server: FakeEmbeddings) -> None:
    embedder = make(server, dimensions=16)
    assert embedder.dimension == 16 and server.requests == []  # no probe needed
    assert embedder.embed(["hello"]).shape == (1, 16)
    assert server.requests[-1]["dimensions"] == 16


def test_out_of_order_data_is_put_back_in_order(server: FakeEmbeddings) -> None:
    embedder = make(server)
    expected = embedder.embed(["first words", "second words", "third words"])
    embedder.cache.clear()
    server.mode = "shuffled"
    np.testing.assert_array_equal(embedder.embed(["first words", "second words", "third words"]), expected)


def test_failures_are_clear_errors(server: FakeEmbeddings) -> None:
    embedder = make(server)
    server.mode = "error"
    with pytest.raises(EmbedderError, match=r"endpoint failed.*model overloaded"):
        embedder.embed(["anything"])
    server.mode = "short"
    with pytest.raises(EmbedderError, match="returned 1 embeddings for 2 texts"):
        embedder.embed(["one", "two"])
    server.mode = "ok"
    with pytest.raises(EmbedderError, match="empty"):
        embedder.embed([""])


def test_unreachable_endpoint_fails_at_start_up() -> None:
    with pytest.raises(EmbedderError, match="APIConnectionError"):
        OpenAIEmbedder(model="m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=0, timeout=2)


def test_registry_builds_it_from_settings(server: FakeEmbeddings) -> None:
    with override_settings(
        LODESTONE_EMBEDDER="openai",
        LODESTONE_OPENAI_EMBEDDINGS_BASE_URL=server.base_url,
        LODESTONE_OPENAI_EMBEDDINGS_MODEL="from-settings",
        LODESTONE_OPENAI_EMBEDDINGS_API_KEY=None,
        OPENAI_API_KEY="sk-fallback",
        LODESTONE_OPENAI_EMBEDDINGS_DIMENSIONS=0,
    ):
        embeddings._INSTANCES.pop("openai", None)
        try:
            embedder = get_embedder()
            assert isinstance(embedder, OpenAIEmbedder) and embedder.dimension == 48
            embedder.embed(["x y z"])
        finally:
            embeddings._INSTANCES.pop("openai", None)
    assert server.requests[-1]["model"] == "from-settings"
    assert server.headers[-1]["authorization"] == "Bearer sk-fallback"
