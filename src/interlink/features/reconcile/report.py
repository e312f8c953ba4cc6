"""A reconciliation report for people: a terminal table, CSV or Markdown."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Any

from interlink import csv_export, times
from interlink.features.reconcile.matching import CATEGORIES

ITEM_COLUMNS = (
    "category",
    "key",
    "revision",
    "ours_amount",
    "theirs_amount",
    "ours_status",
    "theirs_status",
    "line",
    "delivery_status",
    "detail",
)


def verdict(report: dict[str, Any]) -> str:
    if not report["complete"]:
        return (
            f"INCOMPLETE: {report['problem_count']} row(s) of the downstream's records could "
            "not be read; this is not a full comparison"
        )
    if report["differences"]:
        return f"{report['differences']} difference(s)"
    timing = report["categories"].get("timing", 0)
    return "no differences" + (f" ({timing} timing difference(s))" if timing else "")


def map_suspect(report: dict[str, Any]) -> str | None:
    """Why the column map is likely wrong, or None.

    When almost none of our deliveries found a row and almost none of their rows found a
    delivery (unreadable or extra), the two sides were not compared on the same columns: a
    wrong ``--map``, not a downstream that lost everything. Re-pushing on such a report would
    send every document again.
    """
    ours = int(report["totals"]["ours"]["count"])
    missing = int(report["categories"].get("missing", 0))
    categories = report["categories"]
    # Their rows that matched none of ours: unknown keys, repeats of one key, unreadable rows.
    unread = int(report["problem_count"])
    unmatched = int(categories.get("extra", 0)) + int(categories.get("duplicate", 0)) + unread
    theirs = int(report["totals"]["theirs"]["count"]) + unread
    if ours < MIN_ROWS or theirs == 0:
        return None
    if missing < SUSPECT_SHARE * ours or unmatched < SUSPECT_SHARE * theirs:
        return None
    return (
        f"{missing} of our {ours} deliveries found no row and {unmatched} of their "
        f"{theirs} rows matched none{f' ({unread} unreadable)' if unread else ''}: "
        "the column map is likely wrong. Check --map against the export's header "
        "(key=COL,amount=COL,...); do not re-push on this report."
    )


MIN_ROWS = 5
SUSPECT_SHARE = 0.8


def period_text(report: dict[str, Any], tz: tzinfo | None = None) -> str:
    """The period in the topology's zone, with the zone named."""
    period = report["period"]

    def one(value: str | None) -> str:
        if not value:
            return "-"
        when = datetime.fromisoformat(value)
        return times.local_text(when, tz) if tz is not None else value

    return f"{one(period['since'])} .. {one(period['until'])}"


def headline(report: dict[str, Any]) -> list[str]:
    """What to read first: the verdict, and why not to act on it when the map looks wrong."""
    lines = [verdict(report)]
    suspect = map_suspect(report)
    if suspect:
        lines.append(suspect)
    return lines


def summary_lines(report: dict[str, Any], tz: tzinfo | None = None) -> list[str]:
    totals = report["totals"]
    lines = [
        *headline(report),
        "",
        f"flow {report['flow']}  source {report['source']}"
        + (f"  run {report['run']}" if report.get("run") else ""),
        f"period {period_text(report, tz)}",
        "",
    ]
    for category in CATEGORIES:
        lines.append(f"  {category:<16} {report['categories'].get(category, 0)}")
    lines += [
        "",
        f"  ours    {totals['ours']['count']:>10}  {totals['ours']['amount']}",
        f"  theirs  {totals['theirs']['count']:>10}  {totals['theirs']['amount']}",
        f"  diff    {totals['difference']['count']:>10}  {totals['difference']['amount']}",
    ]
    for problem in report["problems"]:
        lines.append(f"problem: {problem}")
    if report["problem_count"] > len(report["problems"]):
        lines.append(f"... and {report['problem_count'] - len(report['problems'])} more")
    return lines


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def to_csv(report: dict[str, Any]) -> str:
    # keys and statuses come from the downstream's file: no cell may run as a formula
    rows = ([item.get(c) for c in ITEM_COLUMNS] for item in report["items"])
    return csv_export.to_csv(ITEM_COLUMNS, rows)


def _md(value: Any) -> str:
    return _cell(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any], tz: tzinfo | None = None) -> str:
    totals = report["totals"]
    out = [
        f"# Reconciliation of {report['flow']}",
        "",
        *(part for line in headline(report) for part in (f"**{_md(line)}**", "")),
        f"Source: {_md(report['source'])}; period {period_text(report, tz)}.",
        "",
        "| category | count |",
        "|---|---:|",
    ]
    out += [f"| {c} | {report['categories'].get(c, 0)} |" for c in CATEGORIES]
    out += [
        "",
        "| side | count | amount |",
        "|---|---:|---:|",
        f"| ours | {totals['ours']['count']} | {totals['ours']['amount']} |",
        f"| theirs | {totals['theirs']['count']} | {totals['theirs']['amount']} |",
        f"| difference | {totals['difference']['count']} | {totals['difference']['amount']} |",
        "",
    ]
    if report["problems"]:
        out += ["## Problems", ""] + [f"- {_md(p)}" for p in report["problems"]] + [""]
    if report["items"]:
        out += [
            "## Items",
            "",
            "| " + " | ".join(ITEM_COLUMNS) + " |",
            "|" + "---|" * len(ITEM_COLUMNS),
        ]
        out += [
            "| " + " | ".join(_md(item.get(c)) for c in ITEM_COLUMNS) + " |"
            for item in report["items"]
        ]
    return "\n".join(out) + "\n"


def table_rows(report: dict[str, Any], limit: int = 200) -> list[list[str]]:
    return [[_cell(item.get(c)) for c in ITEM_COLUMNS] for item in report["items"][:limit]]
