"""One rehearsal: the real engine and clock, a fresh temporary store, sandboxes for targets.

:func:`rehearse` starts a :class:`~.sandbox.Sandbox` per target system of the
drill's flows, points a copy of the topology at them (and only at them: it refuses to start
if any url the engine could use is not a sandbox's), submits the drill's documents at its
rate while the sandboxes play their timelines, waits until every delivery has ended (or the
time limit), and returns the report as plain data (:mod:`.report` renders it).

A target that takes files gets a :class:`~.files.FileSandbox` (a folder, or an SFTP server
on loopback) and the file exchange is driven at a drill's pace; a target reached through a
message broker gets a :class:`~.brokers.BrokerSandbox` (a scratch exchange and queue, or
stream, on a real broker, behind a relay that plays the faults); a drill with ``outbox:``
writes its documents as rows of a table of its own in a scratch database
(:class:`~.outbox.DrillOutbox`) and the sources feature's loop takes them, as in production.

What must never leave the drill: contacts lose their mail and chat channels and the SMTP
settings are dropped, and no background loop (the alerter) runs; the alerts are worked out
from the events table of the temporary store and shown, not sent.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from interlink.clock import SystemClock
from interlink.config import (
    FileExchangeSettings,
    Flow,
    SourceSettings,
    Topology,
    address_parts,
    broker_address,
)
from interlink.errors import ConfigError, InputError, InterlinkError
from interlink.features.drills import queries
from interlink.features.drills.brokers import BrokerSandbox
from interlink.features.drills.expectations import (
    FAILED,
    NOT_AVAILABLE,
    PASSED,
    Check,
    FlowPath,
    Unmappable,
    coverage,
    evaluate,
    held_as_expected,
    mapped_bodies,
    outbox_taken,
)
from interlink.features.drills.files import FileSandbox
from interlink.features.drills.outbox import DrillOutbox
from interlink.features.drills.sandbox import Received, Sandbox
from interlink.features.drills.spec import (
    BROKERS,
    Drill,
    DrillFile,
    check_against,
    find_source,
    render_payload,
    resolve_type,
)
from interlink.features.file_exchange import queries as file_queries
from interlink.intake import Item
from interlink.service import FeatureLike, Hub
from interlink.store.db import Store, open_store
from interlink.transports import default_transport

BUCKET = 0.1  # seconds per bar of the timeline chart
POLL = 0.05
FILE_TICK = 0.1  # a round of the file exchange
CUT_EVERY = 0.3  # a batch file from whatever waits

log = logging.getLogger(__name__)

AnySandbox = Sandbox | FileSandbox | BrokerSandbox


class DrillRefused(InterlinkError):
    """The drill would reach something that is not a sandbox."""

    code = "drill_refused"


@dataclass(frozen=True)
class Planned:
    type: str
    payload: dict[str, Any]
    source: str
    origin: str  # "documents[0] #3" or "file.ndjson:12", for messages


# -- the documents ----------------------------------------------------------------------------


def plan_documents(spec: DrillFile, topology: Topology) -> list[Planned]:
    """Every document the drill sends, in sending order; ConfigError (file:line) if a file
    of documents cannot be read."""
    drill = spec.drill
    flows = [topology.flows[name] for name in drill.flows]
    types = {f.document for f in flows}
    source_of: dict[str, str] = {}
    for f in flows:
        source_of.setdefault(f.document, f.source)
    sets: list[list[Planned]] = []
    for i, docs in enumerate(drill.documents):
        doc_type = resolve_type(docs, topology, types)
        batch: list[Planned] = []
        if docs.payload is not None:
            for n in range(1, docs.count + 1):
                try:
                    payload = render_payload(docs.payload, n)
                except ValueError as e:
                    line = spec.line(("documents", i, "payload"))
                    raise ConfigError([f"{spec.path}:{line}: documents.{i}.payload: {e}"]) from None
                batch.append(Planned(doc_type, payload, source_of[doc_type], f"documents.{i} #{n}"))
        else:
            assert docs.file is not None
            for origin, item_type, payload in _read_file(spec.path.parent / docs.file):
                batch.append(Planned(item_type or doc_type, payload, source_of[doc_type], origin))
        sets.append(batch)
    if drill.order == "sequence":
        return [p for batch in sets for p in batch]
    out: list[Planned] = []
    for i in range(max((len(b) for b in sets), default=0)):
        out.extend(b[i] for b in sets if i < len(b))
    return out


def _read_file(path: Path) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(origin, type or None, payload) per document of a JSON array/object or NDJSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}:1: cannot read: {e}"]) from None
    entries: list[tuple[int, Any]] = []
    try:
        whole = json.loads(text)
        items = whole if isinstance(whole, list) else [whole]
        entries = [(1, item) for item in items]
    except json.JSONDecodeError:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entries.append((number, json.loads(line)))
            except json.JSONDecodeError as e:
                raise ConfigError([f"{path}:{number}: not JSON: {e.msg}"]) from None
    out = []
    for number, item in entries:
        if not isinstance(item, dict):
            raise ConfigError([f"{path}:{number}: each document must be a JSON object"])
        if isinstance(item.get("payload"), dict):
            kind = item.get("type")
            out.append(
                (f"{path.name}:{number}", kind if isinstance(kind, str) else None, item["payload"])
            )
        else:
            out.append((f"{path.name}:{number}", None, item))
    if not out:
        raise ConfigError([f"{path}:1: no documents in the file"])
    return out


# -- the sandboxed topology -------------------------------------------------------------------


def sandboxed_topology(
    topology: Topology,
    spec: DrillFile,
    urls: dict[str, str],
    database: str,
    *,
    files: dict[str, FileSandbox] | None = None,
    source: SourceSettings | None = None,
    brokers: dict[str, BrokerSandbox] | None = None,
) -> Topology:
    """A copy of ``topology`` for the rehearsal: only the drill's flows, every target's url
    replaced by its sandbox (a file-taking target's folders by its sandbox's), no source but
    the drill's own outbox, no contact channel and no SMTP, the drill's overrides applied."""
    drill = spec.drill
    files = files or {}
    brokers = brokers or {}
    systems = {}
    for name, system in topology.systems.items():
        update: dict[str, Any] = {
            "url": urls.get(name),
            "contacts": [
                c.model_copy(update={"email": None, "notify": None}) for c in system.contacts
            ],
            "sources": {
                n: source for n in system.sources if source is not None and n == source.name
            },
        }
        if name in files and system.file_exchange is not None:
            update["file_exchange"] = _file_settings(system.file_exchange, files[name])
        elif name in brokers:
            update.update(_broker_settings(system, brokers[name]))
        elif system.transport == "file":
            # Not a target of the drill: no flow sends it anything, and no file is read.
            update.update(transport="http", file_exchange=None)
        elif system.transport in BROKERS:
            # Not a target either: no connection to its broker can be opened.
            update.update(transport="http", amqp=None, nats=None)
        override = drill.overrides.systems.get(name)
        if override is not None:
            update.update({k: v for k, v in override.model_dump().items() if v is not None})
        systems[name] = system.model_copy(update=update)
    flows: dict[str, Flow] = {}
    for name in drill.flows:
        flow = topology.flows[name]
        flow_override = drill.overrides.flows.get(name)
        changes = (
            {k: v for k, v in flow_override.model_dump().items() if v is not None}
            if flow_override
            else {}
        )
        flows[name] = flow.model_copy(update=changes)
    engine_changes = {k: v for k, v in drill.overrides.engine.model_dump().items() if v is not None}
    return topology.model_copy(
        update={
            "systems": systems,
            "flows": flows,
            "engine": topology.engine.model_copy(update=engine_changes),
            "alerts": topology.alerts.model_copy(update={"smtp": None}),
            "users": [],
            "database": database,
        }
    )


def _file_settings(settings: FileExchangeSettings, sandbox: FileSandbox) -> FileExchangeSettings:
    """The system's file exchange, sending to and reading from its sandbox (a folder, or the
    sandbox's SFTP server with the drill's own keys), cut by the drill (no schedule) and its
    results looked for every round."""
    results = settings.results
    if results is not None:
        results = results.model_copy(
            update={
                "location": sandbox.results_location if results.location is not None else None,
                "poll": timedelta(milliseconds=100 if sandbox.sftp is None else 250),
            }
        )
    sftp = sandbox.sftp
    return settings.model_copy(
        update={
            "location": sandbox.location,
            "user": None,
            "password_env": None,
            "key_file": sftp.key_file if sftp is not None else None,
            "known_hosts": sftp.known_hosts if sftp is not None else None,
            "schedule": [],
            "results": results,
        }
    )


def _broker_settings(system: Any, sandbox: BrokerSandbox) -> dict[str, Any]:
    """The system's broker block pointed at the drill's scratch exchange (every routing key
    reaches the scratch queue) or stream (the subjects under the scratch name), reached
    through the sandbox's relay: its ``url_env`` is the drill's own variable."""
    if system.amqp is not None:
        return {
            "amqp": system.amqp.model_copy(
                update={"url_env": sandbox.env, "exchange": sandbox.scratch}
            )
        }
    subject = f"{sandbox.scratch}.{system.nats.subject}"
    return {
        "nats": system.nats.model_copy(
            update={
                "url_env": sandbox.env,
                "servers": [],
                "subject": subject,
                "stream": sandbox.scratch,
            }
        )
    }


def _broker_refusal(name: str, system: Any, brokers: dict[str, BrokerSandbox]) -> str | None:
    """Why the broker system ``name`` could reach something that is not its sandbox."""
    sandbox = brokers.get(name)
    if sandbox is None or sandbox.relay is None:
        return f"system {name} would publish to a broker that is not a drill sandbox"
    settings = system.amqp if system.transport == "amqp" else system.nats
    if settings is None or settings.url_env != sandbox.env:
        return f"system {name} would reach its broker through a variable not the drill's own"
    if (
        urlsplit(os.environ.get(sandbox.env, "")).hostname != "127.0.0.1"
        or urlsplit(os.environ[sandbox.env]).port != sandbox.relay.port
    ):
        return f"system {name} would reach a broker that is not the drill's relay"
    if system.amqp is not None and system.amqp.exchange != sandbox.scratch:
        return f"system {name} would publish to exchange {system.amqp.exchange!r}"
    if system.nats is not None and (system.nats.servers or system.nats.stream != sandbox.scratch):
        return f"system {name} would publish to a stream that is not the drill's"
    return None


def assert_sandboxed(
    topology: Topology,
    urls: dict[str, str],
    folders: Sequence[str] = (),
    source: SourceSettings | None = None,
    brokers: dict[str, BrokerSandbox] | None = None,
) -> None:
    """Refuse to start unless every url the engine could use is one of the sandboxes', every
    folder files go to or come from is a sandbox's, and the only source is the drill's own
    outbox."""
    allowed = set(urls.values())
    brokers = brokers or {}
    for name, system in topology.systems.items():
        if system.transport in BROKERS:
            refusal = _broker_refusal(name, system, brokers)
            if refusal is not None:
                raise DrillRefused(f"refusing to run: {refusal}")
        for source_name, settings in system.sources.items():
            if source is None or settings != source:
                raise DrillRefused(
                    f"refusing to run: source {source_name} of {name} would read "
                    "something that is not the drill's own outbox"
                )
        exchange = system.file_exchange
        if system.transport == "file" and exchange is not None:
            places = [exchange.location]
            if exchange.results is not None and exchange.results.location is not None:
                places.append(exchange.results.location)
            for place in places:
                if place not in folders:
                    raise DrillRefused(
                        f"refusing to run: system {name} would take files at {place}, "
                        "which is not a drill sandbox"
                    )
    for name, system in topology.systems.items():
        if system.url is None:
            continue
        parts = urlsplit(system.url)
        if system.url not in allowed or parts.hostname != "127.0.0.1":
            raise DrillRefused(
                f"refusing to run: system {name} would be reached at {system.url}, "
                "which is not a drill sandbox"
            )
    for flow in topology.flows.values():
        if topology.systems[flow.target].transport == "file":
            continue  # its folders are checked above
        url = topology.downstream_url(flow)
        if topology.systems[flow.target].transport in BROKERS:
            scratch = brokers[flow.target].scratch
            part = address_parts(url)[0]
            if part != scratch and not part.startswith(scratch + "."):
                raise DrillRefused(f"refusing to run: flow {flow.name} would publish to {url}")
            continue
        if not any(url.startswith(base + "/") for base in allowed):
            raise DrillRefused(f"refusing to run: flow {flow.name} would deliver to {url}")


def generated_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


# -- the rehearsal ----------------------------------------------------------------------------


async def rehearse(
    spec: DrillFile,
    topology: Topology,
    progress: Callable[[str], None] | None = None,
    features: Sequence[FeatureLike] = (),
) -> dict[str, Any]:
    """Run the drill and return its report (plain data). ``features``: what the drill's own
    hub installs, the caller's (``hub.features``), so maintenance and alerts take part."""
    check_against(spec, topology)
    drill = spec.drill
    planned = plan_documents(spec, topology)
    targets = sorted({topology.flows[name].target for name in drill.flows})
    outbox: DrillOutbox | None = None
    source: SourceSettings | None = None
    if drill.outbox is not None:
        found = find_source(topology, drill.outbox.source)
        assert found is not None, "checked with the drill file"
        settings = found[1]
        zone = ZoneInfo(settings.timezone) if settings.timezone else topology.tz
        outbox = DrillOutbox(drill.outbox.database_env, settings, zone)
        await asyncio.to_thread(outbox.create)
        # The drill's pace, not the source's: a scheduled source is polled by interval too.
        changes: dict[str, Any] = {"interval": drill.outbox.interval, "schedule": []}
        if drill.outbox.batch is not None:
            changes["batch"] = drill.outbox.batch
        if drill.outbox.settle is not None:
            changes["settle"] = drill.outbox.settle
        source = outbox.source_settings(drill.outbox.database_env).model_copy(update=changes)
    try:
        with tempfile.TemporaryDirectory(prefix="interlink-drill-") as tmp:
            feed = _Feed(Path(tmp), outbox, source)
            return await _rehearse(spec, topology, progress, features, planned, targets, feed)
    finally:
        if outbox is not None:
            await asyncio.to_thread(outbox.drop)


