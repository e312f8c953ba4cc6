"""``map``: what a flow's map makes of a stored document."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.cells import cell_len

from interlink.cli.common import (
    EXIT_DOES_NOT_HOLD,
    ConfigOption,
    JsonOption,
    hub,
    out,
    print_json,
)
from interlink.features.mapping.service import mapping

app = typer.Typer(
    help="Flows' maps: our documents in each downstream's shape.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="map")


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, ensure_ascii=False, indent=2).splitlines()


@app.command("preview")
def preview(
    flow: Annotated[str, typer.Argument(help="The flow whose map to apply.", show_default=False)],
    document: Annotated[
        str, typer.Option("--document", help="The stored document's id.", show_default=False)
    ],
    config: ConfigOption = None,
    json_: JsonOption = False,
) -> None:
    """Show a stored document and the body the flow's map sends for it."""
    with hub(config) as h:
        shown = mapping(h).preview(flow, document)
    if json_:
        print_json(shown)
        return
    out.print(
        f"document {shown['document']} ({shown['type']} {shown['key']} revision "
        f"{shown['revision']}, scenario {shown['scenario'] or '-'}) through flow {flow}",
        markup=False,
    )
    left = ["original", *_pretty(shown["original"])]
    right = ["mapped", *(_pretty(shown["mapped"]) if shown["error"] is None else [])]
    if shown["error"] is not None:
        right.append(f"cannot be mapped: {shown['error']}")
    # Side by side when both fit; widths in terminal cells (a Chinese character takes two).
    width = max(cell_len(line) for line in left) + 2
    if width + max(cell_len(line) for line in right) <= out.width:
        for i in range(max(len(left), len(right))):
            a = left[i] if i < len(left) else ""
            b = right[i] if i < len(right) else ""
            out.print((a + " " * (width - cell_len(a)) + b).rstrip(), markup=False)
    else:
        for line in [*left, "", *right]:
            out.print(line, markup=False)
    if shown["error"] is not None:
        raise typer.Exit(EXIT_DOES_NOT_HOLD)
