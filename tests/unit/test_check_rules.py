"""`interlink check` rules added for the person on duty (issue 14): what can never work is an
error of loading (with its line), what is only suspicious is a warning."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from interlink.config import Topology, database_problem, load, same_rule
from interlink.errors import ConfigError
from interlink.features.contracts.lint import render

BASE = """\
database: {database}
systems:
  trading:
    token_env: TRADING_TOKEN
    contacts: [{{role: dev, email: dev@example.com, notify: "json://127.0.0.1:9/"}}]
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order:
    key: order_no
    deadline: {deadline}
    amount: amount
    contract: order.json
    scenarios:
      - {{name: payment, direction: forward, when: {{kind: pay}}}}
      - {{name: refund, direction: reverse, when: {when}}}
flows:
  trading-treasury: {{from: trading, to: treasury, document: payment_order}}
alerts:
  smtp: {{host: 127.0.0.1, port: 25, from: hub@example.com}}
"""

OPEN = {"type": "object", "properties": {"order_no": {}, "amount": {}, "kind": {}, "pay_by": {}}}


def write(
    tmp_path: Path,
    *,
    database: str = "sqlite:///hub.db",
    deadline: str = "pay_by",
    when: str = "{kind: refund}",
    contract: dict[str, object] = OPEN,
    text: str | None = None,
) -> Path:
    (tmp_path / "order.json").write_text(json.dumps(contract))
    path = tmp_path / "interlink.yaml"
    body = text or BASE.format(database=database, deadline=deadline, when=when)
    path.write_text(textwrap.dedent(body))
    return path


def errors(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as refused:
        load(path)
    return [p.split(":", 2)[1] + ":" + p.split(":", 2)[2] for p in refused.value.problems]


def warnings(topology: Topology) -> list[str]:
    return [w.split(":", 1)[1] for w in render(topology)]


def test_the_base_topology_loads_without_warnings(tmp_path: Path) -> None:
    assert warnings(load(write(tmp_path))) == []


# -- errors: can never work --------------------------------------------------------------------


def test_a_misspelled_database_scheme_is_an_error_with_its_line(tmp_path: Path) -> None:
    assert errors(write(tmp_path, database="sqlit:///hub.db")) == [
        "1: database: unknown database scheme 'sqlit' (did you mean sqlite?); use "
        "sqlite:///FILE or postgresql://USER@HOST/DATABASE"
    ]


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("sqlite:///hub.db", True),
        ("sqlite+pysqlite:///hub.db", True),
        ("postgresql://u@h/db", True),
        ("postgresql+psycopg://u@h/db", True),
        ("postgres://u@h/db", True),
        ("postgres+psycopg://u@h/db", False),
        ("postgress://u:secret@h/db", False),
        ("mysql://u@h/db", False),
        ("hub.db", False),
    ],
)
def test_database_schemes(url: str, ok: bool) -> None:
    problem = database_problem(url)
    assert (problem is None) is ok, problem
    assert problem is None or "secret" not in problem  # a password is never echoed


@pytest.mark.parametrize(
    "when", ["{kind: pay}", "{kind: [pay]}", "{kind: {in: [pay]}}", "{kind: {eq: pay}}"]
)
def test_identical_scenario_matchers_are_an_error(tmp_path: Path, when: str) -> None:
    assert errors(write(tmp_path, when=when)) == [
        "16: documents.payment_order.scenarios[1].when: scenario 'refund' matches the same "
        "documents by the same rule as 'payment' (line 15); every such document would be "
        "refused as ambiguous"
    ]


@pytest.mark.parametrize(
    "when", ["{kind: refund}", "{kind: pay, amount: {lt: 0}}", "{kind: [pay, refund]}"]
)
def test_different_matchers_load(tmp_path: Path, when: str) -> None:
    load(write(tmp_path, when=when))


def test_same_rule_is_order_blind_and_skips_malformed_matchers() -> None:
    assert same_rule({"a": [1, 2], "b": "x"}) == same_rule({"b": ["x"], "a": [2, 1]})
    assert same_rule({"any": [{"a": 1}, {"b": 2}]}) == same_rule({"any": [{"b": 2}, {"a": 1}]})
    assert same_rule({"a": 1}) != same_rule({"a": "1"})
    assert same_rule("kind") is None


def test_a_deadline_a_closed_contract_does_not_allow_is_an_error(tmp_path: Path) -> None:
    closed = {**OPEN, "additionalProperties": False}
    assert errors(write(tmp_path, deadline="pay_before", contract=closed)) == [
        "11: documents.payment_order.deadline: 'pay_before' is not a field of the contract "
        "(order.json), which allows no other fields: no deadline could ever be read"
    ]


def test_an_amount_a_closed_contract_does_not_allow_is_an_error(tmp_path: Path) -> None:
    closed = {
        "additionalProperties": False,
        "properties": {"order_no": {}, "kind": {}, "pay_by": {}, "total": {}},
    }
    [problem] = errors(write(tmp_path, contract=closed))
    assert problem.startswith("12: documents.payment_order.amount: 'amount' is not a field")


# -- warnings: suspicious ----------------------------------------------------------------------


def test_a_deadline_an_open_contract_does_not_define_is_a_warning(tmp_path: Path) -> None:
    topology = load(write(tmp_path, deadline="pay_before"))
    assert warnings(topology) == [
        "11: warning: documents.payment_order.deadline: 'pay_before' is not defined by the "
        "contract of payment_order; the upstream was never told to send it"
    ]


def test_a_source_without_token_env_is_a_warning(tmp_path: Path) -> None:
    text = BASE.format(database="sqlite:///hub.db", deadline="pay_by", when="{kind: refund}")
    topology = load(write(tmp_path, text=text.replace("    token_env: TRADING_TOKEN\n", "")))
    assert warnings(topology) == [
        "3: warning: systems.trading: sends trading-treasury but has no token_env, so it cannot "
        "submit over the API; only `interlink push --source trading` can load its documents"
    ]


def test_e_mail_contacts_without_smtp_are_a_warning(tmp_path: Path) -> None:
    text = BASE.format(database="sqlite:///hub.db", deadline="pay_by", when="{kind: refund}")
    text = text.replace("alerts:\n  smtp: {host: 127.0.0.1, port: 25, from: hub@example.com}\n", "")
    text = text.replace("    url: http://127.0.0.1:9\n", "    url: http://127.0.0.1:9\n"
                        "    contacts: [{role: ops, email: ops@example.com}]\n")  # fmt: skip
    topology = load(write(tmp_path, text=text))
    assert warnings(topology) == [
        "5: warning: 2 contact(s) have an e-mail address but alerts.smtp is not set: no alert "
        "mail can be sent; contacts of treasury have no notify: URL either and get no alert"
    ]
