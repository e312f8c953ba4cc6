"""Drills on systems reached through a message broker (transport: amqp / nats): the sandbox is
a scratch exchange and queue (or stream) on the real local broker, reached through a loopback
relay the drill cuts mid-run. Nothing is lost, order per key holds, the scratch objects are
deleted afterwards, and the system's own broker (its url_env) is never used."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from interlink.config import Topology
from interlink.errors import ConfigError
from interlink.features.drills import spec as drill_spec
from interlink.features.drills.run import rehearse
from interlink.features.registry import FEATURES

AMQP_DEFAULT = "amqp://guest:guest@127.0.0.1:5672/"
NATS_DEFAULT = "nats://127.0.0.1:4222"

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading: {{}}
  archive:
    transport: amqp
    amqp: {{url_env: ARCHIVE_AMQP_URL, exchange: archive}}
  ledger:
    transport: {transport}
    timeout: 1s
    {transport}: {broker}
documents:
  payment_order:
    key: order_no
flows:
  trading-ledger:
    from: trading
    to: ledger
    document: payment_order
    ordered: true
    retry: [10m]
  trading-archive:
    from: trading
    to: archive
    document: payment_order
"""
# The system's own broker: a variable the drill must never read, an exchange nobody has.
BROKERS = {
    "amqp": "{url_env: LEDGER_AMQP_URL, exchange: ledger-payments, routing_key: '{flow}'}",
    "nats": "{url_env: LEDGER_NATS_URL, subject: 'ledger.{flow}', stream: LEDGER}",
}

DRILL = """\
name: the ledger's broker goes down mid-run
flows: [trading-ledger]
rate: 30/s
brokers:
  ledger: {broker_env: DRILL_BROKER_URL}
documents:
  - {type: payment_order, count: 12, payload: {order_no: "L{n}", amount: "{n}.00"}}
  - {type: payment_order, count: 12, payload: {order_no: "L{n}", amount: "{n}.50"}}
faults:
  ledger:
    - {fault: slow, at: 0s, for: 0.5s, latency: 20ms}
    - {fault: down, at: 0.5s, for: 0.5s}
overrides:
  engine: {circuit_threshold: 2, probe_interval: 150ms, probe_max: 300ms}
  flows:
    trading-ledger: {retry: [100ms]}
time_limit: 8s
expect:
  delivered_within: 5s
  max_duplicates: {duplicates}
  order_kept: true
"""


def reachable(env: str, default: str) -> str:
    url = os.environ.get(env, default)
    parts = urlsplit(url)
    try:
        socket.create_connection((parts.hostname, parts.port), timeout=1).close()
    except OSError as error:
        message = f"no broker at {parts.hostname}:{parts.port} ({error}); set {env} to run"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return url


def make(
    tmp_path: Path, write_topology: Callable[[str], Topology], transport: str, drill: str
) -> tuple[drill_spec.DrillFile, Topology]:
    topology = write_topology(TOPOLOGY.format(transport=transport, broker=BROKERS[transport]))
    path = tmp_path / "ledger.drill.yaml"
    path.write_text(drill, encoding="utf-8")
    return drill_spec.load(path), topology


