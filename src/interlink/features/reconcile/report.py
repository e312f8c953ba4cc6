"""A reconciliation report for people: a terminal table, CSV or Markdown."""

from __future__ import annotations

from typing import Any

from interlink import csv_export
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


def summary_lines(report: dict[str, Any]) -> list[str]:
    period = report["period"]
    totals = report["totals"]
    lines = [
        f"flow {report['flow']}  source {report['source']}"
        + (f"  run {report['run']}" if report.get("run") else ""),
        f"period {period['since'] or '-'} .. {period['until'] or '-'}",
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
    lines += ["", verdict(report)]
    return lines


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def to_csv(report: dict[str, Any]) -> str:
    # keys and statuses come from the downstream's file: no cell may run as a formula
    rows = ([item.get(c) for c in ITEM_COLUMNS] for item in report["items"])
    return csv_export.to_csv(ITEM_COLUMNS, rows)


def _md(value: Any) -> str:
    return _cell(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    period = report["period"]
    totals = report["totals"]
    out = [
        f"# Reconciliation of {report['flow']}",
        "",
        f"Source: {_md(report['source'])}; period {period['since'] or '-'} to "
        f"{period['until'] or '-'}.",
        "",
        f"**{verdict(report)}**",
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
