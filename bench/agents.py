"""Agent quality: fixed tasks through the real product path, scored from what was stored.

A throwaway SQLite database under a temporary LODESTONE_VAR_DIR, migrated. The bench creates its own
model config, agents and teams with the agents' services and grants tools with the tools' services
(``bench/agent_tasks.py`` lists the agents and the 40+ tasks). Every task is a conversation made
with ``conversation_create`` and a message sent with ``message_post``: the inline runner hands the
run to the executor, exactly as a chat message does. The bench listens on the conversation's
channel group (what the chat's socket hears) for the first streamed chunk and the run's end, then
reads the stored messages and ``ToolInvocation`` rows and scores them; produced code is run in the
sandbox against hidden tests.

Per model: task success, well-formed tool calls / attempted calls (a call is well formed when the
provider parsed it and its arguments passed the tool's schema, i.e. it became a stored tool-call
message that the tool layer did not refuse as invalid; an attempt is that or a text reply that
looks like a call), tool calls on no-tool tasks, first-chunk and total latency per run, tokens.

    .venv/bin/python bench/agents.py --model qwen2.5-coder-0.5b [--tasks N] [--family arithmetic,memory]

``--model openai-compatible`` runs the same tasks on an OpenAI-compatible endpoint given by
LODESTONE_BENCH_BASE_URL, LODESTONE_BENCH_MODEL and (optionally) LODESTONE_BENCH_API_KEY.
Results: bench/results/agents-<model>.json, and the table between the agents markers of
docs/benchmarks.md (rebuilt from every full run's results file).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

LOCAL_MODELS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
OPENAI_COMPATIBLE = "openai-compatible"
RESULTS_DIR = REPO / "bench" / "results"
MARK_START, MARK_END = "<!-- agents:start -->", "<!-- agents:end -->"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("LODESTONE_LOCAL_MODEL", "qwen2.5-coder-0.5b"))
    parser.add_argument("--tasks", type=int, default=None, help="run at most N tasks (spread over the families)")
    parser.add_argument("--family", default="", help="comma-separated families (default: all)")
    parser.add_argument("--ids", default="", help="comma-separated task ids (default: all; with --family, both apply)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds a run may take before it is stopped")
    parser.add_argument("--max-tokens", type=int, default=320)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.model not in (*LOCAL_MODELS, OPENAI_COMPATIBLE):
        parser.error(f"--model: one of {', '.join((*LOCAL_MODELS, OPENAI_COMPATIBLE))}")
    return args


ARGS = parse_args() if __name__ == "__main__" else parse_args([])
os.environ["LODESTONE_VAR_DIR"] = tempfile.mkdtemp(prefix="lodestone-bench-agents-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"):
    os.environ.pop(name, None)
if ARGS.model in LOCAL_MODELS:
    os.environ["LODESTONE_LOCAL_MODEL"] = ARGS.model

import django  # noqa: E402

django.setup()

from asgiref.sync import sync_to_async  # noqa: E402
from autogen_core.models import UserMessage  # noqa: E402
from channels.layers import get_channel_layer  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402

from agents import services as agent_services  # noqa: E402
from agents.models import Agent, ModelConfig, Team  # noqa: E402
from agents.providers import model_client_for  # noqa: E402
from bench.agent_tasks import (  # noqa: E402
    TASKS,
    Call,
    Outcome,
    Task,
    attempted_calls,
    code_passed,
    code_program,
    describe,
    dumps,
    looks_like_call,
    score,
    select,
    well_formed_calls,
)
from conversations import realtime, services  # noqa: E402
from conversations.models import Conversation, Message, Run  # noqa: E402
from conversations.runner import InlineRunner, get_runner  # noqa: E402
from tools import services as tool_services  # noqa: E402
from tools.code_executor import code_pair_create  # noqa: E402
from tools.models import Tool, ToolInvocation  # noqa: E402
from tools.sandbox import Limits, SandboxJob, SandboxUnavailable, get_sandbox  # noqa: E402

# The joined model files are shared with the checkout (var/models), not joined again per run.
settings.LODESTONE_MODEL_DIR = REPO / "var" / "models"
settings.LODESTONE_RATE_MESSAGES = ""  # a bench sends more messages a minute than a person
for quiet in ("lodestone.audit", "axes", "tools.runtime"):
    logging.getLogger(quiet).setLevel(logging.WARNING)

TOOLS_SYSTEM = "You are a helpful assistant. Use a tool when the question needs one; otherwise answer directly."
CODER_SYSTEM = (
    "You solve programming tasks in Python 3. Write the code and run it with the python_exec tool "
    "(print what you want to see), then answer with the result and the code."
)
MEMORY_SYSTEM = (
    "You are a helpful assistant that remembers earlier conversations with this user. When you are "
    "told a fact, acknowledge it briefly. When asked about something you were told, answer from the "
    "recalled memories."
)
SOLVER_SYSTEM = "You solve the task step by step. Use the calculator for arithmetic and the clock for dates."
REVIEWER_SYSTEM = "You check the previous answer and state the final answer to the task in one short sentence."


@dataclass
class World:
    user: User
    config: ModelConfig
    agents: dict[str, Agent]
    teams: dict[str, Team]
    offered: dict[str, list[str]]  # agent slug -> names of the tools it is offered


def model_config(model: str) -> ModelConfig:
    options: dict[str, Any] = {"temperature": 0, "seed": ARGS.seed, "max_tokens": ARGS.max_tokens}
    if model in LOCAL_MODELS:
        # model "" : the local provider runs LODESTONE_LOCAL_MODEL, as a default install does.
        options |= {"n_ctx": 4096, "n_threads": os.cpu_count() or 2}
        return agent_services.model_config_create(
            name=f"bench {model}", provider=ModelConfig.Provider.LOCAL, options=options
        )
    base_url, name = os.environ.get("LODESTONE_BENCH_BASE_URL", ""), os.environ.get("LODESTONE_BENCH_MODEL", "")
    if not base_url or not name:
        raise SystemExit("--model openai-compatible needs LODESTONE_BENCH_BASE_URL and LODESTONE_BENCH_MODEL.")
    options["model_info"] = {"function_calling": True, "json_output": False, "vision": False}
    return agent_services.model_config_create(
        name=f"bench {name}",
        provider=ModelConfig.Provider.OPENAI_COMPATIBLE,
        model=name,
        base_url=base_url,
        api_key=os.environ.get("LODESTONE_BENCH_API_KEY", ""),
        options=options,
    )


def build_world(model: str) -> World:
    tool_services.tools_sync_builtin()
    tools = {tool.name: tool for tool in Tool.objects.all()}
    config = model_config(model)
    user = User.objects.create_user("bench", password="bench-password-1")

    def agent(slug: str, name: str, system: str, granted: list[str], **fields: Any) -> Agent:
        created = agent_services.agent_create(
            slug=slug, name=name, description=name, model_config=config, system_message=system, **fields
        )
        for tool in granted:
            tool_services.tool_grant_create(agent=created, tool=tools[tool])
        return created

    agents = {
        "tools": agent("bench_assistant", "Assistant", TOOLS_SYSTEM, ["calculator", "current_time"]),
        "memory": agent("bench_memory", "Remembering assistant", MEMORY_SYSTEM, [], memory_enabled=True),
        "coder": agent("bench_python", "Python coder", CODER_SYSTEM, ["python_exec"]),
    }
    solver = agent("bench_solver", "Solver", SOLVER_SYSTEM, ["calculator", "current_time"])
    reviewer = agent("bench_reviewer", "Reviewer", REVIEWER_SYSTEM, [])
    teams = {
        "pair": code_pair_create(model_config=config, prefix="bench"),
        "duo": agent_services.team_create(
            slug="bench-duo",
            name="Solver + Reviewer",
            kind=Team.Kind.ROUND_ROBIN,
            agents=[solver, reviewer],
            max_messages=3,
        ),
    }
    offered = {
        "bench_assistant": ["calculator", "current_time"],
        "bench_python": ["python_exec"],
        "bench_solver": ["calculator", "current_time"],
    }
    return World(user=user, config=config, agents=agents, teams=teams, offered=offered)


def conversation_for(world: World, task: Task, user: User) -> Conversation:
    if task.agent in world.teams:
        return services.conversation_create(owner=user, team=world.teams[task.agent], title=task.id)
    return services.conversation_create(owner=user, agent=world.agents[task.agent], title=task.id)


@dataclass
class RunSample:
    run_id: int
    status: str
    first_chunk_s: float | None
    total_s: float
    prompt_tokens: int
    completion_tokens: int


async def send(conversation: Conversation, user: User, text: str) -> RunSample:
    """One message through ``message_post`` -> inline runner -> executor, timed from the channel
    group the chat listens on: the first streamed chunk, and the run's end."""
    layer = get_channel_layer()
    assert layer is not None
    channel = await layer.new_channel()
    group = realtime.group_name(conversation.pk)
    await layer.group_add(group, channel)
    started = time.perf_counter()
    _, run = await sync_to_async(services.message_post)(conversation=conversation, user=user, text=text)
    first: float | None = None
    deadline = started + ARGS.timeout
    stopping = False
    try:
        while True:
            remaining = deadline - time.perf_counter()
            if remaining <= 0 and not stopping:
                stopping = True
                deadline = time.perf_counter() + 60
                await sync_to_async(services.run_cancel)(run=run)
                continue
            try:
                event = await asyncio.wait_for(layer.receive(channel), timeout=max(remaining, 0.1))
            except TimeoutError:
                if stopping:
                    break
                continue
            if event["type"] == realtime.CHUNK and event["run_id"] == run.pk and first is None:
                first = time.perf_counter() - started
            run_event = event["type"] == realtime.RUN and event["run"]["id"] == run.pk
            if run_event and event["run"]["status"] in Run.FINISHED_STATUSES:
                break
    finally:
        total = time.perf_counter() - started
        await layer.group_discard(group, channel)
    runner = get_runner()
    if isinstance(runner, InlineRunner):
        await runner.wait_idle(120)
    finished = await Run.objects.aget(pk=run.pk)
    return RunSample(
        run_id=run.pk,
        status=finished.status,
        first_chunk_s=first,
        total_s=total,
        prompt_tokens=finished.prompt_tokens,
        completion_tokens=finished.completion_tokens,
    )


