"""Contract violations in words a person on duty reads: the field's JSON path and the reason.

jsonschema's own messages are Python reprs with the field left out (``'x' is a required
property`` at ``$``) or say nothing at all (a ``format`` it does not check). Each problem here
names the field it is about, ``$.paid_at``, and says what is wrong with the value and what the
contract wants, e.g. ``"2026-13-01" is not a valid date-time (RFC 3339, e.g.
2026-01-31T17:00:00+08:00)``.

The formats checked are exactly the ones the compiled validator (fastjsonschema) checks, with
its own expressions, so the full report never misses the problem the fast path refused on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import fastjsonschema.draft04
import fastjsonschema.draft06
import fastjsonschema.draft07
import fastjsonschema.draft2019
import jsonschema
from jsonschema.exceptions import ValidationError, best_match

Path = tuple[str | int, ...]

SHOWN = 60  # characters of a value quoted in a message
SHOWN_CHOICES = 8

# How each format reads, with an example a person can copy; formats not listed read
# "is not a valid <format>".
_FORMAT_WORDS = {
    "date-time": "date-time (RFC 3339, e.g. 2026-01-31T17:00:00+08:00)",
    "date": "date (RFC 3339 full-date, e.g. 2026-01-31)",
    "time": "time (RFC 3339, e.g. 17:00:00+08:00)",
    "duration": "duration (ISO 8601, e.g. P1DT2H)",
    "email": "e-mail address",
    "idn-email": "e-mail address",
    "hostname": "host name",
    "idn-hostname": "host name",
    "ipv4": "IPv4 address",
    "ipv6": "IPv6 address",
    "uri": "URI (e.g. https://example.com/a)",
    "uuid": "UUID",
    "regex": "regular expression",
}

_TYPE_WORDS = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def _generator(schema: Any) -> Any:
    """The fastjsonschema code generator a schema compiles with (its rule, by ``$schema``)."""
    version = schema.get("$schema", "") if isinstance(schema, dict) else ""
    if "draft-04" in version:
        return fastjsonschema.draft04.CodeGeneratorDraft04
    if "draft-06" in version:
        return fastjsonschema.draft06.CodeGeneratorDraft06
    if "draft-07" in version:
        return fastjsonschema.draft07.CodeGeneratorDraft07
    return fastjsonschema.draft2019.CodeGeneratorDraft2019


def format_checker(schema: Any) -> jsonschema.FormatChecker:
    """A format checker that holds a value to the formats fastjsonschema checks for
    ``schema``, with the same expressions."""
    checker = jsonschema.FormatChecker(formats=())
    for name, expression in _generator(schema).FORMAT_REGEXS.items():
        checker.checks(name)(_matcher(re.compile(expression)))
    checker.checks("regex")(_compiles)
    return checker


def _matcher(program: re.Pattern[str]) -> Callable[[object], bool]:
    def check(value: object) -> bool:
        return not isinstance(value, str) or program.match(value) is not None

    return check


def _compiles(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        re.compile(value)
    except re.error:
        return False
    return True


def show(value: Any) -> str:
    """A value as JSON, cut short: what the upstream sent, recognisable in a log."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return "null"


