from __future__ import annotations

import textwrap
from datetime import time, timedelta
from pathlib import Path

import pytest

from interlink import config
from interlink.config import (
    Flow,
    System,
    Topology,
    config_path,
    load,
    loads,
    parse_duration,
    parse_peak_hours,
    parse_rate,
)
from interlink.errors import ConfigError
from interlink.example import EXAMPLE_CONTRACTS, EXAMPLE_TOPOLOGY, write_example

MINIMAL = """\
systems:
  up: {token_env: UP_TOKEN}
  down: {url: "http://127.0.0.1:9101/"}
documents:
  order: {key: order_no}
flows:
  up-down: {from: up, to: down, document: order, path: /orders}
"""


def write(tmp_path: Path, text: str, name: str = "interlink.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load(path)
    return caught.value.problems


def one_problem(tmp_path: Path, text: str) -> str:
    found = problems(tmp_path, text)
    assert len(found) == 1, found
    return found[0].removeprefix(f"{tmp_path / 'interlink.yaml'}:")


@pytest.fixture
def example(tmp_path: Path) -> Topology:
    write_example(tmp_path)
    return load(tmp_path / "interlink.yaml")


# --------------------------------------------------------------------------- the example


def test_example_loads_with_everything_design_describes(example: Topology, tmp_path: Path) -> None:
    assert example.path == (tmp_path / "interlink.yaml").resolve()
    assert example.timezone == "Asia/Shanghai"
    assert str(example.tz) == "Asia/Shanghai"
    assert set(example.systems) == {"trading", "treasury", "finance", "member"}
    treasury = example.systems["treasury"]
    assert treasury.name == "treasury"
    assert treasury.rate == 500.0
    assert treasury.concurrency == 32
    assert treasury.timeout == timedelta(seconds=10)
    assert treasury.maintenance_notice == timedelta(hours=24)
    assert [c.role for c in example.systems["trading"].contacts] == ["product", "dev"]
    order = example.documents["payment_order"]
    assert order.contract == (tmp_path / "contracts" / "payment_order.json").resolve()
    assert order.contract_schema is not None
    assert "order_no" in order.contract_schema["required"]
    assert [s.name for s in order.scenarios] == ["payment", "refund"]
    assert example.documents["customer"].contract_schema is not None
    flow = example.flows["trading-treasury"]
    assert (flow.source, flow.target, flow.ordered) == ("trading", "treasury", True)
    assert flow.retry[-1] == timedelta(hours=1)
    assert flow.give_up_after == timedelta(hours=48)


def test_example_helpers(example: Topology, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLINK_DATABASE_URL", raising=False)
    monkeypatch.delenv("INTERLINK_LISTEN", raising=False)
    flows = example.flows
    assert [f.name for f in example.flows_for("payment_order")] == [
        "trading-treasury",
        "trading-finance",
    ]
    assert [f.name for f in example.flows_from("trading")] == list(flows)
    assert [f.name for f in example.flows_to("member")] == ["trading-member"]
    assert example.flows_to("trading") == []
    assert example.flow_concurrency(flows["trading-treasury"]) == 32
    assert example.flow_concurrency(flows["trading-finance"]) == 64
    # A flow's own rate and its target system's are separate limits (engine.limits).
    assert flows["trading-treasury"].rate is None
    assert example.systems["treasury"].rate == 500.0
    assert flows["trading-finance"].rate is None
    assert example.systems["finance"].rate is None
    assert example.downstream_url(flows["trading-treasury"]) == "http://127.0.0.1:9101/payments"
    assert example.listen_address() == ("127.0.0.1", 8600)
    assert example.systems["treasury"].contacts_with("ops", "dev")[0].email == (
        "treasury-ops@example.com"
    )
    assert example.systems["trading"].contacts_with("ops") == []


def test_example_contracts_are_json_objects() -> None:
    import json

    for text in EXAMPLE_CONTRACTS.values():
        assert isinstance(json.loads(text), dict)
    assert "contracts/payment_order.json" in EXAMPLE_TOPOLOGY


def test_write_example_refuses_to_overwrite(tmp_path: Path) -> None:
    written = write_example(tmp_path)
    assert tmp_path / "interlink.yaml" in written
    with pytest.raises(ConfigError) as caught:
        write_example(tmp_path)
    assert caught.value.problems == [f"{tmp_path / 'interlink.yaml'}: already exists; use --force"]
    assert write_example(tmp_path, force=True) == written


# --------------------------------------------------------------------------- durations and rates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("250ms", timedelta(milliseconds=250)),
        ("5s", timedelta(seconds=5)),
        ("30s", timedelta(seconds=30)),
        ("2m", timedelta(minutes=2)),
        ("1h", timedelta(hours=1)),
        ("48h", timedelta(hours=48)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5s", timedelta(seconds=1.5)),
        (" 10S ", timedelta(seconds=10)),
        ("15", timedelta(seconds=15)),
        (15, timedelta(seconds=15)),
        (0.5, timedelta(milliseconds=500)),
    ],
)
def test_parse_duration(text: str | int | float, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["5 minutes", "", "s", "5x", "1h 30", "-5s", "h1", True, -1])
def test_parse_duration_refuses(text: str | int) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("500/s", 500.0), ("100/m", 100 / 60), ("3600/h", 1.0), ("2 / min", 2 / 60), (20, 20.0)],
)
def test_parse_rate(text: str | int, expected: float) -> None:
    assert parse_rate(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["fast", "500/fortnight", "/s", "0/s", 0, -3, "5/s/s", False])
