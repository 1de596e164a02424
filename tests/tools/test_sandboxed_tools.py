"""python_exec and the workspace tools, called by an agent through the real AutoGen path."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from conversations import services as conversation_services
from conversations.models import Run
from conversations.runner import InlineRunner
from tests import factories
from tests.tools.helpers import messages, tool, wait_for_run
from tools.models import ToolInvocation
from tools.runtime import CallContext, invoke
from tools.selectors import tool_spec

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("bwrap")]


def call(name: str, arguments: dict, call_id: str) -> dict:
    return {"tool_calls": [{"id": call_id, "name": name, "arguments": arguments}]}


async def test_agent_writes_runs_and_reads_in_its_workspace(inline_runner: InlineRunner) -> None:
    code = "import os\nopen('squares.txt','w').write(','.join(str(i*i) for i in range(5)))\nprint(os.listdir('.'))"
    model = await sync_to_async(factories.replay_model)(
        [
            {
                "tool_calls": [
                    {"id": "c1", "name": "python_exec", "arguments": {"code": code}},
                    {"id": "c2", "name": "workspace_write", "arguments": {"path": "notes/a.md", "content": "# hi"}},
                ]
            },
            "Done.",
        ]
    )
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "coder", tool_names=["python_exec", "workspace_write"])
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="go")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    results = (await sync_to_async(messages)(conversation.pk))[2].payload["results"]
    assert results[0]["content"] == "['squares.txt']" and not results[0]["is_error"]
    assert results[1]["content"] == "wrote 4 characters to notes/a.md"
    # The same conversation's workspace, read back by a direct (API-style) call.
    read = await sync_to_async(tool_spec)(await sync_to_async(tool)("workspace_read"))
    outcome = await invoke(
        read, {"path": "squares.txt"}, context=CallContext(conversation_id=conversation.pk), check_grant=False
    )
    assert outcome.ok and outcome.result == "0,1,4,9,16"
    listing = await sync_to_async(tool_spec)(await sync_to_async(tool)("workspace_list"))
    outcome = await invoke(listing, {}, context=CallContext(conversation_id=conversation.pk), check_grant=False)
    assert "notes/a.md 4" in outcome.result and "squares.txt 10" in outcome.result
    statuses = [s async for s in ToolInvocation.objects.order_by("id").values_list("status", flat=True)]
    assert statuses == ["ok", "ok", "ok", "ok"]


async def test_python_exec_failure_is_a_result_not_a_crash() -> None:
    spec = await sync_to_async(tool_spec)(await sync_to_async(tool)("python_exec"))
    outcome = await invoke(
        spec,
        {"code": "import urllib.request\nurllib.request.urlopen('http://1.1.1.1', timeout=2)"},
        context=CallContext(user_id=None),
        check_grant=False,
    )
    assert outcome.ok  # the tool ran; the code failed, and says why
    assert "URLError" in outcome.result or "unreachable" in outcome.result


async def test_code_that_calls_python_exec_inside_itself_is_told_what_the_tool_is() -> None:
    spec = await sync_to_async(tool_spec)(await sync_to_async(tool)("python_exec"))
    code = "def double(n):\n    return 2 * n\n\npython_exec('print(double(4))')"
    outcome = await invoke(spec, {"code": code}, context=CallContext(user_id=None), check_grant=False)
    assert "NameError" in outcome.result and "[failed: " in outcome.result.splitlines()[-1]
    assert "python_exec is the tool that runs this code" in outcome.result
    plain = await invoke(spec, {"code": "print(undefined_name)"}, context=CallContext(user_id=None), check_grant=False)
    assert "NameError" in plain.result and "[hint:" not in plain.result


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "a/../../b"])
async def test_workspace_paths_cannot_leave_the_workspace(path: str) -> None:
    spec = await sync_to_async(tool_spec)(await sync_to_async(tool)("workspace_read"))
    outcome = await invoke(spec, {"path": path}, context=CallContext(conversation_id=None), check_grant=False)
    assert outcome.result.startswith("Error: the path must stay inside the workspace")


async def test_tool_timeout_is_an_error_result() -> None:
    from tools.models import Tool

    await Tool.objects.filter(name="python_exec").aupdate(timeout_seconds=1)
    spec = await sync_to_async(tool_spec)(await sync_to_async(tool)("python_exec"))
    outcome = await invoke(spec, {"code": "import time; time.sleep(5)"}, context=CallContext(), check_grant=False)
    assert outcome.status == "timeout" and "timed out after 1 s" in outcome.error
    assert (await ToolInvocation.objects.aget()).status == "timeout"


async def test_python_exec_killed_at_a_limit_is_logged_as_a_failure_with_the_reason(settings: object) -> None:
    settings.LODESTONE_SANDBOX_CPU_SECONDS = 1  # type: ignore[attr-defined]
    spec = await sync_to_async(tool_spec)(await sync_to_async(tool)("python_exec"))
    program = "print('started', flush=True)\nwhile True:\n    pass\n"
    outcome = await invoke(spec, {"code": program}, context=CallContext(), check_grant=False)
    assert outcome.status == "error"
    assert "stopped at a sandbox limit" in outcome.error and "CPU time" in outcome.error
    assert "started" in outcome.error  # the output so far still reaches the agent
    row = await ToolInvocation.objects.aget()
    assert row.status == "error" and "CPU time" in row.error


async def test_without_a_safe_sandbox_untrusted_code_is_refused_in_the_chat(
    inline_runner: InlineRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tools.sandbox import bubblewrap, reset_sandbox

    monkeypatch.setattr(bubblewrap, "bwrap_path", lambda: None)
    reset_sandbox()
    model = await sync_to_async(factories.replay_model)(
        [call("python_exec", {"code": "print(open('/etc/passwd').read())"}, "c1"), "Done."]
    )
    user = await sync_to_async(factories.user)()
    agent = await sync_to_async(factories.agent)(model, "coder", tool_names=["python_exec"])
    conversation = await sync_to_async(factories.conversation)(user, agent=agent)
    _, run = await sync_to_async(conversation_services.message_post)(conversation=conversation, user=user, text="go")
    run = await wait_for_run(run.pk)

    assert run.status == Run.Status.COMPLETED, run.error
    result = (await sync_to_async(messages)(conversation.pk))[2].payload["results"][0]
    assert result["is_error"] and "Untrusted code is refused" in result["content"]
    assert "bubblewrap (bwrap) is not installed" in result["content"] and "root:" not in result["content"]
    row = await ToolInvocation.objects.aget()
    assert row.status == "error" and "Untrusted code is refused" in row.error
    reset_sandbox()