@dataclass(frozen=True)
class _Feed:
    """Where a rehearsal keeps its files, and the outbox it feeds (if any)."""

    tmp: Path
    outbox: DrillOutbox | None
    source: SourceSettings | None


async def _rehearse(
    spec: DrillFile,
    topology: Topology,
    progress: Callable[[str], None] | None,
    features: Sequence[FeatureLike],
    planned: list[Planned],
    targets: list[str],
    feed: _Feed,
) -> dict[str, Any]:
    drill = spec.drill
    tmp = feed.tmp
    sandboxes: dict[str, AnySandbox] = {}
    files: dict[str, FileSandbox] = {}
    brokers: dict[str, BrokerSandbox] = {}
    for system in targets:
        exchange = topology.systems[system].file_exchange
        kind = topology.systems[system].transport
        if kind in BROKERS:
            brokers[system] = BrokerSandbox(
                system,
                kind,
                drill.brokers[system].broker_env,
                drill.faults.get(system, []),
                seed=drill.seed,
            )
            sandboxes[system] = brokers[system]
            continue
        if topology.systems[system].transport == "file" and exchange is not None:
            files[system] = FileSandbox(
                system, exchange, tmp / "files" / system, drill.faults.get(system, [])
            )
            sandboxes[system] = files[system]
            continue
        override = drill.overrides.systems.get(system)
        timeout = (
            override.timeout
            if override is not None and override.timeout is not None
            else topology.systems[system].timeout
        )
        sandboxes[system] = Sandbox(
            system, drill.faults.get(system, []), timeout=timeout.total_seconds(), seed=drill.seed
        )
    database = f"sqlite:///{tmp / 'drill.db'}"
    # A broker cut on purpose makes the AMQP client log every lost connection and failed
    # connect; each is in the report (unavailable attempts), not on the terminal.
    quiet = logging.getLogger("aiormq.connection")
    mute = _Below(logging.CRITICAL)
    if brokers:
        quiet.addFilter(mute)
    try:
        for sandbox in sandboxes.values():
            await sandbox.start()
        urls = {
            name: s.url
            for name, s in sandboxes.items()
            if name not in files and name not in brokers
        }
        drill_topology = sandboxed_topology(
            topology, spec, urls, database, files=files, source=feed.source, brokers=brokers
        )
        folders = [p for f in files.values() for p in (f.location, f.results_location)]
        assert_sandboxed(drill_topology, urls, folders, feed.source, brokers)
        for name, broker in brokers.items():
            broker.paths = _broker_paths(drill_topology, name, drill.flows)
        store = open_store(database)
        hub = Hub(
            drill_topology,
            store=store,
            clock=SystemClock(),
            transport=default_transport(),
            features=features,
        )
        try:
            for name, needed in (("sources", feed.outbox), ("file_exchange", files)):
                if needed and name not in hub.capabilities:
                    raise InputError(
                        f"this drill needs the {name.replace('_', ' ')} feature, "
                        "which is not installed"
                    )
            if files:
                exchange = hub.capabilities["file_exchange"]
                for sandbox in files.values():
                    exchange.places.update(sandbox.places())
            return await _run(spec, topology, hub, sandboxes, planned, progress, feed.outbox)
        finally:
            await hub.close()
    finally:
        for sandbox in sandboxes.values():
            await sandbox.stop()
        quiet.removeFilter(mute)


