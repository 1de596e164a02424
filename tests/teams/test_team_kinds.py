"""Every team kind end to end through the executor on replay models: exact message sequences."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from agents import services as agent_services
from agents.models import Agent, ModelConfig, Team
from conversations import services
from conversations.models import Message, Run
from conversations.runner import InlineRunner
from tests import factories

pytestmark = pytest.mark.django_db(transaction=True)


async def wait_for_run(run_id: int, timeout: float = 20.0) -> Run:
    """Until the run finished or waits for the user."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        run = await Run.objects.aget(pk=run_id)
        if run.status not in (Run.Status.QUEUED, Run.Status.RUNNING):
            return run
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")
        await asyncio.sleep(0.02)


def rows(conversation_id: int) -> list[tuple[str, str, str]]:
    return list(
        Message.objects.filter(conversation_id=conversation_id).order_by("seq").values_list("source", "type", "content")
    )


def make_team(agents: list[Agent], kind: str, **fields: Any) -> Team:
    slug = f"{kind.replace('_', '-')}-{factories._next()}"
    return agent_services.team_create(slug=slug, name=slug.title(), kind=kind, agents=agents, **fields)


async def post(conversation: Any, user: Any, text: str) -> Run:
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text=text)
    return await wait_for_run(run.pk)


def ledger(*, satisfied: bool, progress: bool = True, loop: bool = False, next_speaker: str = "", say: str = "") -> str:
    return json.dumps(
        {
            "is_request_satisfied": {"reason": "Done." if satisfied else "Not yet.", "answer": satisfied},
            "is_in_loop": {"reason": "r", "answer": loop},
            "is_progress_being_made": {"reason": "r", "answer": progress},
            "next_speaker": {"reason": "r", "answer": next_speaker},
            "instruction_or_question": {"reason": "r", "answer": say},
        }
    )


# --- single and swarm ---------------------------------------------------------------------------