def _choices(values: Any) -> str:
    items = list(values) if isinstance(values, list) else [values]
    shown = ", ".join(show(v) for v in items[:SHOWN_CHOICES])
    more = len(items) - SHOWN_CHOICES
    return shown + (f" and {more} more" if more > 0 else "")


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def reason(error: ValidationError) -> str:
    """Why the value at ``error``'s path breaks the contract, in words."""
    keyword, want, value = error.validator, error.validator_value, error.instance
    schema = error.schema if isinstance(error.schema, dict) else {}
    if keyword == "type":
        types = want if isinstance(want, list) else [want]
        wanted = " or ".join(_TYPE_WORDS.get(str(t), str(t)) for t in types)
        return f"expected {wanted}, got {_kind(value)} ({show(value)})"
    if keyword == "required":
        return "is required but missing"
    if keyword in ("dependencies", "dependentRequired"):
        return error.message
    if keyword == "enum":
        return f"{show(value)} is not one of the allowed values: {_choices(want)}"
    if keyword == "const":
        return f"must be {show(want)}, got {show(value)}"
    if keyword == "format":
        return f"{show(value)} is not a valid {_FORMAT_WORDS.get(str(want), str(want))}"
    if keyword == "pattern":
        return f"{show(value)} does not match the pattern {show(want)}"
    if keyword == "minimum":
        if schema.get("exclusiveMinimum") is True:  # draft 4
            return f"{show(value)} must be more than {show(want)}"
        return f"{show(value)} is less than the minimum {show(want)}"
    if keyword == "maximum":
        if schema.get("exclusiveMaximum") is True:
            return f"{show(value)} must be less than {show(want)}"
        return f"{show(value)} is more than the maximum {show(want)}"
    if keyword == "exclusiveMinimum":
        return f"{show(value)} must be more than {show(want)}"
    if keyword == "exclusiveMaximum":
        return f"{show(value)} must be less than {show(want)}"
    if keyword == "multipleOf":
        return f"{show(value)} is not a multiple of {show(want)}"
    if keyword in ("minLength", "maxLength") and isinstance(value, str):
        bound = f"at least {want} needed" if keyword == "minLength" else f"at most {want} allowed"
        return f"{show(value)} has {_count(len(value), 'character', 'characters')}; {bound}"
    if keyword in ("minItems", "maxItems") and isinstance(value, list):
        bound = f"at least {want} needed" if keyword == "minItems" else f"at most {want} allowed"
        return f"has {_count(len(value), 'item', 'items')}; {bound}"
    if keyword in ("minProperties", "maxProperties") and isinstance(value, dict):
        bound = (
            f"at least {want} needed" if keyword == "minProperties" else f"at most {want} allowed"
        )
        return f"has {_count(len(value), 'field', 'fields')}; {bound}"
    if keyword == "uniqueItems":
        return "holds the same item twice; the items must be unique"
    if keyword == "additionalProperties":
        if schema.get("patternProperties"):
            names = ", ".join(show(p) for p in sorted(schema["patternProperties"]))
            return f"is not a field of the contract and matches none of the patterns {names}"
        return "is not a field of the contract"
    if keyword == "contains":
        return "holds no item of the kind the contract asks for"
    if keyword in ("anyOf", "oneOf"):
        if keyword == "oneOf" and not error.context:
            return "matches more than one of the allowed forms; it must match exactly one"
        closest = best_match(error.context) if error.context else None
        if closest is None:
            return "matches none of the allowed forms"
        where = _path(closest.absolute_path)
        return f"matches none of the allowed forms (the closest: {where}: {reason(closest)})"
    if keyword == "not":
        return "matches a form the contract rules out"
    if keyword is None or want is False:
        return "is not allowed here by the contract"
    return error.message


def describe(error: ValidationError) -> dict[str, str]:
    """One violation as ``{"path", "message"}``."""
    return {"path": _path(error.absolute_path), "message": reason(error)}


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


# -- keywords that point at the field itself, not at the object holding it --------------------


def required(validator: Any, names: Any, instance: Any, schema: Any) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for name in names:
        if name not in instance:
            yield ValidationError(f"{name!r} is a required property", path=[name])


def dependencies(validator: Any, wanted: Any, instance: Any, schema: Any) -> Iterator[Any]:
    """``dependencies`` (and ``dependentRequired``): a field needed because another is there
    is reported at the needed field's path."""
    if not validator.is_type(instance, "object"):
        return
    for present, needed in wanted.items():
        if present not in instance:
            continue
        if validator.is_type(needed, "array"):
            for name in needed:
                if name not in instance:
                    yield ValidationError(
                        f"is required when {show(present)} is present", path=[name], instance=None
                    )
        else:
            yield from validator.descend(instance, needed, schema_path=present)


_FAST_MESSAGE = re.compile(r"data((?:\.[^\s.\[]+|\[\d+\])*) (.*)", re.S)


def from_fast(message: str) -> dict[str, str]:
    """A fastjsonschema message (``data.a[0].b must be integer``) as a problem: used only if
    the full walk finds nothing, which the shared formats should make never happen."""
    match = _FAST_MESSAGE.fullmatch(message)
    if not match:
        return {"path": "$", "message": message}
    return {"path": "$" + match.group(1), "message": match.group(2)}