def test_parse_rate_refuses(text: str | int) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(text)


def test_parse_peak_hours() -> None:
    days, start, end = parse_peak_hours("Mon-Fri 09:00-11:30")
    assert (days, start, end) == (frozenset(range(5)), time(9), time(11, 30))
    assert parse_peak_hours("Mon,Wed 09:00-10:00")[0] == {0, 2}
    assert parse_peak_hours("Sat-Mon 00:00-24:00") == (frozenset({5, 6, 0}), time(0), time.max)


# --------------------------------------------------------------------------- errors with lines


def test_unknown_system_in_flow(tmp_path: Path) -> None:
    text = MINIMAL.replace("to: down", "to: dwn")
    assert one_problem(tmp_path, text) == "7: flows.up-down.to: unknown system 'dwn'"


def test_unknown_system_on_its_own_line(tmp_path: Path) -> None:
    text = """\
    systems:
      up: {}
      down: {url: http://x}
    flows:
      f:
        from: nobody
        to: down
        document: order
    documents:
      order: {key: id}
    """
    assert one_problem(tmp_path, text) == "6: flows.f.from: unknown system 'nobody'"


def test_unknown_document(tmp_path: Path) -> None:
    text = MINIMAL.replace("document: order", "document: invoice")
    assert (
        one_problem(tmp_path, text) == "7: flows.up-down.document: unknown document type 'invoice'"
    )


def test_bad_duration_in_retry(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "  up-down: {from: up, to: down, document: order, path: /orders}\n",
        "  up-down:\n    from: up\n    to: down\n    document: order\n"
        "    retry: [5s, 30s, 5 minutes]\n",
    )
    assert one_problem(tmp_path, text) == (
        "11: flows.up-down.retry[2]: '5 minutes' is not a duration; use e.g. 30s, 5m, 2h"
    )


def test_empty_retry_is_refused(tmp_path: Path) -> None:
    text = MINIMAL.replace("path: /orders}", "path: /orders, retry: []}")
    assert one_problem(tmp_path, text).startswith("7: flows.up-down.retry: List should have")


def test_missing_contract_file(tmp_path: Path) -> None:
    text = MINIMAL.replace("{key: order_no}", "{key: order_no, contract: contracts/x.json}")
    assert one_problem(tmp_path, text) == (
        "5: documents.order.contract: contract file contracts/x.json not found"
    )


