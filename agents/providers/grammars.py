"""llama.cpp grammars (GBNF) that constrain a local model's decoding to JSON of a given shape.

A grammar decides at every step which tokens the model may sample, so the reply cannot be anything
but text the grammar admits: a JSON object (``json_output=True``), an instance of a JSON schema (a
pydantic model's, for structured output), or one well-formed call of an offered tool.

Schemas are turned into GBNF by llama-cpp-python's port of llama.cpp's ``json_schema_to_gbnf``, with
two changes: JSON strings may not hold raw control characters (the stock rule admits a newline
inside a string, which ``json.loads`` refuses), and a sub-schema that says nothing about its type
means any JSON value (the stock converter fails on it). Each grammar is then parsed once by
llama.cpp itself: a grammar it refuses would otherwise crash the sampler. Conversion and check cost
a few milliseconds per schema, so both are cached per schema text.
"""

from __future__ import annotations

import ctypes
import json
import logging
import re
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from autogen_core.tools import Tool, ToolSchema
from pydantic import BaseModel

from agents.providers.tool_calls import tool_schemas

if TYPE_CHECKING:
    from llama_cpp import Llama, LlamaGrammar, LogitsProcessorList

logger = logging.getLogger(__name__)

JSON_OBJECT_SCHEMA: dict[str, Any] = {"type": "object"}
ANY_VALUE_SCHEMA: dict[str, Any] = {"type": ["object", "array", "string", "number", "boolean", "null"]}

# Keywords that give a schema a shape the converter understands; a schema with none of them
# (only a title or description, as pydantic writes for ``Any``) admits any value.
_SHAPE_KEYWORDS = frozenset(
    {"type", "$ref", "anyOf", "oneOf", "allOf", "enum", "const", "properties", "items", "prefixItems", "pattern"}
)
# The converter's rule for a character inside a JSON string, and a strict one (no control characters).
_CHAR_RULE = re.compile(r"^char ::= \[\^\"\\\\\] \|", re.MULTILINE)
_STRICT_CHAR_RULE = r'char ::= [^"\\\x7F\x00-\x1F] |'


class GrammarError(ValueError):
    """A schema that cannot be turned into a grammar llama.cpp accepts."""


def _normalized(schema: Any, *, root: bool = False) -> Any:
    """``schema`` with every shapeless sub-schema replaced by "any JSON value"."""
    if not isinstance(schema, Mapping):
        return schema
    if not root and not (_SHAPE_KEYWORDS & schema.keys()) and schema.get("additionalProperties") in (None, True):
        return dict(ANY_VALUE_SCHEMA)
    result = dict(schema)
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), Mapping):
            result[key] = {name: _normalized(sub) for name, sub in schema[key].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            result[key] = [_normalized(sub) for sub in schema[key]]
    items = schema.get("items")
    if isinstance(items, list):
        result["items"] = [_normalized(sub) for sub in items]
    elif isinstance(items, Mapping):
        result["items"] = _normalized(items)
    if isinstance(schema.get("additionalProperties"), Mapping):
        result["additionalProperties"] = _normalized(schema["additionalProperties"])
    return result


def schema_gbnf(schema: Mapping[str, Any]) -> str:
    """The GBNF text of a grammar that admits exactly the JSON instances of ``schema`` (as far as
    a grammar can say: types, keys, required keys, enums and constants, not numeric bounds)."""
    # Not sorted: the order of properties is the order the model writes them in.
    return _gbnf(json.dumps(schema))


@lru_cache(maxsize=256)
def _gbnf(schema_text: str) -> str:
    from llama_cpp import llama_cpp
    from llama_cpp.llama_grammar import json_schema_to_gbnf

    try:
        text = json_schema_to_gbnf(json.dumps(_normalized(json.loads(schema_text), root=True)))
    except Exception as exc:  # the converter asserts on shapes it does not know
        raise GrammarError(f"No grammar for this JSON schema: {exc or type(exc).__name__}") from exc
    text = _CHAR_RULE.sub(lambda _: _STRICT_CHAR_RULE, text)
    # llama.cpp's own parser, without a vocabulary: NULL for a grammar it refuses.
    sampler = llama_cpp.llama_sampler_init_grammar(None, text.encode("utf-8"), b"root")
    if not sampler:
        raise GrammarError("llama.cpp refused the grammar made from this JSON schema.")
    llama_cpp.llama_sampler_free(sampler)
    return text


def schema_grammar(schema: Mapping[str, Any]) -> LlamaGrammar:
    """A grammar for the JSON instances of ``schema``; ``GrammarError`` if there can be none."""
    from llama_cpp import LlamaGrammar

    return LlamaGrammar.from_string(schema_gbnf(schema), verbose=False)


def output_schema(json_output: bool | type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of AutoGen's ``json_output``: any object for ``True``, else the model's."""
    if isinstance(json_output, type) and issubclass(json_output, BaseModel):
        return json_output.model_json_schema()
    return dict(JSON_OBJECT_SCHEMA)


def _one_of(alternatives: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A schema admitting any of ``alternatives``. Their ``$defs`` move up to the new root, where
    their ``#/$defs/...`` references now point (the same name defined twice differently is an error)."""
    defs: dict[str, Any] = {}
    bare: list[dict[str, Any]] = []
    for alternative in alternatives:
        alternative = dict(alternative)
        for name, definition in (alternative.pop("$defs", None) or {}).items():
            if defs.setdefault(name, definition) != definition:
                raise GrammarError(f"Two schemas define {name!r} differently.")
        bare.append(alternative)
    schema: dict[str, Any] = bare[0] if len(bare) == 1 else {"anyOf": bare}
    return {**schema, "$defs": defs} if defs else schema


def reply_grammar(json_output: bool | type[BaseModel], tools: Sequence[Tool | ToolSchema] = ()) -> LlamaGrammar:
    """The grammar of a reply with ``json_output``: that JSON, or (with tools offered) that JSON or
    one call of a tool. A model schema without a grammar falls back to any JSON object."""
    try:
        return schema_grammar(_one_of([*_call_schemas(tools), output_schema(json_output)]))
    except GrammarError as exc:
        logger.warning("JSON output falls back to any JSON object: %s", exc)
        return schema_grammar(JSON_OBJECT_SCHEMA)


def _call_schemas(tools: Sequence[Tool | ToolSchema]) -> list[dict[str, Any]]:
    """One schema per tool: ``{"name": <its name>, "arguments": <its parameters>}``, with the
    parameters' ``$defs`` at the call's root."""
    calls = []
    for schema in tool_schemas(tools):
        parameters = dict(schema.get("parameters") or {"type": "object", "properties": {}})
        defs = parameters.pop("$defs", None)
        call: dict[str, Any] = {
            "type": "object",
            "properties": {"name": {"const": schema["name"]}, "arguments": parameters},
            "required": ["name", "arguments"],
        }
        calls.append({**call, "$defs": defs} if defs else call)
    return calls


def tool_call_schema(tools: Sequence[Tool | ToolSchema]) -> dict[str, Any]:
    """The JSON schema of one call of one of ``tools``."""
    if not tools:
        raise GrammarError("No tools, so no tool call.")
    return _one_of(_call_schemas(tools))


def tool_call_grammar(tools: Sequence[Tool | ToolSchema]) -> LlamaGrammar:
    """A grammar that admits only one well-formed call of one of ``tools``."""
    return schema_grammar(tool_call_schema(tools))


# llama.cpp's llama_token_data, as a numpy record.
_TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.single), ("p", np.single)], align=True)


