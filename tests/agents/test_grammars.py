"""Grammar-constrained decoding for the local provider: which texts each grammar admits (checked by
llama.cpp's own grammar sampler, token by token, on the bundled SmolLM2's vocabulary), and how the
client uses them (json_output, required tools, the constrained retry of a malformed call), on a
client whose generation is scripted."""

from __future__ import annotations

import ctypes
import json
import math
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import llama_cpp
import numpy as np
import pytest
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    CreateResult,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool
from llama_cpp import Llama, LlamaGrammar
from pydantic import BaseModel

from agents.providers import grammars, local
from agents.providers.grammars import (
    GrammarError,
    GrammarLogitsProcessor,
    grammar_processors,
    reply_grammar,
    schema_gbnf,
    schema_grammar,
    tool_call_grammar,
    tool_call_schema,
)
from agents.providers.tool_calls import looks_like_call

# --- A grammar's language, asked of llama.cpp ---------------------------------------------------


@pytest.fixture(scope="module")
def vocab() -> Iterator[Llama]:
    """SmolLM2's tokenizer alone (no weights): enough for llama.cpp's grammar sampler."""
    path = local.local_model_path("smollm2-135m")
    llama = Llama(model_path=str(path), vocab_only=True, verbose=False)
    yield llama
    llama.close()


def admits(llama: Llama, grammar: LlamaGrammar | str, text: str) -> bool:
    """Whether ``grammar`` lets a model write exactly ``text`` and stop: each token of ``text`` is
    offered to llama.cpp's grammar sampler alone (a refused one gets logit -inf), then end-of-text."""
    gbnf = grammar if isinstance(grammar, str) else grammar._grammar
    vocabulary = llama_cpp.llama_model_get_vocab(llama.model)
    sampler = llama_cpp.llama_sampler_init_grammar(vocabulary, gbnf.encode("utf-8"), b"root")
    assert sampler, "llama.cpp refused the grammar"
    eos = llama.token_eos()
    try:
        for token in [*llama.tokenize(text.encode("utf-8"), add_bos=False, special=False), eos]:
            data = (llama_cpp.llama_token_data * 1)(llama_cpp.llama_token_data(token, 0.0, 0.0))
            candidates = llama_cpp.llama_token_data_array(data, 1, -1, False)
            llama_cpp.llama_sampler_apply(sampler, ctypes.byref(candidates))
            if data[0].logit == -math.inf:
                return False
            if token != eos:
                llama_cpp.llama_sampler_accept(sampler, token)
        return True
    finally:
        llama_cpp.llama_sampler_free(sampler)


def test_the_checker_itself_tells_a_grammar_s_words_from_others(vocab: Llama) -> None:
    assert admits(vocab, 'root ::= "yes" | "no"', "yes")
    assert not admits(vocab, 'root ::= "yes" | "no"', "maybe")
    assert not admits(vocab, 'root ::= "yes" | "no"', "ye")  # a prefix cannot end the reply


def test_json_output_true_admits_any_json_object_and_nothing_else(vocab: Llama) -> None:
    grammar = reply_grammar(True)
    assert admits(vocab, grammar, '{"a": 1, "b": [true, null, "x"], "c": {"d": -2.5}}')
    assert admits(vocab, grammar, "{}")
    assert admits(vocab, grammar, '{"text": "two\\nlines"}')  # an escaped newline
    assert not admits(vocab, grammar, "[1, 2]")
    assert not admits(vocab, grammar, '"just a string"')
    assert not admits(vocab, grammar, "Sure! Here it is:")
    assert not admits(vocab, grammar, '{"a": 1')
    # A raw newline inside a string is not JSON (json.loads refuses it); the stock rule allowed it.
    assert not admits(vocab, grammar, '{"text": "two\nlines"}')


class Answer(BaseModel):
    reason: str
    answer: bool


class Ledger(BaseModel):
    is_request_satisfied: Answer
    next_speaker: Literal["coder", "critic"]
    confidence: float


