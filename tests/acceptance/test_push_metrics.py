"""``push --pushgateway``: the intake counters of a ``push`` process reach Prometheus through a
Pushgateway (a loopback server speaking its protocol records what arrives)."""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from tests.acceptance.conftest import order, run_cli_async, write
from tests.acceptance.test_serve import free_port


async def test_push_hands_its_intake_counters_to_a_pushgateway(tmp_path: Path) -> None:
    received: list[tuple[str, str, bytes]] = []

    async def gateway(request: web.Request) -> web.Response:
        received.append((request.method, request.path, await request.read()))
        return web.Response(status=200)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        assert (await run_cli_async("init", cwd=tmp_path)).code == 0
        lines = [{"type": "payment_order", "payload": order(f"PO-{i}")} for i in range(3)]
        lines.append({"type": "payment_order", "payload": {"kind": "pay"}})  # no order_no
        batch = write(tmp_path / "orders.ndjson", "\n".join(json.dumps(x) for x in lines) + "\n")
        result = await run_cli_async(
            "push", str(batch), "--pushgateway", f"http://127.0.0.1:{port}", cwd=tmp_path
        )
        assert result.code == 1, result.out + result.err  # one refused
        assert "3 accepted" in result.out and "Traceback" not in result.err
    finally:
        await runner.cleanup()

    [(method, path, body)] = received
    assert method == "PUT" and path.startswith("/metrics/job/interlink_push/instance/")
    samples = {
        (s.name, s.labels.get("source"), s.labels.get("result")): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "interlink_documents_total"
    }
    assert samples[("interlink_documents_total", "trading", "accepted")] == 3
    refused = {k: v for k, v in samples.items() if k[2] not in ("accepted", "duplicate")}
    assert sum(refused.values()) == 1, samples


async def test_an_unreachable_pushgateway_is_a_warning(tmp_path: Path) -> None:
    assert (await run_cli_async("init", cwd=tmp_path)).code == 0
    batch = write(
        tmp_path / "orders.json", json.dumps([{"type": "payment_order", "payload": order("PO-9")}])
    )
    # Port 9 (discard) on loopback: nothing listens there.
    result = await run_cli_async(
        "push", str(batch), "--pushgateway", "http://127.0.0.1:9", cwd=tmp_path
    )
    assert result.code == 0, result.out + result.err
    assert "1 accepted" in result.out
    assert "the intake counters were not pushed to http://127.0.0.1:9" in result.err
    assert "Traceback" not in result.err