async def _run(
    spec: DrillFile,
    topology: Topology,
    hub: Hub,
    sandboxes: dict[str, AnySandbox],
    planned: list[Planned],
    progress: Callable[[str], None] | None,
    outbox: DrillOutbox | None = None,
) -> dict[str, Any]:
    drill = spec.drill
    engine = hub.engine
    for name in list(engine.secrets):
        if engine.secrets[name] is None:
            engine.secrets[name] = generated_secret()  # a drill signs even without a secret
    wall0 = hub.clock.now()
    mono0 = time.monotonic()
    maintenance = _announce(hub, spec, wall0)
    stop = asyncio.Event()
    engine_task = asyncio.create_task(engine.run(stop, idle=POLL))
    helpers: list[asyncio.Task[None]] = []
    if outbox is not None:
        # The sources feature's own loop takes the rows, as in production.
        helpers.append(asyncio.create_task(hub.capabilities["sources"].loop(stop)))
    if any(isinstance(s, FileSandbox) for s in sandboxes.values()):
        helpers.append(asyncio.create_task(_exchange_files(hub, drill, stop)))
    for sandbox in sandboxes.values():
        sandbox.begin(mono0)
    results: list[tuple[Planned, dict[str, Any] | InterlinkError]] = []
    if outbox is not None:
        feeder = asyncio.create_task(_feed_outbox(hub, outbox, planned, drill.rate, mono0))
    else:
        feeder = asyncio.create_task(_feed(hub, planned, drill.rate, mono0, results))
    limit = drill.time_limit.total_seconds()
    timeline_end = drill.timeline_end()
    settled = False
    last_note = 0.0
    try:
        while True:
            await asyncio.sleep(POLL)
            elapsed = time.monotonic() - mono0
            if feeder.done():
                feeder.result()  # a bug in feeding surfaces here, not silently
                if elapsed >= timeline_end and await _all_taken(hub, drill, outbox):
                    open_ = await _still_open(hub, drill)
                    if open_ == 0:
                        settled = True
                        break
            if elapsed >= limit:
                break
            if progress is not None and elapsed - last_note >= 2.0:
                last_note = elapsed
                sent = len(outbox.rows) if outbox is not None else len(results)
                progress(f"t={elapsed:4.1f}s  submitted {sent} of {len(planned)}")
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        stop.set()
        for sandbox in sandboxes.values():
            sandbox._stopping.set()  # end hanging answers so the engine stops at once
        await engine_task
        await asyncio.gather(*helpers, return_exceptions=True)
    await _drain_brokers(hub, sandboxes)
    finished = hub.clock.now()
    return _report(
        spec,
        topology,
        hub,
        sandboxes,
        planned,
        results,
        wall0,
        finished,
        settled,
        maintenance,
        outbox,
    )