def test_contract_not_json_or_not_object(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text("{nope", encoding="utf-8")
    (tmp_path / "list.json").write_text("[1]", encoding="utf-8")
    text = MINIMAL.replace(
        "  order: {key: order_no}\n",
        "  order: {key: order_no, contract: bad.json}\n  other: {key: id, contract: list.json}\n",
    )
    found = problems(tmp_path, text)
    assert len(found) == 2
    assert found[0].endswith(":5: documents.order.contract: contract file bad.json is not JSON: "
                             "Expecting property name enclosed in double quotes: line 1 column 2 "
                             "(char 1)")  # fmt: skip
    assert found[1].endswith(
        ":6: documents.other.contract: contract file list.json must hold a JSON object "
        "(a JSON Schema)"
    )


def test_contract_is_relative_to_the_topology_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "c.json").write_text('{"type": "object"}', encoding="utf-8")
    monkeypatch.chdir("/")
    text = MINIMAL.replace("{key: order_no}", "{key: order_no, contract: c.json}")
    topology = load(write(tmp_path, text))
    assert topology.documents["order"].contract_schema == {"type": "object"}


def test_duplicate_system_name(tmp_path: Path) -> None:
    text = MINIMAL.replace("documents:", "  up: {}\ndocuments:")
    assert one_problem(tmp_path, text) == "4: duplicate system 'up' (first at line 2)"


def test_duplicate_flow(tmp_path: Path) -> None:
    text = MINIMAL + "  up-down: {from: up, to: down, document: order}\n"
    assert one_problem(tmp_path, text) == "8: duplicate flow 'up-down' (first at line 7)"


def test_duplicate_key_elsewhere(tmp_path: Path) -> None:
    text = MINIMAL.replace("{token_env: UP_TOKEN}", "{token_env: A, token_env: B}")
    assert one_problem(tmp_path, text) == "2: duplicate key 'token_env' (first at line 2)"


def test_yaml_syntax_error(tmp_path: Path) -> None:
    text = "systems:\n  up: {}\n  down: [oops\nflows: {}\n"
    found = problems(tmp_path, text)
    assert len(found) == 1
    assert found[0].startswith(f"{tmp_path / 'interlink.yaml'}:4: ")
    assert "expected ',' or ']'" in found[0]


def test_unknown_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("  down: {", "  down: {colour: red, ")
    assert one_problem(tmp_path, text) == "3: systems.down.colour: unknown key"


def test_unknown_top_level_key_and_reserved_fields(tmp_path: Path) -> None:
    text = MINIMAL + "path: /etc\nsystem: {}\n"
    text = text.replace("{key: order_no}", "{key: order_no, contract_schema: {}}")
    found = [p.split(":", 1)[1] for p in problems(tmp_path, text)]
    assert found == [
        "5: documents.order.contract_schema: unknown key",
        "8: path: unknown key",
        "9: system: unknown key",
    ]


def test_bad_timezone(tmp_path: Path) -> None:
    text = "database: sqlite://\ntimezone: Asia/Shanghi\n" + MINIMAL
    assert one_problem(tmp_path, text) == (
        "2: timezone: unknown timezone 'Asia/Shanghi'; use an IANA name such as Asia/Shanghai "
        "or UTC"
    )


