"""Go-live readiness: a checklist per flow, each item passed, failed or not available.

The items (see docs/readiness.md): a contract; forward and reverse scenarios; an outage drill
passed recently; product, dev and ops contacts on both ends; the downstream's maintenance
notice and peak hours; alert channels that answer a test message; the downstream reachable
the way its deliveries go (HTTP, or the file exchange's folder or SFTP server).
Each item is a pure function of what it looks at, so it is table-tested without a network;
:func:`check` gathers the inputs (the drill record, a test message, a probe) for a hub.

An item that needs a capability which is not installed is "not available", never passed, and
the checklist does not pass while any item is not passed.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp

from interlink import times
from interlink.config import FileExchangeSettings, Flow, System, Topology
from interlink.errors import TransportError
from interlink.features.drills import queries
from interlink.features.file_exchange.places import place_for

if TYPE_CHECKING:
    from interlink.service import Hub

PASSED = "passed"
FAILED = "failed"
NOT_AVAILABLE = "not available"
ROLES = ("product", "dev", "ops")
DEFAULT_DRILL_WITHIN = timedelta(days=30)
# Changes shipping this soon must have been acknowledged by everyone told (docs/changes.md).
CHANGES_WITHIN = timedelta(days=7)


@dataclass(frozen=True)
class Item:
    item: str
    status: str
    detail: str
    next: str = ""

    def to_json(self) -> dict[str, str]:
        return {"item": self.item, "status": self.status, "detail": self.detail, "next": self.next}


# -- the items, pure ------------------------------------------------------------------------


def contract_item(topology: Topology, flow: Flow) -> Item:
    name = "contract defined"
    doc = topology.documents.get(flow.document)
    if doc is not None and doc.contract is not None:
        return Item(name, PASSED, f"{flow.document}: {doc.contract.name}")
    return Item(
        name,
        FAILED,
        f"document type {flow.document} has no contract",
        f"write a JSON Schema and set documents.{flow.document}.contract in the topology",
    )


def scenarios_item(topology: Topology, flow: Flow) -> Item:
    name = "forward and reverse scenarios"
    doc = topology.documents.get(flow.document)
    scenarios = doc.scenarios if doc is not None else []
    forward = [s.name for s in scenarios if s.direction == "forward"]
    reverse = [s.name for s in scenarios if s.direction == "reverse"]
    detail = f"forward: {', '.join(forward) or 'none'}; reverse: {', '.join(reverse) or 'none'}"
    if forward and reverse:
        return Item(name, PASSED, detail)
    missing = " and ".join(
        d for d, found in (("forward", forward), ("reverse", reverse)) if not found
    )
    return Item(
        name,
        FAILED,
        detail,
        f"agree the {missing} scenarios with the downstream (refunds, reversals...) and list "
        f"them under documents.{flow.document}.scenarios",
    )


def drill_item(
    flow: Flow,
    run: Any,
    within: timedelta,
    tz: Any = None,
    drill_files: Sequence[str] = (),
    document: str | None = None,
) -> Item:
    """``run``: the newest passed drill (id, name, finished) since the period began, or None.
    ``drill_files``: the drill files found beside the topology that take ``flow``'s target
    down, to name one that exists rather than one the project may not have."""
    name = "outage drill passed"
    if run is not None:
        when = run.finished.astimezone(tz) if tz is not None else run.finished
        return Item(
            name,
            PASSED,
            f"drill {run.name!r} (run {run.id}) with {flow.target} down passed on "
            f"{when:%Y-%m-%d %H:%M}",
        )
    found = f"no passed drill with {flow.target} down covering {flow.name} in the last " + (
        f"{times.duration(within)}"
    )
    if drill_files:
        return Item(name, FAILED, found, f"run `interlink drill run {drill_files[0]}`")
    suggested = f"drills/{flow.name}-down.yaml"
    return Item(
        name,
        FAILED,
        found,
        f"write {suggested} (the drill file format is in docs/drills.md), e.g. "
        f"name: {flow.target} down; flows: [{flow.name}]; "
        f"documents: [{{type: {document or flow.document}, count: 20, payload: {{...}}}}]; "
        f"faults: {{{flow.target}: [{{fault: down, at: 1s, for: 5s}}]}}; "
        f"then run `interlink drill run {suggested}`",
    )


def drill_files_for(topology: Topology, flow: Flow) -> list[str]:
    """Drill files under the topology's ``drills/`` folder that take ``flow``'s target down
    while rehearsing ``flow``, as paths a person can type from here."""
    from interlink.errors import ConfigError
    from interlink.features.drills import spec

    folder = topology.path.parent / "drills"
    found = []
    for file in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        try:
            drill = spec.load(file).drill
        except ConfigError:
            continue  # a broken drill file is `drill run`'s to report, not readiness's
        if flow.name in drill.flows and flow.target in drill.outage_systems():
            found.append(_typable(file))
    return found


def _typable(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def contacts_item(topology: Topology, flow: Flow) -> Item:
    name = "contacts for product, dev and ops on both ends"
    missing = []
    for end in (flow.source, flow.target):
        system = topology.systems.get(end)
        roles = {c.role for c in system.contacts} if system is not None else set()
        lacking = [r for r in ROLES if r not in roles]
        if lacking:
            missing.append(f"{end}: {', '.join(lacking)}")
    if not missing:
        return Item(name, PASSED, f"{flow.source} and {flow.target} have all three roles")
    return Item(
        name,
        FAILED,
        "missing " + "; ".join(missing),
        "add contacts (role, name, email or notify) under systems.<name>.contacts",
    )


def notice_item(system: System) -> Item:
    name = "maintenance notice and peak hours declared"
    lacking = []
    if system.maintenance_notice is None:
        lacking.append("maintenance_notice")
    if not system.peak_hours:
        lacking.append("peak_hours")
    if not lacking:
        return Item(
            name,
            PASSED,
            f"{system.name}: notice {times.duration(system.maintenance_notice)}, peak hours "
            f"{', '.join(system.peak_hours)}",
        )
    return Item(
        name,
        FAILED,
        f"{system.name} declares no {' or '.join(lacking)}",
        f"ask {system.name}'s owners and set systems.{system.name}."
        + " and ".join(lacking)
        + ' (e.g. maintenance_notice: 24h, peak_hours: ["Mon-Fri 09:00-11:30"])',
    )


def alerts_item(installed: bool, results: dict[str, str] | None, error: str | None = None) -> Item:
    """``results``: channel → "ok" or the error, from the alerts capability's test message."""
    name = "alert channels answer a test message"
    if not installed:
        return Item(
            name,
            NOT_AVAILABLE,
            "the alerts capability is not installed",
            "install the alerts capability to test the channels",
        )
    if error is not None:
        return Item(name, FAILED, f"the test message failed: {error}", "check alerts.smtp")
    if not results:
        return Item(
            name,
            FAILED,
            "no alert channel is configured",
            "give contacts an email (with alerts.smtp set) or a notify URL",
        )
    bad = {channel: r for channel, r in results.items() if r != "ok"}
    if not bad:
        return Item(name, PASSED, f"{len(results)} channels answered: {', '.join(results)}")
    return Item(
        name,
        FAILED,
        "; ".join(f"{channel}: {r}" for channel, r in bad.items()),
        "fix the failing channels (alerts.smtp, the contacts' notify URLs)",
    )


