"""Untrusted input, read once and the same way everywhere.

- ``json_loads`` decodes every JSON document a client sends: REST bodies (``config.rest.JSONParser``),
  ``/v1`` requests and socket frames. It refuses, with a readable ``JSONInputError``, what the rest
  of the code cannot live with: nesting deeper than ``JSON_MAX_DEPTH`` (Python's decoder, and later
  every ``json.dumps`` of the value, would hit the recursion limit), NaN and Infinity, and strings
  or keys with a NUL character or a lone UTF-16 surrogate (``"\\udc00"``): neither PostgreSQL nor
  UTF-8 can store or send those, so a value holding one could be stored but never read back.
- ``text_problem`` / ``value_problem`` say what is wrong with a text or a decoded value, for the
  services that store text from other paths (forms, agents, tools).
- ``replace_surrogates`` makes data stored before these checks renderable, and text no one typed
  (a model's output) storable: U+FFFD in their place.
- ``bounded_int`` reads an integer query parameter within bounds every database can hold.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

# Deep enough for any real document (OpenAI messages, tool arguments, memory metadata), shallow
# enough that nothing downstream recurses anywhere near Python's limit of 1,000 frames.
JSON_MAX_DEPTH = 64
# The largest integer a query parameter may carry: fits every database's integer column.
QUERY_INT_MAX = 2**31 - 1

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_SURROGATE = re.compile("[\ud800-\udfff]")
_INTEGER = re.compile(r"-?[0-9]{1,19}")


class JSONInputError(ValueError):
    """A document that is not JSON, or JSON this server refuses; the message says which and why."""


def _refuse_constant(name: str) -> None:
    raise JSONInputError(f"JSON parse error - {name} is not valid JSON: send numbers as finite values.")


def _depth(text: str) -> int:
    """The deepest nesting of arrays and objects, counted without recursion (strings skipped)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(1 if c in "[{" else -1 for c in brackets), default=0)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored and read back, or None when it can."""
    if "\x00" in text:
        return "contains a NUL character (\\u0000), which is not allowed"
    if _SURROGATE.search(text):
        return "contains a lone UTF-16 surrogate (\\ud800-\\udfff), which is not valid Unicode"
    return None


def value_problem(value: Any) -> str | None:
    """The first string or key of a decoded JSON value that ``text_problem`` refuses, described."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return f"The text at {path or 'the top level'} {problem}."
        elif isinstance(item, dict):
            for key, child in item.items():
                key_text = str(key)
                problem = text_problem(key_text)
                if problem:
                    return f"A key at {path or 'the top level'} {problem}."
                stack.append((f"{path}.{key_text}" if path else key_text, child))
        elif isinstance(item, list | tuple):
            stack.extend((f"{path}[{index}]", child) for index, child in enumerate(item))
    return None


def json_loads(raw: str | bytes) -> Any:
    """Decode one JSON document from a client, or raise ``JSONInputError`` saying what is wrong."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONInputError(f"JSON parse error - the body is not valid UTF-8 ({exc.reason}).") from None
    # Counting brackets is only needed when there are enough of them to go too deep.
    if raw.count("[") + raw.count("{") > JSON_MAX_DEPTH and _depth(raw) > JSON_MAX_DEPTH:
        raise JSONInputError(f"The JSON is nested more than {JSON_MAX_DEPTH} levels deep.")
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except RecursionError:  # unreachable after the depth check; kept so no path can crash on it
        raise JSONInputError(f"The JSON is nested more than {JSON_MAX_DEPTH} levels deep.") from None
    except JSONInputError:
        raise
    except ValueError as exc:
        raise JSONInputError(f"JSON parse error - {exc}") from None
    problem = value_problem(value)
    if problem:
        raise JSONInputError(problem)
    return value


def replace_surrogates(value: Any, *, nul: bool = False) -> Any:
    """``value`` with every lone surrogate in its strings and keys (and, with ``nul``, every NUL)
    replaced by U+FFFD."""
    if isinstance(value, str):
        value = _SURROGATE.sub("\ufffd", value)
        return value.replace("\x00", "\ufffd") if nul else value
    if isinstance(value, dict):
        return {replace_surrogates(key, nul=nul): replace_surrogates(child, nul=nul) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [replace_surrogates(child, nul=nul) for child in value]
    return value


def bounded_int(raw: str | None, *, minimum: int, maximum: int = QUERY_INT_MAX) -> int | None:
    """``raw`` (a query parameter) as a decimal integer from ``minimum`` to ``maximum``, else None."""
    if raw is None or not _INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    return value if minimum <= value <= maximum else None