def _broker_paths(topology: Topology, system: str, flows: Sequence[str]) -> dict[str, str]:
    """routing key (AMQP) or subject (NATS) → the path of the flow that publishes there."""
    found: dict[str, str] = {}
    for name in flows:
        flow = topology.flows[name]
        if flow.target == system:
            parts = address_parts(broker_address(topology.systems[system], flow))
            found.setdefault(parts[-1], flow.path)
    return found


async def _drain_brokers(hub: Hub, sandboxes: dict[str, AnySandbox]) -> None:
    """Let each broker sandbox's consumer take what its broker confirmed."""
    brokers = {n: s for n, s in sandboxes.items() if isinstance(s, BrokerSandbox)}
    if not brokers:
        return
    rows = await hub.store.read(queries.rehearsal_deliveries)
    for name, sandbox in brokers.items():
        wanted = {r.document_id for r in rows if r.system == name and r.status == "delivered"}
        await sandbox.drain(wanted)


async def _feed(
    hub: Hub,
    planned: list[Planned],
    rate: float,
    mono0: float,
    results: list[tuple[Planned, dict[str, Any] | InterlinkError]],
) -> None:
    sent = 0
    while sent < len(planned):
        due = int((time.monotonic() - mono0) * rate) + 1
        batch = planned[sent : min(due, len(planned))]
        if batch:
            by_source: dict[str, list[Planned]] = defaultdict(list)
            for p in batch:
                by_source[p.source].append(p)
            for source, items in by_source.items():
                answers = await hub.intake.submit(
                    hub.topology.systems[source], [Item(p.type, p.payload) for p in items]
                )
                results.extend(zip(items, answers, strict=True))
            sent += len(batch)
        if sent < len(planned):
            # Pacing the upstream at the drill's rate, not waiting for an outcome.
            await asyncio.sleep(max(0.0, mono0 + sent / rate - time.monotonic()))