def reachable_item(system: System, answer: str | None, error: str | None) -> Item:
    """``answer``: what answered the probe (for HTTP its status line; for files, each place
    and what it allows; for a broker, what it has for the flows); ``error``: why nothing
    did."""
    name = "downstream reachable"
    if system.transport in ("amqp", "nats"):
        if answer is not None:
            return Item(name, PASSED, f"{system.name}: {answer} (nothing published)")
        variable: str | None = None
        if system.amqp is not None:
            where, variable = "the exchange (or queue)", system.amqp.url_env
        else:
            where = "a stream"
            variable = system.nats.url_env if system.nats is not None else None
        url = f"that {variable} is set where serve and worker run, " if variable else ""
        return Item(
            name,
            FAILED,
            f"{system.name}: {error or 'no answer'}",
            f"check that {system.name}'s {system.transport} broker is up and reachable from "
            f"this host, {url}and that {where} the flow publishes to exists",
        )
    if system.transport == "file":
        if answer is not None:
            return Item(name, PASSED, f"{answer} (no file sent)")
        return Item(
            name,
            FAILED,
            error or "no answer",
            f"check systems.{system.name}.file_exchange: the folder exists and the service's "
            "user may write to it; for SFTP, that the server is up and reachable from this "
            "host and the user, key_file or password_env and known_hosts are right",
        )
    if system.url is None:
        return Item(name, FAILED, f"{system.name} has no url", f"set systems.{system.name}.url")
    if answer is not None:
        return Item(name, PASSED, f"{system.url} answered {answer} (no document sent)")
    return Item(
        name,
        FAILED,
        f"{system.url}: {error or 'no answer'}",
        f"check that {system.name} is up and that this host may reach it (firewall, proxy)",
    )


