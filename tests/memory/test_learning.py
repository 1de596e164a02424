"""Learn mode (memory.learning) on real runs with scripted models (AutoGen's replay client), the real
embedder and the embedded vector store: extraction, each reconcile decision, provenance, history,
and runs that must teach nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from autogen_core.models import ModelFamily, ModelInfo
from autogen_ext.models.replay import ReplayChatCompletionClient

from agents.models import Agent, ModelConfig
from agents.providers import model_client_for
from conversations import services as conversation_services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from memory import learning, ports, services
from memory.models import Experience, ExperienceRevision
from tests import factories
from tests.conversations.test_executor import wait_for_run

pytestmark = pytest.mark.django_db(transaction=True)

Cause = ExperienceRevision.Cause


@pytest.fixture(autouse=True)
def fresh_vector_store(own_vector_store: Path, tmp_path: Path, settings: Any) -> None:
    settings.VAR_DIR = tmp_path
    settings.LODESTONE_MEMORY_MODE = "learn"


@pytest.fixture(autouse=True)
def learning_never_breaks(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Learning that raised is only logged by the executor (the run stays completed): fail on it."""
    yield
    failures = [r.getMessage() for r in caplog.get_records("call") if "storing its experience failed" in r.getMessage()]
    assert not failures


def extraction(facts: list[str] = [], preferences: list[str] = [], lessons: list[str] = []) -> str:  # noqa: B006
    return json.dumps({"facts": facts, "preferences": preferences, "lessons": lessons})


async def client_of(model: ModelConfig) -> ReplayChatCompletionClient:
    client = model_client_for(await ModelConfig.objects.aget(pk=model.pk))
    assert isinstance(client, ReplayChatCompletionClient)
    return client


async def converse(user: Any, agent: Agent, text: str, runner: InlineRunner) -> Run:
    """Post ``text`` in a new conversation and wait for the run and what memory does after it."""
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text=text)
    run = await wait_for_run(run.pk)
    await runner.wait_idle()
    return run


def remember(text: str, user: Any, agent: Agent) -> Experience:
    return services.experience_store(text=text, kind="semantic", owner=user, agent=agent, importance=0.7)


# --- Extract, then ADD


async def test_a_fact_the_user_stated_is_learned_with_its_provenance_and_history(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        ["Teal is a lovely colour!", extraction(facts=["The user's favourite colour is teal."])]
    )
    agent = await sync_to_async(factories.agent)(model, "learner", memory_enabled=True)

    run = await converse(user, agent, "My favourite colour is teal.", inline_runner)

    assert run.status == Run.Status.COMPLETED, run.error
    learned = await Experience.objects.aget(owner=user)
    assert learned.text == "The user's favourite colour is teal."
    assert learned.kind == "semantic" and learned.agent_id == agent.pk and learned.run_id == run.pk
    assert learned.metadata == {"source": "learned", "category": "fact", "run": run.pk}
    assert learned.importance == learning.IMPORTANCE["fact"]
    # Provenance: the user's message, the one the fact came from.
    user_message = await Message.objects.aget(run=run, type=Message.Type.USER)
    assert [m.pk async for m in learned.source_messages.all()] == [user_message.pk]
    # History: learned from this run.
    [revision] = [r async for r in ExperienceRevision.objects.filter(memory_id=learned.pk)]
    assert (revision.cause, revision.old_text, revision.new_text, revision.run_id) == (
        Cause.MODEL_ADD,
        "",
        learned.text,
        run.pk,
    )
    # The model was asked for JSON in words (the replay client has no structured output), with the
    # user's words; nothing similar existed, so no reconcile call followed.
    client = await client_of(model)
    assert len(client.create_calls) == 2
    asked = client.create_calls[1]
    assert asked["json_output"] is None
    system, prompt = (m.content for m in asked["messages"])
    assert '{"facts": [], "preferences": [], "lessons": []}' in system
    assert prompt == "User: My favourite colour is teal."  # the user's words, not the assistant's


async def test_the_assistants_wrong_answer_does_not_become_a_fact(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        [
            "Your favourite colour is red.",
            # A small model turning its own answer into a "fact", and copying the prompt's example.
            extraction(facts=["The user's favourite colour is red.", "The user lives in Porto."]),
        ]
    )
    agent = await sync_to_async(factories.agent)(model, "guesser", memory_enabled=True)

    run = await converse(user, agent, "What is my favourite colour?", inline_runner)

    assert run.status == Run.Status.COMPLETED
    assert await Experience.objects.acount() == 0
    assert len((await client_of(model)).create_calls) == 2  # it was asked, and nothing it said was kept


