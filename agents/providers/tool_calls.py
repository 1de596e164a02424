"""Tool calling for local models that write their calls as text.

llama.cpp never fills ``tool_calls`` for the Qwen2.5 GGUFs: the model writes the call into its
reply, and not always in the ``<tool_call>`` tags its template asks for (the 0.5B writes bare JSON,
the 1.5B a fenced json block; docs/models.md). So the tools go into the system prompt the way
Qwen2.5's own template puts them, and the reply is parsed leniently. A call counts only when it
names an offered tool and its arguments satisfy that tool's JSON schema; anything else stays text,
so a confused model gives a (possibly odd) answer, never a call to a tool nobody offered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from autogen_core.tools import Tool, ToolSchema

# Qwen2.5's chat template, word for word, so the model sees what it was trained on.
_TOOLS_HEADER = (
    "# Tools\n\n"
    "You may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>"
)
_TOOLS_FOOTER = (
    "</tools>\n\n"
    "For each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)
# Ours: small models otherwise call a tool for every question.
# "Answer directly" read to the 1.5B as "repeat": it gave back 'Happy' for a synonym of happy.
_ANSWER_DIRECTLY = (
    "Call a function only when the user's request needs it. When no function applies, or a "
    "function's result is already given, do what the user asks yourself and reply in plain text."
)

# How a reply can start or contain a call; the streaming path holds text back from these on.
CALL_MARKERS_ANYWHERE = ("<tool_call>", "```")
CALL_MARKERS_AT_START = (*CALL_MARKERS_ANYWHERE, "{", "[")

_TAGGED = re.compile(r"<tool_call>(.*?)(?:</tool_call>|\Z)", re.DOTALL)
_FENCED = re.compile(r"```[ \t]*(?:json|tool_call)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)


@dataclass(frozen=True)
class ParsedCall:
    name: str
    arguments: dict[str, Any]


def tool_schemas(tools: Sequence[Tool | ToolSchema]) -> list[ToolSchema]:
    return [tool.schema if isinstance(tool, Tool) else tool for tool in tools]


def tools_prompt(tools: Sequence[Tool | ToolSchema]) -> str:
    """The tools block for the system prompt: each tool's OpenAI-style signature on one line."""
    lines = [
        json.dumps({"type": "function", "function": dict(schema)}, ensure_ascii=False) for schema in tool_schemas(tools)
    ]
    return "\n".join([_TOOLS_HEADER, *lines, _TOOLS_FOOTER]) + "\n\n" + _ANSWER_DIRECTLY


def _call_from(item: Any, schemas: Mapping[str, ToolSchema]) -> ParsedCall | None:
    """``{"name", "arguments"|"parameters"}`` (or OpenAI's ``{"function": {...}}``) -> a valid call."""
    if not isinstance(item, dict):
        return None
    if isinstance(item.get("function"), dict) and "name" not in item:
        item = item["function"]
    name = item.get("name")
    if not isinstance(name, str) or name not in schemas:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return None
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        return None
    parameters = schemas[name].get("parameters") or {"type": "object"}
    arguments = _without_copied_schema_keys(arguments, parameters)
    try:
        jsonschema.validate(arguments, dict(parameters))
    except (jsonschema.ValidationError, jsonschema.SchemaError):
        return None
    return ParsedCall(name=name, arguments=arguments)


# Words of JSON Schema itself: the 0.5B often copies the signature's ``"required": [...]`` (or its
# "type") into the arguments next to the real ones (bench/agents.py found it in half its malformed
# calls). Dropped unless the tool has a parameter of that name; any other unknown key still fails.
_SCHEMA_WORDS = frozenset({"required", "type", "properties", "additionalProperties", "title", "description"})