def changes_item(flow: Flow, due: Sequence[dict[str, Any]] | None, within: timedelta) -> Item:
    """No change touching the flow ships within ``within`` with someone yet to acknowledge
    it; ``due`` is None when the changes capability is not installed."""
    name = "changes acknowledged"
    days = f"{within.total_seconds() / 86400:g} days"
    if due is None:
        return Item(name, NOT_AVAILABLE, "the changes capability is not installed")
    mine = [c for c in due if flow.name in c["flows"] or c["system"] in (flow.source, flow.target)]
    if not mine:
        return Item(name, PASSED, f"no change due in the next {days} awaits acknowledgement")
    detail = "; ".join(
        f"change {c['id']} ({c['title']}) ships {c['at_local']}: not acknowledged by "
        + ", ".join(c["unacknowledged"])
        for c in mine
    )
    return Item(
        name,
        FAILED,
        detail,
        f"ask them to acknowledge (`interlink change show {mine[0]['id']}` lists who has not)",
    )


def flow_items(
    topology: Topology,
    flow: Flow,
    *,
    run: Any,
    within: timedelta,
    alerts: Item,
    probe: tuple[str | None, str | None],
    drill_files: Sequence[str] = (),
    changes: Item | None = None,
) -> list[Item]:
    target = topology.systems[flow.target]
    return [
        contract_item(topology, flow),
        scenarios_item(topology, flow),
        drill_item(flow, run, within, topology.tz, drill_files, flow.document),
        contacts_item(topology, flow),
        notice_item(target),
        alerts,
        reachable_item(target, *probe),
        *([changes] if changes is not None else []),
    ]


# -- gathering ------------------------------------------------------------------------------


async def probe(url: str, timeout: float) -> tuple[str | None, str | None]:
    """HEAD the url (no document): (status, None) on any HTTP answer, (None, why) if none."""
    try:
        async with (
            aiohttp.ClientSession() as session,
            session.head(
                url, timeout=aiohttp.ClientTimeout(total=timeout), allow_redirects=False
            ) as response,
        ):
            return f"HTTP {response.status}", None
    except TimeoutError:
        return None, f"no answer within {timeout:g}s"
    except aiohttp.ClientConnectorError as e:
        return None, f"cannot connect: {e.os_error.strerror if e.os_error else e}"
    except (aiohttp.ClientError, OSError, ValueError) as e:
        return None, " ".join(str(e).split()) or type(e).__name__


async def probe_system(system: System, flows: Sequence[Flow] = ()) -> tuple[str | None, str | None]:
    """Probe ``system`` the way its deliveries reach it (for a broker, those of ``flows``),
    sending nothing: (answer, None) or (None, why)."""
    if system.transport == "file" and system.file_exchange is not None:
        return await probe_files(system.file_exchange)
    if system.transport in ("amqp", "nats"):
        from interlink.features.readiness.brokers import probe_broker

        return await probe_broker(system, flows)
    if not system.url:
        return None, "no url"
    return await probe(system.url, system.timeout.total_seconds())


