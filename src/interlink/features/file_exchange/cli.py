"""``interlink files``: batch files of file-exchange flows; send one now, fetch results now."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from interlink.cli.common import ConfigOption, JsonOption, hub, out, print_json
from interlink.config import Topology
from interlink.features.file_exchange.service import file_exchange

app = typer.Typer(
    help="Batch files to transport: file systems (a folder or SFTP) and their results.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

FlowArgument = Annotated[str, typer.Argument(help="A flow to a transport: file system.")]


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="files")


def _local(text: str | None, topo: Topology) -> str:
    if not text:
        return ""
    return datetime.fromisoformat(text).astimezone(topo.tz).strftime("%Y-%m-%d %H:%M")


def _table(batches: list[dict[str, Any]], topo: Topology) -> Table:
    table = Table(title="batch files", title_justify="left")
    for name in ("id", "flow", "file", "state", "lines", "answered", "sent", "result due"):
        table.add_column(name, justify="right" if name in ("id", "lines", "answered") else "left")
    table.add_column("last error")
    for b in batches:
        state = b["state"]
        if state == "not_sent" and b["next_try_at"]:
            state += f" (try {b['tries'] + 1} at {_local(b['next_try_at'], topo)})"
        table.add_row(
            str(b["id"]),
            b["flow"],
            b["name"],
            state,
            str(b["lines"]),
            str(b["answered"]),
            _local(b["sent_at"], topo),
            _local(b["result_due_at"], topo),
            b["last_error"] or "",
        )
    return table


@app.command("list")
def list_(
    flow: Annotated[str | None, typer.Option("--flow", help="Only this flow.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most this many.")] = 50,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """List batch files, newest first: sent or not, answered or awaiting their result."""
    with hub(config) as h:
        service = file_exchange(h)
        batches = service.batches(flow, limit)
        if json_:
            print_json({"batches": batches, "results": service.results(limit)})
            return
        out.print(_table(batches, h.topology))


@app.command("send-now")
def send_now(flow: FlowArgument, config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Send FLOW's unsent files again, then cut a file from everything waiting, now."""
    with hub(config) as h:
        result = asyncio.run(file_exchange(h).send_now(flow))
        if json_:
            print_json(result)
            return
        if not result["batches"]:
            out.print(f"{flow}: nothing waits for a file", markup=False)
            return
        out.print(_table(result["batches"], h.topology))
        if any(b["state"] == "not_sent" for b in result["batches"]):
            raise typer.Exit(1)


@app.command("fetch-results")
def fetch_results(
    flow: FlowArgument, config: ConfigOption = None, json_: JsonOption = False
) -> None:
    """Read the result files of FLOW's system not read yet, and settle what they answer."""
    with hub(config) as h:
        service = file_exchange(h)
        result = asyncio.run(service.fetch_results(service.system_of(flow)))
        if json_:
            print_json(result)
            return
        if not result["results"]:
            out.print(f"{result['system']}: no new result file", markup=False)
        for r in result["results"]:
            out.print(
                f"{r['name']}: {r['accepted']} accepted, {r['refused']} refused, "
                f"{len(r['problems'])} problem(s)",
                markup=False,
            )
            for p in r["problems"]:
                out.print(f"  line {p['line']}: {p['problem']}", markup=False)
