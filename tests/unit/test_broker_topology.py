"""The topology's broker blocks: what `interlink check` refuses, with its line, and the
address a flow into a broker system is delivered to."""

from __future__ import annotations

import textwrap

import pytest

from interlink.config import address_parts, loads
from interlink.errors import ConfigError, TransportError
from interlink.transports import for_system
from interlink.transports.base import Request

HEAD = """\
systems:
  trading: {token_env: T}
"""
FLOWS = """\
documents:
  po: {key: n}
flows:
  to-ledger: {from: trading, to: ledger, document: po}
"""


def problems(systems: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        loads(HEAD + textwrap.indent(textwrap.dedent(systems), "  ") + FLOWS, "t.yaml")
    return caught.value.problems


def test_a_flow_into_a_broker_system_goes_to_its_address_and_needs_no_url() -> None:
    topology = loads(
        HEAD
        + """\
  ledger:
    transport: amqp
    amqp: {url_env: LEDGER_AMQP, exchange: pay.direct, routing_key: "{source}.{flow}/{document}"}
  bus:
    transport: nats
    nats: {servers: ["nats://127.0.0.1:4222"], subject: "orders.{target}", stream: ORDERS}
documents:
  po: {key: n}
flows:
  to-ledger: {from: trading, to: ledger, document: po}
  to-bus: {from: trading, to: bus, document: po}
""",
        "t.yaml",
    )
    ledger = topology.downstream_url(topology.flows["to-ledger"])
    assert ledger == "amqp:pay.direct/trading.to-ledger%2Fpo"
    assert address_parts(ledger) == ["pay.direct", "trading.to-ledger/po"]
    bus = topology.downstream_url(topology.flows["to-bus"])
    assert (bus, address_parts(bus)) == ("nats:orders.bus", ["orders.bus"])


def test_a_broker_transport_needs_its_block_and_only_it_has_one() -> None:
    found = problems(
        """\
        ledger:
          transport: amqp
        bus:
          transport: http
          url: http://127.0.0.1:1
          nats: {servers: ["nats://127.0.0.1:4222"]}
        """
    )
    assert found == [
        "t.yaml:4: systems.ledger.transport: transport: amqp needs an amqp block "
        "(where the messages go)",
        "t.yaml:8: systems.bus.nats: nats goes with transport: nats",
    ]


def test_a_broker_system_has_no_url_and_no_credentials_in_the_file() -> None:
    found = problems(
        """\
        ledger:
          transport: nats
          url: http://127.0.0.1:1
          nats: {servers: ["nats://user:secret@127.0.0.1:4222"]}
        """
    )
    assert found[0].startswith("t.yaml:5: systems.ledger.url: a transport: nats system has no url")
    assert found[1] == (
        "t.yaml:6: systems.ledger.nats.servers: 'nats://user:secret@127.0.0.1:4222': "
        "no credentials in the topology; use url_env"
    )
    assert not any("secret@" in p.split(":", 3)[3] for p in found[2:])


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            'amqp: {url_env: L, routing_key: "{key}"}',
            "systems.ledger.amqp.routing_key: {key} in '{key}' is not a placeholder here",
        ),
        (
            "amqp: {url_env: L, exchange: pay direct}",
            "systems.ledger.amqp.exchange: 'pay direct' is not an exchange name",
        ),
        ("amqp: {exchange: pay}", "systems.ledger.amqp.url_env: required"),
        ('nats: {url_env: L, subject: "orders.*"}', "not a NATS subject to publish to"),
        ("nats: {subject: orders}", "systems.ledger.nats: give url_env or servers"),
        ("nats: {url_env: L, stream: a.b}", "systems.ledger.nats.stream: 'a.b' is not a stream"),
    ],
)
def test_a_broken_broker_block_is_refused_with_its_line(block: str, message: str) -> None:
    transport = block.split(":")[0]
    [found] = problems(f"ledger:\n  transport: {transport}\n  {block}\n")
    assert found.startswith("t.yaml:5: ") and message in found, found


def test_a_routing_key_over_255_bytes_is_a_problem_of_the_flow() -> None:
    topology = loads(
        HEAD
        + f"""\
  ledger:
    transport: amqp
    amqp: {{url_env: L, routing_key: "{"k" * 250}.{{flow}}"}}
"""
        + FLOWS,
        "t.yaml",
    )
    with pytest.raises(ConfigError, match=r"flows\.to-ledger: routing key .* is over 255 bytes"):
        topology.downstream_url(topology.flows["to-ledger"])


@pytest.mark.parametrize("transport", ["amqp", "nats"])
async def test_a_broker_url_missing_from_the_environment_is_ours_to_fix(
    transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LEDGER_UNSET", raising=False)
    topology = loads(
        HEAD
        + f"  ledger:\n    transport: {transport}\n    {transport}: {{url_env: LEDGER_UNSET}}\n"
        + FLOWS,
        "t.yaml",
    )
    flow = topology.flows["to-ledger"]
    sender = for_system(topology.systems["ledger"])
    assert sender is not None
    with pytest.raises(TransportError) as caught:
        await sender.send(Request(topology.downstream_url(flow), b"{}", {}, 1.0))
    await sender.close()
    assert caught.value.kind == "local"  # a local_error: the broker's circuit hears nothing
    assert "LEDGER_UNSET is not set" in caught.value.message


def test_two_flows_of_the_same_documents_into_one_nats_system_are_refused() -> None:
    # JetStream keeps one message per Nats-Msg-Id, the document's id: the second flow's
    # messages would all be dropped as duplicates of the first's.
    with pytest.raises(ConfigError) as caught:
        loads(
            HEAD
            + """\
  bus:
    transport: nats
    nats: {servers: ["nats://127.0.0.1:4222"], subject: "{flow}"}
documents:
  po: {key: n}
flows:
  orders: {from: trading, to: bus, document: po}
  audit: {from: trading, to: bus, document: po}
""",
            "t.yaml",
        )
    assert caught.value.problems == [
        "t.yaml:10: flows.audit.to: flow 'orders' already carries these documents into NATS "
        "system 'bus'; JetStream keeps one message per document id, so it would drop this "
        "flow's as duplicates"
    ]
