"""The incident register: the one official record of problems.

:class:`Incidents` opens, searches, comments, assigns, resolves and exports incidents, and keeps
their attachments under the hub's data directory. The alerter opens incidents through
:meth:`Incidents.record_alert` in the same transaction that records the alert; repeats of a
problem join the open incident with the same (rule, system, flow) key.

Attachments are checked by their first bytes, not their name: PNG, JPEG, GIF, WebP, PDF and
UTF-8 text, at most :data:`MAX_ATTACHMENT_BYTES`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink.csv_export import to_csv
from interlink.errors import InputError, NotFound, TooLarge
from interlink.features.alerts.rules import RULES, Message, describe, incident_key
from interlink.features.incidents import queries

if TYPE_CHECKING:
    from interlink.service import Hub

log = logging.getLogger(__name__)

SEVERITIES = ("low", "medium", "high", "critical")
STATUSES = ("open", "investigating", "resolved")
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
DATA_DIR_ENV = "INTERLINK_DATA_DIR"
ALERTER = "alerter"

# type -> (content type, extensions a file of that type may carry)
ATTACHMENT_TYPES: dict[str, tuple[str, tuple[str, ...]]] = {
    "png": ("image/png", (".png",)),
    "jpeg": ("image/jpeg", (".jpg", ".jpeg")),
    "gif": ("image/gif", (".gif",)),
    "webp": ("image/webp", (".webp",)),
    "pdf": ("application/pdf", (".pdf",)),
    "txt": ("text/plain; charset=utf-8", (".txt", ".log")),
}


def sniff(data: bytes) -> str | None:
    """The attachment type of ``data`` by its magic bytes, or None if not an allowed one."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"%PDF-"):
        return "pdf"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(c) < 32 and c not in "\t\n\r\f" for c in text):
        return None
    return "txt"


def check_attachment(filename: str, data: bytes, limit: int = MAX_ATTACHMENT_BYTES) -> str:
    """The attachment's type; TooLarge or InputError when it may not be stored."""
    if len(data) > limit:
        raise TooLarge(f"{filename}: {len(data)} bytes is over the limit of {limit} bytes")
    if not data:
        raise InputError(f"{filename}: the file is empty")
    kind = sniff(data)
    allowed = ", ".join(sorted(ATTACHMENT_TYPES))
    if kind is None:
        raise InputError(f"{filename}: not an allowed type ({allowed}), judged by its content")
    extension = Path(filename).suffix.lower()
    if extension not in ATTACHMENT_TYPES[kind][1]:
        raise InputError(
            f"{filename}: the name says {extension or 'no type'} but the content is {kind}; "
            f"allowed: {allowed}"
        )
    return kind


@dataclass(frozen=True)
class IncidentFilter:
    status: str | None = None
    system: str | None = None
    flow: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _list(text: str | None) -> list[str]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _clean(text: str | None) -> str:
    return (text or "").strip()


