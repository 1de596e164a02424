"""Tool calls written as text by local models: the tools block in the prompt, the lenient parser
(tags, fences, bare JSON) that accepts only offered tools with schema-valid arguments, and how much
of a reply may stream while it could still become a call."""

from __future__ import annotations

import json

import pytest
from autogen_core import FunctionCall
from autogen_core.models import (
    AssistantMessage,
    FunctionExecutionResult,
    FunctionExecutionResultMessage,
    LLMMessage,
    SystemMessage,
    UserMessage,
)
from autogen_core.tools import FunctionTool, Tool, ToolSchema

from agents.providers.local import _all_made_before, _code_still_to_run, _current_turn, to_llama_messages
from agents.providers.tool_calls import (
    ParsedCall,
    code_block_call,
    has_code_block,
    parse_tool_calls,
    streamable_prefix,
    tools_prompt,
)


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression."""
    return expression


CALCULATOR = FunctionTool(calculator, description="Evaluate an arithmetic expression such as 2 + 3 * 4.")
WEATHER: ToolSchema = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
TOOLS: list[Tool | ToolSchema] = [CALCULATOR, WEATHER]


def calc(expression: str) -> ParsedCall:
    return ParsedCall(name="calculator", arguments={"expression": expression})


# --- The prompt ---------------------------------------------------------------------------------


def test_the_tools_block_is_qwens_template_text_with_one_schema_per_line() -> None:
    block = tools_prompt(TOOLS)
    assert block.startswith("# Tools\n\nYou may call one or more functions to assist with the user query.\n\n")
    assert "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" in block
    lines = block.split("<tools>\n", 1)[1].split("\n</tools>", 1)[0].splitlines()
    signatures = [json.loads(line) for line in lines]
    assert [s["type"] for s in signatures] == ["function", "function"]
    assert [s["function"]["name"] for s in signatures] == ["calculator", "get_weather"]
    assert signatures[0]["function"]["parameters"]["required"] == ["expression"]
    assert signatures[1]["function"]["parameters"] == WEATHER["parameters"]
    assert "within <tool_call></tool_call> XML tags" in block
    assert '{"name": <function-name>, "arguments": <args-json-object>}' in block
    assert "do what the user asks yourself" in block


# --- The parser: each shape the models write ----------------------------------------------------


def test_bare_json_as_the_05b_writes_it() -> None:
    reply = '{"name": "calculator", "arguments": {"expression": "17 * 23"}}'
    assert parse_tool_calls(reply, TOOLS) == ([calc("17 * 23")], "")


def test_a_fenced_json_block_as_the_15b_writes_it_with_text_around() -> None:
    reply = (
        "To find the product, I'll use the calculator.\n\n"
        '```json\n{\n  "name": "calculator",\n  "arguments": {\n    "expression": "17 * 23"\n  }\n}\n```\n\n'
        "This will give the answer."
    )
    calls, rest = parse_tool_calls(reply, TOOLS)
    assert calls == [calc("17 * 23")]
    assert rest == "To find the product, I'll use the calculator.\n\nThis will give the answer."


def test_tool_call_tags_as_the_template_asks_including_several_calls() -> None:
    reply = (
        "Let me check both.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo", "days": 2}}\n</tool_call>'
    )
    calls, rest = parse_tool_calls(reply, TOOLS)
    assert calls == [
        ParsedCall(name="get_weather", arguments={"city": "Paris"}),
        ParsedCall(name="get_weather", arguments={"city": "Oslo", "days": 2}),
    ]
    assert rest == "Let me check both."


def test_a_closing_tag_cut_off_by_the_token_limit_still_counts() -> None:
    reply = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2+2"}}\n'
    assert parse_tool_calls(reply, TOOLS) == ([calc("2+2")], "")


def test_parameters_instead_of_arguments_and_arguments_as_a_json_string() -> None:
    assert parse_tool_calls('{"name": "calculator", "parameters": {"expression": "1+1"}}', TOOLS)[0] == [calc("1+1")]
    as_string = json.dumps({"name": "calculator", "arguments": json.dumps({"expression": "3*3"})})
    assert parse_tool_calls(as_string, TOOLS)[0] == [calc("3*3")]
    openai_shape = (
        '{"type": "function", "function": {"name": "calculator", "arguments": "{\\"expression\\": \\"4\\"}"}}'
    )
    assert parse_tool_calls(openai_shape, TOOLS)[0] == [calc("4")]


def test_a_json_array_and_consecutive_bare_objects_are_several_calls() -> None:
    one = '{"name": "calculator", "arguments": {"expression": "1"}}'
    array = f'[{one}, {{"name": "get_weather", "arguments": {{"city": "Rome"}}}}]'
    calls, rest = parse_tool_calls(array, TOOLS)
    assert calls == [calc("1"), ParsedCall(name="get_weather", arguments={"city": "Rome"})] and rest == ""
    two = one + '\n{"name": "calculator", "arguments": {"expression": "2"}}'
    assert parse_tool_calls(two, TOOLS)[0] == [calc("1"), calc("2")]


def test_text_after_a_bare_call_is_kept_as_the_remaining_text() -> None:
    reply = '{"name": "calculator", "arguments": {"expression": "17 * 23"}}\nI will wait for the result.'
    assert parse_tool_calls(reply, TOOLS) == ([calc("17 * 23")], "I will wait for the result.")


# --- The parser: what is not a call --------------------------------------------------------------


def test_plain_answers_are_not_calls() -> None:
    assert parse_tool_calls("The capital of France is Paris.", TOOLS) == ([], "The capital of France is Paris.")
    assert parse_tool_calls("  17 * 23 = 391\n", TOOLS) == ([], "17 * 23 = 391")


@pytest.mark.parametrize(
    "reply",
    [
        '{"name": "calculator", "arguments": {"expression": "17 * 23"}',  # cut off: invalid JSON
        "<tool_call>\n{name: calculator}\n</tool_call>",
        "```json\n{'name': 'calculator', 'arguments': {'expression': '1'}}\n```",
        '{"name": "calculator", "arguments": "not json"}',
    ],
)
def test_invalid_json_is_text_not_a_call(reply: str) -> None:
    assert parse_tool_calls(reply, TOOLS) == ([], reply.strip())


def test_a_tool_that_was_not_offered_is_not_called() -> None:
    reply = '{"name": "delete_everything", "arguments": {}}'
    assert parse_tool_calls(reply, TOOLS) == ([], reply)
    tagged = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "1"}}\n</tool_call>'
    assert parse_tool_calls(tagged, [WEATHER]) == ([], tagged)
    assert parse_tool_calls(tagged, []) == ([], tagged)


@pytest.mark.parametrize(
    "arguments",
    [
        {},  # the required city is missing
        {"city": 7},  # wrong type
        {"city": "Paris", "days": 0},  # below the minimum
        {"city": "Paris", "units": "metric"},  # not in the schema
    ],
)
def test_arguments_that_break_the_schema_are_not_a_call(arguments: dict[str, object]) -> None:
    reply = json.dumps({"name": "get_weather", "arguments": arguments})
    assert parse_tool_calls(reply, TOOLS) == ([], reply)


def test_schema_words_the_model_copied_into_the_arguments_are_dropped_not_fatal() -> None:
    # As the 0.5B writes it: the signature's "required" list beside the real argument.
    reply = '{"name": "calculator", "arguments": {"expression": "4817 * 2293", "required": ["expression"]}}'
    assert parse_tool_calls(reply, TOOLS) == ([calc("4817 * 2293")], "")
    copied = {"city": "Paris", "type": "object", "required": ["city"]}
    weather = json.dumps({"name": "get_weather", "arguments": copied})
    assert parse_tool_calls(weather, TOOLS) == ([ParsedCall(name="get_weather", arguments={"city": "Paris"})], "")
    # A tool whose own parameter is called "type" keeps it.
    typed: ToolSchema = {
        "name": "convert",
        "description": "Convert a value.",
        "parameters": {"type": "object", "properties": {"type": {"type": "string"}}, "additionalProperties": False},
    }
    assert parse_tool_calls('{"name": "convert", "arguments": {"type": "celsius"}}', [typed])[0] == [
        ParsedCall(name="convert", arguments={"type": "celsius"})
    ]


def test_the_calculators_own_schema_from_autogen_is_enforced() -> None:
    assert parse_tool_calls('{"name": "calculator", "arguments": {"expression": 391}}', TOOLS)[0] == []
    assert parse_tool_calls('{"name": "calculator", "arguments": {}}', TOOLS)[0] == []


def test_a_block_with_one_bad_call_stays_text_and_a_good_block_beside_it_counts() -> None:
    bad = '<tool_call>\n[{"name": "calculator", "arguments": {"expression": "1"}}, {"name": "nope"}]\n</tool_call>'
    good = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2"}}\n</tool_call>'
    calls, rest = parse_tool_calls(f"{bad}\n{good}", TOOLS)
    assert calls == [calc("2")] and rest == bad


def test_json_data_and_code_that_are_not_calls_stay_in_the_answer() -> None:
    data = '```json\n{"name": "Ada", "born": 1815}\n```'
    assert parse_tool_calls(data, TOOLS) == ([], data)
    code = "Here:\n```python\nprint({'name': 'calculator'})\n```"
    assert parse_tool_calls(code, TOOLS) == ([], code)
    prose_then_json = 'Use this: {"name": "calculator", "arguments": {"expression": "1"}}'
    assert parse_tool_calls(prose_then_json, TOOLS) == ([], prose_then_json)


# --- Streaming while a reply may still be a call --------------------------------------------------


@pytest.mark.parametrize(
    "start", ["", " ", "\n", "{", '{"na', "[", "`", "``", "```json\n{", "<", "<tool", "<tool_call>"]
)
def test_nothing_streams_while_the_reply_may_start_with_a_call(start: str) -> None:
    assert streamable_prefix(start) == 0


def test_prose_streams_up_to_a_marker_or_a_possible_start_of_one() -> None:
    assert streamable_prefix("The answer is") == len("The answer is")
    assert streamable_prefix("Let me compute <tool") == len("Let me compute ")
    assert streamable_prefix("Let me compute <tool_call>\n{") == len("Let me compute ")
    assert streamable_prefix("Here is code `") == len("Here is code ")
    assert streamable_prefix("Here is code ```py") == len("Here is code ")
    assert streamable_prefix("A set {1, 2} and a list [3]") == len("A set {1, 2} and a list [3]")
    assert streamable_prefix("a < b") == len("a < b")


# --- Folding tool traffic into the conversation ---------------------------------------------------


def test_tool_traffic_is_folded_in_qwens_own_tags_and_the_tools_block_joins_the_system_prompt() -> None:
    call = FunctionCall(id="call_1", name="calculator", arguments='{"expression": "17 * 23"}')
    messages: list[LLMMessage] = [
        SystemMessage(content="You are a helpful assistant."),
        UserMessage(content="What is 17 * 23?", source="user"),
        AssistantMessage(content=[call], source="assistant", thought="Let me compute that."),
        FunctionExecutionResultMessage(
            content=[
                FunctionExecutionResult(call_id="call_1", name="calculator", content="391", is_error=False),
                FunctionExecutionResult(call_id="gone", name="get_weather", content="no such city", is_error=True),
            ]
        ),
    ]
    converted = to_llama_messages(messages, tools_block="# Tools")
    assert converted[0] == {"role": "system", "content": "You are a helpful assistant.\n\n# Tools"}
    assert [m["role"] for m in converted] == ["system", "user", "assistant", "user"]
    assert "tool" not in {m["role"] for m in converted}
    assert converted[2]["content"] == (
        "Let me compute that.\n<tool_call>\n"
        '{"name": "calculator", "arguments": {"expression": "17 * 23"}}\n</tool_call>'
    )
    # Read back by the lenient parser as the call it was: the history is in the model's own format.
    assert parse_tool_calls(converted[2]["content"], [CALCULATOR])[0] == [
        ParsedCall("calculator", {"expression": "17 * 23"})
    ]
    assert converted[3]["content"] == (
        "<tool_response>\n391\n</tool_response>\n<tool_response>\nError: no such city\n</tool_response>"
    )
    without_system = to_llama_messages(messages[1:], tools_block="# Tools")
    assert without_system[0] == {"role": "system", "content": "# Tools"}
    assert to_llama_messages(messages)[0] == {"role": "system", "content": "You are a helpful assistant."}


# --- Backslashes in code arguments ----------------------------------------------------------------


def python_exec_stub(code: str) -> str:
    return code


PYTHON_EXEC = FunctionTool(python_exec_stub, description="Run Python.", name="python_exec")


def test_a_regex_written_with_lone_backslashes_reaches_the_tool_as_the_model_meant_it() -> None:
    # JSON has no \w and makes a backspace of \b; a model writing a regex into "code" means neither.
    reply = '{"name": "python_exec", "arguments": {"code": "re.findall(r\'\\b\\w+\\b\', t)"}} Done.'
    calls, rest = parse_tool_calls(reply, [PYTHON_EXEC])
    assert calls == [ParsedCall("python_exec", {"code": "re.findall(r'\\b\\w+\\b', t)"})]
    assert rest == "Done."


def test_correctly_escaped_backslashes_are_left_alone() -> None:
    reply = '<tool_call>{"name": "python_exec", "arguments": {"code": "print(\'a\\\\nb\\\\w\')\\nx = 1"}}</tool_call>'
    calls, _ = parse_tool_calls(reply, [PYTHON_EXEC])
    assert calls == [ParsedCall("python_exec", {"code": "print('a\\nb\\w')\nx = 1"})]


# --- A coder's python block as the run it asks for --------------------------------------------------


def test_a_python_block_is_a_python_exec_call_when_that_tool_is_offered_and_the_made_up_output_goes() -> None:
    reply = (
        "Here is the code:\n\n```python\nprint(sum(range(10)))\n```\n\n```py\nprint('two')\n```\n"
        "When you run this code, it will output:\n\n```\n45\n```"
    )
    calls, rest = code_block_call(reply, [PYTHON_EXEC])
    assert calls == [ParsedCall("python_exec", {"code": "print(sum(range(10)))\n\nprint('two')"})]
    assert rest == "Here is the code:"


def test_no_python_exec_offered_or_no_python_block_means_no_call() -> None:
    assert code_block_call("```python\nprint(1)\n```", [CALCULATOR]) == ([], "```python\nprint(1)\n```")
    assert code_block_call("```json\n{}\n```", [PYTHON_EXEC]) == ([], "```json\n{}\n```")
    assert code_block_call("```python\n\n```", [PYTHON_EXEC])[0] == []


def after_call(name: str, arguments: str, output: str, *, error: bool = False) -> list[LLMMessage]:
    """A conversation whose last turn is one call of ``name`` and its result."""
    call = FunctionCall(id="c1", name=name, arguments=arguments)
    result = FunctionExecutionResult(call_id="c1", name=name, content=output, is_error=error)
    return [
        SystemMessage(content="s"),
        UserMessage(content="Do it.", source="user"),
        AssistantMessage(content=[call], source="a"),
        FunctionExecutionResultMessage(content=[result]),
    ]


def test_the_current_turn_is_what_came_since_the_last_message_from_someone_else() -> None:
    answered = after_call("calculator", '{"expression": "1 + 1"}', "2")
    assert _current_turn(answered[:2]) == []
    assert _current_turn(answered) == answered[2:]
    assert _current_turn([*answered, UserMessage(content="And 2 + 2?", source="user")]) == []


def test_a_python_block_runs_again_only_when_nothing_ran_yet_or_the_last_run_failed() -> None:
    def ran(output: str, *, error: bool = False) -> list[LLMMessage]:
        return _current_turn(after_call("python_exec", '{"code": "print(1)"}', output, error=error))

    assert _code_still_to_run([])
    assert not _code_still_to_run(ran("1"))
    assert _code_still_to_run(ran("[stderr]\nNameError: name 's' is not defined\n[failed: NameError]"))
    assert _code_still_to_run(ran("python_exec stopped at a sandbox limit", error=True))
    # A new message from the user (or another agent) is new work again.
    messages = [*after_call("python_exec", '{"code": "print(1)"}', "1"), UserMessage(content="And 2?", source="user")]
    assert _code_still_to_run(_current_turn(messages))


def test_a_code_block_is_told_from_prose_and_inline_code() -> None:
    assert has_code_block("To compute it:\n\n```python\nprint(2350 * 0.175)\n```\nIt prints 411.25.")
    assert has_code_block("```\n411.25\n```")
    assert not has_code_block("Use `sum(range(10))` for that.")
    assert not has_code_block("The answer is 45.")


def test_a_call_counts_as_made_before_only_with_the_same_arguments_in_the_same_turn() -> None:
    messages = after_call("calculator", '{"expression": "10 + 5"}', "15")
    turn = _current_turn(messages)
    assert _all_made_before([calc("10 + 5")], turn)
    assert not _all_made_before([calc("10 + 5"), calc("2 + 2")], turn)
    assert not _all_made_before([calc("10 + 5")], _current_turn(messages[:2]))
    assert not _all_made_before([calc("10 + 5")], _current_turn([*messages, UserMessage(content="?", source="user")]))