async def probe_files(settings: FileExchangeSettings) -> tuple[str | None, str | None]:
    """The batch files' place must take a file, the results' place be readable: a folder
    that exists with those rights, or an SFTP server that logs us in (with the configured
    user, key or password and known hosts) and lists the folder, within
    ``connect_timeout``."""
    places = {settings.location: "write"}
    if settings.results is not None and settings.results.location:
        places.setdefault(settings.results.location, "read")
    found = []
    for where, need in places.items():
        if where.startswith("sftp://"):
            timeout = settings.connect_timeout.total_seconds()
            try:
                await asyncio.wait_for(place_for(settings, where).names("*"), timeout)
            except TimeoutError:
                return None, f"{where}: no answer within {timeout:g}s"
            except TransportError as e:
                return None, e.message
            found.append(f"{where}: logged in and listed the folder")
            continue
        problem = await asyncio.to_thread(_folder_problem, Path(where), need)
        if problem:
            return None, f"{where}: {problem}"
        found.append(f"{where}: a folder this host may {need}")
    return "; ".join(found), None


def _folder_problem(folder: Path, need: str) -> str | None:
    if not folder.exists():
        return "no such folder"
    if not folder.is_dir():
        return "not a folder"
    mode = os.W_OK if need == "write" else os.R_OK
    if not os.access(folder, mode | os.X_OK):
        return f"this host's user may not {need} in it"
    return None


async def _alerts(hub: Hub) -> Item:
    if "alerts" not in hub.capabilities:
        return alerts_item(False, None)
    try:
        from interlink.features.alerts.service import send_test
    except ImportError:
        return alerts_item(False, None)
    try:
        results = await asyncio.to_thread(send_test, hub)
    except Exception as e:  # a channel library's failure is this item's finding
        return alerts_item(True, None, " ".join(str(e).split()) or type(e).__name__)
    return alerts_item(True, {str(k): str(v) for k, v in dict(results).items()})


async def check(
    hub: Hub, flow: str | None = None, within: timedelta = DEFAULT_DRILL_WITHIN
) -> dict[str, Any]:
    """The checklist for one flow or every flow."""
    hub.check_flow(flow)
    topology = hub.topology
    flows: Sequence[Flow] = (
        [topology.flows[flow]] if flow is not None else list(topology.flows.values())
    )
    now: datetime = hub.clock.now()
    since = now - within
    targets = sorted({f.target for f in flows})
    probes = await asyncio.gather(
        *(probe_system(topology.systems[t], [f for f in flows if f.target == t]) for t in targets)
    )
    by_target = dict(zip(targets, probes, strict=True))
    alerts = await _alerts(hub)
    due = await asyncio.to_thread(_changes_due, hub)
    runs = await hub.store.read(
        lambda conn: {
            f.name: queries.last_outage_pass(conn, f.name, f.target, since) for f in flows
        }
    )
    out = []
    for f in flows:
        items = flow_items(
            topology,
            f,
            run=runs[f.name],
            within=within,
            alerts=alerts,
            probe=by_target[f.target],
            drill_files=[] if runs[f.name] is not None else drill_files_for(topology, f),
            changes=changes_item(f, due, CHANGES_WITHIN),
        )
        out.append(
            {
                "flow": f.name,
                "from": f.source,
                "to": f.target,
                "passed": all(i.status == PASSED for i in items),
                "items": [i.to_json() for i in items],
            }
        )
    return {
        "passed": bool(out) and all(f["passed"] for f in out),
        "checked_at": now.isoformat(),
        "drill_within_days": within.total_seconds() / 86400,
        "flows": out,
    }


def _changes_due(hub: Hub) -> list[dict[str, Any]] | None:
    if "changes" not in hub.capabilities:
        return None
    from interlink.features.changes.service import changes

    return changes(hub).unacknowledged_due(CHANGES_WITHIN)
