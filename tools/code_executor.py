"""AutoGen's ``CodeExecutorAgent`` with a code executor backed by our sandbox.

``SandboxCodeExecutor`` runs each ```python block of the previous message in the sandbox (in the
conversation's workspace, so files persist between blocks and turns); other languages are refused.
``build_code_executor_agent`` makes the agent for a row whose preset is ``code_executor``;
``code_pair_create`` makes the preset pair: a coder that writes Python and the executor that runs it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autogen_agentchat.agents import ApprovalRequest, ApprovalResponse, CodeExecutorAgent
from autogen_core import CancellationToken
from autogen_core.code_executor import CodeBlock, CodeExecutor, CodeResult
from pydantic import BaseModel

from tools.builtin.sandboxed import NO_OUTPUT
from tools.runtime import call_context
from tools.sandbox import SandboxJob, SandboxUnavailable, get_sandbox
from tools.workspace import workspace_for

if TYPE_CHECKING:
    from agents.models import Agent, ModelConfig, Team

CODER_PRESET = "coder"
CODE_EXECUTOR_PRESET = "code_executor"
PYTHON = {"python", "py", "python3"}

CODER_SYSTEM_MESSAGE = (
    "You write Python 3 to solve the user's task. Reply with one complete ```python block that prints "
    "the result; the executor runs it and shows you the output. The code runs in a sandbox without "
    "network access or third-party packages; its working directory keeps files between runs. If the "
    "output shows an error, send the corrected code. Once the output answers the task, reply with the "
    "answer in one sentence, without code, followed by the word TERMINATE."
)


class SandboxCodeExecutorConfig(BaseModel):
    stop_word: str = ""


class SandboxCodeExecutor(CodeExecutor):
    component_config_schema = SandboxCodeExecutorConfig
    component_provider_override = "tools.code_executor.SandboxCodeExecutor"

    def __init__(self, *, stop_word: str = "") -> None:
        # The team's stop word: small coders end their block with it, which is not Python.
        self._stop_word = stop_word

    def _runnable(self, code: str) -> str:
        if not self._stop_word:
            return code
        return "\n".join(line for line in code.splitlines() if line.strip() != self._stop_word)

    async def execute_code_blocks(
        self, code_blocks: list[CodeBlock], cancellation_token: CancellationToken
    ) -> CodeResult:
        outputs: list[str] = []
        workspace = workspace_for(call_context.get())
        for block in code_blocks:
            if block.language.lower() not in PYTHON:
                return CodeResult(exit_code=1, output=f"Only Python runs here, not {block.language!r}.")
            try:
                sandbox = get_sandbox()
            except SandboxUnavailable as exc:
                return CodeResult(exit_code=1, output=str(exc))
            result = await sandbox.run(SandboxJob(program=self._runnable(block.code), workspace=workspace))
            text = (result.stdout + (("\n" + result.stderr) if result.stderr else "")).strip()
            if result.output_truncated:
                text += "\n[output cut at the sandbox's limit]"
            if not result.ok:
                outputs.append(f"{text}\n[failed: {result.describe_failure()}]".strip())
                return CodeResult(exit_code=result.exit_code or 1, output="\n".join(outputs))
            outputs.append(text)
        return CodeResult(exit_code=0, output="\n".join(outputs) or NO_OUTPUT)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def restart(self) -> None:
        return None

    def _to_config(self) -> SandboxCodeExecutorConfig:
        return SandboxCodeExecutorConfig(stop_word=self._stop_word)

    @classmethod
    def _from_config(cls, config: SandboxCodeExecutorConfig) -> SandboxCodeExecutor:
        return cls(stop_word=config.stop_word)


def sandbox_approves(request: ApprovalRequest) -> ApprovalResponse:
    """Code runs without a person's review: the sandbox, not a reviewer, is what contains it."""
    return ApprovalResponse(approved=True, reason="Runs in the sandbox (no network, no host files, limits).")


def build_code_executor_agent(agent: Agent, *, stop_word: str = "") -> CodeExecutorAgent:
    return CodeExecutorAgent(
        name=agent.slug,
        code_executor=SandboxCodeExecutor(stop_word=stop_word),
        description=agent.description,
        supported_languages=["python"],
        approval_func=sandbox_approves,
    )


def code_pair_create(*, model_config: ModelConfig, prefix: str = "code") -> Team:
    """The preset pair as a round-robin team: ``<prefix>_coder`` writes, ``<prefix>_executor`` runs."""
    from agents import services as agent_services
    from agents.models import Team

    coder = agent_services.agent_create(
        slug=f"{prefix}_coder",
        name="Coder",
        description="Writes Python code to solve the task.",
        model_config=model_config,
        system_message=CODER_SYSTEM_MESSAGE,
        capabilities=["coding"],
        preset=CODER_PRESET,
    )
    executor = agent_services.agent_create(
        slug=f"{prefix}_executor",
        name="Executor",
        description="Runs the coder's Python in a sandbox and reports the output.",
        model_config=model_config,
        capabilities=["code execution"],
        preset=CODE_EXECUTOR_PRESET,
    )
    return agent_services.team_create(
        slug=f"{prefix}-pair",
        name="Coder + Executor",
        kind=Team.Kind.ROUND_ROBIN,
        agents=[coder, executor],
        max_messages=7,
        stop_word="TERMINATE",
    )
