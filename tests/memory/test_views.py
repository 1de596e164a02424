"""The Memory page (HTMX) and the chat's "recalled" card."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from conversations import rendering
from memory import services
from memory.models import Experience
from tests import factories

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("own_vector_store")]

HTMX = {"HX-Request": "true"}


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_login_required(client: Client) -> None:
    response = client.get("/memory/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_page_lists_own_and_shared_filtered_by_agent_and_kind() -> None:
    alice, bob = factories.user(), factories.user()
    agent = factories.agent(factories.replay_model(["ok"]), "planner", name="Planner")
    services.experience_store(text="Alice plans sprints on Mondays.", owner=alice, agent=agent)
    services.experience_store(text="Shared: the wiki moved to Notion.", owner=None, kind="semantic")
    services.experience_store(text="Bob's secret plan.", owner=bob)
    client = logged_in(alice)

    page = client.get("/memory/").content.decode()
    assert "Alice plans sprints" in page and "wiki moved" in page and "Bob's secret" not in page
    assert 'hx-trigger="keyup changed delay:300ms' in page and 'id="memory-results"' in page

    by_agent = client.get("/memory/?agent=planner", headers=HTMX).content.decode()
    assert "Alice plans sprints" in by_agent and "wiki moved" not in by_agent
    assert "<main" not in by_agent  # the fragment only
    by_kind = client.get("/memory/?kind=semantic", headers=HTMX).content.decode()
    assert "wiki moved" in by_kind and "Alice plans" not in by_kind
    assert "Select a valid choice" in client.get("/memory/?kind=dream", headers=HTMX).content.decode()


def test_live_search_shows_scores_best_first() -> None:
    alice = factories.user()
    services.experience_store(text="The build broke because of a missing migration.", owner=alice)
    services.experience_store(text="We adopted a cat named Pixel.", owner=alice)
    html = logged_in(alice).get("/memory/?q=why+did+the+build+break", headers=HTMX).content.decode()
    assert "best matches for" in html and 'class="memory-score"' in html
    assert html.index("missing migration") < html.index("Pixel")


def test_provenance_of_consolidated_memories_is_shown() -> None:
    alice = factories.user()
    for text in ["The nightly backup failed: disk full.", "Backup failed overnight because the disk was full."]:
        services.experience_store(text=text, owner=alice)
    [merged] = services.memory_consolidate(owner=alice, threshold=0.6)
    html = logged_in(alice).get("/memory/?kind=semantic", headers=HTMX).content.decode()
    assert f'id="memory-{merged.pk}"' in html and "Consolidated from 2 memories" in html
    assert "disk full" in html
    listing = logged_in(alice).get("/memory/?kind=episodic", headers=HTMX).content.decode()
    assert f"Merged into #{merged.pk}" in listing


def test_delete_own_memory_but_not_anothers() -> None:
    alice, bob = factories.user(), factories.user()
    mine = services.experience_store(text="Delete me later.", owner=alice)
    theirs = services.experience_store(text="Not yours.", owner=bob)
    client = logged_in(alice)
    response = client.post(f"/memory/{mine.pk}/delete/", headers=HTMX)
    assert response.status_code == 200 and response.content == b""
    assert not Experience.objects.filter(pk=mine.pk).exists()
    assert client.post(f"/memory/{theirs.pk}/delete/").status_code == 404
    assert client.get(f"/memory/{theirs.pk}/delete/").status_code == 405
    assert Experience.objects.filter(pk=theirs.pk).exists()


def test_recalled_card_expands_to_the_memories_used() -> None:
    html = rendering.message_fragment(
        {
            "id": 1,
            "seq": 4,
            "run_id": 2,
            "source": "helper",
            "type": "memory",
            "content": "Recalled 2 memories",
            "payload": {
                "agent_name": "Helper",
                "memories": [
                    {"id": 7, "text": "The user's favourite colour is teal.", "score": 0.8123},
                    {"id": 9, "text": "The user likes <b>bold</b> answers.", "score": 0.51},
                ],
            },
            "prompt_tokens": 0,
            "completion_tokens": 0,
            "latency_ms": None,
            "created_at": "2026-11-24T10:00:00+00:00",
        }
    )
    assert 'class="msg msg-agent msg-memory hue-' in html and "<details" in html
    assert '<span class="tag">recalled</span>' in html and "Recalled 2 memories" in html
    assert "favourite colour is teal" in html and "0.81" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html  # memory text is escaped


def test_the_delete_button_of_a_shared_memory_follows_the_share_permission_not_staff() -> None:
    from django.contrib.auth.models import Permission

    shared = services.experience_store(text="Shared: the wiki moved to Notion.", owner=None)
    delete_url = f"/memory/{shared.pk}/delete/"
    bare_staff = factories.user()
    bare_staff.is_staff = True
    bare_staff.save()
    page = logged_in(bare_staff).get("/memory/").content.decode()
    assert "wiki moved" in page and delete_url not in page
    assert logged_in(bare_staff).post(delete_url).status_code == 404
    sharer = factories.user()
    sharer.user_permissions.add(Permission.objects.get(codename="share_experience"))
    assert delete_url in logged_in(sharer).get("/memory/").content.decode()
    logged_in(sharer).post(delete_url)
    assert not Experience.objects.filter(pk=shared.pk).exists()


# --- Provenance, corrections and history


def learned_memory(owner: Any) -> tuple[Experience, Any]:
    """A memory linked to the user message it came from, as learn mode stores it."""
    from conversations.models import Message, Run

    agent = factories.agent(factories.replay_model(["ok"]), name="Helper")
    conversation = factories.conversation(owner, agent=agent)
    run = Run.objects.create(conversation=conversation, status=Run.Status.COMPLETED)
    message = Message.objects.create(
        conversation=conversation, run=run, seq=1, source="user", type="user", content="My favourite colour is teal."
    )
    experience = services.experience_store(
        text="The user's favourite colour is teal.",
        kind="semantic",
        owner=owner,
        agent=agent,
        conversation=conversation,
        run=run,
        metadata={"source": "learned", "category": "fact", "run": run.pk},
        source_messages=[message],
        revision=services.Revision.model(run),
    )
    return experience, message


def test_a_memory_links_to_the_message_it_came_from_and_the_chat_has_that_anchor() -> None:
    alice = factories.user()
    _, message = learned_memory(alice)
    client = logged_in(alice)
    html = client.get("/memory/").content.decode()
    link = f'href="/conversations/{message.conversation_id}/#msg-{message.seq}"'
    assert link in html and "your message #1" in html and "learned fact" in html
    chat = client.get(f"/conversations/{message.conversation_id}/").content.decode()
    assert f'id="msg-{message.seq}"' in chat and "My favourite colour is teal." in chat


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/memory/{pk}/edit/"),
        ("post", "/memory/{pk}/edit/"),
        ("get", "/memory/{pk}/history/"),
        ("get", "/memory/{pk}/"),
        ("post", "/memory/{pk}/delete/"),
    ],
)
def test_anonymous_users_are_sent_to_log_in_and_other_users_get_404(method: str, path: str) -> None:
    alice, bob = factories.user(), factories.user()
    experience, _ = learned_memory(alice)
    url = path.format(pk=experience.pk)
    anonymous = getattr(Client(), method)(url, {"text": "Hacked."} if method == "post" else None)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    other = getattr(logged_in(bob), method)(url, {"text": "Hacked."} if method == "post" else None, headers=HTMX)
    assert other.status_code == 404
    experience.refresh_from_db()
    assert experience.text == "The user's favourite colour is teal."
    assert getattr(logged_in(alice), method)(url, {"text": "Teal."} if method == "post" else None).status_code in (
        200,
        302,
    )


def test_the_owner_corrects_a_memory_in_place_and_sees_its_history() -> None:
    alice = factories.user()
    experience, _ = learned_memory(alice)
    client = logged_in(alice)

    form = client.get(f"/memory/{experience.pk}/edit/", headers=HTMX).content.decode()
    assert "<main" not in form and 'name="csrfmiddlewaretoken"' in form
    assert f'hx-post="/memory/{experience.pk}/edit/"' in form and "favourite colour is teal" in form
    card = client.post(
        f"/memory/{experience.pk}/edit/", {"text": "  The user's favourite colour is dark teal. "}, headers=HTMX
    )
    assert card.status_code == 200 and "favourite colour is dark teal." in card.content.decode()
    assert f'id="memory-{experience.pk}"' in card.content.decode()
    experience.refresh_from_db()
    assert experience.text == "The user's favourite colour is dark teal."
    # Re-embedded: the search finds the corrected text.
    assert services.experiences_retrieve_similar(context="dark teal", user=alice, k=1)[0].experience == experience

    blank = client.post(f"/memory/{experience.pk}/edit/", {"text": "   "}, headers=HTMX).content.decode()
    assert 'role="alert"' in blank
    experience.refresh_from_db()
    assert experience.text == "The user's favourite colour is dark teal."

    history = client.get(f"/memory/{experience.pk}/history/", headers=HTMX).content.decode()
    assert history.index("Corrected by a user") < history.index("Learned from a run")  # newest first
    assert f"by {alice.get_username()}" in history
    assert "was: <del>The user&#x27;s favourite colour is teal.</del>" in history
    from memory.models import ExperienceRevision

    edit = ExperienceRevision.objects.filter(memory_id=experience.pk).first()
    assert edit is not None and (edit.cause, edit.actor_id, edit.run_id) == ("user_edit", alice.pk, None)


def test_a_deletion_keeps_the_text_in_the_history_and_the_page_lists_it() -> None:
    alice = factories.user()
    experience, _ = learned_memory(alice)
    client = logged_in(alice)
    assert client.post(f"/memory/{experience.pk}/delete/", headers=HTMX).status_code == 200
    from memory.models import ExperienceRevision

    revision = ExperienceRevision.objects.get(memory_id=experience.pk, cause="user_delete")
    assert revision.old_text == "The user's favourite colour is teal." and revision.actor_id == alice.pk
    page = client.get("/memory/").content.decode()
    assert "Recently deleted (1)" in page and "Deleted by a user" in page
    assert f"#{experience.pk} ·" in page
    # Not on another user's page.
    assert "Recently deleted" not in logged_in(factories.user()).get("/memory/").content.decode()
