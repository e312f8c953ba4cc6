"""The OpenAPI document names its operations, tags them, declares the bearer scheme once and
types the core answers; the typed routes answer the same JSON as the service layer gives."""

from __future__ import annotations

import re

from interlink.web.api import OPERATION_IDS

DOCS = "/api/v1/documents"
CORE = (
    "submitDocuments",
    "getDocument",
    "findDocuments",
    "listDeliveries",
    "getDelivery",
    "repushDelivery",
    "repushDeliveries",
    "pauseFlow",
    "resumeFlow",
    "getStatus",
    "listEvents",
    "getHealth",
)


def operations(schema):
    for path, methods in schema["paths"].items():
        for method, operation in methods.items():
            yield method, path, operation


async def test_operations_are_named_tagged_and_secured(api):
    status, schema, _ = await api.request("GET", "/openapi.json", token=None)
    assert status == 200
    assert schema["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["bearerAuth"]["description"],
    }
    ids = []
    for method, path, operation in operations(schema):
        ids.append(operation["operationId"])
        assert re.fullmatch(r"[a-z]+(?:[A-Z][a-z]*)*", operation["operationId"]), path
        assert OPERATION_IDS[method.upper(), path] == operation["operationId"]
        assert operation["tags"] and "default" not in operation["tags"], path
        headers = [
            p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"
        ]
        assert "authorization" not in headers, path
        if path.startswith("/api/"):
            assert operation["security"] == [{"bearerAuth": []}], path
        else:
            assert "security" not in operation, path
        for response in operation["responses"].values():
            assert "*/*" not in response.get("content", {}), path
    assert len(ids) == len(set(ids))
    assert set(CORE) <= set(ids)
    tags = {t["name"] for t in schema["tags"]}
    assert {"documents", "deliveries", "flows", "systems", "maintenance", "incidents"} <= tags
    assert {"contracts", "admin"} <= tags


async def test_core_answers_are_typed_and_ndjson_is_described(api):
    _, schema, _ = await api.request("GET", "/openapi.json", token=None)
    by_id = {op["operationId"]: op for _m, _p, op in operations(schema)}
    for name in CORE:
        answer = next(r for code, r in by_id[name]["responses"].items() if code.startswith("2"))
        described = answer["content"]["application/json"]["schema"]
        assert "$ref" in str(described), (name, described)
    body = by_id["submitDocuments"]["requestBody"]["content"]
    assert body["application/x-ndjson"]["schema"]["format"] == "binary"
    assert body["application/x-ndjson"]["x-item-schema"] == {
        "$ref": "#/components/schemas/DocumentIn"
    }
    assert "application/json" in body


async def test_typed_routes_answer_what_the_service_gives(api):
    order = {"type": "payment_order", "payload": {"order_no": "PO-5", "amount": "10.00"}}
    _, submitted, _ = await api.request("POST", DOCS, json=order)
    hub = api.hub
    _, document, _ = await api.request("GET", f"{DOCS}/{submitted['id']}")
    assert document == hub.document(submitted["id"]).to_json()
    delivery_id = document["deliveries"][0]["id"]
    _, delivery, _ = await api.request("GET", f"/api/v1/deliveries/{delivery_id}")
    assert delivery == hub.delivery(delivery_id).to_json(with_attempts=True)
    assert "attempt_log" in delivery
    _, page, _ = await api.request("GET", "/api/v1/deliveries?limit=1")
    assert page["next"] is not None and set(page["items"][0]) == set(delivery) - {"attempt_log"}
    _, status, _ = await api.request("GET", "/api/v1/status")
    assert status == hub.status()
    _, paused, _ = await api.request("POST", "/api/v1/flows/trading-treasury/pause", json={})
    assert paused == {"flow": "trading-treasury", "hold": "paused", "held": 1}
    _, resumed, _ = await api.request("POST", "/api/v1/flows/trading-treasury/resume", json={})
    assert resumed == {"flow": "trading-treasury", "hold": None, "released": 1}


# Answers that are not JSON: files and text, each with its own media type.
DOWNLOADS = {
    "exportIncidents": {"text/csv", "text/markdown"},
    "getAttachment": {"application/octet-stream"},
    "getChangeAttachment": {"application/octet-stream"},
    "getMaintenanceCalendar": {"text/calendar"},
    "getMetrics": {"text/plain"},
}


def typed(schema: dict) -> bool:
    """A schema a generator can type: a reference, or a type whose parts are typed (an object
    without properties, such as ``dict[str, Any]``, or ``{}`` is not)."""
    if "$ref" in schema:
        return True
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return all(typed(part) for part in schema[key])
    if schema.get("type") == "array":
        return typed(schema.get("items", {}))
    if schema.get("type") == "object":
        return "properties" in schema
    return "type" in schema


def test_typed_tells_an_open_answer_from_a_typed_one():
    assert not typed({})
    assert not typed({"type": "object", "additionalProperties": True})
    assert not typed({"type": "array", "items": {"type": "object", "additionalProperties": True}})
    assert typed({"type": "array", "items": {"$ref": "#/components/schemas/DrillRun"}})
    assert typed({"anyOf": [{"$ref": "#/components/schemas/Window"}, {"type": "null"}]})


async def test_every_json_answer_is_typed(api):
    _, schema, _ = await api.request("GET", "/openapi.json", token=None)
    seen = set()
    for method, path, operation in operations(schema):
        name = operation["operationId"]
        answers = {c: r for c, r in operation["responses"].items() if c.startswith("2")}
        assert answers, (method, path)
        if name in DOWNLOADS:
            seen.add(name)
            media = {m for r in answers.values() for m in r.get("content", {})}
            assert DOWNLOADS[name] <= media and "application/json" not in media, (name, media)
            continue
        for code, answer in answers.items():
            described = answer["content"]["application/json"]["schema"]
            assert typed(described), (name, code, described)
    assert seen == set(DOWNLOADS)