def collect(world: World, run_ids: list[int], started_at: datetime) -> Outcome:
    """What the task's runs stored: the final run's agent texts, every tool call, every invocation."""
    final = Run.objects.get(pk=run_ids[-1])
    messages = list(Message.objects.filter(run_id__in=run_ids).order_by("conversation_id", "seq"))
    requested: list[str] = []
    malformed = 0
    for message in messages:
        if message.type == Message.Type.TOOL_CALL:
            requested.extend(str(call.get("name")) for call in message.payload.get("calls", []))
        offered = world.offered.get(message.source, [])
        if message.type == Message.Type.TEXT and offered and looks_like_call(message.content, offered):
            malformed += 1
    invocations = [
        Call(name=i.tool_name, arguments=dict(i.arguments), status=i.status, result=i.result_summary)
        for i in ToolInvocation.objects.filter(run_id__in=run_ids).order_by("created_at", "id")
    ]
    texts = [(m.source, m.content) for m in messages if m.run_id == final.pk and m.type == Message.Type.TEXT]
    return Outcome(
        status=final.status,
        error=final.error,
        texts=texts,
        requested=requested,
        invocations=invocations,
        malformed=malformed,
        started_at=started_at,
    )


async def check_code(task: Task, outcome: Outcome) -> None:
    program = code_program(task, outcome)
    if program is None:
        return
    result = await get_sandbox().run(SandboxJob(program=program, limits=Limits(cpu_seconds=10, wall_seconds=20)))
    outcome.code_output = (result.stdout + ("\n" + result.stderr if result.stderr else ""))[-2000:]
    outcome.code_passed = code_passed(result.stdout, result.ok)


