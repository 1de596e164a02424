"""The agent-quality bench's task list and checkers (bench/agent_tasks.py), scored on sample replies:
no model, no database. The produced-code check runs trusted sample code with this Python."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime

import pytest

from bench.agent_tasks import (
    AGENTS,
    CODE_OK,
    FAMILIES,
    TASKS,
    Call,
    Outcome,
    Task,
    attempted_calls,
    code_passed,
    code_program,
    looks_like_call,
    numbers_in,
    produced_code,
    score,
    select,
    well_formed_calls,
)

WEDNESDAY_2PM = datetime(2026, 12, 2, 14, 0, tzinfo=UTC)
BY_ID = {task.id: task for task in TASKS}


def outcome(*texts: str, source: str = "bench_assistant", calls: tuple[Call, ...] = (), **fields: object) -> Outcome:
    return Outcome(
        status=str(fields.pop("status", "completed")),
        texts=[(source, text) for text in texts],
        requested=[call.name for call in calls],
        invocations=list(calls),
        started_at=WEDNESDAY_2PM,
        **fields,  # type: ignore[arg-type]
    )


def ok_call(name: str, result: str = "", **arguments: object) -> Call:
    return Call(name=name, arguments=dict(arguments), status="ok", result=result)


def run_locally(program: str) -> bool:
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=30, check=False)
    return code_passed(done.stdout, done.returncode == 0)


# --- The list -------------------------------------------------------------------------------------


def test_at_least_forty_tasks_in_every_family_each_with_a_checker() -> None:
    assert len(TASKS) >= 40
    assert len(BY_ID) == len(TASKS), "task ids are unique"
    for family in FAMILIES:
        assert sum(task.family == family for task in TASKS) >= 5, family
    for task in TASKS:
        assert task.family in FAMILIES and task.agent in AGENTS, task.id
        answer_check = (
            task.number is not None
            or task.any_of
            or task.all_of
            or task.dynamic is not None
            or task.dynamic_number is not None
            or task.code_tests
        )
        assert answer_check, f"{task.id} has no answer check"
        # Every task also says what must happen with tools (except memory: its agent has none).
        assert task.must_call or task.no_tools or task.must_execute or task.family == "memory", task.id
        assert not (task.must_call and task.no_tools), task.id
    assert all(task.setup for task in TASKS if task.family == "memory")


def test_a_subset_spreads_over_the_families_and_a_family_filter_keeps_only_it() -> None:
    picked = select(TASKS, limit=len(FAMILIES))
    assert sorted(task.family for task in picked) == sorted(FAMILIES)
    assert {task.family for task in select(TASKS, families=["memory"])} == {"memory"}
    assert select(TASKS) == list(TASKS)


# --- Checkers -------------------------------------------------------------------------------------


def test_arithmetic_needs_the_number_and_a_successful_calculator_call() -> None:
    task = BY_ID["arith-mul"]
    call = ok_call("calculator", "11045381", expression="4817 * 2293")
    assert score(task, outcome("4817 \u00d7 2293 = **11,045,381**.", calls=(call,))).ok
    assert not score(task, outcome("It is 11045381.")).ok  # right, but without the calculator
    wrong = score(task, outcome("It is 11045391.", calls=(call,)))
    assert not wrong.ok and "answer lacks" in wrong.reasons[0]
    failed = Call(name="calculator", arguments={"expression": "4817 x 2293"}, status="error")
    assert not score(task, outcome("11045381", calls=(failed,))).ok
    assert score(BY_ID["arith-percent"], outcome("17.5% of 2350 is 411.25.", calls=(ok_call("calculator"),))).ok
    assert numbers_in("11 045 381 and 7,056") == [11045381, 7056]


def test_dates_and_times_are_checked_against_when_the_run_started() -> None:
    clock = (ok_call("current_time", "2026-12-02T14:00:05+00:00"),)
    assert score(BY_ID["date-weekday"], outcome("Today is Wednesday.", calls=clock)).ok
    assert not score(BY_ID["date-weekday"], outcome("Today is Tuesday.", calls=clock)).ok
    assert not score(BY_ID["date-weekday"], outcome("Today is Wednesday.")).ok  # guessed, no clock
    assert score(BY_ID["date-today"], outcome("Today is December 2, 2026.", calls=clock)).ok
    assert score(BY_ID["date-today"], outcome("It is 2026-12-02.", calls=clock)).ok
    assert not score(BY_ID["date-today"], outcome("It is December 12, 2026.", calls=clock)).ok
    assert not score(BY_ID["date-today"], outcome("It is December 25.", calls=clock)).ok
    assert score(BY_ID["date-time"], outcome("It is 14:03 UTC.", calls=clock)).ok
    assert not score(BY_ID["date-time"], outcome("It is 16:00 UTC.", calls=clock)).ok
    assert score(BY_ID["date-year"], outcome("It is 2026.", calls=clock)).ok
    assert score(BY_ID["date-day"], outcome("Today is the 2nd.", calls=clock)).ok
    # Tokyo is nine hours ahead: at 15:30 UTC it is already the next day there.
    late = outcome("In Tokyo it is December 3, 2026.", calls=clock)
    late.started_at = datetime(2026, 12, 2, 15, 30, tzinfo=UTC)
    assert score(BY_ID["date-tokyo"], late).ok
    late.texts = [("bench_assistant", "In Tokyo it is December 2, 2026.")]
    assert not score(BY_ID["date-tokyo"], late).ok


def test_memory_needs_the_fact_in_a_real_answer_not_an_echo_of_the_recalled_block() -> None:
    task = BY_ID["mem-locker"]
    assert score(task, outcome("Your locker code is 4721.", source="bench_memory")).ok
    echo = "Relevant memories from earlier work (most relevant first):\n1. Task: my locker code is 4721."
    assert not score(task, outcome(echo, source="bench_memory")).ok
    assert not score(task, outcome("I don't know your locker code.", source="bench_memory")).ok
    assert not score(task, outcome("Your locker code is 4721.", status="failed", error="boom")).ok


def test_no_tool_tasks_fail_on_any_call_or_call_attempt() -> None:
    task = BY_ID["none-capital"]
    assert score(task, outcome("The capital of Japan is Tokyo.")).ok
    assert not score(task, outcome("Tokyo.", calls=(ok_call("current_time"),))).ok
    assert not score(task, outcome("Tokyo.", malformed=1)).ok
    assert score(BY_ID["none-passive"], outcome("The ball was chased by the dog.")).ok
    assert not score(BY_ID["none-passive"], outcome("The dog chased the ball.")).ok


def test_call_attempts_that_did_not_parse_are_recognised() -> None:
    tools = ["calculator", "current_time"]
    # What Qwen2.5-Coder-0.5B wrote on the bench: an extra "required" key failed the schema.
    assert looks_like_call('{"name": "calculator", "arguments": {"expression": "4817 * 2293", "required": []}}', tools)
    assert looks_like_call('```json\n{\n  "name": "is_palindrome",\n  "arguments": {"code": "x"}\n}\n```', tools)
    assert looks_like_call("<tool_call>\n{'name': 'calculator'}\n</tool_call>", tools)
    assert looks_like_call('Let me check: calculator("2 + 2")', tools)
    assert not looks_like_call("Hello! I'm doing well, thank you for asking.", tools)
    assert not looks_like_call("The calculator says the answer is 4.", tools)
    result = outcome("x", calls=(ok_call("calculator"), Call("calculator", {"e": 1}, "invalid")), malformed=2)
    assert attempted_calls(result) == 4 and well_formed_calls(result) == 1


GOOD_PRIME = (
    "def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, int(n ** 0.5) + 1))\nprint(is_prime(7))"
)
BAD_PRIME = "def is_prime(n):\n    return n % 2 == 1\n"


def test_produced_code_is_run_against_the_hidden_tests() -> None:
    task = BY_ID["code-prime"]
    run = ok_call("python_exec", "True", code=GOOD_PRIME)
    good = outcome("Done.", source="bench_python", calls=(run,))
    program = code_program(task, good)
    assert program is not None and program.startswith(GOOD_PRIME) and CODE_OK in program
    good.code_passed = run_locally(program)
    assert good.code_passed and score(task, good).ok

    bad = outcome("Done.", source="bench_python", calls=(ok_call("python_exec", code=BAD_PRIME),))
    bad.code_passed = run_locally(code_program(task, bad) or "")
    assert not bad.code_passed and not score(task, bad).ok
    # Code only in the reply (no python_exec call): checked, but the task asked for the tool.
    fenced = outcome(f"Here it is:\n```python\n{GOOD_PRIME}\n```", source="bench_python")
    assert produced_code(fenced).strip() == GOOD_PRIME
    fenced.code_passed = run_locally(code_program(task, fenced) or "")
    assert fenced.code_passed and score(task, fenced).reasons == ("python_exec was not called successfully",)
    assert code_program(task, outcome("I cannot do that.")) is None
    # A json block after the code: the code is still what is checked.
    after = outcome(f'```python\n{GOOD_PRIME}\n```\nThen:\n```json\n{{"name": "x"}}\n```', source="p")
    assert produced_code(after).strip() == GOOD_PRIME


@pytest.mark.parametrize(
    ("executor_says", "ok"), [("76127", True), ("Traceback (most recent call last):\nNameError", False)]
)
def test_team_code_tasks_need_the_executor_to_have_run_the_code(executor_says: str, ok: bool) -> None:
    task: Task = BY_ID["team-primes"]
    result = Outcome(
        status="completed",
        texts=[
            ("bench_coder", "```python\nprint(sum(p for p in range(2, 1000) if all(p % d for d in range(2, p))))\n```"),
            ("bench_executor", executor_says),
            ("bench_coder", "The sum is 76127. TERMINATE"),
        ],
    )
    assert score(task, result).ok is ok