async def _feed_outbox(
    hub: Hub, outbox: DrillOutbox, planned: list[Planned], rate: float, mono0: float
) -> None:
    """Write the documents as outbox rows at the drill's rate, as the upstream would."""
    sent = 0
    while sent < len(planned):
        due = int((time.monotonic() - mono0) * rate) + 1
        batch = planned[sent : min(due, len(planned))]
        if batch:
            rows = [(p.type, p.payload, p.origin) for p in batch]
            await asyncio.to_thread(outbox.insert, rows, hub.clock.now())
            sent += len(batch)
        if sent < len(planned):
            await asyncio.sleep(max(0.0, mono0 + sent / rate - time.monotonic()))


async def _all_taken(hub: Hub, drill: Drill, outbox: DrillOutbox | None) -> bool:
    """The source has taken every row the drill wrote (accepted or refused)."""
    if outbox is None or drill.outbox is None:
        return True
    name = drill.outbox.source
    states = await asyncio.to_thread(hub.capabilities["sources"].status)
    state = next((s for s in states if s["name"] == name), None)
    return state is not None and state["accepted"] + state["refused"] >= len(outbox.rows)


async def _exchange_files(hub: Hub, drill: Drill, stop: asyncio.Event) -> None:
    """Drive the file exchange at a drill's pace: a round every FILE_TICK (retries when due,
    results, deadlines), and a file cut from whatever waits every CUT_EVERY unless a file
    of the flow is still unsent (it is retried on the flow's schedule, not cut around)."""
    service = hub.capabilities["file_exchange"]
    flows = [name for name in drill.flows if name in service.flows]
    last_cut = 0.0
    # Each refused or failed file is in the report (file_send_failed): not on the terminal.
    quiet = logging.getLogger(type(service).__module__)
    mute = _Below(logging.ERROR)
    quiet.addFilter(mute)
    try:
        await _exchange_rounds(hub, service, flows, stop, last_cut)
    finally:
        quiet.removeFilter(mute)