@dataclass
class TaskResult:
    task: dict[str, Any]
    ok: bool
    reasons: list[str]
    runs: list[RunSample]
    requested: list[str]
    invocations: list[dict[str, Any]]
    malformed: int
    attempted: int
    well_formed: int
    answer: str
    texts: list[tuple[str, str]] = field(default_factory=list)
    code_output: str = ""


async def run_task(world: World, task: Task, index: int) -> TaskResult:
    user = world.user
    if task.setup:  # memory tasks: a person of their own, so no other task's memories interfere
        user = await sync_to_async(User.objects.create_user)(f"bench-{index}", password="bench-password-1")
    samples: list[RunSample] = []
    for text in task.setup:
        conversation = await sync_to_async(conversation_for)(world, task, user)
        samples.append(await send(conversation, user, text))
    conversation = await sync_to_async(conversation_for)(world, task, user)
    started_at = datetime.now(UTC)
    samples.append(await send(conversation, user, task.prompt))
    outcome = await sync_to_async(collect)(world, [s.run_id for s in samples], started_at)
    await check_code(task, outcome)
    verdict = score(task, outcome)
    return TaskResult(
        task=describe(task),
        ok=verdict.ok,
        reasons=list(verdict.reasons),
        runs=samples,
        requested=outcome.requested,
        invocations=[asdict(call) for call in outcome.invocations],
        malformed=outcome.malformed,
        attempted=attempted_calls(outcome),
        well_formed=well_formed_calls(outcome),
        answer=(outcome.texts[-1][1] if outcome.texts else "")[:1000],
        texts=[(source, content[:1000]) for source, content in outcome.texts],
        code_output=outcome.code_output,
    )


