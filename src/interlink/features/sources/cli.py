"""``interlink sources``: the sources with their lag; ``sources poll|pause|resume|problems``."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from interlink.cli.common import (
    EXIT_BAD_INPUT,
    ConfigOption,
    JsonOption,
    actor,
    err,
    hub,
    out,
    print_json,
    shorten,
)
from interlink.errors import InterlinkError
from interlink.features.sources.service import sources

app = typer.Typer(
    help="Sources Interlink pulls from: outbox tables and file drops.",
    invoke_without_command=True,
    rich_markup_mode=None,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="sources")


def _age(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


@app.callback()
def listing(ctx: typer.Context, config: ConfigOption = None, json_: JsonOption = False) -> None:
    """Each source: its cursor, rows behind, age of the oldest unread row, problems."""
    if ctx.invoked_subcommand is not None:
        return
    with hub(config) as h:
        found = sources(h).status()
    if json_:
        print_json({"items": found})
        return
    if not found:
        out.print("No sources in the topology (systems.<name>.sources).")
        return
    table = Table("source", "system", "kind", "state", "behind", "oldest unread", "accepted",
                  "problems", "cursor")  # fmt: skip
    for s in found:
        state = "paused" if s["paused"] else ("unreachable" if s["error"] else "running")
        if s["schedule"] and not s["paused"]:
            state += f" (at {', '.join(s['schedule'])})"
        if s["behind_since"] and not s["paused"]:
            state += ", behind"
        table.add_row(
            s["name"],
            s["system"],
            s["kind"],
            state,
            "" if s["behind"] is None else str(s["behind"]),
            _age(s["oldest_unread_age"]),
            str(s["accepted"]),
            str(s["problems"]),
            shorten(str(s["cursor"]) if s["cursor"] is not None else "", 30),
        )
    out.print(table)
    for s in found:
        if s["error"]:
            out.print(f"{s['name']}: {s['error']}")


def _fail(exc: InterlinkError) -> None:
    err.print(f"error: {exc.message}")
    raise typer.Exit(EXIT_BAD_INPUT)


@app.command("poll")
def poll(
    name: Annotated[str, typer.Argument(help="The source.", show_default=False)],
    batches: Annotated[
        int, typer.Option("--batches", min=1, help="Poll this many batches at most.")
    ] = 1,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Take one batch (for cron and tests); more with --batches, stopping when caught up."""
    results: list[dict[str, Any]] = []
    with hub(config) as h:
        service = sources(h)
        try:
            _, settings = service.source(name)
            for _ in range(batches):
                result = service.poll(name)
                results.append(result)
                if result.get("error") or result.get("paused"):
                    break
                if settings.kind != "files" and result["read"] < settings.batch:
                    break
                if settings.kind == "files" and "file" not in result:
                    break
        except InterlinkError as exc:
            _fail(exc)
        finally:
            service.close()
    if json_:
        print_json(results[0] if batches == 1 and results else {"batches": results})
        return
    for r in results:
        if r.get("paused"):
            out.print(f"{name}: paused; nothing read (interlink sources resume {name})")
        elif r.get("error"):
            out.print(f"{name}: cannot read the upstream: {r['error']}")
        else:
            where = f" from {r['file']}" if r.get("file") else ""
            out.print(
                f"{name}: read {r['read']}{where}: {r['accepted']} accepted, "
                f"{r['duplicate']} duplicate, {r['refused']} refused"
                + (f"; {r['behind']} behind" if r.get("behind") is not None else "")
            )
    if any(r.get("error") for r in results):
        raise typer.Exit(1)


@app.command("pause")
def pause(
    name: Annotated[str, typer.Argument(help="The source.", show_default=False)],
    note: Annotated[str, typer.Option("--note", help="Why, for the audit trail.")] = "",
    config: ConfigOption = None,
) -> None:
    """Stop polling a source (its cursor stays where it is)."""
    with hub(config) as h:
        try:
            sources(h).pause(name, actor(), note)
        except InterlinkError as exc:
            _fail(exc)
    out.print(f"{name}: paused")


@app.command("resume")
def resume(
    name: Annotated[str, typer.Argument(help="The source.", show_default=False)],
    config: ConfigOption = None,
) -> None:
    """Poll a paused source again, from its cursor."""
    with hub(config) as h:
        try:
            sources(h).resume(name, actor())
        except InterlinkError as exc:
            _fail(exc)
    out.print(f"{name}: resumed")


@app.command("problems")
def problems(
    name: Annotated[str | None, typer.Argument(help="Only this source.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 100,
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Rows intake refused (contract, unknown type...), newest first; the cursor moved on."""
    with hub(config) as h:
        try:
            found = sources(h).problems(name, limit)
        except InterlinkError as exc:
            _fail(exc)
    if json_:
        print_json({"items": found})
        return
    table = Table("id", "source", "at", "row", "problem")
    for p in found:
        detail = "; ".join(f"{x.get('path')}: {x.get('message')}" for x in p["problems"][:3])
        table.add_row(
            str(p["id"]), p["source"], p["at"][:19], p["ref"],
            shorten(p["message"] + (f" ({detail})" if detail else ""), 90),
        )  # fmt: skip
    out.print(table)