class _Below(logging.Filter):
    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


async def _exchange_rounds(
    hub: Hub, service: Any, flows: list[str], stop: asyncio.Event, last_cut: float
) -> None:
    while not stop.is_set():
        try:
            await service.tick()
            if time.monotonic() - last_cut >= CUT_EVERY:
                last_cut = time.monotonic()
                for name in flows:
                    if not await hub.store.read(partial(file_queries.unsent, flow=name)):
                        await service.send_now(name)
        except Exception:
            log.exception("drill: a file exchange round failed; trying again")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), FILE_TICK)


async def _still_open(hub: Hub, drill: Drill) -> int:
    """Deliveries still on their way; one the drill expects held, and held for that reason,
    has arrived where it should and is not waited for."""
    if not drill.expect.held:
        return await hub.store.read(queries.unsettled)
    rows = await hub.store.read(queries.open_deliveries)
    return sum(1 for r in rows if not held_as_expected(drill, dict(r._mapping)))


def _announce(hub: Hub, spec: DrillFile, wall0: datetime) -> Check | None:
    """Announce the drill's maintenance window through the maintenance capability."""
    window = spec.drill.maintenance
    if window is None:
        return None
    name = f"maintenance window on {window.system} announced and held"
    service = hub.capabilities.get("maintenance")
    if service is None:
        return Check(name, NOT_AVAILABLE, "the maintenance capability is not installed")
    start = max(wall0 + window.at, hub.clock.now() + timedelta(milliseconds=50))
    end = wall0 + window.at + window.for_
    add = getattr(service, "add", None)
    if add is None:
        return Check(name, NOT_AVAILABLE, "the maintenance capability offers no way to announce")
    try:
        # force: a rehearsal announces at short notice on purpose; readiness checks notice.
        add(
            system=window.system,
            start=start,
            end=end,
            reason=window.reason,
            actor="drill",
            force=True,
        )
    except TypeError:
        return Check(name, NOT_AVAILABLE, "the maintenance capability's announce call differs")
    except InterlinkError as e:
        return Check(name, FAILED, f"the window was refused: {e.message}")
    return Check(name, PASSED, f"announced {window.system} {window.at} + {window.for_}")


# -- the report -------------------------------------------------------------------------------