async def test_a_reply_with_prose_around_the_json_is_read_and_repeats_are_stored_once(
    inline_runner: InlineRunner,
) -> None:
    user = await sync_to_async(factories.user)()
    reply = (
        "Sure! Here is what I found:\n```json\n"
        + extraction(
            facts=["The user deploys on Fridays.", "the user deploys on fridays"],
            preferences=["The user prefers short answers."],
        )
        + "\n```\nHope this helps."
    )
    model = await sync_to_async(factories.replay_model)(["Noted.", reply])
    agent = await sync_to_async(factories.agent)(model, "noter", memory_enabled=True)

    await converse(user, agent, "We deploy on Fridays. Keep your answers short, please.", inline_runner)

    stored = {e.text: e.metadata["category"] async for e in Experience.objects.filter(owner=user)}
    assert stored == {"The user deploys on Fridays.": "fact", "The user prefers short answers.": "preference"}


# --- Reconcile: UPDATE, DELETE, NONE


async def test_update_rewrites_the_most_similar_memory_and_keeps_the_old_text(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        [
            "Got it.",
            extraction(facts=["The user's favourite colour is teal."]),
            '{"event": "update", "id": "1", "text": "The user\'s favourite colour is teal (it was red)."}',
        ]
    )
    agent = await sync_to_async(factories.agent)(model, "updater", memory_enabled=True)
    old = await sync_to_async(remember)("The user's favourite colour is red.", user, agent)

    run = await converse(user, agent, "My favourite colour is teal now, not red.", inline_runner)

    assert await Experience.objects.acount() == 1
    updated = await Experience.objects.aget(pk=old.pk)
    assert updated.text == "The user's favourite colour is teal (it was red)."
    # The vectors follow the text: a search finds it by its new words.
    found = await sync_to_async(services.experiences_retrieve_similar)(context="teal", user=user, k=1)
    assert found[0].experience.pk == old.pk
    [revision] = [r async for r in ExperienceRevision.objects.filter(experience=updated)]
    assert (revision.cause, revision.old_text, revision.new_text, revision.run_id) == (
        Cause.MODEL_UPDATE,
        "The user's favourite colour is red.",
        updated.text,
        run.pk,
    )
    assert [m.run_id async for m in updated.source_messages.all()] == [run.pk]
    # The model saw the existing memory by its number, not its id.
    prompt = (await client_of(model)).create_calls[2]["messages"][1].content
    assert "1. The user's favourite colour is red." in prompt
    assert "New information: The user's favourite colour is teal." in prompt


async def test_delete_removes_the_contradicted_memory_and_its_history_keeps_the_text(
    inline_runner: InlineRunner,
) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        [
            "I am sorry to hear that.",
            extraction(facts=["The user no longer has a cat."]),
            '{"event": "DELETE", "id": 1}',
        ]
    )
    agent = await sync_to_async(factories.agent)(model, "deleter", memory_enabled=True)
    old = await sync_to_async(remember)("The user has a cat.", user, agent)

    run = await converse(user, agent, "I no longer have a cat.", inline_runner)

    assert await Experience.objects.acount() == 0
    [revision] = [r async for r in ExperienceRevision.objects.filter(memory_id=old.pk)]
    assert revision.experience_id is None and revision.owner_id == user.pk
    assert (revision.cause, revision.old_text, revision.new_text, revision.run_id) == (
        Cause.MODEL_DELETE,
        "The user has a cat.",
        "",
        run.pk,
    )


async def test_a_delete_that_brings_new_information_replaces_the_text_instead(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        ["Teal it is.", extraction(facts=["The user's favourite colour is teal."]), '{"event": "DELETE", "id": 1}']
    )
    agent = await sync_to_async(factories.agent)(model, "hasty", memory_enabled=True)
    old = await sync_to_async(remember)("The user's favourite colour is red.", user, agent)

    await converse(user, agent, "My favourite colour is teal.", inline_runner)

    assert [e.text async for e in Experience.objects.all()] == ["The user's favourite colour is teal."]
    revision = await ExperienceRevision.objects.aget(memory_id=old.pk)
    assert (revision.cause, revision.old_text) == (Cause.MODEL_UPDATE, "The user's favourite colour is red.")


