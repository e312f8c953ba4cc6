"""The HTTP API over a real uvicorn server on loopback: every error code, and nothing stored."""

from __future__ import annotations

import io

import orjson
import pytest
from sqlalchemy import func, select

from interlink.features.registry import FEATURES
from interlink.store.schema import deliveries, documents
from tests.conftest import TOKEN

DOCS = "/api/v1/documents"


def order(no: str = "PO-1", **extra: object) -> dict[str, object]:
    return {"type": "payment_order", "payload": {"order_no": no, "amount": "10.00", **extra}}


def stored(hub) -> tuple[int, int]:
    def count(conn):
        return (
            conn.execute(select(func.count()).select_from(documents)).scalar(),
            conn.execute(select(func.count()).select_from(deliveries)).scalar(),
        )

    return hub.store.read_sync(count)


async def test_accepts_one_document_with_its_fan_out(api):
    status, body, _ = await api.request("POST", DOCS, json=order())
    assert status == 202
    assert body["key"] == "PO-1" and body["revision"] == 1 and body["duplicate"] is False
    assert sorted(d["flow"] for d in body["deliveries"]) == ["trading-finance", "trading-treasury"]
    assert all(d["status"] == "pending" for d in body["deliveries"])
    assert stored(api.hub) == (1, 2)


async def test_identical_resubmission_returns_the_original(api):
    _, first, _ = await api.request("POST", DOCS, json=order())
    status, again, _ = await api.request("POST", DOCS, json=order())
    assert status == 202 and again["id"] == first["id"] and again["duplicate"] is True
    assert stored(api.hub) == (1, 2)


async def test_new_payload_for_the_same_key_is_a_revision(api):
    await api.request("POST", DOCS, json=order(kind="pay"))
    status, body, _ = await api.request("POST", DOCS, json=order(kind="refund"))
    assert status == 202 and body["revision"] == 2
    # The ordered flow holds revision 2 behind revision 1; the other flow does not.
    states = {d["flow"]: (d["status"], d["reason"]) for d in body["deliveries"]}
    assert states == {
        "trading-treasury": ("held", "blocked"),
        "trading-finance": ("pending", None),
    }


@pytest.mark.parametrize(
    ("body", "headers", "token", "code", "error"),
    [
        (b"{not json", {}, TOKEN, 400, "bad_request"),
        (b"", {}, TOKEN, 400, "bad_request"),
        (b"42", {}, TOKEN, 400, "bad_request"),
        (orjson.dumps(order()), {}, None, 401, "unauthorized"),
        (orjson.dumps(order()), {}, "wrong-token", 401, "unauthorized"),
        (orjson.dumps(order()), {"Authorization": "Basic abc"}, None, 401, "unauthorized"),
        (orjson.dumps({"type": "nope", "payload": {}}), {}, TOKEN, 422, "invalid"),
        (orjson.dumps({"type": "payment_order", "payload": []}), {}, TOKEN, 422, "invalid"),
        (orjson.dumps({"type": "payment_order", "payload": {"x": 1}}), {}, TOKEN, 422, "invalid"),
        (
            orjson.dumps(order(pay_before="next tuesday")),
            {},
            TOKEN,
            422,
            "invalid",
        ),
        (orjson.dumps(order(amount="ten")), {}, TOKEN, 422, "invalid"),
    ],
)
async def test_bad_input_is_refused_and_nothing_is_stored(api, body, headers, token, code, error):
    status, answer, _ = await api.request("POST", DOCS, data=body, headers=headers, token=token)
    assert status == code, answer
    assert answer["error"]["code"] == error
    assert answer["error"]["message"]
    assert "Traceback" not in orjson.dumps(answer).decode()
    assert stored(api.hub) == (0, 0)


