"""``interlink maintenance add|list|cancel`` as a process: windows announced, refused with
exit code 2 and nothing stored, forced short notice shown as such, cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.acceptance.conftest import Run, run_cli_async, write

Cli = Callable[..., Run]

TOPOLOGY = """\
timezone: UTC
database: sqlite:///hub.db
systems:
  trading:
    token_env: TRADING_TOKEN
  treasury:
    url: http://127.0.0.1:9
    maintenance_notice: 24h
    peak_hours: ["Mon-Sun 09:00-11:30"]
documents:
  payment_order:
    key: order_no
flows:
  trading-treasury:
    from: trading
    to: treasury
    document: payment_order
    path: /payments
"""


def day(offset: int, hour: int, minute: int = 0) -> str:
    when = datetime.now(UTC) + timedelta(days=offset)
    return when.replace(hour=hour, minute=minute, second=0, microsecond=0).strftime(
        "%Y-%m-%dT%H:%M"
    )


def listed(cli: Cli) -> list[dict]:
    result = cli("maintenance", "list", "--all", "--json")
    assert result.code == 0, result.err
    items: list[dict] = result.json()["items"]
    return items


async def test_maintenance_commands(cli: Cli, tmp_path: Path) -> None:
    write(tmp_path / "interlink.yaml", TOPOLOGY)
    add = ("maintenance", "add")
    ok = cli(*add, "treasury", "--start", day(3, 20), "--end", day(3, 22), "--reason", "release")
    assert ok.code == 0, ok.err
    assert ok.out.startswith("window 1: treasury from ")

    soon = datetime.now(UTC) + timedelta(hours=3)
    start, end = soon.strftime("%Y-%m-%dT%H:%M:%S+00:00"), (soon + timedelta(hours=1)).isoformat()
    refusals = [
        (("treasury", "--start", day(4, 22), "--end", day(4, 20)), "end must be after the start"),
        (("billing", "--start", day(4, 20), "--end", day(4, 22)), "unknown system 'billing'"),
        (("treasury", "--start", day(3, 21), "--end", day(3, 23)), "overlaps window 1"),
        (("treasury", "--start", day(5, 10), "--end", day(5, 12)), "declared peak hours"),
        (("treasury", "--start", start, "--end", end), "short notice: treasury asks for 1d"),
    ]
    # Independent refusals run side by side: each is a process of its own.
    results = await asyncio.gather(
        *(run_cli_async(*add, *args, "--reason", "x", cwd=tmp_path) for args, _ in refusals),
        run_cli_async(
            *add,
            "treasury",
            "--start",
            start,
            "--end",
            end,
            "--reason",
            "x",
            "--dry-run",
            cwd=tmp_path,
        ),
    )
    for (args, message), result in zip(refusals, results, strict=False):
        assert result.code == 2, (args, result.out)
        assert message in result.err and "Traceback" not in result.err, result.err
    assert "--force" in results[3].err and "--force" in results[4].err
    # Refused for peak hours: the quietest allowed slot, as a command to run, avoids them.
    [command] = [x for x in results[3].err.splitlines() if x.startswith("  interlink maintenance")]
    assert command.endswith("--reason x") and "T09:" not in command and "T10:" not in command
    preview = results[-1]
    assert preview.code == 1 and "would be refused" in preview.out
    # A refusal is an error, not a warning, and comes with a slot that would be announced.
    assert "error: short notice" in preview.err and "warning: short notice" not in preview.out
    assert "  interlink maintenance add treasury --start " in preview.err

    forced = cli(*add, "treasury", "--start", start, "--end", end, "--reason", "hotfix", "--force")
    assert forced.code == 0, forced.err
    assert "(short notice)" in forced.out
    table, listing, missing = await asyncio.gather(
        run_cli_async("maintenance", "list", cwd=tmp_path),
        run_cli_async("maintenance", "list", "--all", "--json", cwd=tmp_path),
        run_cli_async("maintenance", "cancel", "99", cwd=tmp_path),
    )
    assert table.code == 0 and "short notice" in table.out and "hotfix" in table.out
    # Ids are never reused: nothing refused was stored in between.
    windows = listing.json()["items"]
    assert [(w["id"], w["short_notice"]) for w in windows] == [(2, True), (1, False)]
    assert missing.code == 2 and "no maintenance window 99" in missing.err

    assert cli("maintenance", "cancel", "1").code == 0
    assert [w["state"] for w in listed(cli)] == ["scheduled", "cancelled"]