def _report(
    spec: DrillFile,
    topology: Topology,
    hub: Hub,
    sandboxes: dict[str, AnySandbox],
    planned: list[Planned],
    results: list[tuple[Planned, dict[str, Any] | InterlinkError]],
    wall0: datetime,
    finished: datetime,
    settled: bool,
    maintenance: Check | None,
    outbox: DrillOutbox | None = None,
) -> dict[str, Any]:
    drill = spec.drill

    def t(when: datetime | None) -> float | None:
        return None if when is None else round((when - wall0).total_seconds(), 3)

    rows = hub.store.read_sync(queries.rehearsal_deliveries)
    deliveries = [
        {
            "id": r.id,
            "document_id": r.document_id,
            "flow": r.flow,
            "system": r.system,
            "key": r.key,
            "revision": r.revision,
            "status": r.status,
            "reason": r.reason,
            "attempts": r.attempts,
            "scenario": r.scenario,
            "last_error": r.last_error,
            "latency": (
                (r.delivered_at - r.received_at).total_seconds() if r.delivered_at else None
            ),
        }
        for r in rows
    ]
    events = []
    for e in hub.store.read_sync(queries.rehearsal_events):
        detail = json.loads(e.detail)
        events.append(
            {"t": t(e.at), "kind": e.kind, "system": e.system, "flow": e.flow, "detail": detail}
        )
    if any(isinstance(s, FileSandbox) for s in sandboxes.values()):
        _resolve_lines(hub, topology, sandboxes)
    received = [r for s in sandboxes.values() for r in s.received]
    received.sort(key=lambda r: r.at)
    flow_paths = [
        FlowPath(name, topology.flows[name].target, topology.flows[name].path)
        for name in drill.flows
    ]
    if maintenance is not None and maintenance.status == PASSED:
        kinds = list(
            dict.fromkeys(e["kind"] for e in events if e["kind"].startswith("maintenance_"))
        )
        if "maintenance_started" not in kinds:
            maintenance = Check(
                maintenance.name,
                FAILED,
                "announced, but the window never started: "
                + (", ".join(kinds) or "no maintenance event"),
            )
        else:
            maintenance = Check(maintenance.name, PASSED, f"events: {', '.join(kinds)}")
    checks = evaluate(
        drill,
        deliveries=deliveries,
        received=received,
        events=events,
        flows=flow_paths,
        settled=settled,
        maintenance=maintenance,
    )
    refused = [
        {"origin": p.origin, "message": r.message}
        for p, r in results
        if isinstance(r, InterlinkError)
    ]
    documents_json = {
        "planned": len(planned),
        "submitted": len(results),
        "accepted": len(results) - len(refused),
        "refused": refused,
    }
    stored = [dict(r._mapping) for r in hub.store.read_sync(queries.rehearsal_documents)]
    outbox_json = None
    if outbox is not None and drill.outbox is not None:
        source = drill.outbox.source
        origin = {str(row.id): row.origin for row in outbox.rows}
        problems = hub.capabilities["sources"].problems(source, limit=1000)
        refused = [
            {"origin": f"row {p['ref']} ({origin.get(p['ref'], '?')})", "message": p["message"]}
            for p in problems
        ]
        taken = sum(1 for d in stored if str(d["identity"]).startswith(f"key:{source}#"))
        documents_json = {
            "planned": len(planned),
            "submitted": len(outbox.rows),
            "accepted": taken,
            "refused": refused,
        }
        outbox_json = {
            "source": source,
            "table": outbox.name,
            "rows": len(outbox.rows),
            "documents": taken,
            "marked_taken": _marked(outbox),
        }
        checks.append(
            outbox_taken(
                drill,
                source,
                [(row.id, row.origin) for row in outbox.rows],
                stored,
                [p["ref"] for p in problems],
                deliveries,
                received,
            )
        )
    if drill.expect.mapped:
        checks.append(_mapped_check(hub, drill, flow_paths, received, stored, deliveries))
    catalogue = {
        doc_type: [s.name for s in topology.documents[doc_type].scenarios]
        for doc_type in dict.fromkeys(topology.flows[f].document for f in drill.flows)
    }
    matrix = coverage(
        catalogue, {f: topology.flows[f].document for f in drill.flows}, drill, deliveries
    )
    duration = (finished - wall0).total_seconds()
    attempts = hub.store.read_sync(queries.rehearsal_attempts)
    outcomes: list[str] = []
    buckets: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for a in attempts:
        at = (a.started_at - wall0).total_seconds() + a.elapsed_ms / 1000
        if a.outcome not in outcomes:
            outcomes.append(a.outcome)
        buckets[max(0, int(at / BUCKET))][a.outcome] += 1
    faults = [
        {
            "system": system,
            "fault": step.fault,
            "start": step.start,
            "end": step.end if step.end is not None else max(duration, step.start),
        }
        for system, steps in drill.faults.items()
        for step in steps
    ]
    if drill.maintenance is not None:
        start = drill.maintenance.at.total_seconds()
        faults.append(
            {
                "system": drill.maintenance.system,
                "fault": "maintenance",
                "start": start,
                "end": start + drill.maintenance.for_.total_seconds(),
            }
        )
    status_counts: dict[str, int] = defaultdict(int)
    for d in deliveries:
        status_counts[d["status"]] += 1
    passed = all(c.status == PASSED for c in checks)
    return {
        "drill": drill.name,
        "description": drill.description,
        "file": str(spec.path),
        "topology": str(topology.path),
        "started": wall0.isoformat(),
        "finished": finished.isoformat(),
        "duration": round(duration, 3),
        "settled": settled,
        "passed": passed,
        "flows": list(drill.flows),
        "outages": drill.outage_systems(),
        "sandboxes": {
            name: {
                "url": s.url,
                "received": len(s.received),
                "booked": len(s.booked()),
                "duplicates": len(s.duplicates()),
                "duplicated": [
                    r.to_json()
                    for r in s.received
                    if r.document_id in {d.document_id for d in s.duplicates()}
                ],
                **({"files": s.files} if isinstance(s, FileSandbox) else {}),
                **({"broker": s.info()} if isinstance(s, BrokerSandbox) else {}),
            }
            for name, s in sandboxes.items()
        },
        "documents": documents_json,
        **({"outbox": outbox_json} if outbox_json is not None else {}),
        "deliveries": dict(status_counts),
        "expectations": [c.to_json() for c in checks],
        "timeline": {
            "bucket": BUCKET,
            "end": round(duration, 3),
            "outcomes": outcomes,
            "buckets": {str(k): dict(v) for k, v in sorted(buckets.items())},
            "faults": faults,
        },
        "events": _alerts(hub, topology, events),
        "alerts_capability": "alerts" in hub.capabilities,
        "capabilities": sorted(hub.capabilities),
        "coverage": {"flows": list(drill.flows), "scenarios": matrix},
    }