async def test_none_changes_nothing_and_an_identical_memory_needs_no_question(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        [
            "Lisbon is lovely.",
            extraction(facts=["The user lives in Lisbon.", "The user's home is in Lisbon."]),
            '{"event": "NONE", "id": null, "text": ""}',
        ]
    )
    agent = await sync_to_async(factories.agent)(model, "keeper", memory_enabled=True)
    old = await sync_to_async(remember)("The user lives in Lisbon.", user, agent)

    await converse(user, agent, "I live in Lisbon; my home is in Lisbon.", inline_runner)

    assert [e.pk async for e in Experience.objects.all()] == [old.pk]
    assert (await Experience.objects.aget(pk=old.pk)).text == "The user lives in Lisbon."
    assert await ExperienceRevision.objects.acount() == 0
    # Chat, extraction, and one decision: the identical fact was settled without the model.
    assert len((await client_of(model)).create_calls) == 3


async def test_an_update_of_a_memory_it_was_not_shown_adds_instead_and_shared_ones_are_never_touched(
    inline_runner: InlineRunner,
) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        ["Okay.", extraction(facts=["The user's laptop runs Debian 12."]), '{"event": "UPDATE", "id": 7}']
    )
    agent = await sync_to_async(factories.agent)(model, "careful", memory_enabled=True)
    shared = await sync_to_async(services.experience_store)(text="The user's laptop runs Debian 11.", kind="semantic")
    own = await sync_to_async(remember)("The user's laptop runs Debian 11 with GNOME.", user, agent)

    await converse(user, agent, "My laptop runs Debian 12.", inline_runner)

    prompt = (await client_of(model)).create_calls[2]["messages"][1].content
    assert prompt.splitlines()[1:] == [
        "1. The user's laptop runs Debian 11 with GNOME.",
        "New information: The user's laptop runs Debian 12.",
    ]
    texts = {e.pk: e.text async for e in Experience.objects.all()}
    assert texts[shared.pk] == "The user's laptop runs Debian 11."
    assert texts[own.pk] == "The user's laptop runs Debian 11 with GNOME."
    assert "The user's laptop runs Debian 12." in texts.values()


# --- Lessons, and runs that teach nothing


async def test_lessons_are_kept_only_from_a_run_without_errors(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(
        ["Here is the summary in bullet points.", extraction(lessons=["Summaries for this user go in bullet points."])]
    )
    agent = await sync_to_async(factories.agent)(model, "teacher", memory_enabled=True)
    run = await converse(user, agent, "Thanks, summaries in bullet points work well for me.", inline_runner)
    lesson = await Experience.objects.aget(owner=user)
    assert lesson.metadata["category"] == "lesson"
    # A lesson comes from the exchange: the user's message and the answer.
    assert [m.type async for m in lesson.source_messages.order_by("seq")] == ["user", "text"]

    # The same run, but with an error in it: no lesson, and the model is not shown the answer.
    await Message.objects.acreate(
        conversation_id=run.conversation_id, run=run, seq=99, source="teacher", type=Message.Type.ERROR
    )
    await Experience.objects.filter(owner=user).adelete()
    material = await sync_to_async(learning._material)(run.pk)
    assert material is not None and not material.lessons_allowed
    kept = learning.candidates_from(learning.Extraction(lessons=["Summaries go in bullet points."]), material)
    assert kept == []


@pytest.mark.parametrize("status", [Run.Status.FAILED, Run.Status.CANCELLED, Run.Status.RUNNING])
@pytest.mark.parametrize("mode", ["learn", "episodic"])
async def test_a_run_that_did_not_complete_stores_nothing_in_either_mode(status: str, mode: str, settings: Any) -> None:
    settings.LODESTONE_MEMORY_MODE = mode
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)([extraction(facts=["The user's name is Ada."])])
    agent = await sync_to_async(factories.agent)(model, "ada", memory_enabled=True)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    run = await Run.objects.acreate(conversation=conversation, status=status)
    for seq, (source, type_, text) in enumerate([("user", "user", "My name is Ada."), ("ada", "text", "Hi Ada.")], 1):
        await Message.objects.acreate(
            conversation=conversation, run=run, seq=seq, source=source, type=type_, content=text
        )

    assert await learning.run_remember(run_id=run.pk) == []
    assert await Experience.objects.acount() == 0
    assert (await client_of(model)).create_calls == []

    # Completed, the same run is remembered.
    await Run.objects.filter(pk=run.pk).aupdate(status=Run.Status.COMPLETED)
    assert len(await learning.run_remember(run_id=run.pk)) == 1
    expected = "The user's name is Ada." if mode == "learn" else "Task: My name is Ada.\nOutcome: Hi Ada."
    assert (await Experience.objects.aget()).text == expected


