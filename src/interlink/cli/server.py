"""``serve`` runs the API and console (and, unless told not to, the delivery workers);
``worker`` runs the delivery engine alone."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from interlink import runner
from interlink.cli.common import ConfigOption, err, topology
from interlink.clock import SystemClock
from interlink.service import Hub
from interlink.transports.http import HttpTransport

if TYPE_CHECKING:
    import uvicorn


def serve(
    config: ConfigOption = None,
    no_workers: Annotated[
        bool, typer.Option("--no-workers", help="Serve the API and console only; no delivery.")
    ] = False,
    host: Annotated[
        str | None, typer.Option("--host", help="Listen on this address [default: listen:].")
    ] = None,
    port: Annotated[
        int | None, typer.Option("--port", min=1, max=65535, help="Listen on this port.")
    ] = None,
    access_log: Annotated[
        bool,
        typer.Option(
            "--access-log",
            help="Log every HTTP request (off by default: at thousands of submissions a "
            "second the log costs more than the intake).",
        ),
    ] = False,
) -> None:
    """Run the HTTP API and the console, with the delivery workers."""
    # Imported here so that every other command starts without loading the web stack.
    import uvicorn

    from interlink.web.api import create_app

    topo = topology(config)
    default_host, default_port = topo.listen_address()
    hub = Hub(topo, clock=SystemClock())
    app = create_app(hub, workers=not no_workers)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host or default_host,
            port=port or default_port,
            log_level="info",
            access_log=access_log,
            lifespan="on",
        )
    )
    # server.serve() in our own loop rather than server.run(), so that the hub's HTTP client
    # is closed on the loop that opened it.
    runner.run(_serve(server, hub))


async def _serve(server: uvicorn.Server, hub: Hub) -> None:
    try:
        await server.serve()
    finally:
        await hub.close()


def worker(config: ConfigOption = None) -> None:
    """Run the delivery engine alone, until SIGINT or SIGTERM."""
    topo = topology(config)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    runner.run(_work(Hub(topo, clock=SystemClock(), transport=HttpTransport())))


async def _work(hub: Hub) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    err.print(
        f"worker {hub.engine.worker_id}: delivering {len(hub.topology.flows)} flows "
        "(stop with Ctrl-C)",
        markup=False,
    )
    tasks = [asyncio.create_task(loop(stop)) for loop in hub.hooks.background]
    try:
        await hub.engine.run(stop)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await hub.close()
    err.print("worker stopped", markup=False)
