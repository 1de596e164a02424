"""The fixed tasks of ``bench/agents.py`` and how each one is scored (no Django here: the checkers
read a plain ``Outcome`` that the bench fills from the stored messages and tool invocations, so
tests can score sample replies without a model).

Each task names the bench agent that answers it (``AGENTS`` says what each is given), what the
answer must contain, and which tools must or must not be called. Dates and times are checked
against the moment the run started (UTC, as the clock tool answers by default).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

FAMILIES = ("arithmetic", "datetime", "memory", "coding", "team", "no_tool")

# The bench's own agents (created by bench/agents.py through the agents' and tools' services).
AGENTS: dict[str, str] = {
    "tools": "one assistant granted calculator and current_time",
    "memory": "one memory-enabled assistant, no tools",
    "coder": "one assistant granted python_exec",
    "pair": "round-robin team: coder + code executor (the sandbox), stop word TERMINATE",
    "duo": "round-robin team: a solver granted calculator and current_time, then a reviewer without tools",
}

CODE_OK = "BENCH_CODE_OK"
# The header of the recalled-memories block (memory.autogen): a reply that repeats it echoed the
# block instead of answering.
MEMORY_ECHO = ("Relevant memories from earlier work",)


@dataclass(frozen=True)
class Call:
    """One tool invocation as recorded (``ToolInvocation``)."""

    name: str
    arguments: dict[str, object]
    status: str
    result: str = ""


@dataclass
class Outcome:
    """What a task's runs left in the database, plus the check of produced code when there is one."""

    status: str  # the final run's status
    error: str = ""
    texts: list[tuple[str, str]] = field(default_factory=list)  # (source, content): agents' texts, final run
    requested: list[str] = field(default_factory=list)  # tool names in the stored tool-call messages
    invocations: list[Call] = field(default_factory=list)
    malformed: int = 0  # replies that look like a call attempt but were not parsed as one
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    code_passed: bool | None = None  # the produced code against the hidden tests (None: not run)
    code_output: str = ""


@dataclass(frozen=True)
class Task:
    id: str
    family: str
    agent: str
    prompt: str
    setup: tuple[str, ...] = ()  # said first, in another conversation (memory tasks)
    number: float | None = None  # a number the answer must contain
    any_of: tuple[str, ...] = ()  # at least one of these (case-insensitive)
    all_of: tuple[str, ...] = ()  # every one of these (case-insensitive)
    none_of: tuple[str, ...] = ()  # none of these (case-insensitive)
    # Expectations that depend on when the run started: acceptable substrings, or a number.
    dynamic: Callable[[datetime], tuple[str, ...]] | None = None
    dynamic_number: Callable[[datetime], float] | None = None
    must_call: tuple[str, ...] = ()
    no_tools: bool = False  # no tool may be called (nor a call attempted)
    code_tests: str = ""  # hidden tests appended to the produced code, run in the sandbox
    must_execute: bool = False  # the code executor ran code without failing (coder + executor team)
    whole_run: bool = False  # the answer may be in any agent's text of the run (teams), not only the last


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reasons: tuple[str, ...] = ()


# --- Reading replies ------------------------------------------------------------------------------

_DIGIT_GROUP = re.compile(r"(?<=\d)[,\u202f\u00a0 '](?=\d{3}(?!\d))")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def numbers_in(text: str) -> list[float]:
    """The numbers written in ``text`` (digit groups joined: 11,045,381 and 11 045 381 are one)."""
    joined = _DIGIT_GROUP.sub("", text)
    joined = re.sub(r"\*\*|\\", "", joined)  # markdown bold and LaTeX escapes around digits
    return [float(m) for m in _NUMBER.findall(joined)]


def has_number(text: str, expected: float) -> bool:
    tolerance = max(1e-6, abs(expected) * 1e-9)
    for value in numbers_in(text):
        if abs(value - expected) <= tolerance:
            return True
        if expected != int(expected) and abs(round(value, 2) - round(expected, 2)) < 1e-9:
            return True
    return False


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value}"