async def test_failed_and_cancelled_runs_of_the_executor_store_nothing(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    # One answer, one extraction; the second run finds the script exhausted and fails.
    model = await sync_to_async(factories.replay_model)(["Hello Ada.", extraction(facts=["The user's name is Ada."])])
    agent = await sync_to_async(factories.agent)(model, "once", memory_enabled=True)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    for text in ("My name is Ada.", "My name is Ada Lovelace."):
        _, run = await sync_to_async(conversation_services.message_post)(
            conversation=conversation, user=user, text=text
        )
        await wait_for_run(run.pk)
        await inline_runner.wait_idle()
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.FAILED
    assert [e.text async for e in Experience.objects.all()] == ["The user's name is Ada."]
    # The failed run tried to answer, and no extraction followed it.
    systems = [call["messages"][0].content for call in (await client_of(model)).create_calls]
    assert len(systems) == 3 and systems.count(learning.EXTRACT_SYSTEM) == 1

    slow = await sync_to_async(factories.replay_model)([" ".join(["tok"] * 500)], chunk_delay=0.01)
    talker = await sync_to_async(factories.agent)(slow, "talker", memory_enabled=True)
    other = await sync_to_async(factories.conversation)(user, agent=talker)
    _, run = await sync_to_async(conversation_services.message_post)(
        conversation=other, user=user, text="My name is Grace."
    )
    for _ in range(500):
        if (await Run.objects.aget(pk=run.pk)).status == Run.Status.RUNNING:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)  # streaming its long answer now
    await Run.objects.filter(pk=run.pk).aupdate(cancel_requested=True)
    run = await wait_for_run(run.pk)
    await inline_runner.wait_idle()
    assert run.status == Run.Status.CANCELLED
    assert await Experience.objects.acount() == 1


# --- The seam


def info(*, structured: bool = False, json_mode: bool = False) -> ModelInfo:
    return ModelInfo(
        vision=False,
        function_calling=False,
        json_output=json_mode,
        structured_output=structured,
        family=ModelFamily.UNKNOWN,
    )


@pytest.mark.parametrize(
    ("structured", "json_mode", "expected"),
    [(True, True, learning.Extraction), (False, True, True), (False, False, None)],
)
async def test_the_client_model_asks_for_json_the_strongest_way_the_client_can(
    structured: bool, json_mode: bool, expected: Any
) -> None:
    client = ReplayChatCompletionClient(["{}", "plain"], model_info=info(structured=structured, json_mode=json_mode))
    model = ports.ClientMemoryModel(client)

    assert await model.complete(system="s", user="u", schema=learning.Extraction) == "{}"
    assert await model.complete(system="s", user="u") == "plain"
    assert client.create_calls[0]["json_output"] is expected
    assert client.create_calls[1]["json_output"] is None
    assert [m.content for m in client.create_calls[0]["messages"]] == ["s", "u"]


def test_parse_json_is_lenient_and_the_schemas_coerce_what_small_models_write() -> None:
    assert learning.parse_json('{"a": 1}') == {"a": 1}
    assert learning.parse_json('Answer: {"facts": ["x"]} and {"y": 2}') == {"facts": ["x"]}
    assert learning.parse_json('```json\n{"a": [1]}\n```') == {"a": [1]}
    assert learning.parse_json("no json {here") is None
    extraction = learning.Extraction.model_validate({"facts": "one", "lessons": [{"text": "two"}, 3, " "]})
    assert (extraction.facts, extraction.preferences, extraction.lessons) == (["one"], [], ["two"])
    decision = learning.Decision.model_validate({"event": " delete ", "id": "#2"})
    assert (decision.event, decision.id, decision.text) == ("DELETE", 2, "")