class Incidents:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    # -- where attachments live -------------------------------------------------------------

    def data_dir(self) -> Path:
        """$INTERLINK_DATA_DIR, else ``interlink-data`` beside the SQLite file (or beside the
        topology file for other databases)."""
        explicit = os.environ.get(DATA_DIR_ENV)
        if explicit:
            return Path(explicit)
        url = self.hub.store.url
        match = re.fullmatch(r"sqlite(?:\+\w+)?:///([^?]+)(\?.*)?", url)
        if match and match.group(1) != ":memory:":
            return Path(match.group(1)).resolve().parent / "interlink-data"
        return self.hub.topology.path.parent / "interlink-data"

    # -- checks -------------------------------------------------------------------------------

    def _check_refs(self, systems: list[str], flows: list[str]) -> None:
        topo = self.hub.topology
        for s in systems:
            if s not in topo.systems:
                raise NotFound(f"unknown system {s!r} (known: {', '.join(sorted(topo.systems))})")
        for f in flows:
            self.hub.check_flow(f)

    def check_filter(self, f: IncidentFilter) -> None:
        if f.status is not None and f.status not in STATUSES:
            raise InputError(f"unknown status {f.status!r}; use one of {', '.join(STATUSES)}")
        self._check_refs([f.system] if f.system else [], [f.flow] if f.flow else [])

    # -- reads --------------------------------------------------------------------------------

    def search(
        self, f: IncidentFilter | None = None, limit: int | None = 100
    ) -> list[dict[str, Any]]:
        f = f or IncidentFilter()
        self.check_filter(f)
        rows = self.hub.store.read_sync(lambda conn: queries.search(conn, **vars(f), limit=limit))
        return [self._summary(r) for r in rows]

    def get(self, incident_id: int) -> dict[str, Any]:
        def read(conn: Connection) -> dict[str, Any] | None:
            row = queries.get_incident(conn, incident_id)
            if row is None:
                return None
            out = self._summary(row)
            out["timeline"] = [
                {"at": _iso(e.at), "actor": e.actor, "kind": e.kind, "text": e.text}
                for e in queries.entries(conn, incident_id)
            ]
            out["attachments"] = [
                {
                    "id": a.id,
                    "filename": a.filename,
                    "content_type": a.content_type,
                    "size": a.size,
                    "sha256": a.sha256,
                    "at": _iso(a.at),
                    "by": a.actor,
                }
                for a in queries.attachments(conn, incident_id)
            ]
            return out

        found = self.hub.store.read_sync(read)
        if found is None:
            raise NotFound(f"no incident {incident_id}")
        return found

    @staticmethod
    def _summary(row: Any) -> dict[str, Any]:
        return {
            "id": row.id,
            "title": row.title,
            "description": row.description,
            "category": row.category,
            "severity": row.severity,
            "status": row.status,
            "registered_at": _iso(row.registered_at),
            "registered_by": row.registered_by,
            "assignee": row.assignee,
            "systems": _list(row.systems),
            "flows": _list(row.flows),
            "documents": _list(row.documents),
            "resolution": row.resolution,
            "resolved_at": _iso(row.resolved_at),
            "resolved_by": row.resolved_by,
            "source_key": row.source_key,
            "occurrences": row.occurrences,
            "last_seen_at": _iso(row.last_seen_at),
        }

    # -- actions ------------------------------------------------------------------------------

    def new(
        self,
        *,
        title: str,
        actor: str,
        description: str = "",
        category: str = "other",
        severity: str = "medium",
        systems: list[str] | None = None,
        flows: list[str] | None = None,
        documents: list[str] | None = None,
        assignee: str | None = None,
    ) -> dict[str, Any]:
        title = _clean(title)
        if not title:
            raise InputError("an incident needs a title")
        if severity not in SEVERITIES:
            raise InputError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
        systems, flows = list(systems or []), list(flows or [])
        self._check_refs(systems, flows)
        for f in flows:  # a flow involves both of its ends
            flow = self.hub.topology.flows[f]
            systems += [s for s in (flow.target, flow.source) if s not in systems]
        now = self.hub.clock.now()

        def write(conn: Connection) -> int:
            incident_id = queries.insert_incident(
                conn,
                {
                    "title": title[:300],
                    "description": _clean(description),
                    "category": _clean(category) or "other",
                    "severity": severity,
                    "status": "open",
                    "registered_at": now,
                    "registered_by": actor,
                    "assignee": _clean(assignee) or None,
                    "systems": json.dumps(systems),
                    "flows": json.dumps(flows),
                    "documents": json.dumps(list(documents or [])),
                    "source_key": None,
                    "occurrences": 1,
                    "last_seen_at": now,
                    "updated_at": now,
                },
            )
            queries.add_entry(conn, incident_id, now, actor, "status", "opened")
            return incident_id

        return self.get(self.hub.store.write_sync(write))

    def update(
        self,
        incident_id: int,
        actor: str,
        *,
        status: str | None = None,
        assignee: str | None = None,
        resolution: str | None = None,
        comment: str | None = None,
        severity: str | None = None,
    ) -> dict[str, Any]:
        """Change what is given, each change on the timeline. Resolving needs a resolution."""
        if status is not None and status not in STATUSES:
            raise InputError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        if severity is not None and severity not in SEVERITIES:
            raise InputError(f"unknown severity {severity!r}; use one of {', '.join(SEVERITIES)}")
        if comment is not None and not _clean(comment):
            raise InputError("a comment needs text")
        if status == "resolved" and not _clean(resolution):
            raise InputError("resolving an incident needs a resolution: say what the answer was")
        now = self.hub.clock.now()

        def write(conn: Connection) -> None:
            row = queries.get_incident(conn, incident_id)
            if row is None:
                raise NotFound(f"no incident {incident_id}")
            values: dict[str, Any] = {}
            if comment is not None:
                queries.add_entry(conn, incident_id, now, actor, "comment", _clean(comment))
            if assignee is not None and (_clean(assignee) or None) != row.assignee:
                values["assignee"] = _clean(assignee) or None
                queries.add_entry(
                    conn, incident_id, now, actor, "assign", f"assigned to {assignee or 'nobody'}"
                )
            if severity is not None and severity != row.severity:
                values["severity"] = severity
                queries.add_entry(conn, incident_id, now, actor, "status", f"severity {severity}")
            target = status or row.status
            if resolution is not None and target != "resolved":
                raise InputError("a resolution goes with status resolved")
            if resolution is not None and not _clean(resolution):
                raise InputError("a resolution needs text: say what the answer was")
            if status is not None and status != row.status:
                values["status"] = status
                if status == "resolved":
                    values.update(resolution=_clean(resolution), resolved_at=now, resolved_by=actor)
                    text = f"resolved: {_clean(resolution)}"
                else:  # reopened, or on to investigating: no answer yet
                    values.update(resolution=None, resolved_at=None, resolved_by=None)
                    text = f"status {status}"
                queries.add_entry(conn, incident_id, now, actor, "status", text)
            elif resolution is not None and _clean(resolution) != row.resolution:
                values["resolution"] = _clean(resolution)
                queries.add_entry(
                    conn, incident_id, now, actor, "status", f"resolution: {_clean(resolution)}"
                )
            if values or comment is not None:
                values["updated_at"] = now
                queries.update_incident(conn, incident_id, values)

        self.hub.store.write_sync(write)
        return self.get(incident_id)

    def resolve(self, incident_id: int, resolution: str, actor: str) -> dict[str, Any]:
        return self.update(incident_id, actor, status="resolved", resolution=resolution)

    def comment(self, incident_id: int, text: str, actor: str) -> dict[str, Any]:
        return self.update(incident_id, actor, comment=text)

    def assign(self, incident_id: int, name: str, actor: str) -> dict[str, Any]:
        return self.update(incident_id, actor, assignee=name)

    def attach(self, incident_id: int, filename: str, data: bytes, actor: str) -> dict[str, Any]:
        """Check and store a file; nothing is written when it is refused."""
        name = Path(filename.replace("\\", "/")).name or "attachment"
        kind = check_attachment(name, data)
        self.get(incident_id)  # NotFound before anything is written
        digest = hashlib.sha256(data).hexdigest()
        relative = f"attachments/{incident_id}/{digest[:16]}{ATTACHMENT_TYPES[kind][1][0]}"
        path = self.data_dir() / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)
        now = self.hub.clock.now()

        def write(conn: Connection) -> int:
            attachment_id = queries.add_attachment(
                conn,
                {
                    "incident_id": incident_id,
                    "at": now,
                    "actor": actor,
                    "filename": name[:255],
                    "content_type": ATTACHMENT_TYPES[kind][0],
                    "size": len(data),
                    "sha256": digest,
                    "stored_as": relative,
                },
            )
            queries.add_entry(conn, incident_id, now, actor, "comment", f"attached {name}")
            queries.update_incident(conn, incident_id, {"updated_at": now})
            return attachment_id

        try:
            attachment_id = self.hub.store.write_sync(write)
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return {"id": attachment_id, "filename": name, "content_type": ATTACHMENT_TYPES[kind][0],
                "size": len(data), "sha256": digest}  # fmt: skip

    def attachment(self, incident_id: int, attachment_id: int) -> tuple[dict[str, Any], Path]:
        row = self.hub.store.read_sync(
            lambda conn: queries.get_attachment(conn, incident_id, attachment_id)
        )
        if row is None:
            raise NotFound(f"no attachment {attachment_id} on incident {incident_id}")
        path = self.data_dir() / row.stored_as
        if not path.is_file():
            # The folder goes to the log, not to the caller: no machine paths in answers.
            log.warning("incident attachment %s: its file %s is missing", attachment_id, path)
            raise NotFound(f"attachment {attachment_id}: its file is missing from the data folder")
        meta = {"filename": row.filename, "content_type": row.content_type, "size": row.size}
        return meta, path

    # -- from alerts (inside the alerter's write) -----------------------------------------------

    def record_alert(
        self,
        conn: Connection,
        now: datetime,
        message: Message,
        refs: dict[int, tuple[str, str]],
    ) -> int | None:
        """Open the incident of ``message``'s problem, or add it to the open one."""
        rule = message.rule
        if rule is None:
            return None
        from interlink.features.alerts.rules import JOINS

        if message.kind in JOINS:
            joined_kind, text = JOINS[message.kind]
            row = queries.open_by_source(
                conn, incident_key(joined_kind, message.system, message.flow)
            )
            if row is not None:
                queries.add_entry(conn, row.id, now, ALERTER, "alert", text)
                queries.update_incident(conn, row.id, {"updated_at": now})
                return int(row.id)
            return None
        if not rule.incident:
            return None
        key = incident_key(message.kind, message.system, message.flow)
        documents = [refs[i][1] for i in _delivery_ids(message) if i in refs]
        row = queries.open_by_source(conn, key)
        text = message.subject().removeprefix("[interlink] ")
        if row is not None:
            known = _list(row.documents)
            merged = known + [d for d in documents if d not in known]
            queries.add_entry(conn, row.id, now, ALERTER, "alert", text)
            queries.update_incident(
                conn,
                row.id,
                {
                    "occurrences": row.occurrences + message.count,
                    "last_seen_at": now,
                    "updated_at": now,
                    "documents": json.dumps(merged[:100]),
                },
            )
            return int(row.id)
        systems: list[str] = []
        flow = self.hub.topology.flows.get(message.flow or "")
        if flow is not None:
            systems = [flow.target, flow.source]
        elif message.system:
            systems = [message.system] + [
                f.source for f in self.hub.topology.flows_to(message.system)
            ]
        first = message.examples[0] if message.examples else None
        incident_id = queries.insert_incident(
            conn,
            {
                "title": f"{rule.title}: {message.flow or message.system or 'hub'}"[:300],
                "description": describe(first, refs) if first else "",
                "category": rule.category or message.kind,
                "severity": rule.severity,
                "status": "open",
                "registered_at": now,
                "registered_by": ALERTER,
                "assignee": None,
                "systems": json.dumps(list(dict.fromkeys(systems))),
                "flows": json.dumps([message.flow] if message.flow else []),
                "documents": json.dumps(documents[:100]),
                "source_key": key,
                "occurrences": message.count,
                "last_seen_at": now,
                "updated_at": now,
            },
        )
        queries.add_entry(conn, incident_id, now, ALERTER, "alert", text)
        return incident_id

    # -- export and figures ---------------------------------------------------------------------

    EXPORT_COLUMNS = (
        "id", "title", "category", "severity", "status", "registered_at", "registered_by",
        "assignee", "systems", "flows", "documents", "occurrences", "resolution", "resolved_at",
        "description",
    )  # fmt: skip

    def export(self, fmt: str = "csv", f: IncidentFilter | None = None) -> str:
        if fmt not in ("csv", "md"):
            raise InputError(f"unknown export format {fmt!r}; use csv or md")
        items = self.search(f, limit=None)
        rows = [
            [
                " ".join(v) if isinstance(v, list) else ("" if v is None else str(v))
                for v in (item[c] for c in self.EXPORT_COLUMNS)
            ]
            for item in reversed(items)
        ]
        if fmt == "csv":  # titles and text are anyone's: no cell may run as a formula
            return to_csv(self.EXPORT_COLUMNS, rows, lineterminator="\n")
        lines = [
            "| " + " | ".join(self.EXPORT_COLUMNS) + " |",
            "|" + "---|" * len(self.EXPORT_COLUMNS),
        ]
        for row in rows:
            cells = [" ".join(v.split()).replace("|", "\\|") for v in row]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"

    def stats(self) -> dict[str, Any]:
        items = self.search(limit=None)
        resolved = [i for i in items if i["status"] == "resolved" and i["resolved_at"]]

        def hours(item: dict[str, Any]) -> float:
            start = datetime.fromisoformat(item["registered_at"])
            end = datetime.fromisoformat(item["resolved_at"])
            return max((end - start).total_seconds(), 0.0) / 3600

        def mttr(group: list[dict[str, Any]]) -> float | None:
            return round(statistics.fmean(hours(i) for i in group), 3) if group else None

        by_system: dict[str, list[dict[str, Any]]] = defaultdict(list)
        by_category: dict[str, list[dict[str, Any]]] = defaultdict(list)
        open_by_system: Counter[str] = Counter()
        for item in items:
            for system in item["systems"]:
                if item["status"] == "resolved" and item["resolved_at"]:
                    by_system[system].append(item)
                elif item["status"] != "resolved":
                    open_by_system[system] += 1
            if item["status"] == "resolved" and item["resolved_at"]:
                by_category[item["category"]].append(item)
        recurring: dict[str, dict[str, Any]] = {}
        for item in items:
            problem = item["source_key"] or f"{item['category']}|{item['title']}"
            entry = recurring.setdefault(
                problem,
                {"problem": item["title"], "category": item["category"],
                 "systems": item["systems"], "incidents": 0, "occurrences": 0},
            )  # fmt: skip
            entry["incidents"] += 1
            entry["occurrences"] += item["occurrences"]
        top = sorted(recurring.values(), key=lambda e: (-e["incidents"], -e["occurrences"]))
        return {
            "total": len(items),
            "open": sum(1 for i in items if i["status"] != "resolved"),
            "by_status": dict(Counter(i["status"] for i in items)),
            "mttr_hours": mttr(resolved),
            "mttr_hours_by_system": {s: mttr(g) for s, g in sorted(by_system.items())},
            "mttr_hours_by_category": {c: mttr(g) for c, g in sorted(by_category.items())},
            "open_by_system": dict(sorted(open_by_system.items())),
            "recurring": top[:10],
        }


def _delivery_ids(message: Message) -> list[int]:
    out = []
    for event in message.examples:
        value = event.detail.get("delivery")
        if isinstance(value, int):
            out.append(value)
    return out


# Kept next to the service so that the register's category names match the alert rules.
CATEGORIES = sorted({r.category for r in RULES.values() if r.category} | {"other"})


NAME = "incidents"


def install(hub: Hub) -> None:
    hub.capabilities[NAME] = Incidents(hub)


def incidents(hub: Hub) -> Incidents:
    service: Incidents = hub.capabilities[NAME]
    return service
