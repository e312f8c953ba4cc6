"""A drill's report in the terminal (Rich), as Markdown and as a standalone HTML page.

The report is plain data (see :func:`interlink.features.drills.run.rehearse`); everything here only
renders it. The timeline chart is an inline SVG drawn here: attempts per 100 ms by outcome,
stacked, with each system's fault periods shaded behind and laid out in lanes below.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

OUTCOME_COLOURS = {
    "delivered": "#2e9e44",
    "duplicate": "#1aa3a3",
    "throttled": "#f0a030",
    "unavailable": "#d64541",
    "rejected": "#8e44ad",
    "unauthorized": "#7f8c8d",
}
FAULT_COLOURS = {
    "up": "#2e9e44",
    "down": "#d64541",
    "slow": "#c9b400",
    "timeout": "#e67e22",
    "error": "#e84393",
    "throttle": "#f0a030",
    "reject": "#8e44ad",
    "ack_twice": "#1aa3a3",
    "cut_off": "#8b5a2b",
    "maintenance": "#7f8c8d",
}
STATUS_STYLE = {"passed": "green", "failed": "red", "not available": "yellow"}
STATUS_MARK = {"passed": "PASS", "failed": "FAIL", "not available": "N/A"}
CELL_MARK = {"passed": "passed", "exercised": "exercised", "never tried": "never tried", "": "—"}


def verdict(report: dict[str, Any]) -> str:
    return "PASSED" if report["passed"] else "FAILED"


def outbox_line(report: dict[str, Any]) -> str | None:
    """Where the documents came from, for a drill fed through an outbox."""
    box = report.get("outbox")
    if not box:
        return None
    marked = "" if box["marked_taken"] is None else f", {box['marked_taken']} marked taken"
    return (
        f"outbox: {box['rows']} rows written to the drill's table {box['table']}, "
        f"{box['documents']} taken by source {box['source']}{marked}"
    )


def _what(event: dict[str, Any]) -> str:
    """The event's title, with the downstream's answer when it carries one."""
    detail = event.get("detail") or {}
    said = detail.get("detail") if isinstance(detail, dict) else None
    if not said:
        return str(event["title"])
    said = " ".join(str(said).split())
    return f"{event['title']}: {said[:80]}" + ("…" if len(said) > 80 else "")


def _recipients(event: dict[str, Any]) -> str:
    people = []
    for r in event.get("recipients") or []:
        who = r.get("name") or r.get("email") or "chat"
        people.append(f"{r['system']} {r['role']} ({who})")
    return ", ".join(people)


# -- terminal ---------------------------------------------------------------------------------


def terminal(report: dict[str, Any], console: Console) -> None:
    style = "bold green" if report["passed"] else "bold red"
    console.print(
        Text.assemble(
            (f"drill {report['drill']}: ", "bold"),
            (verdict(report), style),
            f"  ({report['duration']:.1f}s, flows {', '.join(report['flows'])})",
        )
    )
    docs = report["documents"]
    console.print(
        f"documents: {docs['accepted']} accepted of {docs['planned']}"
        + (f", {len(docs['refused'])} refused at intake" if docs["refused"] else "")
        + "; deliveries: "
        + ", ".join(f"{n} {status}" for status, n in sorted(report["deliveries"].items())),
        markup=False,
    )
    if outbox_line(report):
        console.print(outbox_line(report), markup=False)
    table = Table(title="expectations", title_justify="left")
    table.add_column("")
    table.add_column("expectation")
    table.add_column("evidence")
    for check in report["expectations"]:
        evidence = "\n".join([check["evidence"], *check["details"]])
        table.add_row(
            Text(STATUS_MARK[check["status"]], style=STATUS_STYLE[check["status"]]),
            check["name"],
            evidence,
        )
    console.print(table)
    console.print(Text("timeline (attempts per second, by outcome)", style="bold"))
    for line in sparkline_rows(report):
        console.print(line, markup=False)
    events = Table(title="alerts that would have been sent (none were)", title_justify="left")
    events.add_column("t", justify="right")
    events.add_column("event")
    events.add_column("where")
    events.add_column("would tell")
    for e in report["events"]:
        where = " ".join(x for x in (e.get("system"), e.get("flow")) if x)
        events.add_row(f"{e['t']:.1f}s", _what(e), where, _recipients(e) or "—")
    if not report["events"]:
        events.add_row("", "no events", "", "")
    console.print(events)
    if not report.get("alerts_capability"):
        console.print("(the alerts capability is not installed: recipients not worked out)")
    console.print(coverage_table(report))


def coverage_table(report: dict[str, Any]) -> Table:
    flows = report["coverage"]["flows"]
    table = Table(title="coverage: scenario by flow", title_justify="left")
    table.add_column("scenario")
    for flow in flows:
        table.add_column(flow)
    styles = {"passed": "green", "exercised": "yellow", "never tried": "red"}
    for scenario, row in report["coverage"]["scenarios"].items():
        cells = [
            Text(CELL_MARK[row.get(f, "")], style=styles.get(row.get(f, ""), "")) for f in flows
        ]
        table.add_row(scenario, *cells)
    return table


def sparkline_rows(report: dict[str, Any]) -> list[str]:
    """One row per outcome: a block character per second of the drill."""
    timeline = report["timeline"]
    seconds = max(1, math.ceil(timeline["end"]))
    per_bucket = round(1 / timeline["bucket"])
    rows = []
    blocks = " ▁▂▃▄▅▆▇█"
    for outcome in timeline["outcomes"]:
        counts = [0] * seconds
        for index, values in timeline["buckets"].items():
            second = min(seconds - 1, int(index) // per_bucket)
            counts[second] += values.get(outcome, 0)
        top = max(counts) or 1
        bar = "".join(blocks[math.ceil(c / top * 8)] if c else "·" for c in counts)
        rows.append(f"  {outcome:>12} {bar}  ({sum(counts)})")
    for system in dict.fromkeys(f["system"] for f in timeline["faults"]):
        lane = [" "] * seconds
        for f in (x for x in timeline["faults"] if x["system"] == system):
            for s in range(int(f["start"]), min(seconds, math.ceil(f["end"]))):
                lane[s] = f["fault"][0].upper() if f["fault"] != "up" else "."
        rows.append(f"  {system:>12} {''.join(lane)}  (faults: first letter)")
    if not rows:
        rows.append("  no attempts")
    return rows


# -- SVG --------------------------------------------------------------------------------------


def _tick_step(end: float) -> float:
    for step in (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300):
        if end / step <= 12:
            return step
    return 600


def svg_timeline(report: dict[str, Any], width: int = 960) -> str:
    timeline = report["timeline"]
    bucket = timeline["bucket"]
    end = max(timeline["end"], bucket)
    faults = timeline["faults"]
    systems = list(dict.fromkeys(f["system"] for f in faults))
    left, right, top, plot_h, lane_h = 56, 16, 34, 180, 18
    plot_w = width - left - right
    height = top + plot_h + 28 + lane_h * len(systems) + 8

    def x(seconds: float) -> float:
        return left + min(max(seconds, 0.0), end) / end * plot_w

    totals = [sum(v.values()) for v in timeline["buckets"].values()]
    ymax = max(totals, default=0) or 1
    order = [o for o in OUTCOME_COLOURS if o in timeline["outcomes"]]
    order += [o for o in timeline["outcomes"] if o not in OUTCOME_COLOURS]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11" '
        'role="img" aria-label="deliveries and faults over time">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#fafafa" '
        'stroke="#ccc"/>',
    ]
    for f in faults:
        colour = FAULT_COLOURS.get(f["fault"], "#999")
        x0, x1 = x(f["start"]), x(f["end"])
        if f["fault"] != "up":
            parts.append(
                f'<rect x="{x0:.1f}" y="{top}" width="{max(x1 - x0, 1):.1f}" height="{plot_h}" '
                f'fill="{colour}" opacity="0.10"/>'
            )
    bar_w = max(plot_w * bucket / end - 0.5, 0.8)
    for index, values in timeline["buckets"].items():
        start = int(index) * bucket
        y = top + plot_h
        for outcome in order:
            n = values.get(outcome, 0)
            if not n:
                continue
            h = n / ymax * plot_h
            y -= h
            parts.append(
                f'<rect x="{x(start):.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{OUTCOME_COLOURS.get(outcome, "#555")}">'
                f"<title>{start:.1f}s: {n} {escape(outcome)}</title></rect>"
            )
    step = _tick_step(end)
    tick = 0.0
    while tick <= end + 1e-9:
        tx = x(tick)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top + plot_h}" x2="{tx:.1f}" y2="{top + plot_h + 4}" '
            'stroke="#666"/>'
            f'<text x="{tx:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{tick:g}s</text>'
        )
        tick += step
    parts.append(
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{ymax}</text>'
        f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">0</text>'
    )
    lx = left
    for outcome in order:
        parts.append(
            f'<rect x="{lx}" y="10" width="10" height="10" '
            f'fill="{OUTCOME_COLOURS.get(outcome, "#555")}"/>'
            f'<text x="{lx + 14}" y="19">{escape(outcome)}</text>'
        )
        lx += 24 + 7 * len(outcome)
    parts.append(
        f'<text x="{width - right}" y="19" text-anchor="end" fill="#666">attempts per '
        f"{bucket * 1000:g} ms</text>"
    )
    for i, system in enumerate(systems):
        y = top + plot_h + 26 + i * lane_h
        parts.append(f'<text x="{left - 6}" y="{y + 12}" text-anchor="end">{escape(system)}</text>')
        for f in (f for f in faults if f["system"] == system):
            colour = FAULT_COLOURS.get(f["fault"], "#999")
            x0, x1 = x(f["start"]), x(f["end"])
            parts.append(
                f'<rect x="{x0:.1f}" y="{y}" width="{max(x1 - x0, 2):.1f}" height="{lane_h - 4}" '
                f'fill="{colour}" opacity="0.8"><title>{escape(system)}: {escape(f["fault"])} '
                f"{f['start']:g}s-{f['end']:g}s</title></rect>"
                f'<text x="{x0 + 3:.1f}" y="{y + 11}" fill="#fff">{escape(f["fault"])}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts)


# -- Markdown ---------------------------------------------------------------------------------


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", "<br>")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        f"# Drill: {report['drill']} — {verdict(report)}",
        "",
    ]
    if report.get("description"):
        lines += [report["description"].strip(), ""]
    docs = report["documents"]
    lines += [
        f"- file: `{report['file']}`",
        f"- flows: {', '.join(report['flows'])}",
        f"- started {report['started']}, ran {report['duration']:.1f}s"
        + ("" if report["settled"] else " (stopped at the time limit)"),
        f"- documents: {docs['accepted']} accepted of {docs['planned']}, "
        f"{len(docs['refused'])} refused at intake",
        "- deliveries: " + ", ".join(f"{n} {s}" for s, n in sorted(report["deliveries"].items())),
        *([f"- {outbox_line(report)}"] if outbox_line(report) else []),
        "",
        "## Expectations",
        "",
        "| result | expectation | evidence |",
        "|---|---|---|",
    ]
    for check in report["expectations"]:
        evidence = "\n".join([check["evidence"], *check["details"]])
        lines.append(
            f"| **{STATUS_MARK[check['status']]}** | {_cell(check['name'])} | {_cell(evidence)} |"
        )
    lines += [
        "",
        "## Timeline",
        "",
        "Attempts per 100 ms by outcome; fault periods shaded, one lane per system.",
        "",
        svg_timeline(report),
        "",
        "```",
        *sparkline_rows(report),
        "```",
        "",
        "## Alerts that would have been sent",
        "",
        "Nothing was sent: the drill strips every contact's channels.",
        "",
        "| t | event | where | would tell |",
        "|---|---|---|---|",
    ]
    for e in report["events"]:
        where = " ".join(x for x in (e.get("system"), e.get("flow")) if x)
        lines.append(
            f"| {e['t']:.1f}s | {_cell(_what(e))} | {_cell(where)} | "
            f"{_cell(_recipients(e) or '—')} |"
        )
    if not report["events"]:
        lines.append("| | no events | | |")
    flows = report["coverage"]["flows"]
    lines += [
        "",
        "## Coverage: scenario by flow",
        "",
        "| scenario | " + " | ".join(flows) + " |",
        "|---|" + "---|" * len(flows),
    ]
    for scenario, row in report["coverage"]["scenarios"].items():
        lines.append(
            f"| {scenario} | " + " | ".join(CELL_MARK[row.get(f, "")] for f in flows) + " |"
        )
    if docs["refused"]:
        lines += ["", "## Refused at intake", ""]
        lines += [f"- {r['origin']}: {r['message']}" for r in docs["refused"][:50]]
    return "\n".join(lines) + "\n"


# -- HTML -------------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1000px; }
h1 .passed { color: #2e9e44; } h1 .failed { color: #d64541; }
table { border-collapse: collapse; margin: .5rem 0 1.5rem; }
th, td { border: 1px solid #ddd; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.passed { color: #2e9e44; font-weight: bold; } td.failed { color: #d64541; font-weight: bold; }
td.not-available { color: #b7950b; font-weight: bold; }
td.exercised { background: #fff5d6; } td.never-tried { background: #fde2e1; }
td.passed-cell { background: #e3f5e6; }
.details { color: #666; font-size: .9em; }
"""


