"""``status``: per flow what is pending, in flight, held, delivered and dead; per system its
circuit."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from interlink.cli.common import ConfigOption, JsonOption, hub, local_time, out, print_json
from interlink.config import Topology


def status(config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Show each flow's deliveries by state and each system's circuit."""
    with hub(config) as h:
        data = h.status()
        if json_:
            print_json(data)
            return
        for table in tables(data, h.topology):
            out.print(table)


def tables(data: dict[str, Any], topology: Topology) -> list[Table]:
    """Flows, then the upstream sources the hub reads (when it reads any), then systems."""
    sources = [source_table(data["sources"])] if data.get("sources") else []
    return [flow_table(data), *sources, system_table(data, topology)]


def held_text(held: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(held.items()) if n) or "0"


def flow_table(data: dict[str, Any]) -> Table:
    table = Table(title="flows", title_justify="left")
    table.add_column("flow")
    table.add_column("from → to")
    for name in ("pending", "in flight"):
        table.add_column(name, justify="right")
    table.add_column("held")
    table.add_column("delivered", justify="right")
    table.add_column("dead", justify="right")
    table.add_column("hold")
    # File-exchange flows (docs/transports.md) also count their files; others have none.
    files = any("files" in f for f in data["flows"].values())
    if files:
        table.add_column("files")
    for name, f in data["flows"].items():
        hold = f.get("hold")
        table.add_row(
            name,
            f"{f['from']} → {f['to']}",
            str(f["pending"]),
            str(f["in_flight"]),
            held_text(f["held"]),
            str(f["delivered"]),
            Text(str(f["dead"]), style="red") if f["dead"] else "0",
            Text.assemble((hold["reason"], "yellow"), f" by {hold['by']}") if hold else "",
            *([files_text(f.get("files"))] if files else []),
        )
    return table


def files_text(files: dict[str, int] | None) -> Text | str:
    """A file flow's files not sent yet and results overdue; empty for other flows."""
    if files is None:
        return ""
    not_sent, overdue = files.get("not_sent", 0), files.get("result_overdue", 0)
    if not not_sent and not overdue:
        return Text("ok", style="green")
    return Text.assemble(
        *([(f"{not_sent} not sent", "yellow")] if not_sent else []),
        *([", "] if not_sent and overdue else []),
        *([(f"{overdue} result overdue", "red")] if overdue else []),
    )


def source_table(sources: dict[str, Any]) -> Table:
    """The upstream sources the hub reads (docs/sources.md): how far behind each one is."""
    table = Table(title="sources", title_justify="left")
    table.add_column("source")
    table.add_column("system")
    table.add_column("kind")
    table.add_column("paused")
    table.add_column("behind", justify="right")
    table.add_column("oldest unread", justify="right")
    table.add_column("error")
    for name, s in sources.items():
        behind = s.get("behind")
        age = s.get("oldest_unread_age")
        table.add_row(
            name,
            s["system"],
            s["kind"],
            Text("paused", style="yellow") if s.get("paused") else "",
            "" if behind is None else Text(str(behind), style="yellow" if s.get("lagging") else ""),
            "" if age is None else _age(age),
            Text(s["error"], style="red") if s.get("error") else "",
        )
    return table


def _age(seconds: float) -> str:
    """``42s``, ``5m``, ``3h 20m``, ``2d 4h``: an age read at a glance."""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def system_table(data: dict[str, Any], topology: Topology) -> Table:
    table = Table(title="systems", title_justify="left")
    table.add_column("system")
    table.add_column("role")
    table.add_column("circuit")
    table.add_column("since")
    table.add_column("next probe")
    for name, s in data["systems"].items():
        role = topology.role(name)
        if role == "upstream":
            # Nothing is ever sent to a pure source, so it has no breaker to be open or closed.
            circuit = Text("none (source only)", style="dim")
        elif s["circuit"] == "open":
            circuit = Text("open", style="red")
        else:
            circuit = Text("closed", style="green")
        table.add_row(
            name,
            role,
            circuit,
            _when(s.get("opened_at"), topology),
            _when(s.get("next_probe_at"), topology),
        )
    return table


def _when(iso: str | None, topology: Topology) -> str:
    return local_time(datetime.fromisoformat(iso), topology) if iso else ""
