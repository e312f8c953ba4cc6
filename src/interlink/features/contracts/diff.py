"""Compatibility of two JSON Schemas, in both directions: a pure function over plain data.

:func:`compare` walks the current and the proposed schema side by side (properties, nested
objects, array items, tuple items, ``anyOf``/``oneOf``/``allOf``, dependencies, local ``$ref``)
and returns every :class:`Change`. Each change says which side it breaks:

- ``consumer``: the proposed schema *admits* something the current one refused (a property
  removed or no longer required, a type widened, a constraint loosened, an enum value added,
  a sum type extended, a closed content model opened). Downstream systems built against the
  current schema may receive what they never handled. Whether a consumer really breaks depends
  on the fields it reads (:mod:`interlink.features.contracts.impact`).
- ``producer``: the proposed schema *refuses* something the current one admitted (a property
  added as required, a type narrowed, a constraint added or tightened, an enum value removed,
  ``additionalProperties`` closed). The upstream and any re-push of history break.

A change may break both sides (a type changed from string to integer). Changes that break
neither side are reported as notes (``sides`` empty), e.g. an optional property added to an
open content model: the current schema admitted any value there, so in theory a document could
be refused, but that is what the replay of stored documents is for.

Paths are JSON paths of the data (``$.payee.account``, ``$.lines[*].amount``); ``field`` is
the same without the array markers (``lines.amount``), as flows name them in ``reads``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CONSUMER = "consumer"
PRODUCER = "producer"
BOTH = (CONSUMER, PRODUCER)

_TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")
# keyword -> True when a larger value is stricter.
_LOWER_BOUNDS = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties")
_UPPER_BOUNDS = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties")
_EXACT = ("pattern", "format", "const")


@dataclass(frozen=True)
class Change:
    path: str  # JSON path of the data, e.g. $.lines[*].amount
    field: str  # dotted field, e.g. lines.amount; "" for the document itself
    rule: str  # e.g. type_widened, enum_value_added
    sides: tuple[str, ...]  # CONSUMER and/or PRODUCER; empty for a note
    message: str
    old: Any = None
    new: Any = None

    @property
    def breaks_consumers(self) -> bool:
        return CONSUMER in self.sides

    @property
    def breaks_producer(self) -> bool:
        return PRODUCER in self.sides

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "field": self.field,
            "rule": self.rule,
            "sides": list(self.sides),
            "message": self.message,
            "old": self.old,
            "new": self.new,
        }


class SchemaError(ValueError):
    """The schema cannot be compared (an unresolvable ``$ref``)."""


def compare(current: Any, proposed: Any) -> list[Change]:
    """Every difference between ``current`` and ``proposed`` that matters to either side."""
    walker = _Walker(current, proposed)
    walker.node(current, proposed, "$", "")
    return walker.changes


def fingerprint(schema: Any) -> str:
    """Canonical JSON of a schema, for hashing and equality."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class _Walker:
    def __init__(self, old_root: Any, new_root: Any) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.changes: list[Change] = []
        self._seen: set[tuple[int, int, str]] = set()

    # -- helpers ------------------------------------------------------------------------

    def add(
        self,
        path: str,
        field: str,
        rule: str,
        sides: tuple[str, ...],
        message: str,
        old: Any = None,
        new: Any = None,
    ) -> None:
        self.changes.append(Change(path, field, rule, sides, message, old, new))

    def resolve(self, schema: Any, root: Any) -> Any:
        hops = 0
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            target = _pointer(root, ref)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            # Draft 2019+ allows siblings beside $ref; they narrow what the target admits.
            schema = {"allOf": [target, rest]} if _constraining(rest) else target
            hops += 1
            if hops > 50:
                raise SchemaError(f"$ref {ref!r} refers to itself")
        return schema

    # -- the walk -------------------------------------------------------------------------

    def node(self, old: Any, new: Any, path: str, field: str) -> None:
        old = self.resolve(old, self.old_root)
        new = self.resolve(new, self.new_root)
        marker = (id(old), id(new), path)
        if marker in self._seen or path.count("[*]") + path.count(".") > 64:
            return
        self._seen.add(marker)
        old = _as_schema(old)
        new = _as_schema(new)
        if old is False or new is False:
            if old is False and new is not False:
                self.add(path, field, "schema_opened", (CONSUMER,), "admits values it refused")
            elif new is False and old is not False:
                self.add(path, field, "schema_closed", (PRODUCER,), "refuses every value now")
            return
        assert isinstance(old, Mapping) and isinstance(new, Mapping)
        if self.wrapped(old, new, path, field):
            return
        self.types(old, new, path, field)
        self.bounds(old, new, path, field)
        self.exact(old, new, path, field)
        self.multiple_of(old, new, path, field)
        self.unique_items(old, new, path, field)
        self.enum(old, new, path, field)
        self.objects(old, new, path, field)
        self.arrays(old, new, path, field)
        self.combinations(old, new, path, field)
        self.negation(old, new, path, field)

    def wrapped(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> bool:
        """A schema that became (or stopped being) one branch of a new anyOf/oneOf."""
        for keyword in ("anyOf", "oneOf"):
            for a, b, rule, sides in (
                (old, new, f"{keyword}_extended", (CONSUMER,)),
                (new, old, f"{keyword}_narrowed", (PRODUCER,)),
            ):
                branches = b.get(keyword)
                if keyword in a or not isinstance(branches, list):
                    continue
                if _constraining({k: v for k, v in b.items() if k != keyword}):
                    continue
                if any(fingerprint(x) == fingerprint(dict(a)) for x in branches):
                    text = (
                        f"now one of {len(branches)} alternatives ({keyword})"
                        if rule.endswith("extended")
                        else f"{len(branches)} alternatives ({keyword}) reduced to one of them"
                    )
                    self.add(path, f, rule, sides, text)
                    return True
        return False

    def types(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        before, after = _types(old), _types(new)
        if before == after:
            return
        added = {t for t in after - before if not (t == "integer" and "number" in before)}
        removed = {t for t in before - after if not (t == "integer" and "number" in after)}
        if "number" in after and "integer" in before and "number" not in before:
            added.add("number")
        if "number" in before and "integer" in after and "number" not in after:
            removed.add("number")
        old_t, new_t = old.get("type"), new.get("type")
        if added and removed:
            self.add(path, f, "type_changed", BOTH, f"type {old_t} → {new_t}", old_t, new_t)
        elif added:
            self.add(path, f, "type_widened", (CONSUMER,), f"type {old_t} → {new_t}", old_t, new_t)
        elif removed:
            self.add(path, f, "type_narrowed", (PRODUCER,), f"type {old_t} → {new_t}", old_t, new_t)

    def bounds(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        for keyword in (*_LOWER_BOUNDS, *_UPPER_BOUNDS):
            a, b = _number(old.get(keyword)), _number(new.get(keyword))
            if a == b:
                continue
            lower = keyword in _LOWER_BOUNDS
            if a is None:
                rule, sides, text = f"{keyword}_added", (PRODUCER,), f"{keyword} {b} added"
            elif b is None:
                rule, sides, text = f"{keyword}_removed", (CONSUMER,), f"{keyword} {a} removed"
            else:
                raised = b > a
                tighter = raised if lower else not raised
                rule = f"{keyword}_{'raised' if raised else 'lowered'}"
                sides = (PRODUCER,) if tighter else (CONSUMER,)
                text = f"{keyword} {a} → {b}"
            self.add(path, f, rule, sides, text, old.get(keyword), new.get(keyword))

    def exact(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        for keyword in _EXACT:
            present_a, present_b = keyword in old, keyword in new
            a, b = old.get(keyword), new.get(keyword)
            if present_a == present_b and fingerprint(a) == fingerprint(b):
                continue
            if not present_a:
                self.add(path, f, f"{keyword}_added", (PRODUCER,), f"{keyword} {b!r} added", a, b)
            elif not present_b:
                self.add(
                    path, f, f"{keyword}_removed", (CONSUMER,), f"{keyword} {a!r} removed", a, b
                )
            else:
                self.add(path, f, f"{keyword}_changed", BOTH, f"{keyword} {a!r} → {b!r}", a, b)

    def multiple_of(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str
    ) -> None:
        a, b = _number(old.get("multipleOf")), _number(new.get("multipleOf"))
        if a == b:
            return
        if a is None:
            self.add(path, f, "multipleOf_added", (PRODUCER,), f"multipleOf {b} added", a, b)
        elif b is None:
            self.add(path, f, "multipleOf_removed", (CONSUMER,), f"multipleOf {a} removed", a, b)
        elif _divides(a, b):  # every multiple of b is a multiple of a: stricter
            self.add(path, f, "multipleOf_tightened", (PRODUCER,), f"multipleOf {a} → {b}", a, b)
        elif _divides(b, a):
            self.add(path, f, "multipleOf_loosened", (CONSUMER,), f"multipleOf {a} → {b}", a, b)
        else:
            self.add(path, f, "multipleOf_changed", BOTH, f"multipleOf {a} → {b}", a, b)

    def unique_items(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str
    ) -> None:
        a, b = bool(old.get("uniqueItems")), bool(new.get("uniqueItems"))
        if a and not b:
            self.add(path, f, "uniqueItems_removed", (CONSUMER,), "items may repeat now", a, b)
        elif b and not a:
            self.add(path, f, "uniqueItems_added", (PRODUCER,), "items must be unique now", a, b)

    def enum(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        a, b = old.get("enum"), new.get("enum")
        if a is None and b is None:
            return
        if a is None:
            self.add(path, f, "enum_added", (PRODUCER,), f"limited to {b}", a, b)
            return
        if b is None:
            self.add(path, f, "enum_removed", (CONSUMER,), f"no longer limited to {a}", a, b)
            return
        before = {fingerprint(v): v for v in a}
        after = {fingerprint(v): v for v in b}
        for key in after.keys() - before.keys():
            value = after[key]
            self.add(path, f, "enum_value_added", (CONSUMER,), f"new value {value!r}", None, value)
        for key in before.keys() - after.keys():
            value = before[key]
            self.add(path, f, "enum_value_removed", (PRODUCER,), f"value {value!r} gone", value)

    def objects(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        old_props = old.get("properties") or {}
        new_props = new.get("properties") or {}
        old_req = set(old.get("required") or [])
        new_req = set(new.get("required") or [])
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if not isinstance(old_props, Mapping) or not isinstance(new_props, Mapping):
            return
        for name in sorted(set(old_props) | set(new_props) | old_req | new_req):
            sub_path, sub_field = _child(path, name), _join(f, name)
            in_old, in_new = name in old_props, name in new_props
            if in_old and in_new:
                self.node(old_props[name], new_props[name], sub_path, sub_field)
            elif in_old:
                if new_extra is False:
                    self.add(
                        sub_path,
                        sub_field,
                        "property_removed_from_closed_model",
                        (PRODUCER,),
                        f"property {name!r} removed and refused now",
                    )
                else:
                    self.add(
                        sub_path,
                        sub_field,
                        "property_removed",
                        (CONSUMER,),
                        f"property {name!r} removed: any value is admitted now",
                    )
                    if new_extra is not True:
                        self.node(old_props[name], new_extra, sub_path, sub_field)
            elif in_new:
                if old_extra is False:
                    self.add(
                        sub_path,
                        sub_field,
                        "property_added_to_closed_model",
                        (CONSUMER,),
                        f"property {name!r} added where no other property was allowed",
                    )
                elif old_extra is True or old_extra == {}:
                    if _as_schema(new_props[name]) not in (True, {}):
                        self.add(
                            sub_path,
                            sub_field,
                            "property_added_to_open_model",
                            (),
                            f"property {name!r} added; documents that already carry it must "
                            "match (see the replay)",
                        )
                else:
                    self.node(old_extra, new_props[name], sub_path, sub_field)
            was, now = name in old_req, name in new_req
            if was and not now:
                self.add(
                    sub_path,
                    sub_field,
                    "property_no_longer_required",
                    (CONSUMER,),
                    f"property {name!r} may be missing now",
                )
            elif now and not was:
                rule = "required_property_added" if not in_old else "property_became_required"
                self.add(sub_path, sub_field, rule, (PRODUCER,), f"property {name!r} required now")
        self.additional(old_extra, new_extra, path, f)
        self.dependencies(old, new, path, f)

    def additional(self, old_extra: Any, new_extra: Any, path: str, f: str) -> None:
        if fingerprint(old_extra) == fingerprint(new_extra):
            return
        if old_extra is False:
            self.add(
                path,
                f,
                "additional_properties_opened",
                (CONSUMER,),
                "closed content model opened: unknown properties admitted",
                old_extra,
                new_extra,
            )
        elif new_extra is False:
            self.add(
                path,
                f,
                "additional_properties_closed",
                (PRODUCER,),
                "content model closed: unknown properties refused",
                old_extra,
                new_extra,
            )
        else:
            self.node(old_extra, new_extra, _child(path, "*"), _join(f, "*"))

    def dependencies(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str
    ) -> None:
        old_req, old_schemas = _dependencies(old)
        new_req, new_schemas = _dependencies(new)
        for name in sorted(set(old_req) | set(new_req)):
            before, after = set(old_req.get(name, ())), set(new_req.get(name, ()))
            for dep in sorted(after - before):
                self.add(
                    _child(path, dep),
                    _join(f, dep),
                    "dependency_added",
                    (PRODUCER,),
                    f"{dep!r} required whenever {name!r} is present",
                )
            for dep in sorted(before - after):
                self.add(
                    _child(path, dep),
                    _join(f, dep),
                    "dependency_removed",
                    (CONSUMER,),
                    f"{dep!r} no longer required when {name!r} is present",
                )
        for name in sorted(set(old_schemas) | set(new_schemas)):
            self.node(old_schemas.get(name, True), new_schemas.get(name, True), path, f)

    def arrays(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        old_tuple, old_rest = _items(old)
        new_tuple, new_rest = _items(new)
        for i in range(max(len(old_tuple), len(new_tuple))):
            a = old_tuple[i] if i < len(old_tuple) else old_rest
            b = new_tuple[i] if i < len(new_tuple) else new_rest
            self.node(a, b, f"{path}[{i}]", f)
        if old_rest is not None or new_rest is not None:
            a = True if old_rest is None else old_rest
            b = True if new_rest is None else new_rest
            self.node(a, b, f"{path}[*]", f)

    def combinations(
        self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str
    ) -> None:
        for keyword in ("anyOf", "oneOf"):
            a, b = old.get(keyword), new.get(keyword)
            if a is None and b is None:
                continue
            if a is None or b is None:
                bare_old = {k: v for k, v in old.items() if k != keyword}
                bare_new = {k: v for k, v in new.items() if k != keyword}
                if b is not None and any(fingerprint(x) == fingerprint(bare_old) for x in b):
                    self.add(path, f, f"{keyword}_extended", (CONSUMER,), f"{keyword} introduced")
                elif a is not None and any(fingerprint(x) == fingerprint(bare_new) for x in a):
                    self.add(path, f, f"{keyword}_narrowed", (PRODUCER,), f"{keyword} dropped")
                else:
                    self.add(path, f, f"{keyword}_changed", BOTH, f"{keyword} added or removed")
                continue
            matched_old, rest_new = _match(a, b)
            rest_old = [x for i, x in enumerate(a) if i not in matched_old]
            for x, y in zip(rest_old, rest_new, strict=False):
                self.node(x, y, path, f)
            if len(rest_new) > len(rest_old):
                extra = len(rest_new) - len(rest_old)
                self.add(
                    path,
                    f,
                    f"{keyword}_extended",
                    (CONSUMER,),
                    f"{extra} {keyword} branch(es) added",
                )
            elif len(rest_old) > len(rest_new):
                gone = len(rest_old) - len(rest_new)
                self.add(
                    path,
                    f,
                    f"{keyword}_narrowed",
                    (PRODUCER,),
                    f"{gone} {keyword} branch(es) removed",
                )
        a, b = old.get("allOf") or [], new.get("allOf") or []
        if a or b:
            matched_old, rest_new = _match(a, b)
            rest_old = [x for i, x in enumerate(a) if i not in matched_old]
            for x, y in zip(rest_old, rest_new, strict=False):
                self.node(x, y, path, f)
            for x in rest_old[len(rest_new) :]:
                self.node(x, True, path, f)  # a conjunct dropped: its constraints loosen
            for y in rest_new[len(rest_old) :]:
                self.node(True, y, path, f)  # a conjunct added: its constraints tighten

    def negation(self, old: Mapping[str, Any], new: Mapping[str, Any], path: str, f: str) -> None:
        a, b = old.get("not"), new.get("not")
        if fingerprint(a) != fingerprint(b):
            self.add(path, f, "not_changed", BOTH, "'not' changed", a, b)


# -- pure helpers ---------------------------------------------------------------------------


def _as_schema(schema: Any) -> Any:
    if schema is True or schema is None:
        return {}
    if schema is False:
        return False
    if isinstance(schema, Mapping):
        return schema
    return {}


def _constraining(rest: Mapping[str, Any]) -> bool:
    ignored = {"description", "title", "$comment", "examples", "default", "$id", "$schema"}
    return any(k not in ignored for k in rest)


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        raise SchemaError(f"$ref {ref!r}: only local references (#/...) are supported")
    node = root
    for raw in ref[1:].split("/")[1:] if ref not in ("#", "#/") else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise SchemaError(f"$ref {ref!r} does not resolve in the schema")
    return node


def _types(schema: Mapping[str, Any]) -> set[str]:
    value = schema.get("type")
    if value is None:
        return set(_TYPES)
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _divides(a: float, b: float) -> bool:
    ratio = b / a
    return abs(ratio - round(ratio)) < 1e-9


def _dependencies(schema: Mapping[str, Any]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    required: dict[str, list[str]] = {}
    schemas: dict[str, Any] = {}
    for keyword in ("dependencies", "dependentRequired", "dependentSchemas"):
        value = schema.get(keyword)
        if not isinstance(value, Mapping):
            continue
        for name, dep in value.items():
            if isinstance(dep, list):
                required.setdefault(name, []).extend(str(d) for d in dep)
            else:
                schemas[name] = dep
    return required, schemas


def _items(schema: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """(positional item schemas, the schema of the rest or None)."""
    if "prefixItems" in schema:
        return list(schema["prefixItems"] or []), schema.get("items")
    items = schema.get("items")
    if isinstance(items, list):
        return list(items), schema.get("additionalItems")
    return [], items


def _match(old: list[Any], new: list[Any]) -> tuple[set[int], list[Any]]:
    """Pair identical branches; (indexes of old ones paired, new ones left over)."""
    prints = [fingerprint(x) for x in old]
    used: set[int] = set()
    rest: list[Any] = []
    for branch in new:
        key = fingerprint(branch)
        for i, p in enumerate(prints):
            if i not in used and p == key:
                used.add(i)
                break
        else:
            rest.append(branch)
    return used, rest


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if name.isidentifier() or name == "*" else f"{path}[{name!r}]"


def _join(field: str, name: str) -> str:
    return f"{field}.{name}" if field else name


def schema_fields(schema: Any, root: Any | None = None) -> Iterator[str]:
    """Every dotted field a schema defines (nested objects and array items included)."""
    root = schema if root is None else root
    seen: set[int] = set()

    def walk(node: Any, prefix: str, depth: int) -> Iterator[str]:
        hops = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and hops < 20:
            try:
                node = _pointer(root, node["$ref"])
            except SchemaError:
                return
            hops += 1
        if not isinstance(node, Mapping) or id(node) in seen or depth > 32:
            return
        seen.add(id(node))
        props = node.get("properties")
        if isinstance(props, Mapping):
            for name, sub in props.items():
                field = _join(prefix, name)
                yield field
                yield from walk(sub, field, depth + 1)
        for keyword in ("anyOf", "oneOf", "allOf", "prefixItems"):
            for sub in node.get(keyword) or []:
                yield from walk(sub, prefix, depth + 1)
        items = node.get("items")
        for sub in items if isinstance(items, list) else [items]:
            yield from walk(sub, prefix, depth + 1)
        seen.discard(id(node))

    yield from walk(schema, "", 0)
