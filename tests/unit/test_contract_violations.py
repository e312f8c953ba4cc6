"""Every contract violation names its field (a JSON path) and says why, in words."""

from __future__ import annotations

from typing import Any

import pytest

from interlink.validation import ContractValidator

ORDER: dict[str, Any] = {
    "type": "object",
    "required": ["order_no", "amount"],
    "additionalProperties": False,
    "properties": {
        "order_no": {"type": "string", "pattern": "^PO-[0-9]+$", "minLength": 4},
        "amount": {"type": "number", "minimum": 0, "maximum": 1000, "multipleOf": 0.01},
        "fee": {"type": "number", "exclusiveMinimum": 0},
        "paid_at": {"type": "string", "format": "date-time"},
        "value_date": {"type": "string", "format": "date"},
        "cutoff": {"type": "string", "format": "time"},
        "payer_email": {"type": "string", "format": "email"},
        "currency": {"enum": ["CNY", "USD"]},
        "kind": {"const": "pay"},
        "memo": {"type": "string", "maxLength": 3},
        "lines": {
            "type": "array",
            "minItems": 1,
            "uniqueItems": True,
            "items": {
                "type": "object",
                "required": ["sku"],
                "properties": {"sku": {"type": "string"}},
            },
        },
        "ref": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 2}]},
    },
}
VALID = {"order_no": "PO-1", "amount": 10}


def problems(payload: dict[str, Any], schema: dict[str, Any] = ORDER) -> list[str]:
    return [f"{p['path']}: {p['message']}" for p in ContractValidator(schema).problems(payload)]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            {"paid_at": "2026-13-01"},
            '$.paid_at: "2026-13-01" is not a valid date-time (RFC 3339, '
            "e.g. 2026-01-31T17:00:00+08:00)",
        ),
        (
            {"paid_at": "2026-02-30T10:00:00Z"},
            '$.paid_at: "2026-02-30T10:00:00Z" is not a valid date-time (RFC 3339, '
            "e.g. 2026-01-31T17:00:00+08:00)",
        ),
        (
            {"value_date": "31/01/2026"},
            '$.value_date: "31/01/2026" is not a valid date (RFC 3339 full-date, e.g. 2026-01-31)',
        ),
        ({"cutoff": "5pm"}, '$.cutoff: "5pm" is not a valid time (RFC 3339, e.g. 17:00:00+08:00)'),
        ({"payer_email": "nobody"}, '$.payer_email: "nobody" is not a valid e-mail address'),
        ({"amount": -1}, "$.amount: -1 is less than the minimum 0"),
        ({"amount": 1001}, "$.amount: 1001 is more than the maximum 1000"),
        ({"amount": 1.001}, "$.amount: 1.001 is not a multiple of 0.01"),
        ({"amount": "12"}, '$.amount: expected a number, got a string ("12")'),
        ({"fee": 0}, "$.fee: 0 must be more than 0"),
        ({"order_no": "PX-12"}, '$.order_no: "PX-12" does not match the pattern "^PO-[0-9]+$"'),
        ({"currency": "EUR"}, '$.currency: "EUR" is not one of the allowed values: "CNY", "USD"'),
        ({"kind": "refund"}, '$.kind: must be "pay", got "refund"'),
        ({"memo": "long"}, '$.memo: "long" has 4 characters; at most 3 allowed'),
        ({"lines": []}, "$.lines: has 0 items; at least 1 needed"),
        ({"lines": [{}]}, "$.lines[0].sku: is required but missing"),
        ({"colour": "red"}, "$.colour: is not a field of the contract"),
        (
            {"ref": "abc"},
            "$.ref: matches none of the allowed forms (the closest: $.ref: expected an "
            'integer, got a string ("abc"))',
        ),
    ],
)
def test_each_violation_names_the_field_and_the_reason(
    extra: dict[str, Any], expected: str
) -> None:
    assert problems({**VALID, **extra}) == [expected]


def test_a_valid_payload_has_no_problems() -> None:
    full = {
        **VALID,
        "paid_at": "2026-01-31T17:00:00+08:00",
        "value_date": "2024-02-29",
        "cutoff": "17:00:00",
        "payer_email": "a@example.com",
        "lines": [{"sku": "A"}],
    }
    assert problems(full) == []


def test_a_missing_required_field_is_named_at_its_own_path() -> None:
    assert problems({"order_no": "PO-1"}) == ["$.amount: is required but missing"]


def test_every_problem_is_listed_sorted_by_path() -> None:
    found = problems({"order_no": "X1", "paid_at": "yesterday", "colour": 1})
    assert [p.split(":")[0] for p in found] == [
        "$.amount",
        "$.colour",
        "$.order_no",
        "$.order_no",
        "$.paid_at",
    ]


def test_a_long_value_is_cut_short_in_the_message() -> None:
    [message] = problems({**VALID, "paid_at": "x" * 500})
    assert len(message) < 200 and "…" in message


@pytest.mark.parametrize(
    "draft",
    [
        "http://json-schema.org/draft-04/schema#",
        "http://json-schema.org/draft-07/schema#",
        "https://json-schema.org/draft/2020-12/schema",
    ],
)
def test_formats_are_reported_under_every_draft(draft: str) -> None:
    schema = {"$schema": draft, "properties": {"at": {"format": "date-time"}}}
    assert problems({"at": "2026-13-01"}, schema) == [
        '$.at: "2026-13-01" is not a valid date-time (RFC 3339, e.g. 2026-01-31T17:00:00+08:00)'
    ]


def test_a_required_field_depending_on_another_is_named() -> None:
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "dependencies": {"refund_of": ["reason"]},
    }
    assert problems({"refund_of": "PO-1"}, schema) == [
        '$.reason: is required when "refund_of" is present'
    ]


def test_a_contract_with_const_compiles() -> None:
    # fastjsonschema cannot word `const` in its quick mode; the contract must still load.
    assert ContractValidator({"properties": {"kind": {"const": "pay"}}}).valid({"kind": "pay"})
