"""Validation and in-process evaluation of the metadata filters every backend accepts.

Semantics follow Pinecone: numbers compare numerically (1 == 1.0), booleans never equal numbers,
strings compare exactly; ``$gt``/``$gte``/``$lt``/``$lte`` match numeric values only; ``$ne`` and
``$nin`` are the complements of ``$eq`` and ``$in``, so they also match records without the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from memory.vector import Filter, Metadata, VectorFilterError, VectorStoreError

RANGE_OPERATORS = ("$gt", "$gte", "$lt", "$lte")
OPERATORS = ("$eq", "$ne", "$in", "$nin", *RANGE_OPERATORS)
Predicate = Callable[[Mapping[str, Any]], bool]


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: object) -> bool:
    return isinstance(value, str | bool) or (is_number(value) and math.isfinite(float(value)))  # type: ignore[arg-type]


def validate_metadata(metadata: Mapping[str, Any]) -> Metadata:
    if not isinstance(metadata, Mapping):
        raise VectorStoreError("Metadata must be a mapping of field names to values.")
    for field, value in metadata.items():
        if not isinstance(field, str) or not field or field.startswith("$"):
            raise VectorStoreError(f"Invalid metadata field name {field!r}.")
        if not _scalar(value):
            raise VectorStoreError(
                f"Metadata field {field!r} must be a string, a finite number or a boolean, got {value!r}."
            )
    return dict(metadata)


def normalise_filter(filter: Filter | None) -> list[tuple[str, str, Any]]:
    """``[(field, operator, operand), ...]`` (ANDed), or a ``VectorFilterError`` naming what is wrong."""
    if not filter:
        return []
    if not isinstance(filter, Mapping):
        raise VectorFilterError("A filter must be a mapping of field names to conditions.")
    clauses: list[tuple[str, str, Any]] = []
    for field, condition in filter.items():
        if not isinstance(field, str) or field.startswith("$"):
            raise VectorFilterError(f"Unsupported filter field {field!r} (top-level operators are not supported).")
        if not isinstance(condition, Mapping):
            condition = {"$eq": condition}
        if not condition:
            raise VectorFilterError(f"Empty condition for filter field {field!r}.")
        for operator, operand in condition.items():
            if operator not in OPERATORS:
                raise VectorFilterError(f"Unknown filter operator {operator!r}; use one of {', '.join(OPERATORS)}.")
            if operator in ("$in", "$nin"):
                if not isinstance(operand, list | tuple) or not all(_scalar(v) for v in operand):
                    raise VectorFilterError(f"{operator} on {field!r} needs a list of strings, numbers or booleans.")
                operand = list(operand)
            elif operator in RANGE_OPERATORS:
                if not is_number(operand) or not math.isfinite(float(operand)):
                    raise VectorFilterError(f"{operator} on {field!r} needs a number, got {operand!r}.")
            elif not _scalar(operand):
                raise VectorFilterError(f"{operator} on {field!r} needs a string, number or boolean, got {operand!r}.")
            clauses.append((field, operator, operand))
    return clauses


def value_key(value: object) -> tuple[str, object]:
    """Type-aware identity: numbers by value, booleans and strings apart from them."""
    if isinstance(value, bool):
        return ("b", value)
    if is_number(value):
        return ("n", float(value))  # type: ignore[arg-type]
    return ("s", value)


def _clause(field: str, operator: str, operand: Any) -> Predicate:
    if operator in ("$eq", "$ne"):
        target = value_key(operand)
        want = operator == "$eq"
        return lambda m: (field in m and value_key(m[field]) == target) == want
    if operator in ("$in", "$nin"):
        targets = {value_key(v) for v in operand}
        want = operator == "$in"
        return lambda m: (field in m and value_key(m[field]) in targets) == want
    bound = float(operand)
    compare: Callable[[float], bool] = {
        "$gt": lambda v: v > bound,
        "$gte": lambda v: v >= bound,
        "$lt": lambda v: v < bound,
        "$lte": lambda v: v <= bound,
    }[operator]
    return lambda m: field in m and is_number(m[field]) and compare(float(m[field]))


def compile_filter(filter: Filter | None) -> Predicate | None:
    """A predicate over metadata, or None when the filter matches everything."""
    clauses = [_clause(*clause) for clause in normalise_filter(filter)]
    if not clauses:
        return None
    return lambda m: all(clause(m) for clause in clauses)
