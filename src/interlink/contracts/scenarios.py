"""Scenario classification: which agreed scenario a document belongs to.

A scenario's ``when`` maps field names (dotted for nested fields) to a condition:

- a plain value: the field equals it;
- a list: the field equals one of its values;
- ``{"in": [...]}``, ``{"exists": true|false}``, ``{"gt"|"gte"|"lt"|"lte"|"eq"|"ne": value}``;
- the keys ``all`` / ``any`` take a list of such mappings.

A document matching no scenario is unmapped; one matching two is a catalogue error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_MISSING = object()
_COMPARE = {"gt", "gte", "lt", "lte", "eq", "ne"}


class Ambiguous(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"matches several scenarios: {', '.join(names)}")
        self.names = names


def classify(scenarios: Sequence[Any], payload: Any) -> str | None:
    """The name of the one scenario ``payload`` matches, None if none; Ambiguous if several."""
    names = [s.name for s in scenarios if matches(s.when, payload)]
    if len(names) > 1:
        raise Ambiguous(names)
    return names[0] if names else None


def matches(when: Mapping[str, Any], payload: Any) -> bool:
    for field, condition in when.items():
        if field == "all":
            if not all(matches(sub, payload) for sub in condition):
                return False
        elif field == "any":
            if not any(matches(sub, payload) for sub in condition):
                return False
        elif not _holds(_lookup(payload, field), condition):
            return False
    return True


def _lookup(payload: Any, field: str) -> Any:
    value = payload
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _holds(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        for op, expected in condition.items():
            if op == "exists":
                if (value is not _MISSING) != bool(expected):
                    return False
            elif op == "in":
                if value is _MISSING or value not in expected:
                    return False
            elif op in _COMPARE:
                if value is _MISSING or not _compare(op, value, expected):
                    return False
            else:
                return False
        return True
    if isinstance(condition, list):
        return value is not _MISSING and value in condition
    return value is not _MISSING and value == condition


def _compare(op: str, value: Any, expected: Any) -> bool:
    try:
        left, right = Decimal(str(value)), Decimal(str(expected))
    except (InvalidOperation, ValueError):
        left, right = value, expected
    try:
        return {
            "gt": left > right,
            "gte": left >= right,
            "lt": left < right,
            "lte": left <= right,
            "eq": left == right,
            "ne": left != right,
        }[op]
    except TypeError:
        return False