async def warm_up(world: World) -> float:
    """Load (and, the first time, join) the model outside the measurements."""
    started = time.perf_counter()
    client = await sync_to_async(model_client_for)(world.config)
    await client.create([UserMessage(content="Say OK.", source="user")])
    return time.perf_counter() - started


def percentile(values: list[float], q: int) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def summarise(results: list[TaskResult]) -> dict[str, Any]:
    runs = [run for result in results for run in result.runs]
    firsts = [r.first_chunk_s for r in runs if r.first_chunk_s is not None]
    totals = [r.total_s for r in runs]
    attempted = sum(r.attempted for r in results)
    no_tool = [r for r in results if r.task["no_tools"]]
    families: dict[str, list[bool]] = {}
    for result in results:
        families.setdefault(str(result.task["family"]), []).append(result.ok)
    return {
        "tasks": len(results),
        "succeeded": sum(r.ok for r in results),
        "success_rate": sum(r.ok for r in results) / len(results) if results else None,
        "attempted_calls": attempted,
        "well_formed_calls": sum(r.well_formed for r in results),
        "well_formed_rate": sum(r.well_formed for r in results) / attempted if attempted else None,
        "no_tool_tasks": len(no_tool),
        "no_tool_tasks_with_calls": sum(1 for r in no_tool if r.attempted),
        "no_tool_call_rate": sum(1 for r in no_tool if r.attempted) / len(no_tool) if no_tool else None,
        "runs": len(runs),
        "runs_without_chunk": len(runs) - len(firsts),
        "first_chunk_p50_s": percentile(firsts, 50),
        "first_chunk_p95_s": percentile(firsts, 95),
        "total_p50_s": percentile(totals, 50),
        "total_p95_s": percentile(totals, 95),
        "prompt_tokens": sum(r.prompt_tokens for r in runs),
        "completion_tokens": sum(r.completion_tokens for r in runs),
        "families": {name: {"tasks": len(oks), "succeeded": sum(oks)} for name, oks in families.items()},
    }


