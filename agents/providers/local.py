"""The local models on llama.cpp: SmolLM2-135M-Instruct (bundled) or Qwen2.5-Coder
0.5B/1.5B-Instruct, chosen by ``LODESTONE_LOCAL_MODEL`` (``local_models`` says where each file comes
from and checks it), or any GGUF file a model config names by path.

AutoGen's ``LlamaCppChatCompletionClient`` does not stream, so this client does: generation runs
in a worker thread that hands tokens to the event loop through a queue, so the server's loop is
never blocked. One ``Llama`` instance is loaded per process and model file; generations take turns
from one fair queue per process (``model_queue``: round-robin between users, a waiting run told its
place and cancellable), and each agent's processed prompt prefix is kept (``prefix_cache``), so a
team's turns and a follow-up message process only what is new.

Tool calling (Qwen models, ``tool_calling`` in the catalogue): the tools go into the system prompt
and the call is parsed out of the reply's text (``tool_calls``); earlier results are folded into
the conversation as user text in the template's own ``<tool_response>`` tags, because given back as
``role: tool`` both Qwen models repeat the call. While tools are offered, text streams only once
it cannot be the start of a call: a reply that starts with a call marker is held back whole, and
text after a marker in mid-reply is held back from the marker on; what turns out not to be a call
is sent as one last chunk.

JSON output, structured output and required tool calls constrain decoding with a llama.cpp grammar
(``grammars``); a reply that starts like a call but is not a valid one is generated once more under
the grammar of a valid call.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import threading
import uuid
from collections.abc import AsyncGenerator, Iterator, Mapping, Sequence
from contextlib import aclosing
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from autogen_core import CancellationToken, FunctionCall
from autogen_core.models import (
    AssistantMessage,
    ChatCompletionClient,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    ModelCapabilities,  # type: ignore[attr-defined]
    ModelFamily,
    ModelInfo,
    RequestUsage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import Tool, ToolSchema
from django.conf import settings
from pydantic import BaseModel

from agents.providers import ProviderError, register_provider
from agents.providers.grammars import GrammarError, grammar_processors, reply_grammar, tool_call_grammar
from agents.providers.local_models import (
    PackagedModel,
    catalogue_entry_for,
    check_gguf,
    model_file,
    packaged_model,
    read_gguf_info,
)
from agents.providers.model_queue import LOCAL_MODEL_QUEUE, report_cache
from agents.providers.prefix_cache import PrefixCachingLlama, PrefixStateCache
from agents.providers.tool_calls import (
    CODE_TOOL,
    ParsedCall,
    code_block_call,
    has_code_block,
    looks_like_call,
    parse_tool_calls,
    streamable_prefix,
    tools_prompt,
)
from tools.builtin.sandboxed import reports_failure

if TYPE_CHECKING:
    from llama_cpp import LlamaGrammar, LogitsProcessorList

    from agents.models import ModelConfig

logger = logging.getLogger(__name__)

DEFAULT_MAX_TOKENS = 256
DEFAULT_CONTEXT = 2048


def local_model_path(model: str = "") -> Path:
    """The checked GGUF file for a local config's ``model``: a path ending in ``.gguf``, the key of a
    packaged model (``qwen2.5-coder-0.5b``...), or empty for ``LODESTONE_LOCAL_MODEL``."""
    expected: PackagedModel | None = None
    if model.endswith(".gguf"):
        path = Path(model)
        if not path.is_file():
            raise ProviderError(f"Model file not found: {path}")
    else:
        expected = packaged_model(model or settings.LODESTONE_LOCAL_MODEL)
        path = model_file(expected, Path(settings.LODESTONE_MODEL_DIR))
    stat = path.stat()
    _checked(str(path), stat.st_size, stat.st_mtime_ns, expected)
    return path


@lru_cache(maxsize=16)
def _checked(path: str, size: int, mtime_ns: int, expected: PackagedModel | None) -> None:
    """Once per file version: its GGUF header, read before llama.cpp sees the file."""
    check_gguf(Path(path), expected)


_LOADED: list[PrefixCachingLlama] = []


@lru_cache(maxsize=4)
def _load(path: str, n_ctx: int, n_threads: int) -> PrefixCachingLlama:
    try:
        llama = PrefixCachingLlama(
            model_path=path, n_ctx=n_ctx, n_threads=n_threads, n_threads_batch=n_threads, verbose=False
        )
    except ValueError as exc:  # llama.cpp refused the file after all (an unsupported architecture...)
        raise ProviderError(f"llama.cpp could not load {path}: {exc}") from exc
    llama.use_prefix_cache(PrefixStateCache(settings.LODESTONE_LOCAL_PREFIX_CACHE_MB * 1024 * 1024))
    report_cache(path, llama.prefix_cache.snapshot)
    _LOADED.append(llama)
    return llama


@atexit.register
def _close_loaded_models() -> None:
    # Free llama.cpp models before interpreter teardown, when its C bindings are already gone.
    for llama in _LOADED:
        llama.close()
    _LOADED.clear()
    _load.cache_clear()


def local_model_tool_calling(model: str = "") -> bool:
    """Whether the local config's ``model`` may be offered tools: a catalogue model that can, or a
    GGUF file whose header says it is one."""
    if not model.endswith(".gguf"):
        return packaged_model(model or settings.LODESTONE_LOCAL_MODEL).tool_calling
    entry = catalogue_entry_for(read_gguf_info(Path(model)))
    return entry is not None and entry.tool_calling


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _call_block(call: FunctionCall) -> str:
    """A call as Qwen2.5's template writes one: the model reads back its own habit, not a notation
    it would copy into its answer (as it did ``[called f(...)]``)."""
    try:
        arguments: Any = json.loads(call.arguments) if call.arguments.strip() else {}
    except ValueError:
        arguments = call.arguments
    body = json.dumps({"name": call.name, "arguments": arguments}, ensure_ascii=False)
    return f"<tool_call>\n{body}\n</tool_call>"


def _text_of(message: LLMMessage) -> str:
    content: Any = message.content
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        if isinstance(message, AssistantMessage) and message.thought:
            parts.append(message.thought)
        for item in content:
            if isinstance(item, FunctionCall):
                parts.append(_call_block(item))
            elif isinstance(item, str):
                parts.append(item)
            elif hasattr(item, "content"):
                parts.append(str(item.content))
        return "\n".join(parts)
    return str(content)


def _current_turn(messages: Sequence[LLMMessage]) -> list[LLMMessage]:
    """The messages since the last one from someone else (a user, another agent, the system): this
    agent's calls and their results so far in its turn."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], UserMessage | SystemMessage):
            return list(messages[index + 1 :])
    return list(messages)


