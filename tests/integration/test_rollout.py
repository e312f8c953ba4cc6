"""Rollout stages on both stores: a new treasury link piloted for one branch, then everyone.

Stages and holds, fallback routing, skips recorded, per-key order across a promotion, the
promotion gate and its override, and the stable share of keys by hash.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import app, common
from interlink.clock import FakeClock
from interlink.errors import Conflict, InputError
from interlink.features.incidents.service import incidents
from interlink.features.rollout import rules
from interlink.features.rollout.service import rollout
from interlink.service import Hub
from interlink.store.queries import transitions
from tests.conftest import TREASURY_FLOW, Api, delivery_of, header, pay, submit
from tests.console_support import ENV, USERS, Browser
from tests.receiver import Receiver

LEGACY_FLOW = "trading-legacy"

# The seed's story: trading's payment orders go to a new treasury link, piloted for branch
# 0571 first; the rest still go to the old path (here the finance receiver) or wait.
ROLLOUT = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading:
    token_env: TEST_TRADING_TOKEN
  treasury:
    url: {treasury}
    timeout: 2s
  legacy:
    url: {finance}
    timeout: 2s
documents:
  payment_order:
    key: order_no
    amount: amount
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
    ordered: true
    retry: [5s, 30s, 2m]
    give_up_after: 1h
    rollout:
      stage: pilot
      when: {{branch: "0571"}}
      outside: OUTSIDE
      gate: {{min_delivered: 1}}
  trading-legacy:
    from: trading
    to: legacy
    document: payment_order
    path: /legacy
    retry: [5s]
    give_up_after: 1h
"""


def topology(outside: str = "hold") -> str:
    return ROLLOUT.replace("OUTSIDE", outside)


def flows_of(hub: Hub, document_id: str) -> dict[str, str]:
    return {d.flow: d.state for d in hub.document(document_id).deliveries}


def sent(receiver: Receiver) -> list[str]:
    """Documents the receiver got (the readiness check's probe carries none)."""
    return [k for k in receiver.keys() if k]  # noqa: SIM118 (a method, not a dict)


def revisions(receiver: Receiver, key: str) -> list[str | None]:
    return [
        header(r, "Interlink-Revision")
        for r in receiver.requests
        if header(r, "Interlink-Key") == key
    ]