def html(report: dict[str, Any]) -> str:
    e = escape
    state = "passed" if report["passed"] else "failed"
    docs = report["documents"]
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Drill {e(report['drill'])}: {verdict(report)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f'<h1>Drill {e(report["drill"])}: <span class="{state}">{verdict(report)}</span></h1>',
    ]
    if report.get("description"):
        out.append(f"<p>{e(report['description'])}</p>")
    out.append(
        f"<p>File <code>{e(report['file'])}</code>; flows {e(', '.join(report['flows']))}; "
        f"started {e(report['started'])}; ran {report['duration']:.1f}s"
        + ("" if report["settled"] else " (stopped at the time limit)")
        + f". Documents: {docs['accepted']} accepted of {docs['planned']}, "
        f"{len(docs['refused'])} refused at intake. Deliveries: "
        + e(", ".join(f"{n} {s}" for s, n in sorted(report["deliveries"].items())))
        + ".</p>"
    )
    if outbox_line(report):
        out.append(f"<p>{e(outbox_line(report) or '')}</p>")
    out += [
        "<h2>Expectations</h2>",
        "<table><tr><th>result</th><th>expectation</th><th>evidence</th></tr>",
    ]
    for check in report["expectations"]:
        css = check["status"].replace(" ", "-")
        details = "".join(f'<div class="details">{e(d)}</div>' for d in check["details"])
        out.append(
            f'<tr><td class="{css}">{STATUS_MARK[check["status"]]}</td>'
            f"<td>{e(check['name'])}</td><td>{e(check['evidence'])}{details}</td></tr>"
        )
    out += [
        "</table>",
        "<h2>Timeline</h2>",
        "<p>Attempts per 100 ms by outcome; fault periods shaded, one lane per system.</p>",
        svg_timeline(report),
        "<h2>Alerts that would have been sent</h2>",
        "<p>Nothing was sent: the drill strips every contact's channels.</p>",
        "<table><tr><th>t</th><th>event</th><th>where</th><th>would tell</th></tr>",
    ]
    for ev in report["events"]:
        where = " ".join(x for x in (ev.get("system"), ev.get("flow")) if x)
        out.append(
            f"<tr><td>{ev['t']:.1f}s</td><td>{e(_what(ev))}</td><td>{e(where)}</td>"
            f"<td>{e(_recipients(ev) or '—')}</td></tr>"
        )
    if not report["events"]:
        out.append('<tr><td colspan="4">no events</td></tr>')
    flows = report["coverage"]["flows"]
    out += [
        "</table>",
        "<h2>Coverage: scenario by flow</h2>",
        "<table><tr><th>scenario</th>" + "".join(f"<th>{e(f)}</th>" for f in flows) + "</tr>",
    ]
    for scenario, row in report["coverage"]["scenarios"].items():
        cells = []
        for f in flows:
            mark = row.get(f, "")
            css = {"passed": "passed-cell"}.get(mark, mark.replace(" ", "-"))
            cells.append(f'<td class="{css}">{e(CELL_MARK[mark])}</td>')
        out.append(f"<tr><td>{e(scenario)}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    if docs["refused"]:
        out.append("<h2>Refused at intake</h2><ul>")
        out += [f"<li>{e(r['origin'])}: {e(r['message'])}</li>" for r in docs["refused"][:50]]
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