def final_text(outcome: Outcome) -> str:
    """The answer: the last agent text of the final run that is more than a stop word."""
    for _source, content in reversed(outcome.texts):
        if content.replace("TERMINATE", "").strip():
            return content
    return ""


def answer_text(task: Task, outcome: Outcome) -> str:
    if task.whole_run:
        return "\n".join(content for _source, content in outcome.texts)
    return final_text(outcome)


_CALL_JSON = re.compile(r'"(?:name|function)"\s*:\s*"(\w+)"')


def looks_like_call(text: str, tool_names: Sequence[str]) -> bool:
    """Whether a reply that was stored as text looks like an attempt to call a tool: the Qwen call
    tags, JSON naming a function, a fenced json block or bare JSON as the reply, or an offered
    tool written as a function call (``calculator("2+2")``)."""
    stripped = text.strip()
    if "<tool_call>" in stripped or "</tool_call>" in stripped:
        return True
    if stripped.startswith(("{", "[", "```json", "```tool_call")):
        return True
    named = _CALL_JSON.findall(stripped)
    if any(name in tool_names for name in named) or ('"arguments"' in stripped and named):
        return True
    return any(re.search(rf"(?<![\w.]){re.escape(name)}\s*\(", stripped) for name in tool_names)


_PYTHON_FENCES = {"", "python", "py", "python3"}


def python_blocks(text: str) -> list[str]:
    """The fenced Python (or unlabelled) blocks of a reply, fences paired in order (a closing fence
    is never taken for the opening of the next block)."""
    blocks: list[str] = []
    language: str | None = None  # inside a block: its info string
    lines: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if language is None:
            if stripped.startswith("```"):
                language, lines = stripped[3:].strip().lower(), []
        elif stripped.startswith("```"):
            if language in _PYTHON_FENCES:
                blocks.append("\n".join(lines))
            language = None
        else:
            lines.append(line)
    return blocks


def produced_code(outcome: Outcome) -> str:
    """The code a coding task produced: the last ``python_exec`` call's code (a successful one
    first), else the last fenced Python block of the agents' texts."""
    calls = [c for c in outcome.invocations if c.name == "python_exec" and isinstance(c.arguments.get("code"), str)]
    good = [c for c in calls if c.status == "ok"]
    for call in reversed(good or calls):
        return str(call.arguments["code"])
    for _source, content in reversed(outcome.texts):
        blocks = python_blocks(content)
        if blocks:
            return blocks[-1]
    return ""


def code_program(task: Task, outcome: Outcome) -> str | None:
    """What the bench runs in the sandbox to check a coding task, or None (no tests, or no code)."""
    if not task.code_tests:
        return None
    code = produced_code(outcome)
    if not code.strip():
        return None
    # The produced code runs first, as written (its own prints and calls included); the hidden
    # tests follow and print the marker only when every assertion held.
    return f"{code}\n\n# --- bench: hidden tests\n{task.code_tests}\nprint({CODE_OK!r})\n"


def code_passed(output: str, ok: bool) -> bool:
    return ok and CODE_OK in output


# --- Scoring --------------------------------------------------------------------------------------


def attempted_calls(outcome: Outcome) -> int:
    return len(outcome.requested) + outcome.malformed


def well_formed_calls(outcome: Outcome) -> int:
    """Calls parsed as valid (a stored tool-call message) and not refused as invalid by the tool layer."""
    invalid = sum(1 for call in outcome.invocations if call.status == "invalid")
    return max(0, len(outcome.requested) - invalid)