def test_bad_peak_hours(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '  down: {url: "http://127.0.0.1:9101/"}\n',
        '  down:\n    url: "http://127.0.0.1:9101/"\n'
        '    peak_hours:\n      - "Mon-Fri 09:00-11:30"\n      - "Weekdays 9-5"\n',
    )
    assert one_problem(tmp_path, text) == (
        "7: systems.down.peak_hours[1]: 'Weekdays 9-5' is not a peak-hours entry; use e.g. "
        '"Mon-Fri 09:00-11:30", "Sat 10:00-12:00" or "Mon,Wed 09:00-10:00"'
    )


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("Mon-Fry 09:00-10:00", "'Mon-Fry' is not a day or day range"),
        ("Mon 25:00-26:00", "25:00 in 'Mon 25:00-26:00' is not a time of day"),
        ("Mon 10:00-09:00", "the start must be before the end"),
    ],
)
def test_bad_peak_hours_detail(tmp_path: Path, entry: str, message: str) -> None:
    text = MINIMAL.replace('"http://127.0.0.1:9101/"}', f'"http://x", peak_hours: ["{entry}"]}}')
    found = one_problem(tmp_path, text)
    assert found.startswith("3: systems.down.peak_hours[0]: ")
    assert message in found


def test_bad_rate_and_missing_field(tmp_path: Path) -> None:
    text = MINIMAL.replace("{token_env: UP_TOKEN}", "{rate: fast}").replace("to: down, ", "")
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'interlink.yaml'}:2: systems.up.rate: 'fast' is not a rate; "
        "use e.g. 500/s, 100/m, 3600/h",
        f"{tmp_path / 'interlink.yaml'}:7: flows.up-down.to: required",
    ]


def test_target_without_url_and_flow_to_itself(tmp_path: Path) -> None:
    text = MINIMAL + "  loop: {from: down, to: down, document: order}\n"
    text += "  back: {from: down, to: up, document: order}\n"
    assert problems(tmp_path, text) == [
        f"{tmp_path / 'interlink.yaml'}:8: flows.loop.to: system 'down' sends a flow to itself",
        f"{tmp_path / 'interlink.yaml'}:9: flows.back.to: system 'up' has no url to deliver to",
    ]


def test_empty_field_names(tmp_path: Path) -> None:
    text = MINIMAL.replace("{key: order_no}", '{key: "", amount: " "}')
    found = [p.split(":", 1)[1] for p in problems(tmp_path, text)]
    assert found == [
        "5: documents.order.key: must name a field, not be empty",
        "5: documents.order.amount: must name a field, not be empty",
    ]


