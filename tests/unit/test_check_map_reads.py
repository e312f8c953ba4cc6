"""`interlink check` warns when a flow with a ``map:`` also has a hand-written ``reads:`` that
disagrees with the map's lineage: impact analysis uses the lineage, so such a ``reads:``
misleads whoever reads the file."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from interlink.config import load
from interlink.features.contracts.lint import render

TOPOLOGY = """\
database: sqlite:///hub.db
systems:
  trading: {{token_env: TRADING_TOKEN}}
  treasury: {{url: http://127.0.0.1:9}}
documents:
  payment_order:
    key: order_no
    contract: order.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {{kind: refund}}}}
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    {reads}
    map:
      fields:
        no: order_no
        payee: {{fields: {{name: payee.name, account: payee.account}}}}
        memo: {{by_scenario: {{payment: order_no, refund: {{const: R}}}}}}
"""

CONTRACT = {
    "type": "object",
    "properties": {
        "order_no": {},
        "kind": {},
        "amount": {},
        "payee": {"type": "object", "properties": {"name": {}, "account": {}}},
    },
}


def warnings(tmp_path: Path, reads: str) -> list[str]:
    (tmp_path / "order.json").write_text(json.dumps(CONTRACT))
    path = tmp_path / "interlink.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY.format(reads=reads)))
    return [w.split(":", 1)[1] for w in render(load(path))]


@pytest.mark.parametrize(
    "reads",
    [
        "",  # no reads: nothing to disagree with
        "reads: [order_no, kind, payee.name, payee.account]",
        "reads: [kind, payee, order_no]",  # reading an object covers the fields inside it
    ],
)
def test_reads_that_agree_with_the_lineage_are_quiet(tmp_path: Path, reads: str) -> None:
    assert warnings(tmp_path, reads) == []


def test_reads_lacking_a_mapped_field_or_listing_an_unmapped_one_is_a_warning(
    tmp_path: Path,
) -> None:
    # kind is read by the value chosen by scenario (the scenarios match on it).
    assert warnings(tmp_path, "reads: [order_no, payee.name, amount]") == [
        "17: warning: flows.trading-treasury.reads: disagrees with its map: the map reads "
        "'kind', 'payee.account', which reads: lacks; reads: lists 'amount', which the map "
        "never reads; impact analysis uses the map's lineage, not reads:"
    ]


def test_a_reads_only_missing_fields_names_only_those(tmp_path: Path) -> None:
    [warning] = warnings(tmp_path, "reads: [order_no, kind]")
    assert "the map reads 'payee.account', 'payee.name', which reads: lacks; impact" in warning
    assert "never reads" not in warning