def results_path(subset: bool) -> Path:
    """One file per model and selection: a subset run does not replace the full run or another subset."""
    label = ""
    if subset:
        families = "+".join(f.strip() for f in ARGS.family.split(",") if f.strip())
        label = "-subset" + (f"-{families}" if families else "") + (f"-{ARGS.tasks}" if ARGS.tasks else "")
        label += "-ids" if ARGS.ids else ""
    return RESULTS_DIR / f"agents-{ARGS.model}{label}.json"


async def main() -> dict[str, Any]:
    runner = get_runner()
    assert isinstance(runner, InlineRunner)
    runner.bind_loop(asyncio.get_running_loop())
    runner._recovered = True
    world = await sync_to_async(build_world)(ARGS.model)
    warm = await warm_up(world)
    families = [f.strip() for f in ARGS.family.split(",") if f.strip()]
    tasks = select(TASKS, families=families, limit=ARGS.tasks)
    if ARGS.ids:
        wanted = {name.strip() for name in ARGS.ids.split(",") if name.strip()}
        unknown = wanted - {task.id for task in TASKS}
        if unknown:
            raise SystemExit(f"--ids: no such task {', '.join(sorted(unknown))}")
        tasks = [task for task in tasks if task.id in wanted]
    if any(task.family in ("coding", "team") for task in tasks):
        try:
            get_sandbox()
        except SandboxUnavailable as exc:  # checked now, not as a crash at the first coding task
            raise SystemExit(f"The coding and team tasks run code: {exc}") from exc
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    results: list[TaskResult] = []

    def report() -> dict[str, Any]:
        return {
            "model": ARGS.model,
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "subset": len(tasks) < len(TASKS),
            "planned": len(tasks),
            "complete": len(results) == len(tasks),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
            "load_average_start": round(load_start, 2),
            "load_average_end": round(os.getloadavg()[0], 2),
            "warm_up_s": round(warm, 1),
            "wall_clock_s": round(time.perf_counter() - started, 1),
            "options": {"temperature": 0, "seed": ARGS.seed, "max_tokens": ARGS.max_tokens, "timeout_s": ARGS.timeout},
            "summary": summarise(results),
            "results": [asdict(r) for r in results],
        }

    out = results_path(len(tasks) < len(TASKS))
    RESULTS_DIR.mkdir(exist_ok=True)
    for index, task in enumerate(tasks):
        result = await run_task(world, task, index)
        results.append(result)
        mark = "ok " if result.ok else "FAIL"
        seconds = sum(r.total_s for r in result.runs)
        print(f"[{index + 1}/{len(tasks)}] {mark} {task.id} ({seconds:.1f} s) {'; '.join(result.reasons)}", flush=True)
        out.write_text(dumps(report()) + "\n")  # after every task: a run cut short keeps what it measured
    return report()


# --- Report ---------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f} %"