async def test_an_amqp_broker_down_mid_run_loses_nothing_and_keeps_order(
    tmp_path: Path, write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reachable("INTERLINK_TEST_AMQP_URL", AMQP_DEFAULT)
    monkeypatch.setenv("DRILL_BROKER_URL", url)
    monkeypatch.delenv("LEDGER_AMQP_URL", raising=False)
    # A publish cut before its confirm is sent again: the queue may book it twice.
    spec, topology = make(tmp_path, write_topology, "amqp", DRILL.replace("{duplicates}", "3"))
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    ledger = report["sandboxes"]["ledger"]
    assert ledger["booked"] - ledger["duplicates"] == 24
    broker = ledger["broker"]
    assert broker["cut"] >= 1 and broker["connections"] >= 2  # cut mid-run, then back
    assert report["deliveries"] == {"delivered": 24}
    assert any(o != "delivered" for o in report["timeline"]["outcomes"])
    await _gone_amqp(url, broker["scratch"])


async def test_an_amqp_broker_that_never_comes_back_fails_the_drill(
    tmp_path: Path, write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reachable("INTERLINK_TEST_AMQP_URL", AMQP_DEFAULT)
    monkeypatch.setenv("DRILL_BROKER_URL", url)
    drill = DRILL.replace("{duplicates}", "3").replace(
        "{fault: down, at: 0.5s, for: 0.5s}", "{fault: down, at: 0.5s}"
    )
    drill = drill.replace("time_limit: 8s", "time_limit: 1.5s")
    spec, topology = make(tmp_path, write_topology, "amqp", drill)
    report = await rehearse(spec, topology, features=FEATURES)
    assert not report["passed"]
    lost = next(c for c in report["expectations"] if c["name"] == "nothing lost")
    assert lost["status"] == "failed" and "still open" in " ".join(lost["details"])
    assert report["sandboxes"]["ledger"]["booked"] < 24
    await _gone_amqp(url, report["sandboxes"]["ledger"]["broker"]["scratch"])


async def test_a_nats_server_down_mid_run_loses_nothing_and_books_nothing_twice(
    tmp_path: Path, write_topology: Callable[[str], Topology], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = reachable("INTERLINK_TEST_NATS_URL", NATS_DEFAULT)
    monkeypatch.setenv("DRILL_BROKER_URL", url)
    monkeypatch.delenv("LEDGER_NATS_URL", raising=False)
    # The stream keeps one copy of a message id: a re-send after a lost ack is not booked.
    spec, topology = make(tmp_path, write_topology, "nats", DRILL.replace("{duplicates}", "0"))
    report = await rehearse(spec, topology, features=FEATURES)
    assert report["passed"], report["expectations"]
    ledger = report["sandboxes"]["ledger"]
    assert ledger["booked"] == 24 and ledger["broker"]["cut"] >= 1
    assert report["deliveries"] == {"delivered": 24}
    import nats

    client = await nats.connect(url)
    try:
        names = [s.config.name for s in await client.jetstream().streams_info()]
    finally:
        await client.close()
    assert ledger["broker"]["scratch"] not in names


async def _gone_amqp(url: str, scratch: str) -> None:
    """The scratch queue and exchange were deleted."""
    import aio_pika
    import aiormq

    connection = await aio_pika.connect(url)
    try:
        for declare in ("declare_queue", "declare_exchange"):
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelNotFoundEntity):
                await getattr(channel, declare)(scratch, passive=True)
    finally:
        await connection.close()


def test_a_broker_target_needs_a_scratch_broker_and_plays_only_down_and_slow(
    tmp_path: Path, write_topology: Callable[[str], Topology]
) -> None:
    drill = DRILL.replace("{duplicates}", "0").replace(
        "{fault: down, at: 0.5s, for: 0.5s}", "{fault: error, at: 0.5s}"
    )
    spec, topology = make(tmp_path, write_topology, "amqp", drill)
    with pytest.raises(ConfigError) as caught:
        drill_spec.check_against(spec, topology)
    text = "\n".join(caught.value.problems)
    assert (
        "ledger.drill.yaml:12: faults.ledger.1.fault: ledger is reached through a message "
        "broker: its sandbox plays up, down, slow"
    ) in text
    without = drill.replace("brokers:\n  ledger: {broker_env: DRILL_BROKER_URL}\n", "")
    spec, topology = make(tmp_path, write_topology, "amqp", without)
    with pytest.raises(ConfigError, match=r"ledger.drill.yaml:2: flows.0: ledger is reached"):
        drill_spec.check_against(spec, topology)
    own = drill.replace("DRILL_BROKER_URL", "LEDGER_AMQP_URL")
    spec, topology = make(tmp_path, write_topology, "amqp", own)
    with pytest.raises(ConfigError, match=r":5: brokers.ledger.broker_env: LEDGER_AMQP_URL is"):
        drill_spec.check_against(spec, topology)