def score(task: Task, outcome: Outcome) -> Verdict:
    reasons: list[str] = []
    if outcome.status != "completed":
        reasons.append(f"run {outcome.status}: {outcome.error[:200]}".rstrip(": "))
    text = answer_text(task, outcome)
    lowered = text.lower()
    if not text.strip():
        reasons.append("no answer text")
    if task.number is not None and not has_number(text, task.number):
        reasons.append(f"answer lacks {_number(task.number)}")
    if task.dynamic_number is not None:
        expected = task.dynamic_number(outcome.started_at)
        if not has_number(text, expected):
            reasons.append(f"answer lacks {_number(expected)}")
    if task.any_of and not any(option.lower() in lowered for option in task.any_of):
        reasons.append(f"answer has none of {list(task.any_of)}")
    missing = [option for option in task.all_of if option.lower() not in lowered]
    if missing:
        reasons.append(f"answer lacks {missing}")
    echoed = [option for option in task.none_of if option.lower() in lowered]
    if echoed:
        reasons.append(f"answer contains {echoed}")
    if task.dynamic is not None:
        options = task.dynamic(outcome.started_at)
        # Not inside a longer number: "December 2" is not "December 25", "14:03" not "14:035".
        if not any(re.search(rf"(?<!\d){re.escape(option.lower())}(?!\d)", lowered) for option in options):
            reasons.append(f"answer has none of {list(options)[:4]}")
    called_ok = {call.name for call in outcome.invocations if call.status == "ok"}
    for name in task.must_call:
        if name not in called_ok:
            reasons.append(f"{name} was not called successfully")
    if task.no_tools and (outcome.requested or outcome.invocations or outcome.malformed):
        reasons.append(f"a tool call on a no-tool task: {outcome.requested or outcome.malformed}")
    if task.code_tests and not outcome.code_passed:
        reasons.append("the produced code failed the hidden tests" if produced_code(outcome) else "no code produced")
    if task.must_execute and not any(
        source.endswith("_executor") and content.strip() and "[failed" not in content and "Traceback" not in content
        for source, content in outcome.texts
    ):
        reasons.append("the executor ran no code successfully")
    return Verdict(ok=not reasons, reasons=tuple(reasons))


# --- Dates and times ------------------------------------------------------------------------------


def _date_forms(day: datetime) -> tuple[str, ...]:
    month, short, n = day.strftime("%B"), day.strftime("%b"), day.day
    suffix = "th" if 11 <= n % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return (
        day.strftime("%Y-%m-%d"),
        f"{month} {n}",
        f"{n} {month}",
        f"{month} {n}{suffix}",
        f"{n}{suffix} {month}",
        f"{n}{suffix} of {month}",
        f"{short} {n},",
        f"{n} {short} ",
        f"{n:02d}/{day.month:02d}/{day.year}",
        f"{day.month:02d}/{n:02d}/{day.year}",
    )


def _weekday(now: datetime) -> tuple[str, ...]:
    return (now.astimezone(UTC).strftime("%A"),)


def _today(now: datetime) -> tuple[str, ...]:
    return _date_forms(now.astimezone(UTC))


def _tokyo_today(now: datetime) -> tuple[str, ...]:
    return _date_forms(now.astimezone(ZoneInfo("Asia/Tokyo")))


def _month(now: datetime) -> tuple[str, ...]:
    return (now.astimezone(UTC).strftime("%B"),)


def _year(now: datetime) -> float:
    return float(now.astimezone(UTC).year)


def _day_of_month(now: datetime) -> float:
    return float(now.astimezone(UTC).day)


def _clock_time(now: datetime) -> tuple[str, ...]:
    """HH:MM within five minutes of the run's start (24-hour, or 12-hour with the hour unpadded)."""
    forms: list[str] = []
    for minutes in range(-5, 6):
        moment = now.astimezone(UTC) + timedelta(minutes=minutes)
        forms.append(moment.strftime("%H:%M"))
        hour12 = moment.hour % 12 or 12
        forms.append(f"{hour12}:{moment.minute:02d}")
    return tuple(dict.fromkeys(forms))


# --- The tasks ------------------------------------------------------------------------------------