def _without_copied_schema_keys(arguments: dict[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    own = parameters.get("properties") or {}
    return {key: value for key, value in arguments.items() if key in own or key not in _SCHEMA_WORDS}


def _calls_from(value: Any, schemas: Mapping[str, ToolSchema]) -> list[ParsedCall] | None:
    """All calls in one JSON value (an object or a list of them), or None unless every one is valid."""
    items = value if isinstance(value, list) else [value]
    calls = [_call_from(item, schemas) for item in items]
    if not calls or any(call is None for call in calls):
        return None
    return [call for call in calls if call is not None]


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_JSON_ESCAPES = frozenset('"\\/bfnrtu')


def _escapes_repaired(text: str) -> tuple[str, list[int]]:
    """``text`` with a lone backslash doubled where JSON has no such escape (``\\w``, ``\\d``: a
    regular expression written into a code argument), and where each doubling went in the original."""
    added: list[int] = []

    def repair(match: re.Match[str]) -> str:
        if match.group(1) in _JSON_ESCAPES:
            return match.group(0)
        added.append(match.start())
        return "\\" + match.group(0)

    return _ESCAPE.sub(repair, text), added


def _decode_at(decoder: json.JSONDecoder, text: str, position: int) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(text, position)
    except ValueError:
        tail, added = _escapes_repaired(text[position:])
        if not added:
            raise
        value, end = decoder.raw_decode(tail)
        before = 0  # doublings before the value's end: the inserted backslash sat at at + before
        for at in added:
            if at + before < end:
                before += 1
        return value, position + end - before


def _json_values(text: str) -> Iterator[tuple[Any, int]]:
    """JSON values written one after another from the start of ``text``, with where each ends."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text) or text[position] not in "{[":
            return
        try:
            value, position = _decode_at(decoder, text, position)
        except ValueError:
            return
        yield _without_control_escapes(value), position


def _without_control_escapes(value: Any) -> Any:
    """``\\b`` and ``\\f`` read back as the backslash and letter a model meant (a regex's word
    boundary), never as the backspace and form feed JSON makes of them."""
    if isinstance(value, str):
        return value.replace("\b", "\\b").replace("\f", "\\f")
    if isinstance(value, list):
        return [_without_control_escapes(item) for item in value]
    if isinstance(value, dict):
        return {key: _without_control_escapes(item) for key, item in value.items()}
    return value


def _calls_in_block(body: str, schemas: Mapping[str, ToolSchema]) -> list[ParsedCall] | None:
    """A tag's or fence's body: one or more JSON values and nothing else, each of them calls."""
    calls: list[ParsedCall] = []
    end = 0
    for value, position in _json_values(body):
        found = _calls_from(value, schemas)
        if found is None:
            return None
        calls.extend(found)
        end = position
    if not calls or body[end:].strip():
        return None
    return calls


def parse_tool_calls(text: str, tools: Sequence[Tool | ToolSchema]) -> tuple[list[ParsedCall], str]:
    """The tool calls in a model's reply and the text left around them.

    Accepted shapes: ``<tool_call>{...}</tool_call>`` tags (the closing tag may be cut off by the
    token limit), fenced ```json blocks, and bare JSON objects or arrays at the start of the reply.
    A block that is not entirely valid calls stays in the text."""
    schemas = {schema["name"]: schema for schema in tool_schemas(tools)}
    if not schemas:
        return [], text.strip()
    for pattern in (_TAGGED, _FENCED):
        calls: list[ParsedCall] = []
        kept: list[str] = []
        last = 0
        for match in pattern.finditer(text):
            found = _calls_in_block(match.group(1), schemas)
            if found is not None:
                calls.extend(found)
                kept.append(text[last : match.start()])
                last = match.end()
        if calls:
            kept.append(text[last:])
            return calls, _tidy("".join(kept))
    bare: list[ParsedCall] = []
    end = 0
    for value, position in _json_values(text):
        found = _calls_from(value, schemas)
        if found is None:
            break
        bare.extend(found)
        end = position
    if bare:
        return bare, _tidy(text[end:])
    return [], text.strip()


_CALL_FENCE = re.compile(r"```[ \t]*(?:json|tool_call)?[ \t]*\n", re.IGNORECASE)


def looks_like_call(text: str) -> bool:
    """Whether a reply that did not parse into valid calls was still meant as one: it holds a
    ``<tool_call>`` tag, or starts with JSON or with a fence that is not a language's (a coder model
    answering with a ```python block is answering, not calling)."""
    head = text.lstrip()
    return "<tool_call>" in text or head.startswith(("{", "[")) or _CALL_FENCE.match(head) is not None


# The tool a reply's own ```python block can stand for (below).
CODE_TOOL = "python_exec"
_PYTHON_FENCE = re.compile(r"```[ \t]*(?:python3?|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def code_block_call(text: str, tools: Sequence[Tool | ToolSchema]) -> tuple[list[ParsedCall], str]:
    """A reply's ```python blocks as one call of ``python_exec``, when that tool is offered.

    Qwen2.5-Coder answers "run this" far more readily with a python block than with a call, then
    makes up what the code would print (bench/agents.py saw it in most failed coding tasks). The
    block is the action AutoGen's own code executor takes from a coder's message, so an agent
    that is allowed to run code gets it run, governed like any call. The text before the first
    block is kept; what follows it is most often the invented output, and goes."""
    schemas = {schema["name"]: schema for schema in tool_schemas(tools)}
    blocks = [block.strip("\n") for block in _PYTHON_FENCE.findall(text)]
    if CODE_TOOL not in schemas or not any(block.strip() for block in blocks):
        return [], text.strip()
    call = _call_from({"name": CODE_TOOL, "arguments": {"code": "\n\n".join(blocks)}}, schemas)
    if call is None:
        return [], text.strip()
    first = _PYTHON_FENCE.search(text)
    assert first is not None
    return [call], _tidy(text[: first.start()])


_ANY_FENCE = re.compile(r"```[ \t]*[A-Za-z0-9_+-]*[ \t]*\n.*?```", re.DOTALL)


def has_code_block(text: str) -> bool:
    """Whether a reply holds a fenced block of code (or of made-up program output)."""
    return _ANY_FENCE.search(text) is not None


def _tidy(text: str) -> str:
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def streamable_prefix(text: str) -> int:
    """How much of a reply so far can be shown as chat text while it may still turn into a call:
    nothing while it is empty or could start with a call marker, otherwise everything before the
    first marker (or before a tail that could be the start of one)."""
    head = text.lstrip()
    if not head or any(head.startswith(m) or m.startswith(head) for m in CALL_MARKERS_AT_START):
        return 0
    cut = len(text)
    for marker in CALL_MARKERS_ANYWHERE:
        found = text.find(marker)
        if found != -1:
            cut = min(cut, found)
        for size in range(len(marker) - 1, 0, -1):
            if text.endswith(marker[:size]):
                cut = min(cut, len(text) - size)
                break
    return cut
