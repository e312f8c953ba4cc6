"""Mapping's pure parts: formats, the compiled map, lineage, and the model's refusals."""

from __future__ import annotations

import textwrap
from zoneinfo import ZoneInfo

import jmespath
import orjson
import pytest

from interlink.config import loads
from interlink.errors import ConfigError
from interlink.features.mapping.formats import fen, time_format
from interlink.features.mapping.maps import MapError, compile_map, getter

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("amount", "expected"),
    [
        ("1234.56", 123456),
        ("0.10", 10),
        ("-0.01", -1),
        ("12", 1200),
        (".5", 50),
        ("1.230000", 123),
        ("1e2", 10000),
        (7, 700),
        (0.29, 29),  # 0.29 * 100 is 28.999999999999996 in floating point
        (19.99, 1999),
        ("99999999999999.99", 9999999999999999),
    ],
)
def test_fen_is_exact(amount: object, expected: int) -> None:
    assert fen(amount) == expected


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        ("12.345", "has a fraction of a fen"),
        (0.001, "has a fraction of a fen"),
        ("", "is not a decimal amount"),
        ("abc", "is not a decimal amount"),
        ("NaN", "is not a decimal amount"),
        (True, "is not an amount"),
        ({"a": 1}, "is not an amount"),
    ],
)
def test_fen_refuses_what_it_cannot_write_exactly(amount: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fen(amount)


def test_times_are_written_in_the_maps_zone_and_dates_are_not_shifted() -> None:
    day = time_format("yyyyMMdd", SHANGHAI, ZoneInfo("UTC"))
    stamp = time_format("yyyy-MM-dd HH:mm:ss", SHANGHAI, SHANGHAI)
    assert day("2026-11-30T20:30:00Z") == "20261201"
    assert day("2026-11-30T20:30:00") == "20261201"  # no offset: the topology's zone (UTC)
    assert day("2026-11-30") == "20261130"
    assert stamp("2026-11-30T20:30:00+00:00") == "2026-12-01 04:30:00"
    assert stamp("2026-11-30T20:30:00") == "2026-11-30 20:30:00"
    chinese = mapper("日期: {path: at, format: yyyy年MM月dd日 HH时}")
    assert chinese.value({"at": "2026-11-30T20:30:00Z"}) == {"日期": "2026年12月01日 04时"}  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        day("30/11/2026")
    with pytest.raises(ValueError, match="is not an ISO 8601 time"):
        day(20261130)


@pytest.mark.parametrize("expression", ["a", "a.b", "a.b.c"])
@pytest.mark.parametrize(
    "data", [{}, {"a": 1}, {"a": {"b": None}}, {"a": {"b": {"c": [1]}}}, [1], "x", None]
)
def test_dotted_paths_read_as_jmespath_does(expression: str, data: object) -> None:
    assert getter(expression)(data) == jmespath.search(expression, data)


TOPOLOGY = """\
timezone: UTC
code_tables:
  kind: {pay: "01", refund: "02"}
systems:
  a: {}
  b: {url: "http://127.0.0.1:9"}
documents:
  order:
    key: order_no
    scenarios:
      - {name: payment, direction: forward, when: {kind: pay}}
      - {name: refund, direction: reverse, when: {kind: refund}}
      - {name: reversal, direction: reverse, when: {kind: reversal}}
flows:
  a-b:
    from: a
    to: b
    document: order
    map:
      timezone: Asia/Shanghai
      fields:
%s
"""


def mapper(fields: str) -> object:
    text = TOPOLOGY % textwrap.indent(textwrap.dedent(fields), " " * 8)
    topology = loads(text, "t.yaml")
    return compile_map(topology, topology.flows["a-b"])


def test_codes_constants_defaults_and_arrays() -> None:
    m = mapper(
        """
        type: {path: kind, code: kind}
        source: {const: {system: a, version: 1}}
        memo: {path: memo, default: ""}
        total: {path: "sum(lines[].qty)"}
        big: {path: "lines[?qty > `1`].sku"}
        items: {each: lines, path: sku}
        """
    )
    doc = {"kind": "pay", "lines": [{"sku": "x", "qty": 1}, {"sku": "y", "qty": 2}]}
    assert m.value(doc) == {  # type: ignore[attr-defined]
        "type": "01",
        "source": {"system": "a", "version": 1},
        "memo": "",
        "total": 3,
        "big": ["y"],
        "items": ["x", "y"],
    }
    with pytest.raises(MapError, match=r"^type: 'reversal' has no entry in code table kind$"):
        m.value({**doc, "kind": "reversal"})  # type: ignore[attr-defined]
    with pytest.raises(MapError, match=r"^total: In function sum\(\), invalid type"):
        m.value({"kind": "pay", "lines": {"sku": "x"}})  # type: ignore[attr-defined]
    with pytest.raises(MapError, match=r"^items: each: lines is not a list$"):
        mapper("items: {each: lines, path: sku}").value({"lines": {"sku": "x"}})  # type: ignore[attr-defined]


def test_values_by_scenario_left_out_or_otherwise() -> None:
    m = mapper(
        """
        direction:
          by_scenario:
            payment: {const: D}
            refund: {const: C}
            otherwise: {const: "?"}
        original: {by_scenario: {refund: original_no, payment: null, reversal: original_no}}
        """
    )
    assert m.value({"kind": "pay"}) == {"direction": "D"}  # type: ignore[attr-defined]
    assert m.value({"kind": "refund", "original_no": "P-1"}) == {  # type: ignore[attr-defined]
        "direction": "C",
        "original": "P-1",
    }
    with pytest.raises(MapError, match="original: the document has no scenario"):
        m.value({"kind": "other"})  # type: ignore[attr-defined]


def test_errors_name_the_downstream_field_inside_arrays() -> None:
    m = mapper(
        """
        明细: {each: lines, fields: {金额: {path: amount, format: fen}}}
        """
    )
    with pytest.raises(MapError) as caught:
        m.body(orjson.dumps({"lines": [{"amount": "1"}, {"amount": "0.001"}]}))  # type: ignore[attr-defined]
    assert str(caught.value) == "明细[1].金额: '0.001' has a fraction of a fen"
    with pytest.raises(MapError, match="not JSON"):
        m.body(b"{")  # type: ignore[attr-defined]


def test_lineage_follows_projections_filters_and_functions() -> None:
    topology = loads(
        TOPOLOGY
        % textwrap.indent(
            textwrap.dedent(
                """
                total: "sum(lines[].qty)"
                big: "lines[?qty > `1`].sku"
                first: "sort_by(lines, &no)[0].sku"
                names: "join(', ', parties[*].name)"
                payee: {path: payee, fields: {acct: account, bank: "bank.code"}}
                rows: {each: lines, fields: {sku: sku, n: {const: 1}}}
                text: {by_scenario: {payment: memo, otherwise: note}}
                """
            ),
            " " * 8,
        ),
        "t.yaml",
    )
    settings = topology.flows["a-b"].map
    assert settings is not None
    assert settings.lineage() == {
        "total": ["lines.qty"],
        "big": ["lines.qty", "lines.sku"],
        "first": ["lines.no", "lines.sku"],
        "names": ["parties.name"],
        "payee": ["payee.account", "payee.bank.code"],
        "payee.acct": ["payee.account"],
        "payee.bank": ["payee.bank.code"],
        "rows": ["lines.sku"],
        "rows.sku": ["lines.sku"],
        "rows.n": [],
        "text": ["memo", "note"],
    }
    # A value by scenario also reads what the scenarios match on.
    assert settings.lineage(["kind"])["text"] == ["kind", "memo", "note"]
    assert settings.lineage(["kind"])["total"] == ["lines.qty"]


@pytest.mark.parametrize(
    ("field", "message"),
    [
        (
            "x: {path: a, const: 1}",
            "give one of path, const, fields or by_scenario (not path and const)",
        ),
        ("x: {code: kind}", "give one of path, const, fields or by_scenario"),
        ("x: {path: a, format: cents}", "unknown format 'cents'"),
        ("x: {path: 'a.['}", "is not a JMESPath expression"),
        ("x: {const: 1, format: fen}", "const takes no format"),
        ("x: {each: lines}", "each needs fields"),
        ("x: {fields: {y: a}, code: kind}", "fields (a nested object) takes no code or format"),
        ("x: no", "write the path in quotes"),
    ],
)
def test_malformed_maps_do_not_load(field: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        loads(TOPOLOGY % ("        " + field), "t.yaml")
    assert any(
        p.startswith("t.yaml:22: flows.a-b.map.fields.x") and message in p
        for p in caught.value.problems
    ), caught.value.problems


def test_codes_must_be_quoted_and_zones_known() -> None:
    text = TOPOLOGY.replace('refund: "02"', "refund: 02") % "        x: a"
    with pytest.raises(
        ConfigError, match=r"t.yaml:3: code_tables.kind.refund: write codes in quotes"
    ):
        loads(text, "t.yaml")
    with pytest.raises(ConfigError, match="unknown timezone 'Mars/Base'"):
        loads((TOPOLOGY % "        x: a").replace("Asia/Shanghai", "Mars/Base"), "t.yaml")


def test_a_map_naming_a_table_that_does_not_exist_does_not_compile() -> None:
    with pytest.raises(ConfigError, match="unknown code table 'kinds'"):
        mapper("x: {path: kind, code: kinds}")


def test_expression_type_errors_and_unwritable_bodies_fail_as_map_errors() -> None:
    m = mapper("top: {path: 'max_by(lines, &b)'}")
    with pytest.raises(MapError, match=r"^top: "):
        m.value({"lines": [{"b": "x"}, {"b": 1}]})  # type: ignore[attr-defined]
    huge = mapper("amount: {path: amount, format: fen}")
    with pytest.raises(MapError, match="cannot be written as JSON"):
        huge.body(b'{"amount": "100000000000000000000"}')  # type: ignore[attr-defined]