def test_many_problems_all_reported_in_line_order(tmp_path: Path) -> None:
    text = """\
    timezone: Nowhere/Land
    systems:
      trading: {token_env: T}
      treasury:
        url: http://127.0.0.1:9101
        rate: quick
      trading: {}
    documents:
      order: {key: order_no, contract: missing.json}
    flows:
      a:
        from: trading
        to: bank
        document: order
        retry: [5s, soon]
      b: {from: trading, to: treasury, document: invoice, colour: blue}
    users:
      - {name: duty, role: chief}
    """
    found = [p.split(":", 1)[1] for p in problems(tmp_path, text)]
    assert found == [
        "1: timezone: unknown timezone 'Nowhere/Land'; use an IANA name such as Asia/Shanghai "
        "or UTC",
        "6: systems.treasury.rate: 'quick' is not a rate; use e.g. 500/s, 100/m, 3600/h",
        "7: duplicate system 'trading' (first at line 3)",
        "9: documents.order.contract: contract file missing.json not found",
        "13: flows.a.to: unknown system 'bank'",
        "15: flows.a.retry[1]: 'soon' is not a duration; use e.g. 30s, 5m, 2h",
        "16: flows.b.document: unknown document type 'invoice'",
        "16: flows.b.colour: unknown key",
        "18: users[0].role: Input should be 'viewer', 'operator' or 'admin'",
    ]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path / "nope.yaml")
    assert caught.value.problems == [f"{tmp_path / 'nope.yaml'}: no such file"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "interlink.yaml:1: systems: required"),
        ("- a\n", "interlink.yaml:1: the topology must be a mapping of settings"),
        ("systems: {}\n---\nx: 1\n", "interlink.yaml:2: expected a single document"),
        ("systems: {a: !secret x}\n", "interlink.yaml:1: systems.a: could not determine a"),
    ],
)
def test_odd_files(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads(text)
    assert caught.value.problems[0].startswith(expected)


def test_names_and_keys_as_written() -> None:
    topology = loads("systems:\n  on: {}\n  2024: {}\n")
    assert set(topology.systems) == {"on", "2024"}
    assert topology.systems["on"].name == "on"


def test_merge_keys() -> None:
    text = """\
systems:
  a: &base {url: "http://x", timeout: 3s}
  b:
    <<: *base
    timeout: 5s
"""
    systems = loads(text).systems
    assert systems["b"].url == "http://x"
    assert systems["b"].timeout == timedelta(seconds=5)


def test_name_is_taken_from_the_key() -> None:
    with pytest.raises(ConfigError) as caught:
        loads("systems:\n  a:\n    name: b\n")
    assert caught.value.problems == [
        "interlink.yaml:3: systems.a.name: unknown key (the name is the mapping key)"
    ]


# --------------------------------------------------------------------------- environment


def test_relative_sqlite_is_resolved_against_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INTERLINK_DATABASE_URL", raising=False)
    monkeypatch.chdir("/")
    sub = tmp_path / "conf"
    sub.mkdir()
    topology = load(write(sub, "database: sqlite:///data/hub.db?timeout=5\n" + MINIMAL))
    assert topology.database_url() == f"sqlite:///{sub / 'data' / 'hub.db'}?timeout=5"
    assert load(write(sub, MINIMAL)).database_url() == f"sqlite:///{sub / 'interlink.db'}"


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:////var/lib/hub.db",
        "postgresql+psycopg://u@db/interlink",
    ],
)
def test_other_database_urls_left_alone(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLINK_DATABASE_URL", raising=False)
    assert loads(f"database: '{url}'\n" + MINIMAL).database_url() == url


def test_env_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    topology = load(write(tmp_path, MINIMAL))
    monkeypatch.setenv("INTERLINK_DATABASE_URL", "postgresql://db/hub")
    monkeypatch.setenv("INTERLINK_LISTEN", "0.0.0.0:9000")
    assert topology.database_url() == "postgresql://db/hub"
    assert topology.listen_address() == ("0.0.0.0", 9000)
    monkeypatch.setenv("INTERLINK_LISTEN", "[::1]:8700")
    assert topology.listen_address() == ("::1", 8700)
    monkeypatch.setenv("INTERLINK_LISTEN", "nonsense")
    with pytest.raises(ConfigError, match="INTERLINK_LISTEN"):
        topology.listen_address()


def test_bad_listen_in_file() -> None:
    with pytest.raises(ConfigError) as caught:
        loads("listen: 8600\n" + MINIMAL)
    assert caught.value.problems == ["interlink.yaml:1: listen: Input should be a valid string"]


def test_config_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INTERLINK_CONFIG", raising=False)
    assert config_path(None) == Path("interlink.yaml")
    monkeypatch.setenv("INTERLINK_CONFIG", "/etc/interlink/hub.yaml")
    assert config_path(None) == Path("/etc/interlink/hub.yaml")
    assert config_path("mine.yaml") == Path("mine.yaml")
    assert config.DEFAULT_CONFIG_PATH == "interlink.yaml"


def test_system_for_token(monkeypatch: pytest.MonkeyPatch) -> None:
    topology = loads(MINIMAL)
    monkeypatch.delenv("UP_TOKEN", raising=False)
    assert topology.system_for_token("s3cret") is None
    monkeypatch.setenv("UP_TOKEN", "s3cret")
    found = topology.system_for_token("s3cret")
    assert found is not None and found.name == "up"
    assert topology.system_for_token("s3cre") is None
    assert topology.system_for_token("") is None
    assert topology.systems["down"].token() is None


def test_secret_is_checked_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    system = System(name="treasury", secret_env="TREASURY_SECRET")
    monkeypatch.delenv("TREASURY_SECRET", raising=False)
    assert system.secret() is None
    monkeypatch.setenv("TREASURY_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert system.secret() == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    for bad in ("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_not base64!", "whsec_"):
        monkeypatch.setenv("TREASURY_SECRET", bad)
        with pytest.raises(ConfigError, match="TREASURY_SECRET must be a signing secret"):
            system.secret()


def test_models_can_be_built_in_code() -> None:
    flow = Flow(name="g", source="a", target="b", document="d")
    assert (flow.source, flow.target, flow.retry[0]) == ("a", "b", timedelta(seconds=5))
    raw = {"name": "f", "from": "a", "to": "b", "document": "d", "retry": ["1s", 2]}
    assert Flow.model_validate(raw).retry == [timedelta(seconds=1), timedelta(seconds=2)]
    assert System.model_validate({"name": "s", "rate": "100/m"}).rate == pytest.approx(100 / 60)
    smtp = config.Smtp.model_validate({"host": "mail", "from": "hub@example.com"})
    assert (smtp.from_, smtp.port) == ("hub@example.com", 25)


# --------------------------------------------------------------------------- credentials


def test_users_personal_tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = MINIMAL + (
        "users:\n"
        "  - {name: duty, role: operator, password_env: DUTY_PASSWORD, token_env: DUTY_TOKEN}\n"
        "  - {name: auditor, role: viewer}\n"
    )
    topology = load(write(tmp_path, text))
    duty, auditor = topology.users
    monkeypatch.delenv("DUTY_TOKEN", raising=False)
    assert (duty.token_env, duty.token(), auditor.token()) == ("DUTY_TOKEN", None, None)
    monkeypatch.setenv("DUTY_TOKEN", "personal-token")
    assert duty.token() == "personal-token"


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        (
            "{name: duty, role: operator, token_env: 'DUTY TOKEN'}",
            "9: users[0].token_env: 'DUTY TOKEN' is not an environment variable name "
            "(e.g. DUTY_TOKEN)",
        ),
        (
            "{name: duty, role: operator, token_env: UP_TOKEN}",
            "9: users[0].token_env: UP_TOKEN is already the token of system 'up'; give each "
            "its own variable",
        ),
        (
            "{name: duty, role: operator, token_env: INTERLINK_ADMIN_TOKEN}",
            "9: users[0].token_env: INTERLINK_ADMIN_TOKEN is already the token of the "
            "break-glass admin; give each its own variable",
        ),
        ("{name: duty, role: operator, token: abc}", "9: users[0].token: unknown key"),
    ],
)
def test_a_bad_token_env_is_refused_with_its_line(tmp_path: Path, user: str, expected: str) -> None:
    assert one_problem(tmp_path, MINIMAL + f"users:\n  - {user}\n") == expected


def test_two_users_cannot_share_a_token_variable(tmp_path: Path) -> None:
    text = MINIMAL + (
        "users:\n"
        "  - {name: duty, role: operator, token_env: SHARED}\n"
        "  - {name: auditor, role: viewer, token_env: SHARED}\n"
    )
    assert one_problem(tmp_path, text) == (
        "10: users[1].token_env: SHARED is already the token of user 'duty'; give each its "
        "own variable"
    )


def test_allowed_hosts(tmp_path: Path) -> None:
    text = MINIMAL + "allowed_hosts: [Interlink.Example.COM, 10.1.2.3, '[::1]', '*']\n"
    topology = load(write(tmp_path, text))
    assert topology.allowed_hosts == ["interlink.example.com", "10.1.2.3", "::1", "*"]
    assert loads(MINIMAL).allowed_hosts == []


@pytest.mark.parametrize("bad", ["https://interlink.example.com", "hub:8600", "a/b", "a b"])
def test_allowed_hosts_must_be_host_names(tmp_path: Path, bad: str) -> None:
    found = one_problem(tmp_path, MINIMAL + f"allowed_hosts: ['{bad}']\n")
    assert found.startswith(f"8: allowed_hosts[0]: {bad!r} is not a host name"), found