async def test_single_agent_team_answers_once(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    model = await sync_to_async(factories.replay_model)(["Hello there."])
    solo = await sync_to_async(factories.agent)(model, "solo")
    team = await sync_to_async(make_team)([solo], Team.Kind.SINGLE, max_messages=5)
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    run = await post(conversation, user, "Hi")
    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(rows)(conversation.pk) == [("user", "user", "Hi"), ("solo", "text", "Hello there.")]


async def test_swarm_hands_off_between_agents_and_to_the_user(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    triage_model = await sync_to_async(factories.replay_model)(
        [{"tool_calls": [{"id": "h1", "name": "transfer_to_billing", "arguments": {}}]}]
    )
    billing_model = await sync_to_async(factories.replay_model)(
        [
            {"tool_calls": [{"id": "h2", "name": "transfer_to_user", "arguments": {}}]},
            "Refund issued for order 42.",
        ]
    )
    triage = await sync_to_async(factories.agent)(triage_model, "triage", handoffs=["billing"])
    billing = await sync_to_async(factories.agent)(billing_model, "billing", handoffs=["triage", "user"])
    team = await sync_to_async(make_team)([triage, billing], Team.Kind.SWARM, stop_word="Refund issued")
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "I want a refund")
    assert run.status == Run.Status.AWAITING_INPUT, run.error
    got = await sync_to_async(rows)(conversation.pk)
    assert [(s, t) for s, t, _ in got] == [
        ("user", "user"),
        ("triage", "tool_call"),
        ("triage", "tool_result"),
        ("triage", "handoff"),
        ("billing", "tool_call"),
        ("billing", "tool_result"),
        ("billing", "handoff"),
        ("billing", "input_request"),
    ]
    assert got[-1][2] == "Billing hands the conversation to you: answer to continue."
    handoffs = [m async for m in Message.objects.filter(conversation=conversation, type="handoff").order_by("seq")]
    assert [h.payload["target"] for h in handoffs] == ["billing", "user"]

    # The answer (here the chat's ordinary message) ends the parked run and goes back to the agent
    # that asked, in a new run (AutoGen: a HandoffMessage task).
    second = await post(conversation, user, "Order 42")
    assert second.pk != run.pk and second.status == Run.Status.COMPLETED, second.error
    assert (await Run.objects.aget(pk=run.pk)).status == Run.Status.COMPLETED
    last = (await sync_to_async(rows)(conversation.pk))[-2:]
    assert last == [("user", "user", "Order 42"), ("billing", "text", "Refund issued for order 42.")]


# --- selector -----------------------------------------------------------------------------------


async def three_agents(orchestrator_script: list[Any] | None = None) -> tuple[list[Agent], ModelConfig]:
    planner_model = await sync_to_async(factories.replay_model)(["Plan: 1. design 2. build."])
    coder_model = await sync_to_async(factories.replay_model)(["def fix(): return 42"])
    critic_model = await sync_to_async(factories.replay_model)(["Looks fine."])
    planner = await sync_to_async(factories.agent)(
        planner_model,
        "planner",
        description="Breaks a goal into steps and schedules the work.",
        capabilities=["planning", "roadmap", "schedule", "milestones"],
    )
    coder = await sync_to_async(factories.agent)(
        coder_model,
        "coder",
        description="Writes and fixes Python code.",
        capabilities=["python", "programming", "debugging", "code"],
    )
    critic = await sync_to_async(factories.agent)(
        critic_model,
        "critic",
        description="Reviews answers and gives feedback.",
        capabilities=["review", "critique", "feedback"],
    )
    orchestrator = await sync_to_async(factories.replay_model)(orchestrator_script or ["critic"])
    return [planner, coder, critic], orchestrator


async def test_selector_routes_an_at_mention(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    agents, orchestrator = await three_agents()
    team = await sync_to_async(make_team)(agents, Team.Kind.SELECTOR, max_messages=2, orchestrator_model=orchestrator)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "@critic what do you think of the weather?")
    assert run.status == Run.Status.COMPLETED, run.error
    got = await sync_to_async(rows)(conversation.pk)
    assert [(s, t) for s, t, _ in got] == [("user", "user"), (got[1][0], "routing"), ("critic", "text")]
    routing = await Message.objects.aget(conversation=conversation, type="routing")
    assert routing.payload["routing"]["agent"] == "critic"
    assert routing.payload["routing"]["method"] == "mention"
    assert routing.content == "Critic answers next: Addressed as @critic."


async def test_selector_capability_routing_picks_the_right_agent_of_three(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    agents, orchestrator = await three_agents()
    team = await sync_to_async(make_team)(agents, Team.Kind.SELECTOR, max_messages=2, orchestrator_model=orchestrator)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "My Python code crashes with a bug, please fix it.")
    assert run.status == Run.Status.COMPLETED, run.error
    got = await sync_to_async(rows)(conversation.pk)
    assert [(s, t) for s, t, _ in got][1:] == [(got[1][0], "routing"), ("coder", "text")]
    assert got[2][2] == "def fix(): return 42"
    routing = (await Message.objects.aget(conversation=conversation, type="routing")).payload["routing"]
    assert routing["agent"] == "coder" and routing["method"] == "capability"
    assert routing["scores"]["coder"] > routing["scores"]["planner"]
    assert routing["scores"]["coder"] > routing["scores"]["critic"]


async def test_selector_falls_back_to_the_model_when_routing_is_unsure(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    agents, orchestrator = await three_agents(["I pick planner."])
    team = await sync_to_async(make_team)(agents, Team.Kind.SELECTOR, max_messages=2, orchestrator_model=orchestrator)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "Hello!")
    assert run.status == Run.Status.COMPLETED, run.error
    got = await sync_to_async(rows)(conversation.pk)
    assert [(s, t) for s, t, _ in got][1:] == [(got[1][0], "routing"), ("planner", "text")]
    routing = (await Message.objects.aget(conversation=conversation, type="routing")).payload["routing"]
    assert routing["method"] == "model"


async def test_selector_naming_an_invalid_speaker_is_retried_then_fails_clearly(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    agents, orchestrator = await three_agents(["nobody", "still nobody", "gandalf"])
    team = await sync_to_async(make_team)(agents, Team.Kind.SELECTOR, max_messages=2, orchestrator_model=orchestrator)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "Hello!")
    assert run.status == Run.Status.FAILED
    assert "named no valid speaker in 3 attempts" in run.error
    assert "gandalf" in run.error
    assert [(s, t) for s, t, _ in await sync_to_async(rows)(conversation.pk)] == [("user", "user")]


# --- Magentic-One -------------------------------------------------------------------------------


async def test_magentic_one_shows_ledgers_and_replans_after_stalls(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    coder_model = await sync_to_async(factories.replay_model)(["print('hello')", "print('hello, world')"])
    coder = await sync_to_async(factories.agent)(coder_model, "coder", description="Writes Python code.")
    orchestrator = await sync_to_async(factories.replay_model)(
        [
            "Facts: none given.",
            "Plan: ask coder.",
            ledger(satisfied=False, next_speaker="coder", say="Write hello world."),
            ledger(satisfied=False, progress=False, next_speaker="coder", say="Again."),
            "Facts: coder printed the wrong text.",
            "Plan: ask coder for the exact text.",
            ledger(satisfied=False, next_speaker="coder", say="Print exactly hello, world."),
            ledger(satisfied=True, next_speaker="coder", say=""),
            "The program is print('hello, world').",
        ]
    )
    team = await sync_to_async(make_team)(
        [coder], Team.Kind.MAGENTIC_ONE, max_stalls=1, orchestrator_model=orchestrator
    )
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "Write hello world in Python")
    assert run.status == Run.Status.COMPLETED, (run.error, await sync_to_async(rows)(conversation.pk))
    got = await sync_to_async(rows)(conversation.pk)
    orch = got[1][0]
    assert orch.startswith("MagenticOneOrchestrator")
    assert [(s, t) for s, t, _ in got] == [
        ("user", "user"),
        (orch, "ledger"),  # task ledger
        (orch, "ledger"),  # progress
        (orch, "text"),  # instruction
        ("coder", "text"),
        (orch, "ledger"),  # progress: stalled
        (orch, "ledger"),  # re-plan
        (orch, "ledger"),  # new task ledger
        (orch, "ledger"),  # progress
        (orch, "text"),
        ("coder", "text"),
        (orch, "ledger"),  # satisfied
        (orch, "text"),  # final answer
    ]
    kinds = [
        m.payload["kind"]
        async for m in Message.objects.filter(conversation=conversation, type="ledger").order_by("seq")
    ]
    assert kinds == ["task", "progress", "progress", "replan", "task", "progress", "progress"]
    assert "Plan: ask coder for the exact text." in got[7][2]
    assert got[3][2] == "Write hello world." and got[4][2] == "print('hello')"
    assert got[-1][2] == "The program is print('hello, world')."
    assert run.stop_reason == "Done."


async def test_magentic_one_that_keeps_stalling_ends_by_its_turn_limit(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    coder_model = await sync_to_async(factories.replay_model)(["I am stuck."] * 5)
    coder = await sync_to_async(factories.agent)(coder_model, "coder", description="Writes Python code.")
    stalled = ledger(satisfied=False, progress=False, loop=True, next_speaker="coder", say="Try again.")
    orchestrator = await sync_to_async(factories.replay_model)(
        # Two stalls re-plan; the stall count is not reset by a re-plan, so the next stall re-plans
        # again; then the round limit (max messages = 2 rounds) ends the run with a final answer.
        [
            "Facts.",
            "Plan.",
            stalled,
            stalled,
            "Facts 2.",
            "Plan 2.",
            stalled,
            "Facts 3.",
            "Plan 3.",
            "Could not finish: the coder is stuck.",
        ]
    )
    team = await sync_to_async(make_team)(
        [coder], Team.Kind.MAGENTIC_ONE, max_stalls=2, max_messages=2, orchestrator_model=orchestrator
    )
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "Do the impossible")
    assert run.status == Run.Status.COMPLETED, run.error
    assert run.stop_reason == "Max rounds reached."
    got = await sync_to_async(rows)(conversation.pk)
    assert got[-1][2] == "Could not finish: the coder is stuck."
    kinds = [
        m.payload["kind"]
        async for m in Message.objects.filter(conversation=conversation, type="ledger").order_by("seq")
    ]
    assert kinds == ["task", "progress", "progress", "replan", "task", "progress", "replan", "task"]
    assert [s for s, t, _ in got].count("coder") == 1


# --- cost -------------------------------------------------------------------------------------


async def test_cost_per_message_run_agent_and_conversation(inline_runner: InlineRunner) -> None:
    from decimal import Decimal

    from rest_framework.test import APIClient

    user = await sync_to_async(factories.user)()
    agents, orchestrator = await three_agents(["planner"])
    await ModelConfig.objects.filter(pk=orchestrator.pk).aupdate(
        prompt_price_per_million=Decimal("1000000"), completion_price_per_million=Decimal("2000000")
    )
    planner_model = agents[0].model_config
    await ModelConfig.objects.filter(pk=planner_model.pk).aupdate(
        prompt_price_per_million=Decimal("0"), completion_price_per_million=Decimal("1000000")
    )
    team = await sync_to_async(make_team)(agents, Team.Kind.SELECTOR, max_messages=2, orchestrator_model=orchestrator)
    conversation = await sync_to_async(factories.conversation)(user, team=team)
    run = await post(conversation, user, "Hello!")
    assert run.status == Run.Status.COMPLETED, run.error

    routing = await Message.objects.aget(conversation=conversation, type="routing")
    text = await Message.objects.aget(conversation=conversation, type="text")
    assert routing.completion_tokens > 0
    assert Decimal(routing.payload["cost"]) == routing.prompt_tokens * 1 + routing.completion_tokens * 2
    assert Decimal(text.payload["cost"]) == text.completion_tokens * 1
    client = APIClient()
    await sync_to_async(client.force_authenticate)(user)
    usage = (await sync_to_async(client.get)(f"/api/conversations/{conversation.pk}/usage/")).json()
    expected = Decimal(routing.payload["cost"]) + Decimal(text.payload["cost"])
    assert Decimal(usage["total"]["cost"]) == expected
    assert Decimal(usage["runs"][str(run.pk)]["cost"]) == expected
    assert Decimal(usage["agents"]["planner"]["cost"]) == Decimal(text.payload["cost"])
    assert usage["agents"]["planner"]["name"] == "Planner"


# --- @name in round-robin and swarm teams -------------------------------------------------------


async def round_robin_of_three(max_messages: int) -> Team:
    agents = []
    for slug in ("planner", "coder", "critic"):
        model = await sync_to_async(factories.replay_model)([f"{slug} 1", f"{slug} 2"])
        agents.append(await sync_to_async(factories.agent)(model, f"{slug}_{factories._next()}", name=slug.title()))
    return await sync_to_async(make_team)(agents, Team.Kind.ROUND_ROBIN, max_messages=max_messages)


def short(conversation_id: int) -> list[tuple[str, str, str]]:
    """Rows with agents' slugs cut to their role (``coder_12`` -> ``coder``)."""
    return [(s.split("_")[0], t, c) for s, t, c in rows(conversation_id)]


async def test_round_robin_at_mention_addresses_one_agent_and_the_rotation_goes_on(
    inline_runner: InlineRunner,
) -> None:
    user = await sync_to_async(factories.user)()
    team = await round_robin_of_three(max_messages=3)
    critic = await team.members.select_related("agent").aget(position=2)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, f"@{critic.agent.slug} what do you think?")
    assert run.status == Run.Status.COMPLETED, run.error
    run = await post(conversation, user, "And now?")
    assert run.status == Run.Status.COMPLETED, run.error

    assert await sync_to_async(short)(conversation.pk) == [
        ("user", "user", f"@{critic.agent.slug} what do you think?"),
        ("manager", "routing", f"Critic answers next: Addressed as @{critic.agent.slug}."),
        ("critic", "text", "critic 1"),
        ("planner", "text", "planner 1"),  # the rotation goes on after the addressed agent
        ("user", "user", "And now?"),
        ("coder", "text", "coder 1"),  # ... into the next message, from the saved state
        ("critic", "text", "critic 2"),
    ]
    routing = await Message.objects.aget(conversation=conversation, type="routing")
    assert routing.payload["routing"] == {
        "agent": critic.agent.slug,
        "method": "mention",
        "reason": f"Addressed as @{critic.agent.slug}.",
        "scores": {},
    }