def _code_still_to_run(turn: Sequence[LLMMessage]) -> bool:
    """Whether a python block in the reply would be new work: nothing has run in this turn, or
    what ran last failed. After a good run the model's block is the code it shows with its
    answer, not code to run again."""
    for message in reversed(turn):
        if isinstance(message, FunctionExecutionResultMessage):
            ran = [result for result in message.content if result.name == CODE_TOOL]
            if ran:
                return any(result.is_error or reports_failure(result.content) for result in ran)
    return True


def _has_tool_traffic(messages: Sequence[LLMMessage]) -> bool:
    return any(isinstance(message, FunctionExecutionResultMessage) for message in messages)


def _canonical(name: str, arguments: Any) -> tuple[str, str]:
    return name, json.dumps(arguments, sort_keys=True)


def _all_made_before(calls: Sequence[ParsedCall], turn: Sequence[LLMMessage]) -> bool:
    """Whether every call was already made, with the same arguments, in this turn (its result is
    in the context)."""
    made: set[tuple[str, str]] = set()
    for message in turn:
        if isinstance(message, AssistantMessage) and isinstance(message.content, list):
            for item in message.content:
                if isinstance(item, FunctionCall):
                    try:
                        made.add(_canonical(item.name, json.loads(item.arguments or "{}")))
                    except ValueError:
                        continue
    return bool(made) and all(_canonical(call.name, call.arguments) in made for call in calls)


def _summed(first: RequestUsage, second: RequestUsage) -> RequestUsage:
    return RequestUsage(
        prompt_tokens=first.prompt_tokens + second.prompt_tokens,
        completion_tokens=first.completion_tokens + second.completion_tokens,
    )


def _prose_processors(llama: PrefixCachingLlama) -> LogitsProcessorList:
    """A reply that may not open with a call: the first token cannot be one that starts one."""
    from llama_cpp import LogitsProcessorList

    banned = _call_opening_tokens(llama)
    opened: list[int] = []

    def no_call_opening(input_ids: Any, scores: Any) -> Any:
        if not opened:
            opened.append(len(input_ids))
        if len(input_ids) == opened[0]:
            scores[banned] = -float("inf")
        return scores

    return LogitsProcessorList([no_call_opening])


_CALL_OPENINGS: dict[str, list[int]] = {}


