"""Checking payloads against a document type's JSON Schema.

The fast path is a compiled fastjsonschema validator. It stops at the first problem, so when a
document fails, jsonschema walks it again to list every problem with its JSON path: the cost of
a full report is paid only by documents that are refused.

Patterns (``pattern``, ``patternProperties``) run on RE2, a linear-time engine, in both
validators. Python's ``re`` backtracks: ``^(.*?)*!$`` on 30 characters takes seconds, holding
the GIL, so one hostile contract (or one upstream payload against it) stalled the whole hub.
A pattern RE2 cannot compile (look-around, back-references) is refused wherever a schema
enters: the contract file, ``contract check`` and ``publish``, a stored version.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema
import jsonschema
import re2
from jsonschema.exceptions import ValidationError

from interlink import violations
from interlink.errors import ConfigError

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is our answer, not a line on stderr


def _to_re2(pattern: str) -> str:
    """JSON Schema (ECMA 262) escapes RE2 spells differently: ``\\uXXXX`` and ``\\Z``."""
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char != "\\" or i + 1 >= n:
            out.append(char)
            i += 1
            continue
        nxt = pattern[i + 1]
        hexa = pattern[i + 2 : i + 6]
        if nxt == "u" and len(hexa) == 4 and all(c in "0123456789abcdefABCDEF" for c in hexa):
            out.append(f"\\x{{{hexa}}}")
            i += 6
        elif nxt == "Z":
            out.append("\\z")
            i += 2
        else:
            out.append(pattern[i : i + 2])
            i += 2
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> Any:
    """The RE2 program of a schema pattern; ``re2.error`` when RE2 cannot run it."""
    return re2.compile(_to_re2(pattern), _RE2_OPTIONS)


def _schema_patterns(schema: Any) -> Iterator[tuple[str, str]]:
    """``(where, pattern)`` for every pattern in a schema, walked as plain data: a property
    that happens to be named ``pattern`` is checked too, which costs nothing."""
    stack: list[tuple[str, Any]] = [("$", schema)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, dict):
            pattern = node.get("pattern")
            if isinstance(pattern, str):
                yield f"{where}/pattern", pattern
            properties = node.get("patternProperties")
            if isinstance(properties, dict):
                for key in properties:
                    yield f"{where}/patternProperties", str(key)
            stack.extend((f"{where}/{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}/{i}", v) for i, v in enumerate(node))


def _mentions(node: Any, key: str) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if key in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def pattern_problems(schema: Any) -> list[dict[str, str]]:
    """Patterns the hub will not run, as ``{"path", "message"}``; empty when all are safe."""
    found = []
    for where, pattern in _schema_patterns(schema):
        try:
            compile_pattern(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else exc
            found.append(
                {
                    "path": where,
                    "message": f"pattern {pattern!r} is not supported ({reason}); patterns run "
                    "on a linear-time engine (RE2): no look-around, no back-references",
                }
            )
    # jsonschema matches patternProperties inside unevaluatedProperties with Python's `re`,
    # out of reach of the RE2 keywords below: the combination is refused instead.
    if _mentions(schema, "unevaluatedProperties") and _mentions(schema, "patternProperties"):
        found.append(
            {
                "path": "$",
                "message": "unevaluatedProperties together with patternProperties is not "
                "supported; use additionalProperties",
            }
        )
    return found


# -- jsonschema's pattern keywords on RE2 -------------------------------------------------------


def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not compile_pattern(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        program = compile_pattern(pattern)
        for key, value in instance.items():
            if program.search(key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(validator: Any, aP: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    programs = [compile_pattern(p) for p in schema.get("patternProperties", {})]
    extras = [
        k
        for k in instance
        if k not in properties and not any(program.search(k) for program in programs)
    ]
    if validator.is_type(aP, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], aP, path=extra)
    elif not aP:
        # One problem per field, at the field's own path: "$.colour is not a field of the
        # contract" tells the upstream what to drop.
        for extra in sorted(extras, key=str):
            yield ValidationError(
                f"{extra!r} is not a field of the contract", path=[extra], instance=instance[extra]
            )


@functools.cache
def _on_re2(cls: Any) -> Any:
    return jsonschema.validators.extend(
        cls,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
            "required": violations.required,
            "dependencies": violations.dependencies,
            "dependentRequired": violations.dependencies,
        },
    )


def _fast_on_re2(fast: Callable[[Any], Any], schema: Any) -> None:
    """Point the compiled validator's pattern table at RE2 programs.

    fastjsonschema compiles every pattern with ``re`` into a ``REGEX_PATTERNS`` table of the
    generated code's globals, keyed by the pattern as written; its own ``format`` checks share
    the table under their format names and are left alone.
    """
    table = getattr(fast, "__globals__", {}).get("REGEX_PATTERNS")
    wanted = {pattern for _, pattern in _schema_patterns(schema)}
    if wanted and not isinstance(table, dict):
        raise ConfigError(["cannot run this schema's patterns safely (fastjsonschema changed)"])
    for pattern in wanted:
        if isinstance(table, dict) and pattern in table:
            table[pattern] = compile_pattern(pattern)


def _compile_fast(schema: Any) -> Callable[[Any], Any]:
    try:
        return fastjsonschema.compile(schema, detailed_exceptions=False)
    except KeyError:
        # fastjsonschema 2.22 cannot word a `const` without the detailed messages (KeyError
        # 'definition_rule'): such a schema compiles the slower way instead.
        return fastjsonschema.compile(schema, detailed_exceptions=True)


class ContractValidator:
    def __init__(
        self, schema: dict[str, Any], name: str = "contract", *, meta_check: bool = True
    ) -> None:
        """``meta_check=False`` skips checking ``schema`` against its meta-schema, for a
        caller that just did."""
        unsafe = pattern_problems(schema)
        if unsafe:
            raise ConfigError([f"{name}: {p['path']}: {p['message']}" for p in unsafe])
        try:
            # Without detailed exceptions the generated code does not embed every sub-schema
            # in its messages: a 500-property schema compiles in a fifth of the time. The
            # messages come from jsonschema anyway.
            self._fast: Callable[[Any], Any] = _compile_fast(schema)
            cls = jsonschema.validators.validator_for(schema)
            if meta_check:
                cls.check_schema(schema)
        except (fastjsonschema.JsonSchemaDefinitionException, jsonschema.SchemaError) as exc:
            message = getattr(exc, "message", str(exc))
            raise ConfigError([f"{name}: not a valid JSON Schema: {message}"]) from exc
        _fast_on_re2(self._fast, schema)
        self._full = _on_re2(cls)(schema, format_checker=violations.format_checker(schema))

    def valid(self, payload: Any) -> bool:
        """Whether ``payload`` passes (the compiled check only)."""
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    def problems(self, payload: Any) -> list[dict[str, str]]:
        """Every violation as ``{"path": "$.a[0].b", "message": ...}``; empty when valid."""
        try:
            self._fast(payload)
        except fastjsonschema.JsonSchemaValueException as exc:
            refusal = exc.message
        else:
            return []
        found = [violations.describe(error) for error in self._full.iter_errors(payload)]
        found.sort(key=lambda p: p["path"])
        # Both validators check the same formats with the same expressions; should they still
        # disagree, the compiled check's own words are better than none.
        return found or [violations.from_fast(refusal)]
