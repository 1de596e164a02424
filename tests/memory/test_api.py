"""/api/memory/: owner-scoped CRUD of experiences and semantic search, on the real embedder/store."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from memory import services
from memory.embeddings import get_embedder
from memory.models import Experience
from memory.vector import get_vector_store
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_vector_store")]


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def test_anonymous_is_refused() -> None:
    assert APIClient().get("/api/memory/experiences/").status_code == 401
    assert APIClient().post("/api/memory/search/", {"query": "x"}, format="json").status_code == 401


def test_create_list_retrieve_update_delete() -> None:
    alice = factories.user()
    agent = factories.agent(factories.replay_model(["ok"]), "helper")
    api = client_for(alice)

    created = api.post(
        "/api/memory/experiences/",
        {"text": "The CI cache lives in S3.", "kind": "semantic", "importance": 0.8, "agent": "helper"},
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["text"] == "The CI cache lives in S3." and body["agent"] == "helper" and body["kind"] == "semantic"
    assert body["shared"] is False and body["chunk_count"] == 1 and body["sources"] == []
    pk = body["id"]

    listed = api.get("/api/memory/experiences/?kind=semantic&agent=helper").json()
    assert [e["id"] for e in listed["results"]] == [pk]
    assert api.get("/api/memory/experiences/?kind=episodic").json()["results"] == []
    assert api.get(f"/api/memory/experiences/{pk}/").json()["importance"] == 0.8

    updated = api.patch(f"/api/memory/experiences/{pk}/", {"text": "The CI cache lives in GCS."}, format="json")
    assert updated.status_code == 200 and updated.json()["text"] == "The CI cache lives in GCS."

    assert api.delete(f"/api/memory/experiences/{pk}/").status_code == 204
    assert not Experience.objects.filter(pk=pk).exists()
    embedder = get_embedder()
    assert get_vector_store(embedder.dimension).fetch([f"{pk}:0"], namespace=services.namespace_for(embedder)) == {}
    assert agent.pk  # the agent stays


def test_bad_input_is_a_clear_400() -> None:
    api = client_for(factories.user())
    empty = api.post("/api/memory/experiences/", {"text": "   "}, format="json")
    assert empty.status_code == 400 and "text" in empty.json()
    assert api.post("/api/memory/experiences/", {"text": "x", "importance": 2}, format="json").status_code == 400
    assert api.post("/api/memory/experiences/", {"text": "x", "kind": "dream"}, format="json").status_code == 400
    assert api.post("/api/memory/experiences/", {"text": "x", "agent": "nobody"}, format="json").status_code == 400
    shared = api.post("/api/memory/experiences/", {"text": "x", "shared": True}, format="json")
    assert shared.status_code == 400 and "shared" in shared.json()
    assert api.get("/api/memory/experiences/?agent=nobody").status_code == 400
    bad_filter = api.post("/api/memory/search/", {"query": "x", "filters": {"owner": 3}}, format="json")
    assert bad_filter.status_code == 400 and "Unknown filter fields" in str(bad_filter.json())
    assert api.post("/api/memory/search/", {"query": "x", "k": 0}, format="json").status_code == 400
    assert api.post("/api/memory/search/", {"query": ""}, format="json").status_code == 400


def test_owner_scoping() -> None:
    alice, mallory = factories.user(), factories.user()
    staff = factories.user()
    staff.user_permissions.add(Permission.objects.get(codename="share_experience"))
    mine = services.experience_store(text="Alice's API token is in the vault.", owner=alice)
    shared = client_for(staff).post(
        "/api/memory/experiences/", {"text": "Everyone: standup is at 9:30.", "shared": True}, format="json"
    )
    assert shared.status_code == 201 and shared.json()["shared"] is True
    shared_id = shared.json()["id"]

    thief = client_for(mallory)
    assert thief.get(f"/api/memory/experiences/{mine.pk}/").status_code == 404
    assert thief.patch(f"/api/memory/experiences/{mine.pk}/", {"text": "x"}, format="json").status_code == 404
    assert thief.delete(f"/api/memory/experiences/{mine.pk}/").status_code == 404
    assert [e["id"] for e in thief.get("/api/memory/experiences/").json()["results"]] == [shared_id]
    hits = thief.post("/api/memory/search/", {"query": "API token vault", "k": 10}, format="json").json()
    assert mine.pk not in [h["experience"]["id"] for h in hits]
    # Shared memories are visible to everyone but changed only with memory.share_experience.
    assert thief.get(f"/api/memory/experiences/{shared_id}/").status_code == 200
    assert thief.delete(f"/api/memory/experiences/{shared_id}/").status_code == 404


def test_staff_without_the_share_permission_neither_shares_nor_changes_shared_memories() -> None:
    bare_staff = factories.user()
    bare_staff.is_staff = True
    bare_staff.save()
    api = client_for(bare_staff)
    refused = api.post("/api/memory/experiences/", {"text": "Everyone: deploy now.", "shared": True}, format="json")
    assert refused.status_code == 400
    assert refused.json()["shared"] == "Storing a shared memory needs the permission memory.share_experience."
    assert not Experience.objects.filter(owner=None).exists()
    shared = services.experience_store(text="Standup is at 9:30.", owner=None)
    assert api.patch(f"/api/memory/experiences/{shared.pk}/", {"text": "x"}, format="json").status_code == 404
    assert api.delete(f"/api/memory/experiences/{shared.pk}/").status_code == 404
    sharer = factories.user()
    sharer.user_permissions.add(Permission.objects.get(codename="share_experience"))
    assert (
        client_for(sharer).patch(f"/api/memory/experiences/{shared.pk}/", {"text": "9:45."}, format="json").status_code
        == 200
    )
    assert client_for(sharer).delete(f"/api/memory/experiences/{shared.pk}/").status_code == 204


def test_search_ranks_with_scores_and_filters() -> None:
    alice = factories.user()
    api = client_for(alice)
    backup = services.experience_store(text="The backup failed because the disk was full.", owner=alice)
    services.experience_store(text="Team lunch is on Friday.", owner=alice, kind="semantic")
    hits = api.post("/api/memory/search/", {"query": "Why did the backup fail?", "k": 2}, format="json").json()
    assert hits[0]["experience"]["id"] == backup.pk
    assert hits[0]["score"] >= hits[1]["score"] and 0 < hits[0]["similarity"] <= 1
    only_semantic = api.post(
        "/api/memory/search/", {"query": "backup", "filters": {"kind": "semantic"}}, format="json"
    ).json()
    assert [h["experience"]["kind"] for h in only_semantic] == ["semantic"]


def test_provenance_of_a_consolidated_memory() -> None:
    alice = factories.user()
    sources = [
        services.experience_store(text=t, owner=alice)
        for t in ["The nightly backup failed: disk full.", "Backup failed overnight because the disk was full."]
    ]
    [merged] = services.memory_consolidate(owner=alice, threshold=0.6)
    api = client_for(alice)
    body = api.get(f"/api/memory/experiences/{merged.pk}/").json()
    assert body["kind"] == "semantic" and body["sources"] == sorted(s.pk for s in sources)
    listed = {e["id"]: e for e in api.get("/api/memory/experiences/").json()["results"]}
    assert listed[merged.pk]["sources"] == body["sources"]
    assert {listed[s.pk]["consolidated_into"] for s in sources} == {merged.pk}
    assert {listed[s.pk]["weight"] for s in sources} == {services.CONSOLIDATED_SOURCE_WEIGHT}


def test_source_messages_and_history_are_served_and_api_changes_are_revisions() -> None:
    from tests.memory.test_views import learned_memory

    alice, bob = factories.user(), factories.user()
    experience, message = learned_memory(alice)
    api = client_for(alice)

    body = api.get(f"/api/memory/experiences/{experience.pk}/").json()
    assert body["source_messages"] == [
        {"id": message.pk, "conversation_id": message.conversation_id, "seq": 1, "source": "user", "type": "user"}
    ]
    assert api.patch(
        f"/api/memory/experiences/{experience.pk}/", {"text": "The user's favourite colour is navy."}, format="json"
    ).json()["text"] == ("The user's favourite colour is navy.")
    history = api.get(f"/api/memory/experiences/{experience.pk}/history/").json()
    assert [(r["cause"], r["actor"], r["old_text"], r["new_text"]) for r in history] == [
        (
            "user_edit",
            alice.get_username(),
            "The user's favourite colour is teal.",
            "The user's favourite colour is navy.",
        ),
        ("model_add", None, "", "The user's favourite colour is teal."),
    ]
    assert history[1]["run_id"] == experience.run_id
    assert client_for(bob).get(f"/api/memory/experiences/{experience.pk}/history/").status_code == 404
    assert APIClient().get(f"/api/memory/experiences/{experience.pk}/history/").status_code == 401

    assert api.delete(f"/api/memory/experiences/{experience.pk}/").status_code == 204
    from memory.models import ExperienceRevision

    deleted = ExperienceRevision.objects.get(memory_id=experience.pk, cause="user_delete")
    assert deleted.old_text == "The user's favourite colour is navy." and deleted.actor_id == alice.pk