def _call_opening_tokens(llama: PrefixCachingLlama) -> list[int]:
    """The vocabulary's tokens a call can open with (``<tool_call>``, a brace, a bracket, a fence),
    found once per model file (a pass over the vocabulary takes a moment)."""
    if llama.model_path not in _CALL_OPENINGS:
        found = []
        for index in range(llama.n_vocab()):
            piece = llama.detokenize([index], special=True).decode("utf-8", errors="ignore").lstrip()
            if piece.startswith(("<tool_call>", "{", "[", "`")):
                found.append(index)
        _CALL_OPENINGS[llama.model_path] = found
    return _CALL_OPENINGS[llama.model_path]


def _tool_response(result: FunctionExecutionResult) -> str:
    content = result.content
    if result.is_error and not content.lower().startswith("error"):
        content = f"Error: {content}"
    return f"<tool_response>\n{content}\n</tool_response>"


def to_llama_messages(messages: Sequence[LLMMessage], *, tools_block: str = "") -> list[dict[str, str]]:
    """Plain chat messages; tool traffic and other speakers are folded into text for a small model.

    Calls and results are written the way Qwen2.5's template writes them (``<tool_call>`` in the
    assistant's turn, ``<tool_response>`` in a user turn), not as ``role: tool`` messages, which
    llama-cpp's chat handlers render so that both Qwen models repeat the call. ``tools_block`` is
    appended to the (first) system message, or becomes one."""
    converted: list[dict[str, str]] = []
    for message in messages:
        if isinstance(message, SystemMessage):
            converted.append({"role": "system", "content": message.content})
        elif isinstance(message, UserMessage):
            text = _text_of(message)
            if message.source and message.source != "user":
                text = f"{message.source}: {text}"
            converted.append({"role": "user", "content": text})
        elif isinstance(message, AssistantMessage):
            converted.append({"role": "assistant", "content": _text_of(message)})
        elif isinstance(message, FunctionExecutionResultMessage):
            responses = "\n".join(_tool_response(result) for result in message.content)
            converted.append({"role": "user", "content": responses})
    if tools_block:
        if converted and converted[0]["role"] == "system":
            converted[0] = {"role": "system", "content": f"{converted[0]['content']}\n\n{tools_block}"}
        else:
            converted.insert(0, {"role": "system", "content": tools_block})
    return converted


