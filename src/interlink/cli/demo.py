"""``demo``: the Interlink story in about a minute, with nothing to set up."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    fast: Annotated[
        bool,
        typer.Option(
            "--fast", envvar="INTERLINK_DEMO_FAST", help="A shorter timeline (about 15 s)."
        ),
    ] = False,
) -> None:
    """Run a live demo: simulated downstreams, an outage, a rejection and a re-push."""
    from interlink.demo import run

    raise typer.Exit(run(fast=fast))
