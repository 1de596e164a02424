"""Experience services on the real local embedder and the embedded vector store (no mocks)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.utils import timezone

from memory import selectors, services
from memory.embeddings import get_embedder
from memory.models import Experience
from memory.vector import get_vector_store, reset_vector_stores
from tests import factories

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_vector_store(tmp_path: Path, settings: pytest.FixtureRequest) -> Iterator[None]:
    """A vector store of this test's own (ids are reused after each test's rollback)."""
    isolate_vector_store(tmp_path, settings)
    yield
    reset_vector_stores()


def isolate_vector_store(tmp_path: Path, settings: object) -> None:
    settings.LODESTONE_VECTOR_STORE = "embedded"  # type: ignore[attr-defined]
    settings.LODESTONE_VECTOR_DIR = str(tmp_path / "vectors")  # type: ignore[attr-defined]
    settings.VAR_DIR = tmp_path  # type: ignore[attr-defined]
    reset_vector_stores()


def store_stats() -> dict[str, int]:
    embedder = get_embedder()
    return get_vector_store(embedder.dimension).stats().namespaces


def test_store_writes_row_and_vectors_with_metadata() -> None:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["ok"]), "helper")
    exp = services.experience_store(text="  The deploy script needs Python 3.11.  ", owner=user, agent=agent)

    assert exp.text == "The deploy script needs Python 3.11."
    assert exp.chunk_count == 1 and exp.embedding_model == "local:384"
    embedder = get_embedder()
    found = get_vector_store(embedder.dimension).fetch([f"{exp.pk}:0"], namespace=services.namespace_for(embedder))
    meta = found[f"{exp.pk}:0"].metadata
    assert meta["owner"] == user.pk and meta["agent"] == agent.pk and meta["kind"] == "episodic"
    assert meta["experience"] == exp.pk and meta["conversation"] == 0


@pytest.mark.parametrize("text", ["", "   ", None, 42])
def test_empty_or_non_text_is_rejected(text: object) -> None:
    with pytest.raises(ValidationError):
        services.experience_store(text=text, owner=factories.user())  # type: ignore[arg-type]
    assert Experience.objects.count() == 0


def test_bad_kind_importance_and_too_long_text_are_rejected() -> None:
    user = factories.user()
    with pytest.raises(ValidationError, match="Kind"):
        services.experience_store(text="x y z", kind="dream", owner=user)
    with pytest.raises(ValidationError, match="Importance"):
        services.experience_store(text="x y z", importance=1.5, owner=user)
    with pytest.raises(ValidationError, match="longer than"):
        services.experience_store(text="a" * (services.TEXT_MAX_CHARS + 1), owner=user)


def test_long_text_is_chunked_and_found_by_its_middle() -> None:
    user = factories.user()
    filler = " ".join(f"Paragraph {i} talks about gardening, tomatoes and watering schedules." for i in range(40))
    needle = "The production database password rotates every ninety days via Vault."
    text = filler + " " + needle + " " + filler
    exp = services.experience_store(text=text, owner=user)

    chunks = services.chunk_text(text)
    assert exp.chunk_count == len(chunks) > 3
    assert all(len(c) <= services.CHUNK_CHARS for c in chunks)
    assert any(needle in c for c in chunks)
    assert store_stats()[services.namespace_for(get_embedder())] == exp.chunk_count
    other = services.experience_store(text="Tomatoes need watering twice a week in summer.", owner=user)
    query = "How often is the database password rotated?"
    best = services.experiences_retrieve_similar(context=query, user=user)
    assert [r.experience.pk for r in best] == [exp.pk, other.pk]
    # One vector of the whole text (the model reads its first ~256 word pieces) would miss it.
    head, q = get_embedder().embed([text, query])
    assert best[0].similarity > float(head @ q) + 0.1


def test_chunks_overlap_and_cover_the_text() -> None:
    words = " ".join(f"w{i}" for i in range(2000))
    chunks = services.chunk_text(words, size=300, overlap=60)
    assert all(len(c) <= 300 for c in chunks)
    # Every word appears in some chunk, and consecutive chunks share words.
    joined = set(" ".join(chunks).split())
    assert joined == set(words.split())
    assert set(chunks[0].split()) & set(chunks[1].split())


def test_same_text_twice_is_one_memory() -> None:
    user = factories.user()
    first = services.experience_store(text="Use tabs in Makefiles.", owner=user, importance=0.2)
    second = services.experience_store(text="Use tabs in Makefiles.", owner=user, importance=0.9)
    assert first.pk == second.pk
    first.refresh_from_db()
    assert first.importance == 0.9 and Experience.objects.count() == 1


def test_delete_removes_every_vector() -> None:
    user = factories.user()
    exp = services.experience_store(text="word " * 600, owner=user)
    embedder = get_embedder()
    ids = services.vector_ids(exp.pk, exp.chunk_count)
    store = get_vector_store(embedder.dimension)
    assert len(store.fetch(ids, namespace=services.namespace_for(embedder))) == exp.chunk_count > 1
    services.experience_delete(experience=exp)
    assert not Experience.objects.exists()
    assert store.fetch(ids, namespace=services.namespace_for(embedder)) == {}


def test_update_reembeds_and_drops_stale_chunks() -> None:
    user = factories.user()
    exp = services.experience_store(text="word " * 600, owner=user)
    old_ids = services.vector_ids(exp.pk, exp.chunk_count)
    services.experience_update(experience=exp, text="Cats purr when content.", importance=0.8)
    embedder = get_embedder()
    found = get_vector_store(embedder.dimension).fetch(old_ids, namespace=services.namespace_for(embedder))
    assert list(found) == [f"{exp.pk}:0"] and found[f"{exp.pk}:0"].metadata["importance"] == 0.8
    best = services.experiences_retrieve_similar(context="Why do cats purr?", user=user)
    assert best[0].experience.pk == exp.pk


def test_user_sees_own_and_shared_but_not_others() -> None:
    alice, bob = factories.user(), factories.user()
    mine = services.experience_store(text="Alice prefers dark mode in every editor.", owner=alice)
    shared = services.experience_store(text="The office wifi password is on the fridge.", owner=None)
    theirs = services.experience_store(text="Bob prefers dark mode in every editor too.", owner=bob)

    found = {
        r.experience.pk for r in services.experiences_retrieve_similar(context="dark mode editor", user=alice, k=10)
    }
    assert mine.pk in found and theirs.pk not in found
    assert {e.pk for e in selectors.experience_list(user=alice)} == {mine.pk, shared.pk}
    assert selectors.experience_get(user=alice, pk=theirs.pk) is None
    assert selectors.experience_get_editable(user=alice, pk=shared.pk) is None  # shared: staff only


def test_filters_narrow_and_bad_filters_are_rejected() -> None:
    user = factories.user()
    services.experience_store(text="Bread needs yeast, flour, water and salt.", owner=user, kind="semantic")
    ep = services.experience_store(text="Yesterday the bread did not rise: old yeast.", owner=user)
    found = services.experiences_retrieve_similar(context="bread yeast", user=user, filters={"kind": "episodic"})
    assert [r.experience.pk for r in found] == [ep.pk]
    found = services.experiences_retrieve_similar(
        context="bread yeast", user=user, filters={"kind": {"$in": ["episodic", "semantic"]}}
    )
    assert len(found) == 2
    with pytest.raises(ValidationError, match="Unknown filter fields: owner"):
        services.experiences_retrieve_similar(context="x", user=user, filters={"owner": 1})
    with pytest.raises(ValidationError, match="operator"):
        services.experiences_retrieve_similar(context="x", user=user, filters={"kind": {"$regex": "e"}})
    with pytest.raises(ValidationError, match="k is"):
        services.experiences_retrieve_similar(context="x", user=user, k=0)
    with pytest.raises(ValidationError):
        services.experiences_retrieve_similar(context="  ", user=user)


def test_ranking_combines_similarity_recency_importance_and_weight() -> None:
    assert services.rank_score(similarity=1, recency=1, importance=1, weight=1) == pytest.approx(1.0)
    user = factories.user()
    old = services.experience_store(text="The staging server runs on port 8080.", owner=user, importance=0.5)
    new = services.experience_store(text="The staging server runs on port 8081.", owner=user, importance=0.5)
    Experience.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=120))
    found = services.experiences_retrieve_similar(context="staging server port", user=user)
    assert [r.experience.pk for r in found[:2]] == [new.pk, old.pk]
    assert found[1].recency == pytest.approx(0.5**4, rel=0.01)
    # Importance can outweigh a little recency; weight (consolidated sources) pulls a memory down.
    Experience.objects.filter(pk=old.pk).update(created_at=timezone.now(), importance=1.0)
    found = services.experiences_retrieve_similar(context="staging server port", user=user)
    assert found[0].experience.pk == old.pk
    Experience.objects.filter(pk=old.pk).update(weight=0.3)
    found = services.experiences_retrieve_similar(context="staging server port", user=user)
    assert found[0].experience.pk == new.pk


def test_consolidate_merges_related_memories_extractively_with_provenance() -> None:
    user = factories.user()
    agent = factories.agent(factories.replay_model(["unused"]), "ops")
    texts = [
        "The nightly backup failed because the disk was full.",
        "Backup failed again overnight: the backup disk ran out of space.",
        "The nightly backup job failed since the disk is full.",
    ]
    sources = [services.experience_store(text=t, owner=user, agent=agent) for t in texts]
    unrelated = services.experience_store(text="Lunch on Friday is pizza.", owner=user, agent=agent)

    created = services.memory_consolidate(owner=user, threshold=0.6)

    assert len(created) == 1
    merged = created[0]
    assert merged.kind == "semantic" and merged.agent == agent and merged.owner == user
    assert merged.metadata["method"] == "extractive"
    assert sorted(merged.metadata["consolidated_from"]) == sorted(s.pk for s in sources)
    assert "backup" in merged.text.lower() and len(merged.text) <= 600
    assert {s.pk for s in selectors.experience_sources(experience=merged)} == {s.pk for s in sources}
    for source in sources:
        source.refresh_from_db()
        assert source.consolidated_into == merged and source.weight == services.CONSOLIDATED_SOURCE_WEIGHT
    unrelated.refresh_from_db()
    assert unrelated.consolidated_into is None and unrelated.weight == 1.0
    # The summary outranks its (down-weighted) sources.
    found = services.experiences_retrieve_similar(context="why did the backup fail", user=user)
    assert found[0].experience.pk == merged.pk
    # Running again finds nothing new; deleting the summary gives the sources their weight back.
    assert services.memory_consolidate(owner=user, threshold=0.6) == []
    services.experience_delete(experience=merged)
    assert set(Experience.objects.filter(weight=1.0).values_list("pk", flat=True)) >= {s.pk for s in sources}


def test_consolidate_command_and_task(capsys: pytest.CaptureFixture[str]) -> None:
    user = factories.user()
    for t in ["Redis must bind to 127.0.0.1 only.", "Bind Redis to 127.0.0.1 and nothing else."]:
        services.experience_store(text=t, owner=user)
    with pytest.raises(CommandError, match="No user"):
        call_command("consolidate_memory", "--user", "nobody")
    call_command("consolidate_memory", "--shared", "--threshold", "0.6")
    assert "0 consolidated memories written" in capsys.readouterr().out
    call_command("consolidate_memory", "--threshold", "0.6")
    assert "1 consolidated memories written" in capsys.readouterr().out
    assert Experience.objects.filter(kind="semantic").count() == 1

    from memory.tasks import memory_consolidate_task

    for t in ["Tests need LODESTONE_TEST_DB set.", "Set LODESTONE_TEST_DB before running the tests."]:
        services.experience_store(text=t, owner=user)
    assert memory_consolidate_task(owner_id=user.pk, threshold=0.6) == 1


def test_consolidate_asks_a_capable_model_and_falls_back_when_it_is_down() -> None:
    from agents import services as agent_services
    from agents.models import ModelConfig
    from tests.openai_server import FakeOpenAI
    from tests.servers import free_port

    server = FakeOpenAI(free_port(), "Keep the backup disk below 80 percent or the nightly backup fails.")
    config = agent_services.model_config_create(
        name="remote-summariser",
        provider=ModelConfig.Provider.OPENAI_COMPATIBLE,
        model="tiny-model",
        base_url=server.base_url,
        api_key="sk-test-not-real",
        options={"timeout": 5, "max_retries": 0},
    )
    user = factories.user()
    agent = factories.agent(config, "archivist")
    texts = ["The nightly backup failed: disk full.", "Backup failed overnight because the disk was full."]

    # The endpoint is down: an extractive summary, and consolidation still happens.
    for t in texts:
        services.experience_store(text=t, owner=user, agent=agent)
    [fallback] = services.memory_consolidate(owner=user, threshold=0.6)
    assert fallback.metadata["method"] == "extractive"

    services.experience_delete(experience=fallback)
    server.start()
    try:
        [merged] = services.memory_consolidate(owner=user, threshold=0.6)
    finally:
        server.stop()
    assert merged.metadata["method"] == "model"
    assert merged.text == "Keep the backup disk below 80 percent or the nightly backup fails."
    prompt = server.requests[-1]["messages"][-1]["content"]
    assert all(t in prompt for t in texts)


def test_delete_also_removes_vectors_an_earlier_embedder_of_the_same_width_made() -> None:
    from memory.vector import VectorItem

    user = factories.user()
    exp = services.experience_store(text="Made by another embedder once.", owner=user)
    embedder = get_embedder()
    store = get_vector_store(embedder.dimension)
    vector = store.fetch([f"{exp.pk}:0"], namespace=services.namespace_for(embedder))[f"{exp.pk}:0"].vector
    store.upsert(
        [VectorItem(id=f"{exp.pk}:0", vector=vector, metadata={"experience": exp.pk})], namespace="experiences-old"
    )
    Experience.objects.filter(pk=exp.pk).update(embedding_model=f"old:{embedder.dimension}")
    exp.refresh_from_db()
    vid = f"{exp.pk}:0"
    assert store.fetch([vid], namespace="experiences-old")
    services.experience_delete(experience=exp)
    assert store.fetch([vid], namespace="experiences-old") == {}
    assert store.fetch([vid], namespace=services.namespace_for(embedder)) == {}