def test_grounding_keeps_the_users_words_and_spelling_variants_and_drops_the_assistants() -> None:
    assert learning.grounded("The user's favorite color is teal.", "My favourite colour is teal.")
    assert not learning.grounded("The user works on billing.", "My favourite colour is teal.")
    question = "What is my favourite colour?"
    assert not learning.grounded("The user's favourite colour is red.", question, foreign="assistant: It is red.")
    assert not learning.grounded("The user's favourite colour is red.", question, share=learning.FACT_GROUNDED_SHARE)
    assert learning.grounded("The user prefers short answers.", "Keep your answers short.", share=0.75)
    # Numbers are content too: the 1.5B once stored "10:00 AM" for a standup told as 9:45.
    told = "Note for later: our team standup is at 9:45 every morning."
    assert learning.grounded("The user's team standup is at 9:45 every morning.", told)
    assert not learning.grounded("The user's team standup is at 10:00 AM.", told)
    assert learning.grounded("The user's locker code is 4,721.", "My locker code is 4721.")
    assert not learning.grounded("The user.", "anything")
    assert not learning.grounded("The user does not like pizza.", "Do I like pizza?")
    assert learning.grounded("The user does not like pizza.", "I don't like pizza.")


@pytest.fixture
def replay_memory_model() -> Iterator[ReplayChatCompletionClient]:
    """Memory's model replaced through the seam, for agents whose provider is not scripted."""
    client = ReplayChatCompletionClient(["Deploys happen on Fridays after the tests pass."], model_info=info())
    previous = ports.set_memory_model_provider(lambda agent: ports.ClientMemoryModel(client))
    yield client
    ports.set_memory_model_provider(previous)


@pytest.mark.django_db
def test_consolidation_asks_through_the_seam_and_records_a_revision_on_each_source(
    replay_memory_model: ReplayChatCompletionClient,
) -> None:
    user = factories.user()
    config = ModelConfig.objects.create(name="remote", provider=ModelConfig.Provider.OPENAI, model="gpt-x")
    agent = factories.agent(config, "remote", memory_enabled=True)
    first = services.experience_store(text="We deploy on Fridays.", owner=user, agent=agent)
    second = services.experience_store(text="Deploys are on Fridays, after the tests.", owner=user, agent=agent)

    [merged] = services.memory_consolidate(owner=user, threshold=0.5)

    assert merged.text == "Deploys happen on Fridays after the tests pass." and merged.metadata["method"] == "model"
    assert "We deploy on Fridays." in replay_memory_model.create_calls[0]["messages"][1].content
    revisions = ExperienceRevision.objects.filter(cause=Cause.CONSOLIDATION).order_by("memory_id")
    assert [(r.memory_id, r.old_text, r.new_text) for r in revisions] == [
        (first.pk, first.text, merged.text),
        (second.pk, second.text, merged.text),
    ]


@pytest.fixture
def no_memory_model() -> Iterator[None]:
    previous = ports.set_memory_model_provider(None)
    yield
    ports.set_memory_model_provider(previous)


async def test_without_an_installed_model_nothing_is_learned_and_consolidation_is_extractive(
    no_memory_model: None,
) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)([extraction(facts=["The user's name is Ada."])])
    agent = await sync_to_async(factories.agent)(model, "alone", memory_enabled=True)
    with pytest.raises(ports.MemoryModelUnavailable):
        ports.memory_model_for(agent)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    run = await Run.objects.acreate(conversation=conversation, status=Run.Status.COMPLETED)
    await Message.objects.acreate(
        conversation=conversation, run=run, seq=1, source="user", type="user", content="My name is Ada."
    )
    assert await learning.run_remember(run_id=run.pk) == []
    assert await Experience.objects.acount() == 0

    config = await ModelConfig.objects.acreate(name="remote", provider=ModelConfig.Provider.OPENAI, model="gpt-x")
    remote = await sync_to_async(factories.agent)(config, "remote", memory_enabled=True)
    for text in ("We deploy on Fridays.", "Deploys are on Fridays, after the tests."):
        await sync_to_async(services.experience_store)(text=text, owner=user, agent=remote)
    [merged] = await sync_to_async(services.memory_consolidate)(owner=user, threshold=0.5)
    assert merged.metadata["method"] == "extractive"