def _s(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def write_report() -> str:
    """The agents section of docs/benchmarks.md, from every full run's results file."""
    reports = []
    for path in sorted(RESULTS_DIR.glob("agents-*.json")):
        reports.append(json.loads(path.read_text()))
    order = {name: i for i, name in enumerate((*LOCAL_MODELS, OPENAI_COMPATIBLE))}
    reports.sort(key=lambda d: order.get(d["model"], 99))
    rows, family_rows, failures = [], [], []
    families = ("arithmetic", "datetime", "memory", "coding", "team", "no_tool")
    for data in reports:
        s = data["summary"]
        scope = "all tasks"
        if data.get("subset"):
            present = {str(r["task"]["family"]) for r in data["results"]}
            scope = f"{data.get('planned', s['tasks'])} tasks: {', '.join(f for f in families if f in present)}"
        if not data.get("complete", True):
            scope += f", cut short after {s['tasks']}"
        rows.append(
            f"| `{data['model']}` ({scope}) | {s['succeeded']}/{s['tasks']} ({_pct(s['success_rate'])}) "
            f"| {s['well_formed_calls']}/{s['attempted_calls']} ({_pct(s['well_formed_rate'])}) "
            f"| {s['no_tool_tasks_with_calls']}/{s['no_tool_tasks']} ({_pct(s['no_tool_call_rate'])}) "
            f"| {_s(s['first_chunk_p50_s'])} / {_s(s['first_chunk_p95_s'])} "
            f"| {_s(s['total_p50_s'])} / {_s(s['total_p95_s'])} "
            f"| {s['prompt_tokens']:,} / {s['completion_tokens']:,} | {data['date']}, load {data['load_average_start']}"
            f" to {data['load_average_end']} |"
        )
        cells = []
        for family in families:
            f = s["families"].get(family)
            cells.append(f"{f['succeeded']}/{f['tasks']}" if f else "—")
        family_rows.append(f"| `{data['model']}` ({scope}) | " + " | ".join(cells) + " |")
        failed = [r for r in data["results"] if not r["ok"]]
        if failed:
            items = "; ".join(f"`{r['task']['id']}` ({r['reasons'][0] if r['reasons'] else '?'})" for r in failed[:12])
            more = f" and {len(failed) - 12} more" if len(failed) > 12 else ""
            failures.append(f"- `{data['model']}` ({scope}): {items}{more}.")
    section = f"""{MARK_START}
## Agent quality (`bench/agents.py`)

{len(TASKS)} fixed tasks in six families, each through the real product path: agents, teams and tool
grants made with the services, a conversation and `message_post` per task, the inline runner and
the executor, a throwaway migrated SQLite database. Scored from the stored messages and
`ToolInvocation` rows (`bench/agent_tasks.py` has every task and checker); coding tasks' code runs
in the bubblewrap sandbox against hidden tests. Temperature 0, fixed seed, at most
{ARGS.max_tokens} tokens a reply.

| model | task success | well-formed tool calls | tool calls on no-tool tasks | first chunk p50 / p95 | total per run p50 / p95 | tokens prompt / completion | run |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |
{chr(10).join(rows)}

| model | arithmetic | date/time | memory | coding | team | no tool |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
{chr(10).join(family_rows)}

- *Well-formed*: calls the provider parsed and whose arguments passed the tool's schema (a stored
  tool-call message the tool layer did not refuse as invalid), over those plus text replies that
  look like a call attempt (call tags, JSON naming a function, a bare JSON reply, `tool(...)`).
- *Tool calls on no-tool tasks*: no-tool tasks (greetings, definitions, rewrites; the agent is
  offered the calculator and the clock) in which any call was made or attempted.
- *First chunk*: from `message_post` to the first streamed chunk on the conversation's channel
  group, i.e. the first text a chat user sees; replies that are tool calls are never streamed, so
  on tool tasks this includes the call, the tool and the start of the answer. *Total*: until the
  run's final status event. One sample per run (memory tasks have two runs).
- **Latencies are noisy**: the 2-core machine was shared with other jobs while these ran (load
  average at start and end in the last column); compare success and call rates across models, not
  seconds across runs.

Failures:

{chr(10).join(failures) or "- none"}

Regenerate: `make bench` (the model of `LODESTONE_LOCAL_MODEL`), or
`.venv/bin/python bench/agents.py --model qwen2.5-coder-1.5b`; the per-task results (answers, calls,
reasons) are in `bench/results/agents-<model>.json`.
{MARK_END}"""
    path = REPO / "docs" / "benchmarks.md"
    text = path.read_text()
    if MARK_START in text:
        before, rest = text.split(MARK_START, 1)
        text = before + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    return section


if __name__ == "__main__":
    call_command("migrate", verbosity=0)
    outcome = asyncio.run(main())
    print(dumps(outcome["summary"]))
    print(f"Results: {results_path(outcome['subset']).relative_to(REPO)}")
    print(write_report())
