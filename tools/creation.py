"""Validate Python source for a new tool: one public, typed function -> a JSON schema.

Rules: the source parses; top-level statements are imports, private helpers (``_name``), simple
constants and exactly one public function; every parameter of that function is annotated with a
type we can express in JSON schema (str, int, float, bool, list[...], dict, Optional[...],
Literal[...]); imports name only modules from the allow-list (``LODESTONE_TOOL_IMPORT_ALLOWLIST``);
``__import__``, ``eval``, ``exec``, ``compile``, ``importlib`` and dunder attribute access are refused.
This is a policy check, not the security boundary: the code only ever runs in the sandbox.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ValidationError

from tools import conf

MAX_SOURCE_CHARS = 20_000
FORBIDDEN_NAMES = {"__import__", "eval", "exec", "compile", "globals", "locals", "vars", "breakpoint", "importlib"}

_SIMPLE = {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "dict": "object", "list": "array"}


@dataclass
class ValidatedFunction:
    name: str
    description: str
    parameters: dict[str, Any]
    imports: list[str] = field(default_factory=list)


def _fail(message: str) -> ValidationError:
    return ValidationError({"source": message})


def _annotation_schema(node: ast.expr | None, where: str) -> dict[str, Any]:
    if node is None:
        raise _fail(f"Parameter {where} needs a type annotation (str, int, float, bool, list[...], dict).")
    if isinstance(node, ast.Constant) and node.value is None:
        return {"type": "null"}
    if isinstance(node, ast.Name) and node.id in _SIMPLE:
        return {"type": _SIMPLE[node.id]}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):  # X | None
        options = [_annotation_schema(node.left, where), _annotation_schema(node.right, where)]
        return {"anyOf": options}
    if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
        head = node.value.id
        inner = node.slice
        if head in ("list", "List"):
            return {"type": "array", "items": _annotation_schema(inner, where)}
        if head in ("dict", "Dict"):
            return {"type": "object"}
        if head == "Optional":
            return {"anyOf": [_annotation_schema(inner, where), {"type": "null"}]}
        if head == "Literal":
            values = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            if not all(isinstance(v, ast.Constant) for v in values):
                raise _fail(f"Literal values of {where} must be constants.")
            return {"enum": [v.value for v in values]}  # type: ignore[attr-defined]
    raise _fail(
        f"The type of {where} ({ast.unparse(node)}) cannot be expressed as JSON; use str, int, float, "
        "bool, list[...], dict, Optional[...] or Literal[...]."
    )


def _check_imports_and_names(tree: ast.Module) -> list[str]:
    allowed = set(conf.get("LODESTONE_TOOL_IMPORT_ALLOWLIST"))
    imports: list[str] = []
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise _fail("Relative imports are not allowed.")
            modules = [node.module or ""]
        for module in modules:
            top = module.split(".")[0]
            if top not in allowed:
                raise _fail(f"Import of {module!r} is not allowed; allowed modules: {', '.join(sorted(allowed))}.")
            imports.append(module)
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise _fail(f"{node.id!r} is not allowed in a tool.")
        if isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            raise _fail(f"Dunder attribute access ({node.attr}) is not allowed in a tool.")
    return imports


def validate_python_source(source: Any) -> ValidatedFunction:
    if not isinstance(source, str) or not source.strip():
        raise _fail("Give the Python source of one function.")
    if len(source) > MAX_SOURCE_CHARS:
        raise _fail(f"The source is longer than {MAX_SOURCE_CHARS} characters.")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise _fail(f"The source does not parse: {exc.msg} (line {exc.lineno}).") from exc
    public: list[ast.FunctionDef] = []
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef):
            raise _fail("Use a plain (not async) function.")
        if isinstance(node, ast.FunctionDef):
            if not node.name.startswith("_"):
                public.append(node)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            continue  # a module docstring
        if isinstance(node, ast.Assign | ast.AnnAssign) and all(
            isinstance(t, ast.Name) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        ):
            continue  # constants
        raise _fail(f"Only imports, constants and functions may appear at the top level (line {node.lineno}).")
    if len(public) != 1:
        found = ", ".join(f.name for f in public) or "none"
        raise _fail(f"Define exactly one public function (found: {found}); prefix helpers with an underscore.")
    imports = _check_imports_and_names(tree)
    function = public[0]
    args = function.args
    if args.vararg or args.kwarg or args.posonlyargs:
        raise _fail("The function may take only named parameters (no *args, **kwargs or positional-only).")
    properties: dict[str, Any] = {}
    required: list[str] = []
    positional = args.args
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    every = list(zip(positional, defaults, strict=True)) + list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    for arg, default in every:
        schema = _annotation_schema(arg.annotation, arg.arg)
        if default is None:
            required.append(arg.arg)
        elif isinstance(default, ast.Constant):
            schema["default"] = default.value
        else:
            raise _fail(f"The default of {arg.arg} must be a constant.")
        properties[arg.arg] = schema
    description = (ast.get_docstring(function) or "").strip()
    if not description:
        raise _fail("Give the function a docstring: it becomes the tool's description for the model.")
    parameters = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return ValidatedFunction(name=function.name, description=description, parameters=parameters, imports=imports)
