"""The compatibility checker: every rule, both directions, at the top, nested, in arrays and
behind a $ref."""

from __future__ import annotations

from typing import Any

import pytest

from interlink.features.contracts.diff import (
    CONSUMER,
    PRODUCER,
    SchemaError,
    compare,
    schema_fields,
)

C, P, BOTH, NOTE = (CONSUMER,), (PRODUCER,), (CONSUMER, PRODUCER), ()

STR = {"type": "string"}
OBJ_K = {"type": "object", "properties": {"k": STR}}
CLOSED_K = {**OBJ_K, "additionalProperties": False}

# (name, current fragment, proposed fragment, what current → proposed breaks,
#  what proposed → current breaks): rules as {rule: sides}.
CASES: list[tuple[str, Any, Any, dict[str, tuple[str, ...]], dict[str, tuple[str, ...]]]] = [
    ("type widened", STR, {"type": ["string", "null"]}, {"type_widened": C}, {"type_narrowed": P}),
    ("type changed", STR, {"type": "integer"}, {"type_changed": BOTH}, {"type_changed": BOTH}),
    (
        "integer to number",
        {"type": "integer"},
        {"type": "number"},
        {"type_widened": C},
        {"type_narrowed": P},
    ),
    ("type dropped", STR, {}, {"type_widened": C}, {"type_narrowed": P}),
    (
        "minimum lowered",
        {"type": "number", "minimum": 0},
        {"type": "number", "minimum": -10},
        {"minimum_lowered": C},
        {"minimum_raised": P},
    ),
    (
        "exclusiveMinimum removed",
        {"type": "number", "exclusiveMinimum": 0},
        {"type": "number"},
        {"exclusiveMinimum_removed": C},
        {"exclusiveMinimum_added": P},
    ),
    (
        "maximum raised",
        {"type": "number", "maximum": 100},
        {"type": "number", "maximum": 200},
        {"maximum_raised": C},
        {"maximum_lowered": P},
    ),
    (
        "exclusiveMaximum lowered",
        {"type": "number", "exclusiveMaximum": 10},
        {"type": "number", "exclusiveMaximum": 5},
        {"exclusiveMaximum_lowered": P},
        {"exclusiveMaximum_raised": C},
    ),
    (
        "minLength added",
        STR,
        {**STR, "minLength": 1},
        {"minLength_added": P},
        {"minLength_removed": C},
    ),
    (
        "maxLength raised",
        {**STR, "maxLength": 10},
        {**STR, "maxLength": 20},
        {"maxLength_raised": C},
        {"maxLength_lowered": P},
    ),
    (
        "pattern dropped",
        {**STR, "pattern": "^[A-Z]{3}$"},
        STR,
        {"pattern_removed": C},
        {"pattern_added": P},
    ),
    (
        "pattern changed",
        {**STR, "pattern": "^a"},
        {**STR, "pattern": "^b"},
        {"pattern_changed": BOTH},
        {"pattern_changed": BOTH},
    ),
    (
        "format added",
        STR,
        {**STR, "format": "date-time"},
        {"format_added": P},
        {"format_removed": C},
    ),
    ("const added", STR, {**STR, "const": "x"}, {"const_added": P}, {"const_removed": C}),
    (
        "multipleOf tightened",
        {"type": "number", "multipleOf": 2},
        {"type": "number", "multipleOf": 4},
        {"multipleOf_tightened": P},
        {"multipleOf_loosened": C},
    ),
    (
        "multipleOf changed",
        {"type": "number", "multipleOf": 2},
        {"type": "number", "multipleOf": 3},
        {"multipleOf_changed": BOTH},
        {"multipleOf_changed": BOTH},
    ),
    (
        "maxItems raised",
        {"type": "array", "maxItems": 5},
        {"type": "array", "maxItems": 10},
        {"maxItems_raised": C},
        {"maxItems_lowered": P},
    ),
    (
        "minItems added",
        {"type": "array"},
        {"type": "array", "minItems": 1},
        {"minItems_added": P},
        {"minItems_removed": C},
    ),
    (
        "uniqueItems added",
        {"type": "array"},
        {"type": "array", "uniqueItems": True},
        {"uniqueItems_added": P},
        {"uniqueItems_removed": C},
    ),
    (
        "maxProperties raised",
        {"type": "object", "maxProperties": 2},
        {"type": "object", "maxProperties": 3},
        {"maxProperties_raised": C},
        {"maxProperties_lowered": P},
    ),
    (
        "enum value added",
        {**STR, "enum": ["pay", "refund"]},
        {**STR, "enum": ["pay", "refund", "reversal"]},
        {"enum_value_added": C},
        {"enum_value_removed": P},
    ),
    (
        "enum introduced",
        STR,
        {**STR, "enum": ["pay"]},
        {"enum_added": P},
        {"enum_removed": C},
    ),
    (
        "anyOf extended",
        {"anyOf": [STR]},
        {"anyOf": [STR, {"type": "number"}]},
        {"anyOf_extended": C},
        {"anyOf_narrowed": P},
    ),
    (
        "oneOf extended",
        {"oneOf": [STR, {"type": "null"}]},
        {"oneOf": [STR, {"type": "null"}, {"type": "number"}]},
        {"oneOf_extended": C},
        {"oneOf_narrowed": P},
    ),
    (
        "anyOf introduced around the old schema",
        STR,
        {"anyOf": [STR, {"type": "number"}]},
        {"anyOf_extended": C},
        {"anyOf_narrowed": P},
    ),
    (
        "anyOf branch tightened in place",
        {"anyOf": [STR, {"type": "number"}]},
        {"anyOf": [{**STR, "maxLength": 3}, {"type": "number"}]},
        {"maxLength_added": P},
        {"maxLength_removed": C},
    ),
    (
        "allOf extended",
        {"allOf": [STR]},
        {"allOf": [STR, {"minLength": 2}]},
        {"minLength_added": P},
        {"minLength_removed": C},
    ),
    (
        "not changed",
        {"not": STR},
        {"not": {"type": "null"}},
        {"not_changed": BOTH},
        {"not_changed": BOTH},
    ),
    ("schema closed", True, False, {"schema_closed": P}, {"schema_opened": C}),
    (
        "closed content model opened",
        CLOSED_K,
        OBJ_K,
        {"additional_properties_opened": C},
        {"additional_properties_closed": P},
    ),
    (
        "additionalProperties schema widened",
        {"type": "object", "additionalProperties": STR},
        {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
        {"type_widened": C},
        {"type_narrowed": P},
    ),
    (
        "property removed from an open model",
        OBJ_K,
        {"type": "object", "properties": {}},
        {"property_removed": C},
        {},  # property_added_to_open_model: a note, not a break
    ),
    (
        "property removed from a closed model",
        CLOSED_K,
        {"type": "object", "properties": {}, "additionalProperties": False},
        {"property_removed_from_closed_model": P},
        {"property_added_to_closed_model": C},
    ),
    (
        "property no longer required",
        {**OBJ_K, "required": ["k"]},
        OBJ_K,
        {"property_no_longer_required": C},
        {"property_became_required": P},
    ),
    (
        "property added as required",
        {"type": "object", "properties": {}},
        {**OBJ_K, "required": ["k"]},
        {"required_property_added": P},
        {"property_removed": C, "property_no_longer_required": C},
    ),
    (
        "nested property retyped",
        {"type": "object", "properties": {"k": {"type": "object", "properties": {"j": STR}}}},
        {
            "type": "object",
            "properties": {"k": {"type": "object", "properties": {"j": {"type": "number"}}}},
        },
        {"type_changed": BOTH},
        {"type_changed": BOTH},
    ),
    (
        "dependentRequired added",
        {"type": "object"},
        {"type": "object", "dependentRequired": {"a": ["b"]}},
        {"dependency_added": P},
        {"dependency_removed": C},
    ),
    (
        "dependencies (draft 7) added",
        {"type": "object"},
        {"type": "object", "dependencies": {"a": ["b"]}},
        {"dependency_added": P},
        {"dependency_removed": C},
    ),
    (
        "dependentSchemas tightened",
        {"type": "object", "dependentSchemas": {"a": {"properties": {"b": STR}}}},
        {
            "type": "object",
            "dependentSchemas": {"a": {"properties": {"b": {**STR, "maxLength": 2}}}},
        },
        {"maxLength_added": P},
        {"maxLength_removed": C},
    ),
    (
        "array items widened",
        {"type": "array", "items": STR},
        {"type": "array", "items": {"type": ["string", "number"]}},
        {"type_widened": C},
        {"type_narrowed": P},
    ),
    (
        "tuple item narrowed",
        {"type": "array", "prefixItems": [{"type": ["string", "null"]}]},
        {"type": "array", "prefixItems": [STR]},
        {"type_narrowed": P},
        {"type_widened": C},
    ),
    (
        "draft 7 tuple items",
        {"type": "array", "items": [STR], "additionalItems": False},
        {"type": "array", "items": [STR]},
        {"schema_opened": C},
        {"schema_closed": P},
    ),
]


def top(fragment: Any) -> tuple[Any, str]:
    return {"type": "object", "properties": {"x": fragment}}, "$.x"


def nested(fragment: Any) -> tuple[Any, str]:
    inner = {
        "type": "object",
        "properties": {"b": {"type": "object", "properties": {"x": fragment}}},
    }
    return {"type": "object", "properties": {"a": inner}}, "$.a.b.x"


def in_array(fragment: Any) -> tuple[Any, str]:
    lines = {"type": "array", "items": {"type": "object", "properties": {"x": fragment}}}
    return {"type": "object", "properties": {"lines": lines}}, "$.lines[*].x"


def by_ref(fragment: Any) -> tuple[Any, str]:
    return {
        "$defs": {"X": fragment},
        "type": "object",
        "properties": {"x": {"$ref": "#/$defs/X"}},
    }, "$.x"


WRAPPERS = {"top": top, "nested": nested, "array": in_array, "ref": by_ref}


def breaks(old: Any, new: Any, prefix: str) -> dict[str, tuple[str, ...]]:
    changes = compare(old, new)
    for change in changes:
        assert change.path.startswith(prefix), change
    return {c.rule: c.sides for c in changes if c.sides}


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=list(WRAPPERS))
@pytest.mark.parametrize(
    ("name", "old", "new", "forward", "backward"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_both_directions(
    wrap: Any,
    name: str,
    old: Any,
    new: Any,
    forward: dict[str, tuple[str, ...]],
    backward: dict[str, tuple[str, ...]],
) -> None:
    current, prefix = wrap(old)
    proposed, _ = wrap(new)
    assert breaks(current, proposed, prefix) == forward
    assert breaks(proposed, current, prefix) == backward


def test_identical_and_cosmetic_changes_break_nothing() -> None:
    schema = {"type": "object", "properties": {"a": {**STR, "maxLength": 3}}, "required": ["a"]}
    assert compare(schema, schema) == []
    described = {**schema, "description": "now with words", "title": "Order"}
    assert compare(schema, described) == []


def test_optional_property_added_to_open_model_is_a_note() -> None:
    [change] = compare({"type": "object"}, {"type": "object", "properties": {"memo": STR}})
    assert change.rule == "property_added_to_open_model"
    assert change.sides == ()


def test_field_names_drop_array_markers() -> None:
    old, _ = in_array(STR)
    new, _ = in_array({"type": "number"})
    [change] = compare(old, new)
    assert (change.path, change.field) == ("$.lines[*].x", "lines.x")


def test_recursive_ref_terminates() -> None:
    tree = {
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
        "$ref": "#/$defs/node",
    }
    wider = {
        "$defs": {
            "node": {
                "type": ["object", "null"],
                "properties": {"child": {"$ref": "#/$defs/node"}},
            }
        },
        "$ref": "#/$defs/node",
    }
    rules = {(c.path, c.rule) for c in compare(tree, wider)}
    assert ("$", "type_widened") in rules
    assert ("$.child", "type_widened") in rules


@pytest.mark.parametrize("ref", ["other.json#/x", "#/$defs/missing"])
def test_unresolvable_ref_is_refused(ref: str) -> None:
    schema = {"type": "object", "properties": {"x": {"$ref": ref}}}
    with pytest.raises(SchemaError):
        compare(schema, {"type": "object", "properties": {"x": STR}})


def test_schema_fields_lists_nested_and_array_fields() -> None:
    schema, _ = in_array(STR)
    schema["properties"]["payee"] = {"$ref": "#/$defs/payee"}
    schema["$defs"] = {"payee": {"type": "object", "properties": {"account": STR}}}
    assert set(schema_fields(schema)) == {"lines", "lines.x", "payee", "payee.account"}
