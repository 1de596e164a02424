"""How long a user waits for the local model: first token of a new conversation and of a follow-up,
and the generation rate, with the prompt cache and without it (the baseline, in the same run).

The product's whole path: ``message_post`` -> inline runner -> executor -> AutoGen's AssistantAgent
-> the local llama.cpp client, timed at a WebSocket client over the ASGI stack (message posted ->
first streamed chunk -> the run's end). The agents are the demo assistant's shape: a system prompt
and the calculator and clock tools offered (so the tools block is in every prompt), questions that
need no tool; the conversations take turns, so each message follows another conversation's. Each
setting runs in a fresh process with the model loaded first (loading is not counted); an agent's
first conversation meets a cold prompt cache, its later ones find the agent's prefix kept.

    .venv/bin/python bench/latency.py [--model qwen2.5-coder-1.5b] [--conversations 4] [--follow-ups 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
MARK_START, MARK_END = "<!-- latency:start -->", "<!-- latency:end -->"
QUESTIONS = [
    ("Name three rivers in Europe.", ["And two in Asia?", "Which of them is the longest?"]),
    ("What is a haiku? One sentence.", ["Write one about rain.", "Now one about the sea."]),
    ("Suggest a name for a cat.", ["And one for a dog?", "And for a goldfish?"]),
    ("What does HTTP stand for?", ["And HTTPS?", "And FTP?"]),
    ("Give me a synonym for happy.", ["And for sad?", "And for angry?"]),
]
# Two agents of different system prompts, as in a team or two users' assistants.
PERSONAS = [
    ("guide", "You are a friendly travel guide who also answers general questions."),
    ("tutor", "You are a patient school tutor who explains things simply."),
    ("clerk", "You are a precise office clerk who keeps answers short."),
]
SYSTEM = (
    "You are Lodestone's assistant. Answer in one or two short sentences. Use the calculator for "
    "arithmetic and the clock for dates and times; otherwise answer directly."
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(model: str, conversations: int, follow_ups: int, max_tokens: int, agent_count: int) -> dict[str, Any]:
    """In this process: the timings of one setting (the environment says the cache size)."""
    os.environ["LODESTONE_VAR_DIR"] = tempfile.mkdtemp(prefix="lodestone-bench-")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
        os.environ.pop(name, None)
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from asgiref.sync import sync_to_async
    from channels.testing import WebsocketCommunicator
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from agents import services as agent_services
    from agents.models import ModelConfig
    from agents.providers.model_queue import local_model_stats
    from config.asgi import application
    from conversations import services
    from conversations.models import Message
    from conversations.runner import InlineRunner, get_runner
    from tools import services as tool_services

    call_command("migrate", verbosity=0)
    settings.LODESTONE_MODEL_DIR = REPO / "var" / "models"  # the joined models, not a fresh join per run

    def setup() -> tuple[User, Any]:
        tool_services.tools_sync_builtin()
        config = agent_services.model_config_create(
            name="bench local",
            provider=ModelConfig.Provider.LOCAL,
            model=model,
            options={"max_tokens": max_tokens, "temperature": 0.0, "seed": 1},
        )
        agents = []
        for slug, persona in PERSONAS[:agent_count]:
            agent = agent_services.agent_create(
                slug=slug,
                name=slug.title(),
                description="Answers.",
                system_message=f"{persona} {SYSTEM}",
                model_config=config,
            )
            tool_services.tool_grants_from_names(agent=agent, names=["calculator", "current_time"])
            agents.append(agent)
        return User.objects.create_user("bench", password="bench-password-1"), agents

    async def ask(socket: WebsocketCommunicator, conversation: Any, user: User, text: str) -> dict[str, float]:
        """Post ``text``; seconds to the first chunk and to the run's end, tokens, tool calls."""
        posted = time.perf_counter()
        await sync_to_async(services.message_post)(conversation=conversation, user=user, text=text)
        first = 0.0
        while True:
            event = await socket.receive_json_from(timeout=600)
            if event["type"] == "conversation.chunk" and not first:
                first = time.perf_counter() - posted
            if event["type"] == "conversation.run" and event["run"]["status"] not in ("queued", "running"):
                assert event["run"]["status"] == "completed", event["run"]
                total = time.perf_counter() - posted
                run_messages = Message.objects.filter(run_id=event["run"]["id"], type=Message.Type.TOOL_CALL)
                tool_calls = await run_messages.acount()
                return {
                    "first": first or total,
                    "total": total,
                    "completion_tokens": event["run"]["completion_tokens"],
                    "tool_calls": tool_calls,
                }

    async def run() -> dict[str, Any]:
        runner = get_runner()
        assert isinstance(runner, InlineRunner)
        runner.bind_loop(asyncio.get_running_loop())
        runner._recovered = True
        user, agents = await sync_to_async(setup)()
        client = Client()
        await sync_to_async(client.force_login)(user)
        headers = [
            (b"origin", b"http://127.0.0.1"),
            (b"host", b"127.0.0.1"),
            (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode()),
        ]
        from agents.providers import model_client_for

        loaded = time.perf_counter()
        local = model_client_for(agents[0].model_config)
        local.count_tokens([])  # loads the model: not part of what is timed
        load_s = time.perf_counter() - loaded
        new: list[float] = []
        follow: list[float] = []
        rates: list[float] = []
        calls = 0
        # The conversations take turns (with agents of different system prompts when there are
        # several), as users of one server do: each message meets what another agent left behind.
        chats = []
        for index in range(conversations):
            agent = agents[index % len(agents)]
            first_question, later = QUESTIONS[index % len(QUESTIONS)]
            conversation = await sync_to_async(services.conversation_create)(owner=user, agent=agent)
            socket = WebsocketCommunicator(application, f"/ws/conversations/{conversation.pk}/", headers=headers)
            connected, _ = await socket.connect()
            assert connected
            chats.append((socket, conversation, [first_question, *later[:follow_ups]]))
        for turn in range(follow_ups + 1):
            for socket, conversation, texts in chats:
                timing = await ask(socket, conversation, user, texts[turn])
                (new if turn == 0 else follow).append(timing["first"])
                calls += int(timing["tool_calls"])
                print(texts[turn], json.dumps(timing), file=sys.stderr, flush=True)
                generating = timing["total"] - timing["first"]
                if timing["completion_tokens"] > 4 and generating > 0:
                    rates.append(timing["completion_tokens"] / generating)
        for socket, _, _ in chats:
            await socket.disconnect()
        return {
            "load_s": load_s,
            "new": new,
            "follow": follow,
            "rates": rates,
            "tool_calls": calls,
            "stats": local_model_stats(),
        }

    return asyncio.run(run())


