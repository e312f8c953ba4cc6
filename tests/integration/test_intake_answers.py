"""What intake answers a person reading it: contract violations name the field and the reason,
and an empty batch is refused (issue 14). A real uvicorn server on loopback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from interlink.service import Hub
from tests.conftest import TOPOLOGY, Api

DOCS = "/api/v1/documents"

CONTRACT = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["order_no", "amount"],
    "properties": {
        "order_no": {"type": "string"},
        "amount": {"type": "number", "minimum": 0},
        "paid_at": {"type": "string", "format": "date-time"},
        "currency": {"enum": ["CNY", "USD"]},
    },
}


@pytest.fixture
async def api(make_hub: Callable[[str], Hub], tmp_path: Path) -> AsyncIterator[Api]:
    (tmp_path / "order.json").write_text(json.dumps(CONTRACT))
    text = TOPOLOGY.replace(
        "    amount: amount\n", "    amount: amount\n    contract: order.json\n", 1
    ).replace("    deadline: pay_before\n", "", 1)
    server = await Api(make_hub(text)).start()
    yield server
    await server.stop()


def order(**payload: object) -> dict[str, object]:
    return {"type": "payment_order", "payload": {"order_no": "PO-1", "amount": 10, **payload}}


async def test_a_bad_date_time_names_the_field_and_why(api: Api) -> None:
    status, body, _ = await api.request("POST", DOCS, json=order(paid_at="2026-13-01"))
    assert status == 422
    assert isinstance(body, dict)
    assert body["error"]["problems"] == [
        {
            "path": "$.paid_at",
            "message": '"2026-13-01" is not a valid date-time (RFC 3339, '
            "e.g. 2026-01-31T17:00:00+08:00)",
        }
    ]


async def test_every_violation_of_a_document_is_listed_with_its_field(api: Api) -> None:
    status, body, _ = await api.request(
        "POST",
        DOCS,
        json={"type": "payment_order", "payload": {"order_no": "PO-2", "currency": "EUR"}},
    )
    assert status == 422
    assert isinstance(body, dict)
    assert body["error"]["problems"] == [
        {"path": "$.amount", "message": "is required but missing"},
        {"path": "$.currency", "message": '"EUR" is not one of the allowed values: "CNY", "USD"'},
    ]


async def test_in_a_batch_each_refused_item_names_its_fields(api: Api) -> None:
    status, body, _ = await api.request(
        "POST", DOCS, json=[order(), order(order_no="PO-3", amount=-5)]
    )
    assert status == 202
    assert isinstance(body, list)
    assert [item["status"] for item in body] == [202, 422]
    assert body[1]["error"]["problems"] == [
        {"path": "$.amount", "message": "-5 is less than the minimum 0"}
    ]


async def test_an_empty_array_is_422_and_stores_nothing(api: Api) -> None:
    status, body, _ = await api.request("POST", DOCS, data=b"[]")
    assert status == 422
    assert isinstance(body, dict)
    assert body["error"]["code"] == "invalid"
    assert body["error"]["message"] == "the batch is empty: send at least one document"
    assert api.hub.documents("PO-1") == []


@pytest.mark.parametrize("body", [b"", b"\n\n  \n"])
async def test_an_empty_ndjson_body_is_400(api: Api, body: bytes) -> None:
    status, answer, _ = await api.request(
        "POST", DOCS, data=body, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 400
    assert isinstance(answer, dict)
    assert answer["error"]["message"].startswith("empty body")
