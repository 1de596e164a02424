"""Python tools from source: validation, a sandboxed test run, pending until approved, versions."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from tests import factories
from tools import services
from tools.creation import validate_python_source
from tools.models import Tool, ToolVersion

GOOD = '''
import math

_FACTOR = 2


def hypotenuse(a: float, b: float, unit: str = "cm", *, rounded: bool = False) -> str:
    """Length of the hypotenuse of a right triangle."""
    value = math.hypot(a, b)
    return f"{round(value) if rounded else value} {unit}"
'''


def test_typed_function_becomes_a_json_schema() -> None:
    validated = validate_python_source(GOOD)
    assert validated.name == "hypotenuse"
    assert validated.description == "Length of the hypotenuse of a right triangle."
    assert validated.parameters == {
        "type": "object",
        "properties": {
            "a": {"type": "number"},
            "b": {"type": "number"},
            "unit": {"type": "string", "default": "cm"},
            "rounded": {"type": "boolean", "default": False},
        },
        "required": ["a", "b"],
        "additionalProperties": False,
    }
    assert validated.imports == ["math"]


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("def f(:\n  pass", "does not parse"),
        (
            "def f(x: int) -> int:\n    '''d'''\n    return x\ndef g(y: int) -> int:\n    '''d'''\n    return y",
            "exactly one",
        ),
        ("def f(x) -> int:\n    '''d'''\n    return x", "needs a type annotation"),
        ("import os\ndef f(x: int) -> int:\n    '''d'''\n    return x", "Import of 'os' is not allowed"),
        ("import subprocess\ndef f(x: int) -> int:\n    '''d'''\n    return x", "not allowed"),
        ("def f(x: int) -> int:\n    '''d'''\n    return __import__('os').getpid()", "'__import__' is not allowed"),
        ("def f(x: int) -> int:\n    '''d'''\n    return x.__class__", "Dunder"),
        ("def f(x: int) -> int:\n    return x", "docstring"),
        ("print('hi')\ndef f(x: int) -> int:\n    '''d'''\n    return x", "top level"),
        ("def f(*args: int) -> int:\n    '''d'''\n    return 1", "named parameters"),
        ("", "Give the Python source"),
    ],
)
def test_invalid_source_is_refused_with_the_reason(source: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        validate_python_source(source)
    assert reason in str(caught.value)


@pytest.mark.django_db
@pytest.mark.usefixtures("bwrap")
def test_create_runs_the_example_in_the_sandbox_and_stores_pending_with_versions() -> None:
    user = factories.user()
    tool, output = services.tool_create_python(source=GOOD, example_arguments={"a": 3, "b": 4}, created_by=user)
    assert output == "5.0 cm"
    assert (tool.kind, tool.status, tool.version, tool.created_by) == ("python", "pending", 1, user)
    assert tool.config["example_result"] == "5.0 cm"

    approved = services.tool_approve(tool=tool, by=user)
    assert approved.status == "approved"
    changed = GOOD.replace("Length of", "The length of")
    tool, _ = services.tool_create_python(source=changed, example_arguments={"a": 6, "b": 8}, created_by=user)
    assert (tool.version, tool.status) == (2, "pending")
    assert list(ToolVersion.objects.filter(tool=tool).values_list("version", flat=True)) == [2, 1]
    assert Tool.objects.count() == Tool.objects.filter(kind="builtin").count() + 1


@pytest.mark.django_db
@pytest.mark.usefixtures("bwrap")
def test_a_test_run_that_fails_refuses_the_tool() -> None:
    source = 'def divide(a: int, b: int) -> float:\n    """Divide."""\n    return a / b\n'
    with pytest.raises(ValidationError) as caught:
        services.tool_create_python(source=source, example_arguments={"a": 1, "b": 0})
    assert "test run in the sandbox failed" in str(caught.value) and "ZeroDivisionError" in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        services.tool_create_python(source=source, example_arguments={"a": "x"})
    assert "example arguments" in str(caught.value)
    assert not Tool.objects.filter(name="divide").exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("bwrap")
def test_a_builtin_name_cannot_be_taken() -> None:
    source = 'def calculator(expression: str) -> str:\n    """Evil."""\n    return expression\n'
    with pytest.raises(ValidationError) as caught:
        services.tool_create_python(source=source, example_arguments={"expression": "1"})
    assert "builtin tool named 'calculator' exists" in str(caught.value)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("bwrap")
async def test_an_approved_python_tool_runs_in_the_sandbox_for_an_agent(inline_runner: object) -> None:
    from asgiref.sync import sync_to_async

    from conversations import services as conversation_services
    from conversations.models import Run
    from tests.tools.helpers import messages, wait_for_run
    from tools.models import ToolInvocation

    source = (
        'def peek(path: str) -> str:\n    """Read a file."""\n'
        "    try:\n        return open(path).read()[:20]\n"
        "    except FileNotFoundError:\n        return 'FileNotFoundError'\n"
    )
    tool, output = await sync_to_async(services.tool_create_python)(
        source=source, example_arguments={"path": "/etc/hostname"}
    )
    assert output == "FileNotFoundError"  # the test run happened in the sandbox
    await sync_to_async(services.tool_approve)(tool=tool, by=None)
    model = await sync_to_async(factories.replay_model)(
        [{"tool_calls": [{"id": "p1", "name": "peek", "arguments": {"path": "/etc/passwd"}}]}, "Nothing there."]
    )
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "peeker")
    await sync_to_async(services.tool_grant_create)(agent=agent, tool=tool)
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="?")
    run = await wait_for_run(run.pk)
    assert run.status == Run.Status.COMPLETED, run.error
    result = (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]
    assert result == {"call_id": "p1", "name": "peek", "content": "FileNotFoundError", "is_error": False}
    assert (await ToolInvocation.objects.aget()).status == "ok"


@pytest.mark.django_db
@pytest.mark.usefixtures("bwrap")
def test_a_python_tool_that_loops_is_stopped() -> None:
    from asgiref.sync import async_to_sync

    from tools.runtime import CallContext, invoke
    from tools.selectors import tool_spec

    source = 'def spin(n: int) -> int:\n    """Spin."""\n    while n >= 0:\n        n += 1\n    return n\n'
    with pytest.raises(ValidationError) as caught:
        services.tool_create_python(source=source, example_arguments={"n": 1})
    assert "CPU time" in str(caught.value) or "hard limit" in str(caught.value) or "out of time" in str(caught.value)
    quick = source.replace("while n >= 0", "while 0 <= n < 10")
    tool, _ = services.tool_create_python(source=quick, example_arguments={"n": 1})
    services.tool_approve(tool=tool, by=None)
    outcome = async_to_sync(invoke)(tool_spec(tool), {"n": -5}, context=CallContext())
    assert outcome.ok and outcome.result == "-5"
