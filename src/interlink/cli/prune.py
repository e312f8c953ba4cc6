"""``prune``: remove old documents whose deliveries are all delivered (never undelivered ones)."""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Annotated

import typer

from interlink import times
from interlink.cli.common import EXIT_BAD_INPUT, ConfigOption, actor, err, hub, out, print_json
from interlink.config import parse_duration


def prune(
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Age of the documents to remove, e.g. 90d [default: the topology's retention].",
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count them.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    config: ConfigOption = None,
) -> None:
    """Remove documents older than a cutoff whose every delivery was delivered."""
    with hub(config) as h:
        text = older_than
        if text is None:
            if h.topology.retention is None:
                err.print(
                    "error: give --older-than (e.g. 90d) or set `retention:` in the topology",
                    markup=False,
                )
                raise typer.Exit(EXIT_BAD_INPUT)
            age = h.topology.retention
        else:
            try:
                age = parse_duration(text)
            except ValueError as exc:
                err.print(f"error: --older-than: {exc}", markup=False)
                raise typer.Exit(EXIT_BAD_INPUT) from None
        result = h.prune(age, actor(), dry_run=dry_run)
        tz = h.topology.tz
    cutoff = f"{_local(result['cutoff'], tz)} ({times.duration(age)} ago)"
    if json_output:
        print_json(result)
    elif dry_run:
        out.print(
            f"{result['documents']} documents received before {cutoff} would be "
            "removed (all their deliveries delivered)",
            markup=False,
        )
    else:
        out.print(
            f"removed {result['documents']} documents, {result['deliveries']} deliveries and "
            f"{result['attempts']} attempts received before {cutoff}",
            markup=False,
        )


def _local(cutoff: object, tz: tzinfo) -> str:
    when = cutoff if isinstance(cutoff, datetime) else datetime.fromisoformat(str(cutoff))
    return times.local_text(when, tz)


def register(app: typer.Typer) -> None:
    app.command("prune")(prune)
