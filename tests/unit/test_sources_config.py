"""Sources in the topology: every mistake comes out as file:line: message."""

from __future__ import annotations

import textwrap

import pytest

from interlink.config import loads
from interlink.errors import ConfigError
from interlink.features.sources.check import problems

BASE = """\
systems:
  trading:
    sources:
{sources}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {{key: order_no}}
flows:
  t:
    from: trading
    to: treasury
    document: payment_order
    path: /p
"""


def errors(sources: str) -> list[str]:
    text = BASE.format(sources=textwrap.indent(textwrap.dedent(sources), " " * 6))
    with pytest.raises(ConfigError) as caught:
        loads(text, "t.yaml")
    return caught.value.problems


def test_a_password_never_goes_in_the_file() -> None:
    assert errors("""
        db:
          kind: outbox
          url: mysql://root:secret@db/trading
        """) == ["t.yaml:7: systems.trading.sources.db.url: unknown key"]
    (message,) = errors("""
        db:
          kind: outbox
          url_env: mysql://root@db/x
          table: outbox
        """)
    assert message.startswith("t.yaml:7: systems.trading.sources.db.url_env: ")
    assert "never written here" in message


def test_each_kind_names_what_it_lacks() -> None:
    assert errors("""
        a:
          kind: outbox
          url_env: DB
        b:
          kind: files
          path: drop
        c:
          kind: outbox
          url_env: DB
          table: outbox
          cursor: updated_at
        """) == [
        "t.yaml:5: systems.trading.sources.a: a outbox source needs table",
        "t.yaml:8: systems.trading.sources.b: a files source needs the document type it carries",
        "t.yaml:11: systems.trading.sources.c: cursor: updated_at needs columns.updated_at "
        "(its column name)",
    ]
    assert errors("""
        a:
          kind: files
          path: drop
          document: payment_order
          table: t
          columns: {id: "1bad"}
        """) == [
        "t.yaml:10: systems.trading.sources.a.columns.id: '1bad' is not a table or column "
        "name (letters, digits and _, optionally schema.table)",
    ]


def test_source_names_are_global_and_types_must_flow() -> None:
    text = BASE.format(sources="      a: {kind: files, path: d, document: payment_order}")
    text = text.replace(
        "documents:",
        "  crm:\n    sources:\n      a: {kind: files, path: e, document: payment_order}\n"
        "documents:",
    )
    with pytest.raises(ConfigError) as caught:
        loads(text, "t.yaml")
    assert caught.value.problems == [
        "t.yaml:8: systems.crm.sources: duplicate source 'a': source names are global"
    ]

    topology = loads(
        BASE.format(sources="      a: {kind: files, path: d, document: nope}\n"
                    "      b: {kind: files, path: d, document: payment_order}"),
        "t.yaml",
    )  # fmt: skip
    assert problems(topology) == [
        (("systems", "trading", "sources", "a", "document"),
         "unknown document type 'nope' (known: payment_order)"),
    ]  # fmt: skip


def test_a_schedule_is_times_of_day_and_replaces_the_interval() -> None:
    (message,) = errors("""
        drop:
          kind: files
          path: drop
          document: payment_order
          schedule: ["02:00", "25:00"]
        """)
    assert message.startswith("t.yaml:9: systems.trading.sources.drop.schedule: ")
    assert message.endswith("'25:00' is not a time of day")
    (message,) = errors("""
        drop:
          kind: files
          path: drop
          document: payment_order
          interval: 1m
          schedule: ["02:00"]
        """)
    assert message.startswith("t.yaml:5: systems.trading.sources.drop: ")
    assert message.endswith("give a source an interval or a schedule, not both")