def summarise(raw: dict[str, Any]) -> dict[str, Any]:
    new, follow = raw["new"], raw["follow"]
    model_stats = raw["stats"]["models"][0] if raw["stats"]["models"] else {}
    return {
        "load_s": raw["load_s"],
        "cold_new_s": new[0],
        "warm_new_p50_s": statistics.median(new[1:]) if len(new) > 1 else new[0],
        "follow_p50_s": statistics.median(follow) if follow else 0.0,
        "follow_p95_s": _percentile(follow, 0.95) if follow else 0.0,
        "tok_per_s": statistics.median(raw["rates"]) if raw["rates"] else 0.0,
        "hit_rate": model_stats.get("hit_rate", 0.0),
        "cache_mb": model_stats.get("bytes", 0) / 1e6,
    }


def write_report(model: str, results: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    on, off = results["cache"], results["no-cache"]
    rows = []
    for label, key, goal in (
        ("new conversation, cold (first ever for the agent)", "cold_new_s", ""),
        ("new conversation, agent prefix kept", "warm_new_p50_s", "≤ 6 s"),
        ("follow-up message, p50", "follow_p50_s", "≤ 2 s"),
        ("follow-up message, p95", "follow_p95_s", ""),
    ):
        speedup = off[key] / on[key] if on[key] else 0.0
        rows.append(f"| {label} | {off[key]:.2f} s | {on[key]:.2f} s | {speedup:.1f}x | {goal} |")
    section = f"""{MARK_START}
## Local model latency (`bench/latency.py`)

`{model}`, {args.agents} agents of the demo assistant's shape (each its own system prompt, calculator and clock
tools offered), questions that need no tool, {args.conversations} conversations of 1 + {args.follow_ups} messages
taking turns (conversation 1, 2, 3, 4, then each one's follow-up...), spread over the agents, replies up to
{args.max_tokens} tokens, temperature 0; timed at a WebSocket client from `message_post` to the first streamed chunk. Each setting in
a fresh process, the model loaded first ({on["load_s"]:.1f} s, not counted). Baseline: the same run with the
prompt cache off (`LODESTONE_LOCAL_PREFIX_CACHE_MB=0`: llama.cpp still reuses the one prefix its context
last processed).

| first token | cache off | cache on | speed-up | goal |
| --- | ---: | ---: | ---: | --- |
{chr(10).join(rows)}

Generation: {on["tok_per_s"]:.1f} tok/s with the cache, {off["tok_per_s"]:.1f} tok/s without (goal ≥ 9 on the default).
Prompt tokens not processed again: {on["hit_rate"] * 100:.0f} % with the cache, {off["hit_rate"] * 100:.0f} % without;
the kept states took {on["cache_mb"]:.0f} MB.

Machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}. Regenerate with
`make bench` (or `.venv/bin/python bench/latency.py --model {model}`).
{MARK_END}"""
    path = REPO / "docs" / "benchmarks.md"
    text = path.read_text()
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        text = before + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    path.write_text(text)
    return section


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("LODESTONE_LOCAL_MODEL", "qwen2.5-coder-1.5b"))
    parser.add_argument("--conversations", type=int, default=4)
    parser.add_argument("--follow-ups", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--agents", type=int, default=2, choices=(1, 2, 3), help="agents the conversations share")
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one setting, JSON out
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.model, args.conversations, args.follow_ups, args.max_tokens, args.agents)))
        return
    results = {}
    for label, cache_mb in (("no-cache", "0"), ("cache", "512")):
        env = {**os.environ, "LODESTONE_LOCAL_PREFIX_CACHE_MB": cache_mb}
        command = [sys.executable, __file__, "--measure", "--model", args.model]
        command += ["--conversations", str(args.conversations), "--follow-ups", str(args.follow_ups)]
        command += ["--max-tokens", str(args.max_tokens), "--agents", str(args.agents)]
        output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
        results[label] = summarise(json.loads(output.strip().splitlines()[-1]))
        print(label, json.dumps(results[label]), flush=True)
    print(write_report(args.model, results, args))


if __name__ == "__main__":
    main()