def test_a_pydantic_model_admits_its_instances_in_field_order_with_its_enum(vocab: Llama) -> None:
    grammar = reply_grammar(Ledger)
    good = Ledger(is_request_satisfied=Answer(reason="Not yet.", answer=False), next_speaker="critic", confidence=0.5)
    assert admits(vocab, grammar, good.model_dump_json())
    assert admits(vocab, grammar, json.dumps(good.model_dump(), indent=None))  # ", " and ": " spacing
    wrong_name = good.model_dump() | {"next_speaker": "gandalf"}
    assert not admits(vocab, grammar, json.dumps(wrong_name))
    missing = {k: v for k, v in good.model_dump().items() if k != "confidence"}
    assert not admits(vocab, grammar, json.dumps(missing))
    reordered = {"next_speaker": "critic", **missing, "confidence": 0.5}
    assert not admits(vocab, grammar, json.dumps(reordered))
    not_bool = good.model_dump() | {"is_request_satisfied": {"reason": "x", "answer": "yes"}}
    assert not admits(vocab, grammar, json.dumps(not_bool))


def calculator(expression: str, precision: int = 2) -> str:
    """Evaluate an arithmetic expression."""
    return expression


def now() -> str:
    """The time."""
    return "noon"


TOOLS = [FunctionTool(calculator, description="Evaluate."), FunctionTool(now, description="The time.")]


def python_exec(code: str) -> str:
    return code


PYTHON_EXEC = FunctionTool(python_exec, description="Run Python.")


def test_the_tool_call_grammar_admits_only_well_formed_calls_of_offered_tools(vocab: Llama) -> None:
    grammar = tool_call_grammar(TOOLS)
    assert admits(vocab, grammar, '{"name": "calculator", "arguments": {"expression": "17 * 23"}}')
    assert admits(vocab, grammar, '{"name": "calculator", "arguments": {"expression": "1", "precision": 3}}')
    assert admits(vocab, grammar, '{"name": "now", "arguments": {}}')
    assert not admits(vocab, grammar, '{"name": "weather", "arguments": {}}')  # not offered
    assert not admits(vocab, grammar, '{"name": "calculator", "arguments": {}}')  # required argument missing
    assert not admits(vocab, grammar, '{"name": "calculator", "arguments": {"expression": 17}}')  # wrong type
    assert not admits(vocab, grammar, '{"name": "calculator", "arguments": {"expression": "1", "x": 1}}')
    assert not admits(vocab, grammar, '{"name": "now", "arguments": {"expression": "1"}}')  # another's argument
    assert not admits(vocab, grammar, '<tool_call>{"name": "now", "arguments": {}}</tool_call>')


def test_with_tools_offered_json_output_admits_a_call_or_the_answer(vocab: Llama) -> None:
    grammar = reply_grammar(Answer, TOOLS)
    assert admits(vocab, grammar, '{"name": "now", "arguments": {}}')
    assert admits(vocab, grammar, '{"reason": "It is noon.", "answer": true}')
    assert not admits(vocab, grammar, '{"answer": true}')


class Point(BaseModel):
    x: int
    y: int


def plot(points: list[Point], label: Any = None) -> str:
    """Plot points."""
    return label


def test_shapeless_and_referenced_sub_schemas_get_a_grammar(vocab: Llama) -> None:
    tool = FunctionTool(plot, description="Plot.")
    schema = tool_call_schema([tool])
    if "$defs" in json.dumps(tool.schema["parameters"]):  # pydantic's references move up to the root
        assert "$defs" in schema and "$defs" not in schema["properties"]["arguments"]
    grammar = tool_call_grammar([tool])
    points = [{"x": 1, "y": 2}]
    for label in ("a", 3, None, [1, "b"], {"k": True}):  # Any: every JSON value
        call = {"name": "plot", "arguments": {"points": points, "label": label}}
        assert admits(vocab, grammar, json.dumps(call)), label
    assert not admits(vocab, grammar, json.dumps({"name": "plot", "arguments": {"points": [{"x": 1}]}}))


def test_grammars_are_cached_per_schema_text() -> None:
    grammars._gbnf.cache_clear()
    first = schema_gbnf(Ledger.model_json_schema())
    again = schema_gbnf(Ledger.model_json_schema())
    assert first == again
    info = grammars._gbnf.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_a_schema_without_grammar_is_a_grammar_error_and_json_output_falls_back_to_any_object(
    vocab: Llama, monkeypatch: pytest.MonkeyPatch
) -> None:
    remote = {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}}
    with pytest.raises(GrammarError):
        schema_grammar(remote)

    class Remote(BaseModel):
        x: int

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return remote

    assert admits(vocab, reply_grammar(Remote), '{"anything": [1]}')


