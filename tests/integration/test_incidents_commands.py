"""The `incidents` and `alerts` subcommands in-process (typer's runner): comment, assign,
attach, show, list, stats, alerts list and test. tests/acceptance/test_incidents_cli.py runs
new/list/resolve/export as real processes."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli import app, common
from interlink.errors import InputError

TOPOLOGY = """\
timezone: Asia/Shanghai
database: sqlite:///hub.db
systems:
  trading: {}
  treasury:
    url: http://127.0.0.1:9
documents:
  payment_order: {key: order_no}
flows:
  trading-treasury: {from: trading, to: treasury, document: payment_order}
"""


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("INTERLINK_ACTOR", "duty")
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "interlink.yaml"
    path.write_text(textwrap.dedent(TOPOLOGY))
    return str(path)


Runner = Callable[..., tuple[int, str, BaseException | None]]


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch) -> Runner:
    """Invoke the CLI in-process; (exit code, what it printed, the exception it raised).

    The commands print through a Rich console bound to stdout at import; it prints here."""

    def invoke(*args: str) -> tuple[int, str, BaseException | None]:
        printed = io.StringIO()
        monkeypatch.setattr(common.out, "file", printed)
        # Its width was fixed at import, by whatever COLUMNS said then: wide enough here.
        monkeypatch.setattr(common.out, "width", 200)
        result = CliRunner().invoke(app, list(args))
        return result.exit_code, result.output + printed.getvalue(), result.exception

    return invoke


def test_comment_assign_attach_show_and_stats(run: Runner, config: str, tmp_path: Path) -> None:
    code, output, _ = run("incidents", "new", "-c", config, "--title", "Slow treasury",
                          "--system", "treasury")  # fmt: skip
    assert code == 0 and "incident 1 opened" in output
    assert run("incidents", "comment", "1", "asked treasury ops", "-c", config)[0] == 0
    assert run("incidents", "assign", "1", "li.wei", "-c", config)[0] == 0
    assert run("incidents", "status", "1", "investigating", "-c", config)[0] == 0
    log = tmp_path / "treasury.log"
    log.write_text("2026-01-05 09:00 pool exhausted\n")
    assert run("incidents", "attach", "1", str(log), "-c", config)[0] == 0
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"MZ\x90\x00not a picture")
    code, _, exc = run("incidents", "attach", "1", str(fake), "-c", config)
    assert isinstance(exc, InputError) and "content" in exc.message
    code, _, exc = run("incidents", "attach", "1", str(tmp_path / "missing.png"), "-c", config)
    assert isinstance(exc, InputError)

    code, output, _ = run("incidents", "show", "1", "-c", config)
    assert code == 0
    for text in ("Slow treasury", "investigating", "li.wei", "asked treasury ops",
                 "treasury.log", "duty"):  # fmt: skip
        assert text in output, text
    code, output, _ = run("incidents", "list", "-c", config, "--search", "pool", "--system",
                          "treasury")  # fmt: skip
    assert code == 0 and "Slow treasury" not in output  # the log's text is not searched
    code, output, _ = run("incidents", "list", "-c", config, "--search", "ASKED")
    assert "Slow treasury" in output
    code, output, exc = run("incidents", "list", "-c", config, "--since", "yesterday")
    assert isinstance(exc, InputError)

    code, _, exc = run("incidents", "resolve", "1", "-c", config)
    assert isinstance(exc, InputError) and "resolution" in exc.message
    assert run("incidents", "resolve", "1", "-c", config, "--resolution", "pool enlarged")[0] == 0
    code, output, _ = run("incidents", "export", "-c", config, "--format", "md")
    assert output.splitlines()[2].startswith("| 1 | Slow treasury |")
    code, output, _ = run("incidents", "stats", "-c", config)
    assert code == 0 and "open: 0 of 1" in output and "MTTR" in output
    code, _, exc = run("incidents", "status", "1", "closed", "-c", config)
    assert isinstance(exc, InputError)


def test_alerts_commands(run: Runner, config: str) -> None:
    code, output, _ = run("alerts", "list", "-c", config)
    assert code == 0 and "no alerts" in output
    code, _, exc = run("alerts", "list", "-c", config, "--status", "lost")
    assert isinstance(exc, InputError)
    code, output, _ = run("alerts", "test", "-c", config)
    assert code == 0 and "no channels" in output
