"""Scenario classification: which agreed scenario a document belongs to.

A scenario's ``when`` maps field names (dotted for nested fields) to a condition:

- a plain value: the field equals it;
- a list: the field equals one of its values;
- ``{"in": [...]}``, ``{"exists": true|false}``, ``{"gt"|"gte"|"lt"|"lte"|"eq"|"ne": value}``;
- the keys ``all`` / ``any`` take a list of such mappings.

A document matching no scenario is unmapped; one matching two is a catalogue error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

_MISSING = object()
_COMPARE = {"gt", "gte", "lt", "lte", "eq", "ne"}


class Ambiguous(Exception):
    def __init__(self, names: list[str]) -> None:
        super().__init__(f"matches several scenarios: {', '.join(names)}")
        self.names = names


Predicate = Callable[[Any], bool]
# Catalogues compiled into predicates, by the identity of the list (kept alive in the entry).
_CATALOGUES: dict[int, tuple[Sequence[Any], list[tuple[str, Predicate]]]] = {}


def classify(scenarios: Sequence[Any], payload: Any) -> str | None:
    """The name of the one scenario ``payload`` matches, None if none; Ambiguous if several."""
    entry = _CATALOGUES.get(id(scenarios))
    if entry is None or entry[0] is not scenarios:
        if len(_CATALOGUES) > 256:
            _CATALOGUES.clear()
        entry = (scenarios, [(s.name, compile_when(s.when)) for s in scenarios])
        _CATALOGUES[id(scenarios)] = entry
    names = [name for name, test in entry[1] if test(payload)]
    if len(names) > 1:
        raise Ambiguous(names)
    return names[0] if names else None


def compile_when(when: Mapping[str, Any]) -> Predicate:
    """``when`` as a predicate: what :func:`matches` decides, without re-reading the matcher
    for every document (classification runs at intake for each one)."""
    tests: list[Predicate] = []
    for field, condition in when.items():
        if field in ("all", "any"):
            tests.append(_combined(field, [compile_when(sub) for sub in condition]))
        else:
            tests.append(_compile_condition(_getter(field), condition))
    if len(tests) == 1:
        return tests[0]

    def every(payload: Any) -> bool:
        return all(t(payload) for t in tests)

    return every


def _combined(kind: str, subs: list[Predicate]) -> Predicate:
    def combined(payload: Any) -> bool:
        if kind == "all":
            return all(t(payload) for t in subs)
        return any(t(payload) for t in subs)

    return combined


def _getter(field: str) -> Callable[[Any], Any]:
    def get(payload: Any) -> Any:
        if type(payload) is dict and "." not in field:
            return payload.get(field, _MISSING)
        return _lookup(payload, field)

    return get


def _compile_condition(get: Callable[[Any], Any], condition: Any) -> Predicate:
    if isinstance(condition, Mapping):
        ops = list(condition.items())

        def holds(payload: Any) -> bool:
            return _all_hold(get(payload), ops)

        return holds
    if isinstance(condition, list):

        def one_of(payload: Any) -> bool:
            value = get(payload)
            return value is not _MISSING and value in condition

        return one_of

    def equals(payload: Any) -> bool:
        value = get(payload)
        return value is not _MISSING and bool(value == condition)

    return equals


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


def _all_hold(value: Any, ops: Iterable[tuple[str, Any]]) -> bool:
    """Does ``value`` meet every ``(operator, expected)`` of one field's condition?"""
    for op, expected in ops:
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


def _holds(value: Any, condition: Any) -> bool:
    if isinstance(condition, Mapping):
        return _all_hold(value, condition.items())
    if isinstance(condition, list):
        return value is not _MISSING and value in condition
    return value is not _MISSING and value == condition


_NUMBERS = (int, float)
_OPERATORS_BY_NAME: dict[str, Callable[[Any, Any], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
    "eq": operator.eq,
    "ne": operator.ne,
}


def _compare(op: str, value: Any, expected: Any) -> bool:
    if type(value) in _NUMBERS and type(expected) in _NUMBERS:
        return bool(_OPERATORS_BY_NAME[op](value, expected))  # plain numbers: no Decimal
    try:
        left, right = Decimal(str(value)), Decimal(str(expected))
    except (InvalidOperation, ValueError):
        left, right = value, expected
    try:
        return bool(_OPERATORS_BY_NAME[op](left, right))
    except TypeError:
        return False


# -- checking the catalogue (at load) and describing unmapped documents ----------------------

_OPERATORS = {"in", "exists", *_COMPARE}


def matcher_problems(when: Any) -> list[tuple[tuple[str | int, ...], str]]:
    """Every problem in a ``when`` matcher as (location inside it, message); empty if fine."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if not isinstance(when, Mapping):
        return [((), "a matcher must be a mapping of field: condition")]
    for field, condition in when.items():
        loc: tuple[str | int, ...] = (str(field),)
        if field in ("all", "any"):
            if not isinstance(condition, list) or not condition:
                found.append((loc, f"{field} takes a non-empty list of matchers"))
                continue
            for i, sub in enumerate(condition):
                found.extend(((*loc, i, *where), text) for where, text in matcher_problems(sub))
            continue
        if not isinstance(field, str) or not field or any(not p for p in field.split(".")):
            found.append((loc, f"{field!r} is not a field name (dotted for nested fields)"))
            continue
        if isinstance(condition, Mapping):
            if not condition:
                found.append((loc, "an empty condition; use a value, a list or an operator"))
            for op, expected in condition.items():
                where = (*loc, str(op))
                if op not in _OPERATORS:
                    known = ", ".join(sorted(_OPERATORS))
                    found.append((where, f"unknown operator {op!r}; use one of {known}"))
                elif op == "in" and not isinstance(expected, list):
                    found.append((where, "'in' takes a list of values"))
                elif op == "exists" and not isinstance(expected, bool):
                    found.append((where, "'exists' takes true or false"))
                elif op in _COMPARE - {"eq", "ne"} and not _comparable(expected):
                    found.append(
                        (where, f"{op!r} compares numbers (or ISO dates); {expected!r} is neither")
                    )
    return found


def _comparable(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def when_fields(scenarios: Sequence[Any]) -> list[str]:
    """Every field the catalogue's matchers look at, in order of first use."""
    found: dict[str, None] = {}

    def walk(when: Any) -> None:
        if not isinstance(when, Mapping):
            return
        for field, condition in when.items():
            if field in ("all", "any") and isinstance(condition, list):
                for sub in condition:
                    walk(sub)
            else:
                found.setdefault(str(field), None)

    for scenario in scenarios:
        walk(scenario.when)
    return list(found)


def distinguishing(scenarios: Sequence[Any], payload: Any) -> dict[str, Any]:
    """The values of the catalogue's fields in ``payload`` (None where missing)."""
    out: dict[str, Any] = {}
    for field in when_fields(scenarios):
        value = _lookup(payload, field)
        out[field] = None if value is _MISSING else value
    return out