def _marked(outbox: DrillOutbox) -> int | None:
    try:
        return outbox.taken()
    except SQLAlchemyError:
        return None


def _resolve_lines(hub: Hub, topology: Topology, sandboxes: dict[str, AnySandbox]) -> None:
    """Name the document on each line a file sandbox booked, from the hub's record of which
    delivery went on which line of which file; the line then counts as its flow's path."""
    lines = {
        (r.system, f"{r.name}:{r.line}"): r for r in hub.store.read_sync(queries.file_bookings)
    }
    for sandbox in sandboxes.values():
        if not isinstance(sandbox, FileSandbox):
            continue
        for received in sandbox.received:
            found = lines.get((received.system, received.path))
            if found is None:
                continue
            received.document_id = found.document_id
            received.key = found.key
            received.revision = found.revision
            received.path = topology.flows[found.flow].path


def _mapped_check(
    hub: Hub,
    drill: Drill,
    flow_paths: list[FlowPath],
    received: list[Received],
    stored: list[dict[str, Any]],
    deliveries: list[dict[str, Any]],
) -> Check:
    """The bodies booked on the mapped flows against what their maps make of the stored
    documents, through the mapping capability's compiled maps (what the engine applies)."""
    chosen = drill.expect.mapped if isinstance(drill.expect.mapped, list) else drill.flows
    service = hub.capabilities.get("mapping")
    names = [n for n in chosen if hub.topology.flows[n].map is not None]
    if service is None:
        return Check(
            f"bodies in the downstream's shape ({', '.join(names)})",
            NOT_AVAILABLE,
            "the mapping capability is not installed",
        )
    bodies = {d["id"]: d["payload"] for d in stored}
    expected: dict[tuple[str, str], Any] = {}
    for flow in names:
        compiled = service.compiled[flow]
        for d in deliveries:
            if d["flow"] != flow or d["document_id"] not in bodies:
                continue
            try:
                mapped = json.loads(compiled.body(str(bodies[d["document_id"]]).encode()))
            except ValueError as e:
                mapped = Unmappable(str(e))
            expected[(flow, d["document_id"])] = mapped
    chosen_paths = [f for f in flow_paths if f.name in names]
    return mapped_bodies(drill, chosen_paths, received, expected, deliveries)


def _alerts(hub: Hub, topology: Topology, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events, each with the people the alerter would tell (from the real topology's
    contacts) when the alerts capability is installed. Nothing is sent."""
    route = None
    if "alerts" in hub.capabilities:
        try:
            from interlink.features.alerts import rules as rules

            route = rules
        except ImportError:
            route = None
    out = []
    for n, e in enumerate(events, 1):
        entry = {**e, "recipients": [], "title": e["kind"].replace("_", " ")}
        if route is not None:
            try:
                event = route.Event(
                    n, datetime.now().astimezone(), e["kind"], e["system"], e["flow"], e["detail"]
                )
                rule = route.RULES.get(e["kind"])
                if rule is not None:
                    entry["title"] = rule.title
                entry["recipients"] = [
                    {
                        "system": r.system,
                        "role": r.role,
                        "name": r.name,
                        "email": r.email,
                        "notify": "yes" if r.notify else None,
                    }
                    for r in route.route(event, topology)
                ]
            except (AttributeError, TypeError):
                pass
        out.append(entry)
    return out


# -- the record -------------------------------------------------------------------------------


def record(store: Store, report: dict[str, Any]) -> int:
    """Keep the run in the hub's own store, for readiness and the console."""
    started = datetime.fromisoformat(report["started"])
    finished = datetime.fromisoformat(report["finished"])
    return store.write_sync(
        lambda conn: queries.add_run(
            conn,
            name=report["drill"],
            file=report["file"],
            started=started,
            finished=finished,
            passed=bool(report["passed"]),
            flows=list(report["flows"]),
            outages=list(report["outages"]),
            report=report,
        )
    )