async def test_pilot_holds_the_rest_and_promotion_releases_them(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    hub = make_hub(topology("hold"))
    [inside] = await submit(hub, pay("A1", branch="0571"))
    [outside] = await submit(hub, pay("B1", branch="0999"))

    assert flows_of(hub, inside["id"]) == {TREASURY_FLOW: "pending", LEGACY_FLOW: "pending"}
    assert flows_of(hub, outside["id"]) == {
        TREASURY_FLOW: "held: rollout",
        LEGACY_FLOW: "pending",  # a flow without a rollout is not touched
    }
    status = hub.status()["flows"][TREASURY_FLOW]
    assert status["rollout"] == {"stage": "pilot", "share": None, "outside": "hold"}
    assert status["held"] == {"rollout": 1}

    await hub.engine.drain()
    assert delivery_of(hub, inside["id"]).status == "delivered"
    assert delivery_of(hub, outside["id"]).state == "held: rollout"  # the sweep leaves it
    assert sent(treasury) == [inside["id"]]

    # Off: nothing new goes out, held; back to pilot releases nothing outside the pilot.
    changed = rollout(hub).set(TREASURY_FLOW, "off", "duty", note="bank asked to wait")
    assert (changed["from"], changed["stage"], changed["released"]) == ("pilot", "off", 0)
    [late] = await submit(hub, pay("A2", branch="0571"))
    assert delivery_of(hub, late["id"]).state == "held: rollout"
    changed = rollout(hub).set(TREASURY_FLOW, "pilot", "duty")
    assert changed["released"] == 1  # A2 is in the pilot again
    assert delivery_of(hub, late["id"]).status == "pending"
    assert delivery_of(hub, outside["id"]).state == "held: rollout"
    with pytest.raises(InputError, match="promote"):
        rollout(hub).set(TREASURY_FLOW, "full", "duty")

    result = await rollout(hub).promote(TREASURY_FLOW, "duty")
    assert (result["from"], result["stage"], result["released"]) == ("pilot", "full", 1)
    assert result["forced"] is False and result["record"]["gate"]["passed"] is True
    await hub.engine.drain()
    assert delivery_of(hub, outside["id"]).status == "delivered"
    [after] = await submit(hub, pay("C1", branch="0999"))
    assert delivery_of(hub, after["id"]).status == "pending"
    # Another process held one as the promotion committed: the housekeeper lets it go.
    stray = delivery_of(hub, after["id"]).id
    hub.store.write_sync(
        lambda conn: transitions.set_state(conn, [stray], "held", "rollout", clock.now())
    )
    clock.advance(10)
    await hub.engine.drain()
    assert delivery_of(hub, after["id"]).status == "delivered"
    actions = [a["action"] for a in hub.audit(target=f"flow:{TREASURY_FLOW}")]
    assert actions == ["rollout_promote", "rollout_set", "rollout_set"]
    assert rollout(hub).show(TREASURY_FLOW)[0]["stage"] == "full"


async def test_fallback_flow_takes_what_the_pilot_leaves(
    make_hub: Callable[[str], Hub], treasury: Receiver, finance: Receiver, clock: FakeClock
) -> None:
    hub = make_hub(topology(f"{{{{fallback: {LEGACY_FLOW}}}}}"))
    [inside] = await submit(hub, pay("A1", branch="0571"))
    [outside] = await submit(hub, pay("B1", branch="0999"))
    assert flows_of(hub, inside["id"]) == {TREASURY_FLOW: "pending"}
    assert flows_of(hub, outside["id"]) == {LEGACY_FLOW: "pending"}
    assert [d["flow"] for d in outside["deliveries"]] == [LEGACY_FLOW]

    rollout(hub).set(TREASURY_FLOW, "off", "duty")
    [off] = await submit(hub, pay("A2", branch="0571"))
    assert flows_of(hub, off["id"]) == {LEGACY_FLOW: "pending"}

    clock.advance(60)
    rollout(hub).set(TREASURY_FLOW, "pilot", "duty")  # a new pilot: its record starts now
    [again] = await submit(hub, pay("B2", branch="0999"))
    await hub.engine.drain()
    record = (await rollout(hub).promote(TREASURY_FLOW, "duty", force=True, reason="drill"))[
        "record"
    ]
    assert record["delivered"] == 0
    assert record["outside"]["fallback"] == {"flow": LEGACY_FLOW, "deliveries": 1}
    [full] = await submit(hub, pay("B3", branch="0999"))
    assert flows_of(hub, full["id"]) == {TREASURY_FLOW: "pending"}  # the old path is retired
    await hub.engine.drain()
    assert sent(treasury) == [inside["id"], full["id"]]
    assert sorted(sent(finance)) == sorted([outside["id"], off["id"], again["id"]])


async def test_skipped_documents_are_recorded(make_hub: Callable[[str], Hub]) -> None:
    hub = make_hub(topology("skip"))
    [outside] = await submit(hub, pay("B1", branch="0999"))
    assert flows_of(hub, outside["id"]) == {LEGACY_FLOW: "pending"}
    [event] = [e for e in hub.events() if e["kind"] == "deliveries_skipped"]
    assert event["flow"] == TREASURY_FLOW
    assert event["detail"]["reason"] == "rollout"
    assert event["detail"]["documents"] == [{"id": outside["id"], "key": "B1", "revision": 1}]
    record = await rollout(hub).record(TREASURY_FLOW)
    assert record["outside"]["skipped"] == 1 and record["delivered"] == 0


async def test_a_refund_never_overtakes_its_payment_across_a_promotion(
    make_hub: Callable[[str], Hub], treasury: Receiver, clock: FakeClock
) -> None:
    hub = make_hub(topology("hold"))
    [pilot] = await submit(hub, pay("A1", branch="0571"))
    await hub.engine.drain()
    [payment] = await submit(hub, pay("K1", branch="0999"))
    assert delivery_of(hub, payment["id"]).state == "held: rollout"

    await rollout(hub).promote(TREASURY_FLOW, "duty")
    treasury.respond(503, times=1)  # the payment's first try fails after the switch
    await hub.engine.drain()
    assert delivery_of(hub, payment["id"]).status == "pending"  # waiting for its retry
    [refund] = await submit(hub, pay("K1", amount="-10.00", kind="refund", branch="0999"))
    assert refund["revision"] == 2
    assert delivery_of(hub, refund["id"]).state == "held: blocked"

    clock.advance(5)
    await hub.engine.drain()
    assert delivery_of(hub, refund["id"]).status == "delivered"
    assert revisions(treasury, "K1") == ["1", "1", "2"]
    assert pilot["id"] in sent(treasury)


async def test_held_revisions_are_released_in_order(
    make_hub: Callable[[str], Hub], treasury: Receiver
) -> None:
    hub = make_hub(topology("hold"))
    await submit(hub, pay("A1", branch="0571"))
    await hub.engine.drain()
    [payment] = await submit(hub, pay("K1", branch="0999"))
    [refund] = await submit(hub, pay("K1", amount="-10.00", kind="refund", branch="0999"))
    assert delivery_of(hub, refund["id"]).state == "held: rollout"

    await rollout(hub).promote(TREASURY_FLOW, "duty")
    assert delivery_of(hub, payment["id"]).status == "pending"
    assert delivery_of(hub, refund["id"]).state == "held: blocked"
    await hub.engine.drain()
    assert revisions(treasury, "K1") == ["1", "2"]


async def test_the_gate_refuses_a_pilot_with_dead_deliveries_unless_forced(
    make_hub: Callable[[str], Hub], treasury: Receiver
) -> None:
    hub = make_hub(topology("hold"))
    with pytest.raises(Conflict) as refused:
        await rollout(hub).promote(TREASURY_FLOW, "duty")  # nothing delivered yet
    failed = {
        c["name"] for c in refused.value.detail["record"]["gate"]["checks"] if not c["passed"]
    }
    assert failed == {"delivered"}

    treasury.respond(422, "payee unknown", times=1)
    await submit(hub, pay("A1", branch="0571"), pay("A2", branch="0571"))
    await hub.engine.drain()
    incident = incidents(hub).new(title="payee unknown", actor="duty", flows=[TREASURY_FLOW])
    with pytest.raises(Conflict, match="dead, incidents"):
        await rollout(hub).promote(TREASURY_FLOW, "duty")
    record = await rollout(hub).record(TREASURY_FLOW)
    assert (record["delivered"], record["dead"]) == (1, 1)
    assert [i["id"] for i in record["open_incidents"]] == [incident["id"]]
    assert rollout(hub).show(TREASURY_FLOW)[0]["stage"] == "pilot"

    with pytest.raises(InputError, match="--reason"):
        await rollout(hub).promote(TREASURY_FLOW, "duty", force=True)
    result = await rollout(hub).promote(
        TREASURY_FLOW, "duty", force=True, reason="payee fixed upstream"
    )
    assert result["stage"] == "full" and result["forced"] is True
    [entry] = hub.audit(target=f"flow:{TREASURY_FLOW}", limit=1)
    assert entry["action"] == "rollout_promote"
    assert entry["detail"]["forced"] is True
    assert entry["detail"]["failed"] == ["dead", "incidents"]
    assert entry["detail"]["note"] == "payee fixed upstream"


# The store does not matter here (the other tests run on both): SQLite only, to stay fast.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_a_share_of_keys_is_stable_across_revisions_and_processes(
    make_hub: Callable[[str], Hub],
) -> None:
    text = topology("hold").replace('when: {{branch: "0571"}}', "share: 30%")
    hub = make_hub(text)
    keys = [f"PO-{n}" for n in range(40)]
    first = await submit(hub, *(pay(k) for k in keys))
    second = await submit(hub, *(pay(k, amount="-1.00", kind="refund") for k in keys))
    states = {k: delivery_of(hub, d["id"]).state for k, d in zip(keys, first, strict=True)}
    inside = {k for k, s in states.items() if s == "pending"}
    assert inside == {k for k in keys if rules.in_share(k, 30)}
    assert 0 < len(inside) < len(keys)
    for k, d in zip(keys, second, strict=True):
        # The refund follows its payment: blocked behind it inside, held with it outside.
        expected = "held: blocked" if k in inside else "held: rollout"
        assert delivery_of(hub, d["id"]).state == expected
    assert hub.status()["flows"][TREASURY_FLOW]["rollout"]["share"] == 30.0


