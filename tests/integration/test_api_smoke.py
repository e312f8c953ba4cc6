from __future__ import annotations


async def test_submit_over_http(api):
    status, doc, _ = await api.request(
        "POST",
        "/api/v1/documents",
        json={"type": "payment_order", "payload": {"order_no": "A1", "amount": "1"}},
    )
    assert status == 202, doc
    assert doc["revision"] == 1
    status, body, _ = await api.request("GET", f"/api/v1/documents/{doc['id']}")
    assert status == 200 and body["id"] == doc["id"]
    status, body, headers = await api.request("POST", "/api/v1/documents", token=None, data=b"{")
    assert status == 401 and headers.get("WWW-Authenticate") == "Bearer"
    status, body, _ = await api.request("POST", "/api/v1/documents", data=b"{bad")
    assert status == 400 and body["error"]["code"] == "bad_request"
    status, body, _ = await api.request("GET", "/api/v1/status")
    assert body["flows"]["trading-treasury"]["pending"] == 1
    status, body, _ = await api.request("GET", "/openapi.json")
    assert status == 200
