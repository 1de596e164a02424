"""The pinecone store through the official SDK (v10) against needledb, a Pinecone-compatible server
started as a real process (what that does not cover: docs/memory.md)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pytest
from django.test import override_settings

from memory.vector import VectorItem, VectorStoreError, get_vector_store, reset_vector_stores
from memory.vector.pinecone import PineconeVectorStore
from tests.memory.vector_contract import DIMENSION, VectorStoreContract, items, unit
from tests.services.vector_servers import NeedleDB, PineconeControlPlane

pytestmark = pytest.mark.services
_names = itertools.count()


def fresh_index(server: NeedleDB, dimension: int = DIMENSION) -> str:
    return server.create_index(f"test-{next(_names)}", dimension)


class TestPineconeContract(VectorStoreContract):
    @pytest.fixture
    def store(self, needledb: NeedleDB) -> Iterator[PineconeVectorStore]:
        yield PineconeVectorStore(DIMENSION, api_key=needledb.api_key, host=fresh_index(needledb))


def test_dimension_mismatch_at_start_up(needledb: NeedleDB) -> None:
    host = fresh_index(needledb, dimension=8)
    with pytest.raises(VectorStoreError, match=f"holds 8-dimensional vectors, but the embedder gives {DIMENSION}"):
        PineconeVectorStore(DIMENSION, api_key=needledb.api_key, host=host)


def test_wrong_key_and_unreachable_server_are_clear_errors(needledb: NeedleDB) -> None:
    host = fresh_index(needledb)
    with pytest.raises(VectorStoreError, match=r"Pinecone could not describe the index.*invalid API key"):
        PineconeVectorStore(DIMENSION, api_key="wrong", host=host)
    with pytest.raises(VectorStoreError, match=r"Pinecone could not describe the index.*refused"):
        PineconeVectorStore(DIMENSION, api_key="k", host="http://127.0.0.1:9/indexes/none")
    with pytest.raises(VectorStoreError, match="needs PINECONE_API_KEY"):
        PineconeVectorStore(DIMENSION, api_key=None, host=host)


def test_delete_where_and_batches(needledb: NeedleDB) -> None:
    store = PineconeVectorStore(DIMENSION, api_key=needledb.api_key, host=fresh_index(needledb))
    store.upsert(items(250), namespace="many")  # three upsert requests
    assert store.stats().namespaces == {"many": 250}
    assert store.delete_where({"parity": "odd"}, namespace="many") is None
    assert store.stats().namespaces == {"many": 125}
    assert len(store.fetch([f"v{i}" for i in range(250)], namespace="many")) == 125
    with pytest.raises(VectorStoreError, match="non-empty filter"):
        store.delete_where({}, namespace="many")


def test_registry_builds_it_from_settings(needledb: NeedleDB) -> None:
    host = fresh_index(needledb)
    reset_vector_stores()
    try:
        with override_settings(
            LODESTONE_VECTOR_STORE="pinecone", PINECONE_API_KEY=needledb.api_key, PINECONE_INDEX_HOST=host
        ):
            store = get_vector_store(DIMENSION)
            assert isinstance(store, PineconeVectorStore) and store.host == host
            store.upsert([VectorItem(id="a", vector=unit(1), metadata={"k": "v"})])
            assert store.query(np.asarray(unit(1)), k=1)[0].id == "a"
    finally:
        reset_vector_stores()


def test_index_found_by_name_through_the_control_plane(
    needledb: NeedleDB, pinecone_control_plane: PineconeControlPlane
) -> None:
    host = fresh_index(needledb)
    name = host.rsplit("/", 1)[1]
    reset_vector_stores()
    try:
        with override_settings(
            LODESTONE_VECTOR_STORE="pinecone",
            PINECONE_API_KEY=needledb.api_key,
            PINECONE_INDEX_HOST=None,
            PINECONE_INDEX=name,
            PINECONE_CONTROLLER_HOST=pinecone_control_plane.url,
        ):
            store = get_vector_store(DIMENSION)
            assert isinstance(store, PineconeVectorStore) and store.host == host
            store.upsert([VectorItem(id="a", vector=unit(2), metadata={})])
            assert store.query(np.asarray(unit(2)), k=1)[0].id == "a"
    finally:
        reset_vector_stores()
    assert pinecone_control_plane.requests == [f"/indexes/{name}"]  # looked up once


def test_unknown_or_starting_index_names_are_clear_errors(
    needledb: NeedleDB, pinecone_control_plane: PineconeControlPlane
) -> None:
    def open_by_name(name: str, key: str = needledb.api_key) -> PineconeVectorStore:
        return PineconeVectorStore(DIMENSION, api_key=key, index_name=name, controller_host=pinecone_control_plane.url)

    with pytest.raises(VectorStoreError, match="could not find the index 'no-such-index'"):
        open_by_name("no-such-index")
    name = fresh_index(needledb).rsplit("/", 1)[1]
    with pytest.raises(VectorStoreError, match="could not find the index"):
        open_by_name(name, key="wrong-key")
    pinecone_control_plane.initializing.add(name)
    with pytest.raises(VectorStoreError, match=r"not ready yet.*Initializing"):
        open_by_name(name)
    pinecone_control_plane.initializing.clear()
    assert open_by_name(name).host.endswith(f"/indexes/{name}")