def test_the_share_is_by_sha256_of_the_key_and_grows_monotonically() -> None:
    # Fixed values: the bucket of a key must never change between processes or releases.
    assert [rules.bucket(k) for k in ("PO-1", "PO-2", "0571-000123")] == [6512, 8531, 4604]
    keys = [f"K{n}" for n in range(4000)]
    ten = {k for k in keys if rules.in_share(k, 10)}
    twenty = {k for k in keys if rules.in_share(k, 20)}
    assert ten < twenty
    assert 0.08 < len(ten) / len(keys) < 0.12
    assert not any(rules.in_share(k, 0) for k in keys)
    assert all(rules.in_share(k, 100) for k in keys)


# The store does not matter here (the other tests run on both): SQLite only, to stay fast.
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_api_console_and_metrics(
    make_hub: Callable[[str], Hub], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {**ENV, "TEST_WATCHER_TOKEN": "watcher-token"}.items():
        monkeypatch.setenv(name, value)
    text = (
        topology("hold")
        + USERS
        + "  - {{name: watcher, role: viewer, token_env: TEST_WATCHER_TOKEN}}\n"
    )
    api = await Api(make_hub(text)).start()
    browser = Browser(api.url)
    try:
        assert await browser.sign_in("duty") == 303
        _, page, _ = await browser.get(f"/flows/{TREASURY_FLOW}")
        assert 'id="rollout"' in page and "Rollout stage: pilot" in page
        csrf = await browser.csrf(f"/flows/{TREASURY_FLOW}")
        form = {"stage": "off", "note": "bank closed", "csrf": csrf}
        status, _, _ = await browser.post(f"/flows/{TREASURY_FLOW}/rollout", form)
        assert status == 303
        assert rollout(api.hub).show(TREASURY_FLOW)[0]["stage"] == "off"
        [entry] = api.hub.audit(target=f"flow:{TREASURY_FLOW}", limit=1)
        assert (entry["actor"], entry["action"]) == ("console:duty", "rollout_set")

        path = f"/api/v1/flows/{TREASURY_FLOW}/rollout"
        status, body, _ = await api.request("GET", path, token="watcher-token")
        assert status == 200 and body["stage"]["stage"] == "off"
        assert body["record"]["gate"]["passed"] is False
        status, body, _ = await api.request(
            "POST", path, token="watcher-token", json={"stage": "pilot"}
        )
        assert status == 403 and "operator" in body["error"]["message"]
        status, body, _ = await api.request("POST", path, json={"stage": "pilot"})
        assert status == 200 and (body["from"], body["stage"]) == ("off", "pilot")
        status, body, _ = await api.request("POST", path, json={"stage": "sideways"})
        assert status == 400 and "unknown stage" in body["error"]["message"]
        status, body, _ = await api.request("POST", f"{path}/promote", json={})
        assert status == 409 and body["error"]["record"]["gate"]["passed"] is False
        status, body, _ = await api.request(
            "POST", f"{path}/promote", json={"force": True, "reason": "drill"}
        )
        assert status == 200 and body["stage"] == "full" and body["forced"] is True
        status, body, _ = await api.request("GET", "/api/v1/rollout")
        assert status == 200 and [i["stage"] for i in body["items"]] == ["full"]
        status, body, _ = await api.request("GET", "/api/v1/status")
        assert body["flows"][TREASURY_FLOW]["rollout"] == {
            "stage": "full",
            "share": None,
            "outside": "hold",
        }
        status, text_body, _ = await api.request("GET", "/metrics")
        assert f'interlink_rollout_stage{{flow="{TREASURY_FLOW}"}} 2.0' in text_body
        assert f'interlink_rollout_pilot_share{{flow="{TREASURY_FLOW}"}} 1.0' in text_body
    finally:
        await browser.close()
        await api.stop()


CLI_TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {}
  treasury: {url: "http://127.0.0.1:9"}
  legacy: {url: "http://127.0.0.1:9"}
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    rollout: {stage: off, share: 10%, outside: {fallback: trading-legacy}}
  trading-legacy: {from: trading, to: legacy, document: payment_order}
"""


def test_the_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INTERLINK_ACTOR", "duty")
    monkeypatch.setenv("COLUMNS", "200")
    config = tmp_path / "interlink.yaml"
    config.write_text(CLI_TOPOLOGY)

    def run(*args: str) -> tuple[int, str]:
        printed = io.StringIO()
        monkeypatch.setattr(common.out, "file", printed)
        monkeypatch.setattr(common.err, "file", printed)
        # Their width was fixed at import, by whatever COLUMNS said then: wide enough here.
        monkeypatch.setattr(common.out, "width", 200)
        monkeypatch.setattr(common.err, "width", 200)
        result = CliRunner().invoke(app, [*args, "-c", str(config)])
        return result.exit_code, result.output + printed.getvalue()

    code, output = run("rollout", "show")
    assert code == 0 and "trading-treasury" in output and "fallback:trading-legacy" in output
    code, output = run("rollout", "set", TREASURY_FLOW, "pilot", "--note", "branch 0571")
    assert code == 0 and "off → pilot" in output
    code, output = run("rollout", "promote", TREASURY_FLOW)
    assert code == 1 and "refused" in output and "FAIL" in output and "delivered" in output
    code, output = run("rollout", "promote", TREASURY_FLOW, "--force", "--reason", "go")
    assert code == 0 and "pilot → full (forced past the gate)" in output
    code, output = run("rollout", "show", TREASURY_FLOW, "--json")
    shown = json.loads(output)
    assert code == 0 and shown["stage"]["stage"] == "full" and shown["stage"]["by"] == "cli:duty"