def test_a_grammar_llama_cpp_refuses_is_a_grammar_error_not_a_crash(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("llama_cpp.llama_grammar.json_schema_to_gbnf", lambda schema: "root ::= undefined-rule")
    grammars._gbnf.cache_clear()
    with pytest.raises(GrammarError, match="refused"):
        schema_gbnf({"type": "object", "title": "never seen before"})
    grammars._gbnf.cache_clear()


def test_what_counts_as_a_reply_meant_as_a_call() -> None:
    assert looks_like_call('{"name": "calculator", "argument": "1+1"}')
    assert looks_like_call("  [{")
    assert looks_like_call('Let me compute. <tool_call>{"name": calculator}')
    assert looks_like_call('```json\n{"name": "calculator"}\n```')
    assert looks_like_call('```\n{"name": "calculator"}\n```')
    assert not looks_like_call("```python\nprint(1)\n```")
    assert not looks_like_call("The answer is 391.")


# --- The client, with its generation scripted ---------------------------------------------------


class ScriptedClient(local.LocalChatCompletionClient):
    """The local client with ``_generate`` replaced: each call yields the next scripted reply in
    pieces and records the grammar it was given."""

    def __init__(self, replies: Sequence[str], **kwargs: Any) -> None:
        super().__init__(model_path="unused.gguf", max_tokens=32, **kwargs)
        self.replies = list(replies)
        self.grammars: list[LlamaGrammar | None] = []
        self.prose_only: list[bool] = []

    def _generate(
        self,
        messages: list[dict[str, str]],
        stop: threading.Event,
        grammar: LlamaGrammar | None = None,
        *,
        prose_only: bool = False,
    ) -> Iterator[tuple[str, Any]]:
        self.grammars.append(grammar)
        self.prose_only.append(prose_only)
        reply = self.replies.pop(0)
        pieces = [reply[i : i + 4] for i in range(0, len(reply), 4)]
        yield from (("token", piece) for piece in pieces)
        yield "usage", (10, len(pieces))


ASK = [UserMessage(content="What is 17 * 23?", source="user")]


def after_calculator_call() -> list[LLMMessage]:
    """ASK, then this agent's calculator call and its result: the turn so far."""
    call = FunctionCall(id="c1", name="calculator", arguments='{"expression": "17 * 23"}')
    result = FunctionExecutionResult(call_id="c1", name="calculator", content="391", is_error=False)
    return [*ASK, AssistantMessage(content=[call], source="a"), FunctionExecutionResultMessage(content=[result])]


async def test_model_info_says_json_and_structured_output() -> None:
    client = ScriptedClient([])
    assert client.model_info["json_output"] is True and client.model_info["structured_output"] is True


async def test_json_output_constrains_decoding_and_the_reply_is_the_json_text() -> None:
    client = ScriptedClient(['{"reason": "r", "answer": true} ', '{"reason": "r", "answer": true} '])
    result = await client.create(ASK, json_output=Answer)
    assert result.content == '{"reason": "r", "answer": true}' and result.finish_reason == "stop"
    assert isinstance(result.content, str) and Answer.model_validate_json(result.content).answer is True
    assert client.grammars[0] is not None and client.grammars[0]._grammar == reply_grammar(Answer)._grammar
    chunks = [item async for item in client.create_stream(ASK, json_output=True)]
    assert "".join(c for c in chunks if isinstance(c, str)).strip() == '{"reason": "r", "answer": true}'
    assert client.grammars[1] is not None and client.grammars[1]._grammar == reply_grammar(True)._grammar


async def test_json_cut_short_by_the_token_limit_says_length() -> None:
    client = ScriptedClient(['{"reason": "this goes on and o'])
    result = await client.create(ASK, json_output=True)
    assert result.finish_reason == "length"


async def test_a_malformed_call_is_retried_once_constrained_to_a_valid_call() -> None:
    client = ScriptedClient(
        [
            '{"name": "calculator", "argument": "17 * 23"}',
            '{"name": "calculator", "arguments": {"expression": "17*23"}}',
        ],
        tool_calling=True,
    )
    chunks = [item async for item in client.create_stream(ASK, tools=TOOLS)]
    assert [c for c in chunks if isinstance(c, str)] == []  # nothing of the malformed call was shown
    result = chunks[-1]
    assert isinstance(result, CreateResult) and result.finish_reason == "function_calls"
    assert isinstance(result.content, list)
    [call] = result.content
    assert isinstance(call, FunctionCall) and call.name == "calculator"
    assert json.loads(call.arguments) == {"expression": "17*23"}
    assert client.grammars[0] is None
    assert client.grammars[1] is not None and client.grammars[1]._grammar == tool_call_grammar(TOOLS)._grammar
    assert result.usage.prompt_tokens == 20  # both generations count


async def test_a_retry_that_still_fails_the_schema_leaves_the_first_reply_as_text() -> None:
    bad_first = '{"name": "calculator", "argument": "17 * 23"}'
    client = ScriptedClient([bad_first, '{"name": "calculator", "arguments": {"expression": "1", "precision": "x"}}'])
    client._tool_calling = True
    result = await client.create(ASK, tools=TOOLS)
    assert result.finish_reason == "stop" and result.content == bad_first
    assert len(client.grammars) == 2


async def test_plain_answers_are_not_retried_and_code_that_works_it_out_is_retried_as_a_call() -> None:
    code = "Let me compute it.\n\n```python\nprint(17 * 23)\n```\nThis prints 391."
    client = ScriptedClient(
        ["391", code, '{"name": "calculator", "arguments": {"expression": "17 * 23"}}'], tool_calling=True
    )
    assert (await client.create(ASK, tools=TOOLS)).content == "391"
    assert client.grammars == [None]
    result = await client.create(ASK, tools=TOOLS)
    assert result.finish_reason == "function_calls" and result.thought == "Let me compute it."
    assert isinstance(result.content, list) and result.content[0].name == "calculator"
    assert client.grammars[2] is not None and client.grammars[2]._grammar == tool_call_grammar(TOOLS)._grammar


async def test_code_after_a_tool_has_answered_is_the_answer_not_a_retry() -> None:
    turn = after_calculator_call()
    client = ScriptedClient(["It is 391:\n```python\nprint(17 * 23)\n```"], tool_calling=True)
    result = await client.create(turn, tools=TOOLS)
    assert result.finish_reason == "stop" and str(result.content).startswith("It is 391")
    assert client.grammars == [None]


async def test_a_python_block_is_run_as_python_exec_when_the_agent_may_run_code() -> None:
    client = ScriptedClient(["Here:\n```python\nprint(17 * 23)\n```\nIt prints 391."], tool_calling=True)
    result = await client.create(ASK, tools=[PYTHON_EXEC])
    assert result.finish_reason == "function_calls" and result.thought == "Here:"
    assert isinstance(result.content, list)
    [call] = result.content
    assert call.name == "python_exec" and json.loads(call.arguments) == {"code": "print(17 * 23)"}


async def test_the_same_call_again_in_one_turn_gives_way_to_an_answer_that_may_not_open_with_a_call() -> None:
    turn = after_calculator_call()
    again = '{"name": "calculator", "arguments": {"expression": "17 * 23"}}'
    client = ScriptedClient([again, "17 * 23 is 391."], tool_calling=True)
    chunks = [item async for item in client.create_stream(turn, tools=TOOLS)]
    result = chunks[-1]
    assert isinstance(result, CreateResult) and result.finish_reason == "stop" and result.content == "17 * 23 is 391."
    assert "".join(c for c in chunks if isinstance(c, str)) == "17 * 23 is 391."  # streamed, call text not
    assert client.prose_only == [False, True]
    assert result.usage.prompt_tokens == 20


async def test_a_required_tool_is_called_under_the_call_grammar_from_the_start() -> None:
    client = ScriptedClient(['{"name": "now", "arguments": {}}'] * 2, tool_calling=True)
    result = await client.create(ASK, tools=TOOLS, tool_choice="required")
    assert result.finish_reason == "function_calls"
    assert client.grammars[0] is not None and client.grammars[0]._grammar == tool_call_grammar(TOOLS)._grammar
    # A tool named as the choice: only that one is offered.
    result = await client.create(ASK, tools=TOOLS, tool_choice=TOOLS[1])
    assert client.grammars[1] is not None and client.grammars[1]._grammar == tool_call_grammar(TOOLS[1:])._grammar


# --- The faster processor -----------------------------------------------------------------------


def test_the_grammar_logits_processor_keeps_allowed_tokens_and_follows_the_ones_taken(vocab: Llama) -> None:
    grammar = LlamaGrammar.from_string('root ::= "yes" | "no"', verbose=False)
    processor = GrammarLogitsProcessor.for_model(vocab, grammar, top_k=8)
    prompt = np.array(vocab.tokenize(b"Answer:", add_bos=False), dtype=np.intc)
    [yes] = vocab.tokenize(b"yes", add_bos=False)
    [no] = vocab.tokenize(b"no", add_bos=False)
    [hello] = vocab.tokenize(b"Hello", add_bos=False)
    eos = vocab.token_eos()

    # The best token is not allowed, "yes" is among the best 8: only the best 8 are checked.
    scores = np.zeros(vocab.n_vocab(), dtype=np.single)
    scores[hello], scores[yes] = 10.0, 5.0
    out = processor(prompt, scores)
    assert out[hello] == -np.inf and out[yes] == 5.0
    assert np.isfinite(out).sum() <= 8 and processor.full_checks == 0

    # None of the best 8 allowed: the whole vocabulary is checked; "no" is kept, far down as it is.
    scores = np.full(vocab.n_vocab(), -5.0, dtype=np.single)
    scores[[hello, eos, *vocab.tokenize(b" the of and to in", add_bos=False)]] = 10.0
    out = processor(prompt, scores)
    assert out[no] == -5.0 and out[yes] == -5.0 and out[hello] == -np.inf and out[eos] == -np.inf
    assert processor.full_checks == 1

    # Once "yes" is taken, the reply may only end.
    scores = np.zeros(vocab.n_vocab(), dtype=np.single)
    scores[[hello, no, eos]] = 10.0
    out = processor(np.append(prompt, yes), scores)
    assert out[eos] == 10.0 and out[no] == -np.inf and out[hello] == -np.inf
    processor.close()


def test_grammar_processors_are_none_without_a_grammar_and_one_processor_with_one(vocab: Llama) -> None:
    assert grammar_processors(vocab, None) is None
    processors = grammar_processors(vocab, reply_grammar(True))
    assert processors is not None and [type(p) for p in processors] == [GrammarLogitsProcessor]


def test_an_answer_that_may_not_open_with_a_call_bans_call_openings_at_its_first_token_only(vocab: Llama) -> None:
    [processor] = local._prose_processors(vocab)  # type: ignore[arg-type]
    [brace] = vocab.tokenize(b"{", add_bos=False)
    [hello] = vocab.tokenize(b"Hello", add_bos=False)
    prompt = np.array(vocab.tokenize(b"Answer:", add_bos=False), dtype=np.intc)
    first = processor(prompt, np.zeros(vocab.n_vocab(), dtype=np.single))
    assert first[brace] == -np.inf and first[hello] == 0.0
    fence = vocab.tokenize(b"```", add_bos=False)[0]
    assert first[fence] == -np.inf
    later = processor(np.append(prompt, hello), np.zeros(vocab.n_vocab(), dtype=np.single))
    assert later[brace] == 0.0  # in mid-answer a brace is just a brace


async def test_an_answer_asked_for_without_tools_after_calls_may_not_open_with_a_call() -> None:
    # AutoGen's reflection: the tools are no longer offered, the history holds the call and result.
    turn = after_calculator_call()
    client = ScriptedClient(["It is 391.", "391"], tool_calling=True)
    assert (await client.create(turn, tool_choice="none")).content == "It is 391."
    assert (await client.create(ASK)).content == "391"  # no tool traffic: nothing to hold back
    assert client.prose_only == [True, False]