async def test_round_robin_at_mention_by_name_and_unknown_mentions_get_a_note(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    team = await round_robin_of_three(max_messages=2)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    assert (await post(conversation, user, "@nobody hello")).status == Run.Status.COMPLETED
    assert (await post(conversation, user, "@Critic hello")).status == Run.Status.COMPLETED
    assert (await post(conversation, user, "@Critic and @Coder")).status == Run.Status.COMPLETED
    assert (await post(conversation, user, "mail me at a@critic.io")).status == Run.Status.COMPLETED
    assert await sync_to_async(short)(conversation.pk) == [
        ("user", "user", "@nobody hello"),
        ("manager", "routing", "No agent of this team is called @nobody: the team keeps its usual order."),
        ("planner", "text", "planner 1"),
        ("user", "user", "@Critic hello"),
        ("manager", "routing", "Critic answers next: Addressed as @" + (await critic_slug(team)) + "."),
        ("critic", "text", "critic 1"),
        ("user", "user", "@Critic and @Coder"),
        ("manager", "routing", "Several agents are addressed (@Critic, @Coder): the team keeps its usual order."),
        ("planner", "text", "planner 2"),
        ("user", "user", "mail me at a@critic.io"),  # not a mention: no note
        ("coder", "text", "coder 1"),
    ]
    ignored = await Message.objects.filter(conversation=conversation, type="routing").order_by("seq").afirst()
    assert ignored is not None and ignored.payload["routing"]["method"] == "ignored"
    assert ignored.payload["routing"]["agent"] == ""


async def critic_slug(team: Team) -> str:
    member = await team.members.select_related("agent").aget(position=2)
    return member.agent.slug


async def test_swarm_at_mention_hands_the_turn_to_that_agent(inline_runner: InlineRunner) -> None:
    user = await sync_to_async(factories.user)()
    triage_model = await sync_to_async(factories.replay_model)(["Triage here."])
    billing_model = await sync_to_async(factories.replay_model)(["Billing here.", "Still billing."])
    triage = await sync_to_async(factories.agent)(triage_model, "triage", handoffs=["billing"])
    billing = await sync_to_async(factories.agent)(billing_model, "billing", handoffs=["triage"])
    team = await sync_to_async(make_team)([triage, billing], Team.Kind.SWARM, max_messages=2)
    conversation = await sync_to_async(factories.conversation)(user, team=team)

    run = await post(conversation, user, "@billing my invoice is wrong")
    assert run.status == Run.Status.COMPLETED, run.error
    run = await post(conversation, user, "Thanks")
    assert run.status == Run.Status.COMPLETED, run.error
    assert await sync_to_async(rows)(conversation.pk) == [
        ("user", "user", "@billing my invoice is wrong"),
        ("manager", "routing", "Billing answers next: Addressed as @billing."),
        ("billing", "text", "Billing here."),
        ("user", "user", "Thanks"),
        ("billing", "text", "Still billing."),  # the swarm stays with the agent it was handed to
    ]