class LocalChatCompletionClient(ChatCompletionClient):
    """Streams tokens from a llama.cpp model without blocking the event loop."""

    def __init__(
        self,
        *,
        model_path: str,
        n_ctx: int = DEFAULT_CONTEXT,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = 0.7,
        n_threads: int | None = None,
        tool_calling: bool = False,
        seed: int | None = None,
    ) -> None:
        self._model_path = model_path
        self._tool_calling = tool_calling
        self._seed = seed
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(settings.LODESTONE_LOCAL_THREADS, 1)
        self._max_tokens = max_tokens
        self._temperature = temperature
        self._actual = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._total = RequestUsage(prompt_tokens=0, completion_tokens=0)
        self._model_info = ModelInfo(
            vision=False,
            function_calling=tool_calling,
            # Any llama.cpp model can be held to JSON, or to a schema, by a grammar (``grammars``).
            json_output=True,
            family=ModelFamily.UNKNOWN,
            structured_output=True,
        )

    @property
    def _model(self) -> PrefixCachingLlama:
        return _load(self._model_path, self._n_ctx, self._n_threads)

    def _generate(
        self,
        messages: list[dict[str, str]],
        stop: threading.Event,
        grammar: LlamaGrammar | None = None,
        *,
        prose_only: bool = False,
    ) -> Iterator[tuple[str, Any]]:
        """Runs in a worker thread, holding the model's turn: yields ("token", text) then ("usage",
        (prompt, completion))."""
        llama = self._model
        completion_tokens = 0
        stream = llama.create_chat_completion(
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            seed=self._seed,
            logits_processor=_prose_processors(llama) if prose_only else grammar_processors(llama, grammar),
        )
        for chunk in stream:
            if stop.is_set():
                break
            delta = chunk["choices"][0].get("delta", {})  # type: ignore[index,union-attr]
            text = delta.get("content") if isinstance(delta, dict) else None
            if text:
                completion_tokens += 1
                yield "token", text
        yield "usage", (llama.last_prompt_tokens, completion_tokens)

    async def _replies(
        self,
        llama_messages: list[dict[str, str]],
        grammar: LlamaGrammar | None,
        cancellation_token: CancellationToken | None,
        *,
        prose_only: bool = False,
    ) -> AsyncGenerator[tuple[str, Any], None]:
        """One generation in a worker thread, in its turn on the model: ("token", text)... then
        ("usage", (prompt, completion))."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()
        # Our turn on the model; waiting runs are told their place (model_queue) and can be cancelled.
        turn = await LOCAL_MODEL_QUEUE.acquire(cancellation_token=cancellation_token)

        def produce() -> None:
            try:
                for item in self._generate(llama_messages, stop, grammar=grammar, prose_only=prose_only):
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            except Exception as exc:  # handed to the consumer, which raises it in the run
                loop.call_soon_threadsafe(queue.put_nowait, ("error", exc))
            finally:
                # Only once the thread is done with the model does the next run get it.
                LOCAL_MODEL_QUEUE.release(turn)
                loop.call_soon_threadsafe(queue.put_nowait, ("done", None))

        worker = threading.Thread(target=produce, name="local-llm", daemon=True)
        try:
            worker.start()
        except BaseException:
            LOCAL_MODEL_QUEUE.release(turn)
            raise
        try:
            while True:
                kind, value = await queue.get()
                if kind == "error":
                    raise value
                if kind == "done":
                    return
                yield kind, value
                if cancellation_token is not None and cancellation_token.is_cancelled():
                    raise asyncio.CancelledError()
        finally:
            # Cancelled or closed early: tell the thread to stop after its current token.
            stop.set()

    def _add_usage(self, usage: RequestUsage) -> None:
        self._actual = usage
        self._total = RequestUsage(
            prompt_tokens=self._total.prompt_tokens + usage.prompt_tokens,
            completion_tokens=self._total.completion_tokens + usage.completion_tokens,
        )

    async def create_stream(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> AsyncGenerator[str | CreateResult, None]:
        """Streams the reply. ``json_output`` (``True`` or a pydantic model) and a required tool
        (``tool_choice="required"`` or a ``Tool``) constrain decoding with a grammar (``grammars``),
        so the reply is that JSON, or a well-formed call; without one, a reply that starts like a call
        but is not a valid one is generated once more, constrained to a valid call."""
        offered: list[Tool | ToolSchema] = []
        if self._tool_calling and tool_choice != "none":
            offered = [tool_choice] if isinstance(tool_choice, Tool) else list(tools)
        grammar: LlamaGrammar | None = None
        if json_output:
            grammar = await asyncio.to_thread(reply_grammar, json_output, offered)
        elif offered and tool_choice != "auto":
            grammar = await asyncio.to_thread(tool_call_grammar, offered)
        llama_messages = to_llama_messages(messages, tools_block=tools_prompt(offered) if offered else "")
        # Asked to answer with no tools on offer after calls (AutoGen's reflection): the history
        # shows calls in Qwen's format, and a small model would write one more instead of answering.
        answer_only = not offered and grammar is None and _has_tool_traffic(messages)
        parts: list[str] = []
        shown = 0  # characters of the reply already streamed
        usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        replies_stream = self._replies(llama_messages, grammar, cancellation_token, prose_only=answer_only)
        async with aclosing(replies_stream) as replies:
            async for kind, value in replies:
                if kind == "usage":
                    usage = RequestUsage(prompt_tokens=value[0], completion_tokens=value[1])
                    continue
                parts.append(value)
                if not offered:
                    yield value
                    continue
                text = "".join(parts)
                showable = streamable_prefix(text)
                if showable > shown:
                    yield text[shown:showable]
                    shown = showable
        reply = "".join(parts)
        calls, rest = parse_tool_calls(reply, offered) if offered else ([], reply)
        turn = _current_turn(messages)
        if offered and not calls and grammar is None and looks_like_call(reply):
            # Meant as a call but malformed: once more, allowed to write only a valid call.
            retried, retry_usage = await self._constrained_call(llama_messages, offered, cancellation_token)
            usage = _summed(usage, retry_usage)
            calls, rest = (retried, "") if retried else (calls, rest)
        if offered and not calls and _code_still_to_run(turn):
            calls, rest = code_block_call(reply, offered)
        if offered and not calls and grammar is None and has_code_block(reply) and not _has_tool_traffic(turn):
            # It wrote code to work the answer out (and, most often, its made-up output) where a
            # tool would: once more, allowed to write only a call. The text before the code stays.
            retried, retry_usage = await self._constrained_call(llama_messages, offered, cancellation_token)
            usage = _summed(usage, retry_usage)
            if retried:
                calls, rest = retried, reply[:shown].strip()
        if calls and _all_made_before(calls, turn):
            # The same call again, with its result in front of it (a small model's loop): the
            # answer is due instead, so once more, not allowed to start with a call.
            calls, parts = [], []
            async with aclosing(self._replies(llama_messages, None, cancellation_token, prose_only=True)) as replies:
                async for kind, value in replies:
                    if kind == "usage":
                        usage = _summed(usage, RequestUsage(prompt_tokens=value[0], completion_tokens=value[1]))
                        continue
                    parts.append(value)
                    yield value
            reply, shown = "".join(parts), len("".join(parts))
        self._add_usage(usage)
        if calls:
            # Text the model wrote around its calls becomes the thought (AssistantAgent shows it).
            yield CreateResult(
                finish_reason="function_calls",
                content=[
                    FunctionCall(id=_call_id(), name=call.name, arguments=json.dumps(call.arguments)) for call in calls
                ],
                thought=rest or None,
                usage=usage,
                cached=False,
            )
            return
        if offered and len(reply) > shown:
            yield reply[shown:]
        finish: Literal["stop", "length"] = "stop"
        if grammar is not None and not _is_json(reply):
            finish = "length"  # the grammar admits nothing else: the token limit cut the JSON short
            logger.warning("JSON reply cut short by max_tokens=%d: ...%r", self._max_tokens, reply[-80:])
        yield CreateResult(finish_reason=finish, content=reply.strip(), usage=usage, cached=False)

    async def _constrained_call(
        self,
        llama_messages: list[dict[str, str]],
        offered: Sequence[Tool | ToolSchema],
        cancellation_token: CancellationToken | None,
    ) -> tuple[list[ParsedCall], RequestUsage]:
        """One more generation of the same prompt, constrained to one well-formed call of an offered
        tool: the call if it also passes the tool's schema (bounds a grammar cannot say), else none."""
        try:
            grammar = await asyncio.to_thread(tool_call_grammar, offered)
        except GrammarError as exc:
            logger.info("No constrained retry of a malformed tool call: %s", exc)
            return [], RequestUsage(prompt_tokens=0, completion_tokens=0)
        parts: list[str] = []
        usage = RequestUsage(prompt_tokens=0, completion_tokens=0)
        async with aclosing(self._replies(llama_messages, grammar, cancellation_token)) as replies:
            async for kind, value in replies:
                if kind == "usage":
                    usage = RequestUsage(prompt_tokens=value[0], completion_tokens=value[1])
                else:
                    parts.append(value)
        calls, _ = parse_tool_calls("".join(parts), offered)
        return calls, usage

    async def create(
        self,
        messages: Sequence[LLMMessage],
        *,
        tools: Sequence[Tool | ToolSchema] = [],
        tool_choice: Tool | Literal["auto", "required", "none"] = "auto",
        json_output: bool | type[BaseModel] | None = None,
        extra_create_args: Mapping[str, Any] = {},
        cancellation_token: CancellationToken | None = None,
    ) -> CreateResult:
        result: CreateResult | None = None
        async for item in self.create_stream(
            messages,
            tools=tools,
            tool_choice=tool_choice,
            json_output=json_output,
            extra_create_args=extra_create_args,
            cancellation_token=cancellation_token,
        ):
            if isinstance(item, CreateResult):
                result = item
        assert result is not None
        return result

    def actual_usage(self) -> RequestUsage:
        return self._actual

    def total_usage(self) -> RequestUsage:
        return self._total

    def count_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        block = tools_prompt(tools) if self._tool_calling and tools else ""
        text = "\n".join(m["content"] for m in to_llama_messages(messages, tools_block=block))
        return len(self._model.tokenize(text.encode("utf-8"), add_bos=False))

    def remaining_tokens(self, messages: Sequence[LLMMessage], *, tools: Sequence[Tool | ToolSchema] = []) -> int:
        return max(self._n_ctx - self.count_tokens(messages, tools=tools), 0)

    @property
    def capabilities(self) -> ModelCapabilities:
        return self._model_info

    @property
    def model_info(self) -> ModelInfo:
        return self._model_info

    async def close(self) -> None:
        """The loaded model is shared by the process; nothing to release per client."""


@register_provider("local")
def local_client(config: ModelConfig) -> ChatCompletionClient:
    options = config.options
    model = config.model.strip()
    path = local_model_path(model)
    return LocalChatCompletionClient(
        model_path=str(path),
        n_ctx=int(options.get("n_ctx", DEFAULT_CONTEXT)),
        max_tokens=int(options.get("max_tokens", DEFAULT_MAX_TOKENS)),
        temperature=float(options.get("temperature", 0.7)),
        n_threads=options.get("n_threads"),
        tool_calling=local_model_tool_calling(model),
        seed=int(options["seed"]) if options.get("seed") is not None else None,
    )
