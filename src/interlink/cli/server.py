"""``serve`` runs the API and console (and, unless told not to, the delivery workers);
``worker`` runs the delivery engine alone."""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from interlink import runner, tracing
from interlink.cli.common import ConfigOption, err, topology
from interlink.clock import SystemClock
from interlink.config import Topology
from interlink.errors import InputError
from interlink.features.registry import FEATURES
from interlink.service import Hub
from interlink.transports import default_transport

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
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve without a management credential: management calls need no token. "
            "For a laptop; allowed only on a loopback address.",
        ),
    ] = False,
) -> None:
    """Run the HTTP API and the console, with the delivery workers."""
    # Imported here so that every other command starts without loading the web stack.
    import uvicorn

    from interlink.web.api import create_app

    topo = topology(config)
    default_host, default_port = topo.listen_address()
    address = host or default_host
    check_credentials(topo, address, insecure)
    tracing.export_by_otlp()  # before the hub, which takes the tracer once
    hub = Hub(topo, clock=SystemClock(), features=FEATURES)
    app = create_app(hub, workers=not no_workers, insecure=insecure, listen_host=address)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=address,
            port=port or default_port,
            log_level="info",
            access_log=access_log,
            lifespan="on",
        )
    )
    # server.serve() in our own loop rather than server.run(), so that the hub's HTTP client
    # is closed on the loop that opened it.
    runner.run(_serve(server, hub))


def check_credentials(topo: Topology, address: str, insecure: bool) -> None:
    """``serve`` never runs an open management API: without a management credential it
    refuses to start, unless told ``--insecure`` on a loopback address."""
    from interlink.web.boundary import is_loopback
    from interlink.web.deps import ADMIN_TOKEN_ENV, management_configured

    if insecure:
        if not is_loopback(address):
            raise InputError(
                f"--insecure is allowed only on a loopback address (127.0.0.1, ::1, localhost), "
                f"not {address}: anyone who can reach it could re-push, pause and read "
                f"everything. Set {ADMIN_TOKEN_ENV} instead."
            )
        return
    if management_configured(topo):
        return
    raise InputError(
        "no management credential is configured, and serve will not run a management API "
        "open to anyone. Either set the break-glass admin token:\n"
        f"  export {ADMIN_TOKEN_ENV}=$(python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')\n"
        "(`interlink init` writes a generated one into interlink.env; load it with "
        "set -a; . ./interlink.env; set +a), or give a person in the topology's users: a "
        "personal token (token_env: NAME) and set that variable.\n"
        "On a laptop, `interlink serve --insecure` runs without one on a loopback address."
    )


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
    tracing.export_by_otlp()  # before the hub, which takes the tracer once
    runner.run(
        _work(Hub(topo, clock=SystemClock(), transport=default_transport(), features=FEATURES))
    )


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