class GrammarLogitsProcessor:
    """A grammar as a llama-cpp-python logits processor that checks the best candidates first.

    llama-cpp-python's own ``grammar=`` puts llama.cpp's grammar sampler in front of the others, so
    every token of the vocabulary (151,936 for Qwen) is checked against the grammar at every step,
    which costs far more than the model's forward pass (docs/models.md). This processor checks only
    the ``top_k`` best-scored tokens and keeps those the grammar allows; only when none of them is
    allowed does it check the whole vocabulary. The language is the same; what changes is that a
    token the grammar allows but the model ranks below ``top_k`` can only be chosen on that slow path
    (llama.cpp's own samplers keep the best 40 by default). One processor per generation: it
    advances the grammar by the tokens the model has taken since its last call."""

    def __init__(self, vocab: Any, grammar: LlamaGrammar, *, top_k: int = 40) -> None:
        from llama_cpp import llama_cpp

        self._llama_cpp = llama_cpp
        self._sampler: Any = None
        self._sampler = llama_cpp.llama_sampler_init_grammar(
            vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
        )
        if not self._sampler:
            raise GrammarError("llama.cpp refused the grammar.")
        self._top_k = top_k
        self._seen: int | None = None
        self.full_checks = 0  # steps on which none of the best tokens was allowed

    @classmethod
    def for_model(cls, llama: Any, grammar: LlamaGrammar, *, top_k: int = 40) -> GrammarLogitsProcessor:
        from llama_cpp import llama_cpp

        return cls(llama_cpp.llama_model_get_vocab(llama.model), grammar, top_k=top_k)

    def _checked(self, ids: Any, logits: Any) -> Any:
        """``logits`` with -inf for each of ``ids`` the grammar does not allow next."""
        lib = self._llama_cpp
        data = np.zeros(len(ids), dtype=_TOKEN_DATA)
        data["id"], data["logit"] = ids, logits
        candidates = lib.llama_token_data_array(data.ctypes.data_as(lib.llama_token_data_p), len(ids), -1, False)
        lib.llama_sampler_apply(self._sampler, ctypes.byref(candidates))
        return data["logit"]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        if self._seen is not None:
            for token in input_ids[self._seen :]:
                self._llama_cpp.llama_sampler_accept(self._sampler, int(token))
        self._seen = len(input_ids)
        k = min(self._top_k, len(scores) - 1)
        best = np.argpartition(-scores, k)[:k].astype(np.intc)
        checked = self._checked(best, scores[best])
        if np.isfinite(checked).any():
            out = np.full_like(scores, -np.inf)
            out[best] = checked
            return out
        self.full_checks += 1
        return self._checked(np.arange(len(scores), dtype=np.intc), scores)

    def close(self) -> None:
        if self._sampler:
            self._llama_cpp.llama_sampler_free(self._sampler)
            self._sampler = None

    def __del__(self) -> None:
        self.close()


def grammar_processors(llama: Llama, grammar: LlamaGrammar | None) -> LogitsProcessorList | None:
    """What to pass as ``logits_processor`` to hold one generation of ``llama`` to ``grammar``
    (instead of ``grammar=``, several times slower on a large vocabulary); ``None`` without one."""
    if grammar is None:
        return None
    from llama_cpp import LogitsProcessorList

    return LogitsProcessorList([GrammarLogitsProcessor.for_model(llama, grammar)])
