"""What Lodestone's executor costs on top of AutoGen.

One process, one run: a 3-agent round-robin team on ReplayChatCompletionClient answering with
N messages, measured (a) as raw AutoGen ``run_stream`` in memory and (b) through Lodestone:
``message_post`` -> inline runner -> executor (persist every message with its seq and team state,
publish tokens and messages) -> one WebSocket client receiving everything over the ASGI stack.
Reports messages/s for both and their ratio (b / a) in docs/benchmarks.md.

    .venv/bin/python bench/overhead.py [--messages 90] [--repeats 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ["LODESTONE_VAR_DIR"] = tempfile.mkdtemp(prefix="lodestone-bench-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
os.environ["LODESTONE_RUN_MAX_MESSAGES"] = "100000"  # the safety cap must not cut the measured run
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from autogen_agentchat.agents import AssistantAgent  # noqa: E402
from autogen_agentchat.base import ChatAgent  # noqa: E402
from autogen_agentchat.base import Team as AgentChatTeam  # noqa: E402
from autogen_agentchat.conditions import MaxMessageTermination  # noqa: E402
from autogen_agentchat.teams import RoundRobinGroupChat  # noqa: E402
from autogen_ext.models.replay import ReplayChatCompletionClient  # noqa: E402
from channels.testing import WebsocketCommunicator  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402

from agents import services as agent_services  # noqa: E402
from agents.models import ModelConfig, Team  # noqa: E402
from config.asgi import application  # noqa: E402
from conversations import services  # noqa: E402
from conversations.runner import InlineRunner, get_runner  # noqa: E402

WORDS = ["the", "quick", "brown", "fox", "jumps", "over", "the", "lazy", "dog", "while", "agents", "talk"]
AGENTS = ("planner", "coder", "critic")
MARK_START, MARK_END = "<!-- overhead:start -->", "<!-- overhead:end -->"


def script(count: int) -> list[str]:
    return [" ".join(WORDS[(i + j) % len(WORDS)] for j in range(20)) + f" ({i})" for i in range(count)]


async def raw_autogen(messages: int) -> float:
    client = ReplayChatCompletionClient(script(messages))
    agents: list[ChatAgent | AgentChatTeam] = [
        AssistantAgent(name, model_client=client, description=name, model_client_stream=True) for name in AGENTS
    ]
    team = RoundRobinGroupChat(agents, termination_condition=MaxMessageTermination(messages + 1))
    started = time.perf_counter()
    count = 0
    async for event in team.run_stream(task="Work together."):
        if getattr(event, "source", None) in AGENTS and type(event).__name__ == "TextMessage":
            count += 1
    elapsed = time.perf_counter() - started
    assert count == messages, count
    return elapsed


def make_team(messages: int, index: int) -> tuple[User, Team]:
    model = agent_services.model_config_create(
        name=f"bench-{index}", provider=ModelConfig.Provider.REPLAY, options={"responses": script(messages)}
    )
    agents = [
        agent_services.agent_create(slug=f"{name}_{index}", name=name, description=name, model_config=model)
        for name in AGENTS
    ]
    team = agent_services.team_create(
        slug=f"bench-{index}",
        name=f"Bench {index}",
        kind=Team.Kind.ROUND_ROBIN,
        agents=agents,
        max_messages=messages + 1,
    )
    user = User.objects.create_user(f"bench{index}", password="bench-password-1")
    return user, team


async def through_lodestone(messages: int, index: int) -> float:
    user, team = await sync_to_async(make_team)(messages, index)
    conversation = await sync_to_async(services.conversation_create)(owner=user, team=team)
    client = Client()
    await sync_to_async(client.force_login)(user)
    headers = [
        (b"origin", b"http://127.0.0.1"),
        (b"host", b"127.0.0.1"),
        (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
    ]
    socket = WebsocketCommunicator(application, f"/ws/conversations/{conversation.pk}/", headers=headers)
    connected, _ = await socket.connect()
    assert connected
    started = time.perf_counter()
    await sync_to_async(services.message_post)(conversation=conversation, user=user, text="Work together.")
    received = 0
    while True:
        event = await socket.receive_json_from(timeout=60)
        if event["type"] == "conversation.message" and event["message"]["type"] == "text":
            received += 1
        if event["type"] == "conversation.run" and event["run"]["status"] not in ("queued", "running"):
            assert event["run"]["status"] == "completed", event["run"]
            break
    elapsed = time.perf_counter() - started
    await socket.disconnect()
    assert received == messages, received
    return elapsed


async def main(messages: int, repeats: int) -> dict[str, float]:
    runner = get_runner()
    assert isinstance(runner, InlineRunner)
    runner.bind_loop(asyncio.get_running_loop())
    runner._recovered = True
    await raw_autogen(messages)  # warm-up: imports, first-call costs
    await through_lodestone(messages, 0)
    raw_times, ours = [], []
    for i in range(repeats):
        raw_times.append(await raw_autogen(messages))
        ours.append(await through_lodestone(messages, i + 1))
    raw, lodestone = statistics.median(raw_times), statistics.median(ours)
    return {
        "raw_mps": messages / raw,
        "lodestone_mps": messages / lodestone,
        "ratio": raw / lodestone,
        "raw_s": raw,
        "lodestone_s": lodestone,
    }


def write_report(result: dict[str, float], messages: int, repeats: int) -> str:
    section = f"""{MARK_START}
## Executor overhead (`bench/overhead.py`)

A 3-agent round-robin team on `ReplayChatCompletionClient` (streaming, 20-word replies), {messages} agent
messages per run, median of {repeats} runs after a warm-up, measured in the same process and run:

| path | what it includes | median time | messages/s |
| --- | --- | ---: | ---: |
| raw AutoGen | `team.run_stream()` in memory | {result["raw_s"] * 1000:.0f} ms | {result["raw_mps"]:.0f} |
| Lodestone | `message_post` → inline runner → executor (persist each message with `seq` and team state, publish tokens and messages after commit) → one WebSocket client over the ASGI stack | {result["lodestone_s"] * 1000:.0f} ms | {result["lodestone_mps"]:.0f} |

**Ratio (Lodestone / raw): {result["ratio"]:.2f}** (goal: at least 0.5).

Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, SQLite (WAL), in-memory
channel layer. Regenerate with `make bench`.
{MARK_END}"""
    path = REPO / "docs" / "benchmarks.md"
    text = (
        path.read_text()
        if path.exists()
        else "# Benchmarks\n\nRatios against a baseline measured in the same run; never timed assertions in tests.\n"
    )
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        text = before + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return section


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=90)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    outcome = asyncio.run(main(args.messages, args.repeats))
    print(write_report(outcome, args.messages, args.repeats))