async def test_a_system_without_a_flow_for_the_type_is_forbidden(write_topology, clock):
    from interlink.service import Hub
    from interlink.transports.http import HttpTransport
    from tests.conftest import Api

    topology = write_topology(
        """\
        database: sqlite:///hub.db
        systems:
          trading: {token_env: TEST_TRADING_TOKEN}
          member: {token_env: TEST_MEMBER_TOKEN}
          treasury: {url: "http://127.0.0.1:9"}
        documents:
          payment_order: {key: order_no}
        flows:
          trading-treasury: {from: trading, to: treasury, document: payment_order}
        """
    )
    import os

    os.environ["TEST_MEMBER_TOKEN"] = "member-token"
    try:
        hub = Hub(topology, clock=clock, transport=HttpTransport(), features=FEATURES)
        server = await Api(hub).start()
        try:
            status, body, _ = await server.request("POST", DOCS, json=order(), token="member-token")
            assert status == 403 and body["error"]["code"] == "forbidden"
            assert stored(hub) == (0, 0)
        finally:
            await server.stop()
            await hub.close()
    finally:
        del os.environ["TEST_MEMBER_TOKEN"]


async def test_idempotency_key_conflict_is_409(api):
    status, first, _ = await api.request(
        "POST", DOCS, json=order(), headers={"Idempotency-Key": "abc"}
    )
    assert status == 202
    status, again, _ = await api.request(
        "POST", DOCS, json=order(), headers={"Idempotency-Key": "abc"}
    )
    assert status == 202 and again["id"] == first["id"] and again["duplicate"]
    status, body, _ = await api.request(
        "POST", DOCS, json=order(currency="USD"), headers={"Idempotency-Key": "abc"}
    )
    assert status == 409 and body["error"]["code"] == "conflict"
    assert body["error"]["document_id"] == first["id"]
    assert stored(api.hub) == (1, 2)


async def test_idempotency_key_on_a_batch_is_400(api):
    status, _body, _ = await api.request(
        "POST", DOCS, json=[order()], headers={"Idempotency-Key": "abc"}
    )
    assert status == 400
    assert stored(api.hub) == (0, 0)


async def test_oversize_document_is_413(api):
    big = io.BytesIO(orjson.dumps(order(note="x" * (1024 * 1024 + 10))))
    status, body, _ = await api.request(
        "POST", DOCS, data=big, headers={"Content-Type": "application/json"}
    )
    assert status == 413 and body["error"]["code"] == "too_large"
    assert stored(api.hub) == (0, 0)


async def test_a_batch_accepts_and_refuses_each_item_on_its_own(api):
    batch = [order("A"), {"type": "nope", "payload": {}}, order("B"), 7, order("A")]
    status, body, _ = await api.request("POST", DOCS, json=batch)
    assert status == 202
    assert [item["status"] for item in body] == [202, 422, 202, 400, 202]
    assert body[4]["duplicate"] is True and body[4]["id"] == body[0]["id"]
    assert body[1]["error"]["code"] == "invalid"
    assert stored(api.hub) == (2, 4)


async def test_a_batch_with_nothing_accepted_is_422(api):
    status, body, _ = await api.request("POST", DOCS, json=[{"type": "nope", "payload": {}}])
    assert status == 422 and body[0]["status"] == 422
    assert stored(api.hub) == (0, 0)


async def test_ndjson_with_a_malformed_line(api):
    lines = b"\n".join([orjson.dumps(order("A")), b"{broken", orjson.dumps(order("B")), b""])
    status, body, _ = await api.request(
        "POST", DOCS, data=lines, headers={"Content-Type": "application/x-ndjson"}
    )
    assert status == 202
    assert [item["status"] for item in body] == [202, 400, 202]
    assert "line 2" in body[1]["error"]["message"]
    assert stored(api.hub) == (2, 4)


async def test_reading_documents_and_deliveries(api):
    _, doc, _ = await api.request("POST", DOCS, json=order("K-1"))
    status, body, _ = await api.request("GET", f"{DOCS}/{doc['id']}")
    assert status == 200 and body["payload"]["order_no"] == "K-1"
    assert len(body["deliveries"]) == 2
    status, body, _ = await api.request("GET", f"{DOCS}?key=K-1")
    assert [d["id"] for d in body["items"]] == [doc["id"]]
    status, body, _ = await api.request("GET", f"{DOCS}/NOPE")
    assert status == 404 and body["error"]["code"] == "not_found"
    status, body, _ = await api.request("GET", "/api/v1/deliveries?flow=trading-treasury")
    assert status == 200 and len(body["items"]) == 1 and body["next"] is None
    status, body, _ = await api.request("GET", "/api/v1/deliveries?status=bogus")
    assert status == 400 and "unknown status" in body["error"]["message"]
    status, body, _ = await api.request("GET", "/api/v1/deliveries?since=yesterday")
    assert status == 400 and "ISO 8601" in body["error"]["message"]
    status, body, _ = await api.request("GET", "/api/v1/deliveries?flow=nope")
    assert status == 404


