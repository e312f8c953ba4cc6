"""``flows pause|resume``: hold a flow's deliveries, and let them go again."""

from __future__ import annotations

from typing import Annotated

import typer

from interlink.cli.common import ConfigOption, actor, hub, out

app = typer.Typer(help="Hold and release flows.", no_args_is_help=True, rich_markup_mode=None)

FlowArgument = Annotated[str, typer.Argument(help="The flow's name.", show_default=False)]


@app.command("pause")
def pause(
    flow: FlowArgument,
    note: Annotated[str, typer.Option("--note", help="Why, for the audit record.")] = "",
    config: ConfigOption = None,
) -> None:
    """Hold a flow: nothing more is sent until it is resumed."""
    with hub(config) as h:
        result = h.pause(flow, actor(), note)
    out.print(f"paused {flow}: {result['held']} pending deliveries held", markup=False)


@app.command("resume")
def resume(flow: FlowArgument, config: ConfigOption = None) -> None:
    """Release a paused (or auth-held) flow; its held deliveries go out again."""
    with hub(config) as h:
        result = h.resume(flow, actor())
    out.print(f"resumed {flow}: {result['released']} deliveries released", markup=False)