_HIDDEN_TESTS = {
    "palindrome": (
        "assert is_palindrome('A man, a plan, a canal: Panama')\n"
        "assert is_palindrome('No lemon, no melon')\n"
        "assert not is_palindrome('hello')"
    ),
    "fizzbuzz": (
        "assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']\n"
        "assert fizzbuzz(15)[-1] == 'FizzBuzz' and len(fizzbuzz(15)) == 15"
    ),
    "word_count": (
        "assert word_count('the cat and the hat') == {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}\n"
        "assert word_count('Dog dog DOG') == {'dog': 3}"
    ),
    "factorial": "assert factorial(0) == 1\nassert factorial(5) == 120\nassert factorial(10) == 3628800",
    "reverse_words": (
        "assert reverse_words('hello world') == 'world hello'\nassert reverse_words('one two three') == 'three two one'"
    ),
    "is_prime": (
        "assert [n for n in range(30) if is_prime(n)] == [2, 3, 5, 7, 11, 13, 17, 19, 23, 29]\nassert not is_prime(91)"
    ),
}

TASKS: tuple[Task, ...] = (
    # Arithmetic: the calculator must be called and the answer must carry its result.
    Task("arith-mul", "arithmetic", "tools", "What is 4817 \u00d7 2293?", number=11045381, must_call=("calculator",)),
    Task(
        "arith-sum", "arithmetic", "tools", "Calculate 98765 - 43210 + 1234.", number=56789, must_call=("calculator",)
    ),
    Task("arith-div", "arithmetic", "tools", "What is 123456 divided by 64?", number=1929, must_call=("calculator",)),
    Task(
        "arith-pow", "arithmetic", "tools", "What is 2 to the power of 20?", number=1048576, must_call=("calculator",)
    ),
    Task("arith-paren", "arithmetic", "tools", "Compute (345 + 678) * 9.", number=9207, must_call=("calculator",)),
    Task("arith-percent", "arithmetic", "tools", "What is 17.5% of 2350?", number=411.25, must_call=("calculator",)),
    Task("arith-sqrt", "arithmetic", "tools", "What is the square root of 7056?", number=84, must_call=("calculator",)),
    Task("arith-big", "arithmetic", "tools", "Multiply 999999 by 7.", number=6999993, must_call=("calculator",)),
    # Dates and times: the clock must be called; checked against the real date.
    Task(
        "date-weekday",
        "datetime",
        "tools",
        "What day of the week is it today?",
        dynamic=_weekday,
        must_call=("current_time",),
    ),
    Task("date-today", "datetime", "tools", "What is today's date?", dynamic=_today, must_call=("current_time",)),
    Task(
        "date-year",
        "datetime",
        "tools",
        "What year is it right now?",
        dynamic_number=_year,
        must_call=("current_time",),
    ),
    Task("date-month", "datetime", "tools", "Which month is it now?", dynamic=_month, must_call=("current_time",)),
    Task(
        "date-time",
        "datetime",
        "tools",
        "What time is it now in UTC? Give hours and minutes.",
        dynamic=_clock_time,
        must_call=("current_time",),
    ),
    Task(
        "date-tokyo",
        "datetime",
        "tools",
        "What is the date right now in Tokyo (time zone Asia/Tokyo)?",
        dynamic=_tokyo_today,
        must_call=("current_time",),
    ),
    Task(
        "date-day",
        "datetime",
        "tools",
        "What day of the month is it today?",
        dynamic_number=_day_of_month,
        must_call=("current_time",),
    ),
    # Memory: told in one conversation, asked in a new one.
    Task(
        "mem-locker",
        "memory",
        "memory",
        "What is my locker code?",
        setup=("Please remember this: my locker code is 4721.",),
        none_of=MEMORY_ECHO,
        number=4721,
    ),
    Task(
        "mem-cat",
        "memory",
        "memory",
        "What is my cat's name?",
        setup=("Remember that my cat is called Biscuit.",),
        none_of=MEMORY_ECHO,
        all_of=("Biscuit",),
    ),
    Task(
        "mem-standup",
        "memory",
        "memory",
        "At what time is our team standup?",
        setup=("Note for later: our team standup is at 9:45 every morning.",),
        none_of=MEMORY_ECHO,
        all_of=("9:45",),
    ),
    Task(
        "mem-language",
        "memory",
        "memory",
        "Which programming language is my favourite?",
        setup=("For the record, my favourite programming language is Haskell.",),
        none_of=MEMORY_ECHO,
        all_of=("Haskell",),
    ),
    Task(
        "mem-wifi",
        "memory",
        "memory",
        "What is the Wi-Fi password at the cabin?",
        setup=("Remember: the Wi-Fi password at the cabin is maple-fern-82.",),
        none_of=MEMORY_ECHO,
        all_of=("maple-fern-82",),
    ),
    Task(
        "mem-sister",
        "memory",
        "memory",
        "In which city does my sister Ingrid live?",
        setup=("My sister Ingrid lives in Trondheim. Please remember it.",),
        none_of=MEMORY_ECHO,
        all_of=("Trondheim",),
    ),
    # Coding: the produced code runs in the sandbox against hidden tests.
    Task(
        "code-palindrome",
        "coding",
        "coder",
        "Write a Python function is_palindrome(s) that returns True when s reads the same backwards, "
        "ignoring case, spaces and punctuation. Run it with python_exec on 'A man, a plan, a canal: Panama'.",
        code_tests=_HIDDEN_TESTS["palindrome"],
        must_call=("python_exec",),
    ),
    Task(
        "code-fizzbuzz",
        "coding",
        "coder",
        "Write a Python function fizzbuzz(n) that returns a list of strings for 1..n: 'Fizz' for multiples "
        "of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for both, otherwise the number. Run it with "
        "python_exec for n = 15.",
        code_tests=_HIDDEN_TESTS["fizzbuzz"],
        must_call=("python_exec",),
    ),
    Task(
        "code-wordcount",
        "coding",
        "coder",
        "Write a Python function word_count(text) that returns a dict mapping each lower-cased word to how "
        "often it occurs. Run it with python_exec on 'the cat and the hat'.",
        code_tests=_HIDDEN_TESTS["word_count"],
        must_call=("python_exec",),
    ),
    Task(
        "code-factorial",
        "coding",
        "coder",
        "Write a Python function factorial(n) that returns n! for n >= 0, without recursion. Run it with "
        "python_exec for n = 10.",
        code_tests=_HIDDEN_TESTS["factorial"],
        must_call=("python_exec",),
    ),
    Task(
        "code-reverse",
        "coding",
        "coder",
        "Write a Python function reverse_words(s) that returns the words of s in reverse order, joined by "
        "single spaces. Run it with python_exec on 'hello world'.",
        code_tests=_HIDDEN_TESTS["reverse_words"],
        must_call=("python_exec",),
    ),
    Task(
        "code-prime",
        "coding",
        "coder",
        "Write a Python function is_prime(n) that returns True when n is a prime number. Run it with "
        "python_exec to list the primes below 30.",
        code_tests=_HIDDEN_TESTS["is_prime"],
        must_call=("python_exec",),
    ),
    # Multi-step tasks for a team.
    Task(
        "team-primes",
        "team",
        "pair",
        "Use Python to compute the sum of all prime numbers below 1000.",
        number=76127,
        must_execute=True,
        whole_run=True,
    ),
    Task(
        "team-fibonacci",
        "team",
        "pair",
        "Use Python to compute the 30th Fibonacci number, where the 1st and 2nd are both 1.",
        number=832040,
        must_execute=True,
        whole_run=True,
    ),
    Task(
        "team-divisible",
        "team",
        "pair",
        "Use Python to count the integers from 1 to 10000 that are divisible by 7 or by 11.",
        number=2208,
        must_execute=True,
        whole_run=True,
    ),
    Task(
        "team-invoice",
        "team",
        "duo",
        "A shop sells 17 notebooks at 23.50 each and then adds 8% tax to the total. What is the final amount?",
        number=431.46,
        must_call=("calculator",),
        whole_run=True,
    ),
    Task(
        "team-speed",
        "team",
        "duo",
        "A train covers 385 km in 3.5 hours. What is its average speed in km/h?",
        number=110,
        must_call=("calculator",),
        whole_run=True,
    ),
    Task(
        "team-difference",
        "team",
        "duo",
        "What is (4817 \u00d7 2293) \u2212 (1234 \u00d7 5678)?",
        number=4038729,
        must_call=("calculator",),
        whole_run=True,
    ),
    # No tool applies (the agent is offered calculator and current_time all the same).
    Task(
        "none-greeting",
        "no_tool",
        "tools",
        "Hello! How are you today?",
        any_of=("hello", "hi", "good", "well", "great", "fine", "help", "doing"),
        no_tools=True,
    ),
    Task(
        "none-who",
        "no_tool",
        "tools",
        "Good morning! Who are you?",
        any_of=("assistant", "help", "ai", "model"),
        no_tools=True,
    ),
    Task(
        "none-photosynthesis",
        "no_tool",
        "tools",
        "What does the word 'photosynthesis' mean?",
        any_of=("light", "sun", "plant"),
        no_tools=True,
    ),
    Task(
        "none-recursion",
        "no_tool",
        "tools",
        "Define 'recursion' in one sentence.",
        any_of=("itself", "calls", "repeat"),
        no_tools=True,
    ),
    Task(
        "none-api",
        "no_tool",
        "tools",
        "What is an API? Answer in one sentence.",
        any_of=("interface", "application"),
        no_tools=True,
    ),
    Task(
        "none-passive",
        "no_tool",
        "tools",
        "Rewrite this sentence in the passive voice: The dog chased the ball.",
        all_of=("ball", "chased by"),
        no_tools=True,
    ),
    Task(
        "none-formal",
        "no_tool",
        "tools",
        "Rewrite this more formally: 'gonna grab some food, brb'.",
        any_of=("going to", "be right back", "return", "shortly", "meal"),
        no_tools=True,
    ),
    Task("none-french", "no_tool", "tools", "Translate 'thank you' into French.", all_of=("merci",), no_tools=True),
    Task("none-capital", "no_tool", "tools", "What is the capital of Japan?", all_of=("Tokyo",), no_tools=True),
    Task(
        "none-synonym",
        "no_tool",
        "tools",
        "Give me one synonym for 'happy'.",
        any_of=("joyful", "cheerful", "glad", "content", "delighted", "pleased", "merry", "elated", "jolly"),
        no_tools=True,
    ),
)


def select(tasks: Sequence[Task], *, families: Sequence[str] = (), limit: int | None = None) -> list[Task]:
    """A subset: the given families (all when empty), then at most ``limit`` tasks taken round-robin
    over the families so a small subset still touches each of them."""
    chosen = [t for t in tasks if not families or t.family in families]
    if limit is None or limit >= len(chosen):
        return chosen
    by_family: dict[str, list[Task]] = {}
    for task in chosen:
        by_family.setdefault(task.family, []).append(task)
    picked: list[Task] = []
    while len(picked) < limit:
        for group in by_family.values():
            if group and len(picked) < limit:
                picked.append(group.pop(0))
    order = {t.id: i for i, t in enumerate(tasks)}
    return sorted(picked, key=lambda t: order[t.id])


def describe(task: Task) -> dict[str, object]:
    """A task as plain data for the results file."""
    return {
        "id": task.id,
        "family": task.family,
        "agent": task.agent,
        "prompt": task.prompt,
        "setup": list(task.setup),
        "must_call": list(task.must_call),
        "no_tools": task.no_tools,
    }


def dumps(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
