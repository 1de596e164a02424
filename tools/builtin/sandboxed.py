"""Builtin tools that run code or touch files, always through the sandbox (never in the server):
``python_exec`` runs Python; ``workspace_write``, ``workspace_read`` and ``workspace_list`` work on
the conversation's workspace, mounted at ``/workspace`` inside the sandbox.

Async on purpose: they need the call's context (which conversation's workspace)."""

from __future__ import annotations

import json
from typing import Annotated

from tools.builtin._sandbox import sandbox_run as _sandbox_run
from tools.registry import builtin_tool
from tools.runtime import ToolCallError
from tools.workspace import clean_relative_path, current_workspace

MAX_FILE_CHARS = 200_000

_WRITE = """
import json, os, sys
p = json.loads(sys.stdin.read())
path = os.path.join('/workspace', p['path']) if os.path.isdir('/workspace') else p['path']
os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
with open(path, 'w', encoding='utf-8') as f:
    f.write(p['content'])
print(f"wrote {len(p['content'])} characters to {p['path']}")
"""

_READ = """
import json, os, sys
p = json.loads(sys.stdin.read())
path = os.path.join('/workspace', p['path']) if os.path.isdir('/workspace') else p['path']
with open(path, encoding='utf-8', errors='replace') as f:
    sys.stdout.write(f.read(p['limit']))
"""

_LIST = """
import os
base = '/workspace' if os.path.isdir('/workspace') else '.'
for root, dirs, files in os.walk(base):
    for name in sorted(files):
        full = os.path.join(root, name)
        print(os.path.relpath(full, base), os.path.getsize(full))
"""


FAILED_MARK = "[failed: "


def reports_failure(result: str) -> bool:
    """Whether a ``python_exec`` result says the code failed (its last line is the failure)."""
    return FAILED_MARK in result


NO_OUTPUT = "(no output: the code ran and printed nothing; print() the values you want to see)"

# Small models write ``python_exec("...")`` inside the code they send to python_exec.
CALLED_ITSELF_HINT = (
    "[hint: python_exec is the tool that runs this code, not a function inside it: send the Python "
    "itself, call your function and print() its result]"
)


def _format(stdout: str, stderr: str, failure: str | None, truncated: bool) -> str:
    parts = []
    if stdout:
        parts.append(stdout.rstrip("\n"))
    if stderr:
        parts.append("[stderr]\n" + stderr.rstrip("\n"))
    if truncated:
        parts.append("[output cut: the sandbox's output limit was reached]")
    if "name 'python_exec' is not defined" in stderr:
        parts.append(CALLED_ITSELF_HINT)
    if failure:
        parts.append(f"{FAILED_MARK}{failure}]")
    # Said in full: a model that defined a function without calling it learns why it saw nothing.
    return "\n".join(parts) or NO_OUTPUT


@builtin_tool(
    "python_exec",
    "Run Python 3 code in an isolated sandbox (no network, limited CPU time, memory and output) and "
    "return what it prints. The working directory is the conversation's workspace.",
)
async def python_exec(code: Annotated[str, "Python 3 source code; print() what you want to see"]) -> str:
    result = await _sandbox_run(code, workspace=current_workspace())
    text = _format(
        result.stdout, result.stderr, None if result.ok else result.describe_failure(), result.output_truncated
    )
    if result.stopped_at_limit():
        # Killed at a limit: a failed call (logged as an error, with the output so far), not a result.
        raise ToolCallError(f"python_exec stopped at a sandbox limit: {result.stopped_at_limit()}.\n{text}")
    return text


@builtin_tool("workspace_write", "Write a text file in the conversation's workspace (replaces an existing file).")
async def workspace_write(
    path: Annotated[str, "File path relative to the workspace, e.g. 'notes/plan.md'"],
    content: Annotated[str, "The text to write"],
) -> str:
    try:
        path = clean_relative_path(path)
    except ValueError as exc:
        return f"Error: {exc}."
    if len(content) > MAX_FILE_CHARS:
        return f"Error: content longer than {MAX_FILE_CHARS} characters."
    result = await _sandbox_run(
        _WRITE, stdin=json.dumps({"path": path, "content": content}), workspace=current_workspace()
    )
    if not result.ok:
        return f"Error: {result.describe_failure()}"
    return result.stdout.strip()


@builtin_tool("workspace_read", "Read a text file from the conversation's workspace.")
async def workspace_read(path: Annotated[str, "File path relative to the workspace"]) -> str:
    try:
        path = clean_relative_path(path)
    except ValueError as exc:
        return f"Error: {exc}."
    payload = json.dumps({"path": path, "limit": MAX_FILE_CHARS})
    result = await _sandbox_run(_READ, stdin=payload, workspace=current_workspace())
    if not result.ok:
        return f"Error: {result.describe_failure()}"
    return result.stdout


@builtin_tool("workspace_list", "List the files in the conversation's workspace with their sizes in bytes.")
async def workspace_list() -> str:
    result = await _sandbox_run(_LIST, workspace=current_workspace())
    if not result.ok:
        return f"Error: {result.describe_failure()}"
    return result.stdout.strip() or "(the workspace is empty)"