async def test_deliveries_are_paged_by_id(api):
    for i in range(5):
        await api.request("POST", DOCS, json=order(f"P-{i}"))
    seen = []
    cursor = ""
    while True:
        _status, body, _ = await api.request(
            "GET", f"/api/v1/deliveries?flow=trading-finance&limit=2{cursor}"
        )
        seen.extend(d["key"] for d in body["items"])
        if body["next"] is None:
            break
        cursor = f"&before={body['next']}"
    assert seen == [f"P-{i}" for i in reversed(range(5))]


async def test_pause_resume_and_repush_over_http(api, treasury, finance):
    _, _doc, _ = await api.request("POST", DOCS, json=order("R-1"))
    status, body, _ = await api.request(
        "POST", "/api/v1/flows/trading-finance/pause", json={"note": "release"}
    )
    assert status == 200 and body["held"] == 1
    status, body, _ = await api.request("GET", "/api/v1/status")
    flow = body["flows"]["trading-finance"]
    assert flow["held"] == {"paused": 1} and flow["hold"]["reason"] == "paused"
    assert flow["hold"]["note"] == "release"
    status, body, _ = await api.request("POST", "/api/v1/flows/trading-finance/resume")
    assert status == 200 and body["released"] == 1
    treasury.respond(422, "account closed")
    await api.hub.engine.drain()
    status, body, _ = await api.request(
        "POST", "/api/v1/repush", json={"flow": "trading-treasury", "dry_run": True}
    )
    assert status == 200 and body["count"] == 1 and body["dry_run"] is True
    dead = body["sample"][0]
    status, body, _ = await api.request("POST", f"/api/v1/deliveries/{dead}/repush")
    assert status == 200 and body["status"] == "pending"
    status, body, _ = await api.request("POST", f"/api/v1/deliveries/{dead}/repush")
    assert status == 400 and "only dead or delivered" in body["error"]["message"]
    status, body, _ = await api.request("POST", "/api/v1/repush", json={"status": "pending"})
    assert status == 400
    status, body, _ = await api.request("POST", "/api/v1/flows/nope/pause")
    assert status == 404
    audit = api.hub.audit()
    assert [a["action"] for a in audit] == ["repush", "resume", "pause"]
    assert all(a["actor"] == "api:admin" for a in audit)  # the fixture's admin token


async def test_admin_token_guards_management_calls(api, monkeypatch):
    monkeypatch.setenv("INTERLINK_ADMIN_TOKEN", "admin-secret")
    status, _, _ = await api.request("GET", "/api/v1/status", token=None)
    assert status == 401
    status, _, _ = await api.request("GET", "/api/v1/status", token="wrong")
    assert status == 401
    # A system's token reads only its own documents: status needs a person's role.
    status, _, _ = await api.request("GET", "/api/v1/status", token=TOKEN)
    assert status == 403
    status, _, _ = await api.request("POST", "/api/v1/flows/trading-finance/pause", token=TOKEN)
    assert status == 403
    status, _body, _ = await api.request(
        "POST", "/api/v1/flows/trading-finance/pause", token="admin-secret"
    )
    assert status == 200
    assert api.hub.audit()[0]["actor"] == "api:admin"


async def test_health_metrics_and_openapi(api):
    status, body, _ = await api.request("GET", "/healthz", token=None)
    assert status == 200 and body["status"] == "ok"
    await api.request("POST", DOCS, json=order())
    status, text, _headers = await api.request("GET", "/metrics", token=None)
    assert status == 200 and "interlink_documents_total" in text
    status, schema, _ = await api.request("GET", "/openapi.json", token=None)
    assert "/api/v1/documents" in schema["paths"]
    status, body, _ = await api.request("GET", "/no/such/route", token=None)
    assert status == 404 and body["error"]["code"] == "not_found"
