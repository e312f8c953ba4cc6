"""Change notices (capability "changes"): announce a change, tell everyone it touches, and
keep who has read it.

:meth:`Changes.announce` checks the input and the attachments (exactly as incident
attachments are checked), weighs the change (:mod:`.impact`), and records the change with one
recipient row per contact to tell, in one write. Notices are then sent, each with its
recipient's personal acknowledgement link (:mod:`.links`), through the alert channels: mail
through the topology's SMTP settings, anything else through Apprise.

:meth:`Changes.run_once` is the background step (``hub.hooks.background``): it sends notices
that are due (new, or failed and due again), and reminds each unacknowledged recipient once,
:data:`DEFAULT_REMINDER` (``INTERLINK_CHANGE_REMINDER``) before the change ships. Recipients
are claimed in a write before anything is sent, so two processes never send the same message.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import hashlib
import json
import logging
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection

from interlink import times
from interlink.config import parse_duration
from interlink.errors import Forbidden, InputError, NotFound
from interlink.features.alerts import notify
from interlink.features.alerts.service import ChannelSender, Sender
from interlink.features.alerts.wording import CONSOLE_URL_ENV
from interlink.features.changes import impact, links, queries
from interlink.features.incidents.service import ATTACHMENT_TYPES, Incidents, check_attachment
from interlink.store.queries import audit

if TYPE_CHECKING:
    from interlink.service import Hub

log = logging.getLogger(__name__)

NAME = "changes"
SECRET_KEY_ENV = "INTERLINK_SECRET_KEY"  # noqa: S105 - a name, not a secret
REMINDER_ENV = "INTERLINK_CHANGE_REMINDER"
DEFAULT_REMINDER = timedelta(days=1)
# A link works until this long after the change shipped (or was announced, if later).
LINK_VALID = timedelta(days=14)
# Waits after the 1st, 2nd and 3rd failed notice; the 4th failure is final.
RETRY = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
LEASE = timedelta(minutes=2)
POLL_SECONDS = 5.0
BATCH = 200


@dataclass
class RunResult:
    sent: int = 0
    failed: int = 0
    reminded: int = 0


def reminder_lead() -> timedelta:
    text = os.environ.get(REMINDER_ENV)
    if not text:
        return DEFAULT_REMINDER
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InputError(f"{REMINDER_ENV}: {exc}") from None


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _clean(text: str | None) -> str:
    return (text or "").strip()


def address_of(row: Any) -> str:
    """How a recipient is named in its link and in the record: mail address, else name."""
    return str(row.email or row.name or f"{row.role}@{row.system}")


class Changes:
    def __init__(self, hub: Hub, sender: Sender | None = None) -> None:
        self.hub = hub
        self.sender: Sender = sender or ChannelSender(hub)
        self.reminder = reminder_lead()
        self._key: str | None = None

    # -- the signing key and the console's address ------------------------------------------

    def key(self) -> str:
        """$INTERLINK_SECRET_KEY (the console's), else a random key kept in the store."""
        explicit = os.environ.get(SECRET_KEY_ENV)
        if explicit:
            return explicit
        if self._key is None:
            found = self.hub.store.read_sync(queries.link_key)
            if found is None:
                fresh = secrets.token_urlsafe(32)
                found = self.hub.store.write_sync(lambda conn: queries.save_link_key(conn, fresh))
            self._key = found
        return self._key

    def console_url(self) -> str:
        explicit = os.environ.get(CONSOLE_URL_ENV)
        if explicit:
            return explicit.rstrip("/")
        host, port = self.hub.topology.listen_address()
        return f"http://{host}:{port}"

    # -- announcing ---------------------------------------------------------------------------

    def _document_for(self, system: str, document: str | None, schema: Any) -> str:
        """The document type a proposed schema is for: the one named, the only one the
        system sends, or the one whose contract has the schema's ``title``."""
        docs = self.hub.topology.documents
        if document:
            if document not in docs:
                raise NotFound(f"unknown document type {document!r}")
            return document
        sent = sorted({f.document for f in self.hub.topology.flows_from(system)})
        titled = [
            d
            for d in sent
            if isinstance(schema, dict)
            and schema.get("title")
            and (docs[d].contract_schema or {}).get("title") == schema.get("title")
        ]
        if len(sent) == 1 or len(titled) == 1:
            return (titled or sent)[0]
        if not sent:
            raise InputError(f"{system} sends no document type; name one with --document")
        raise InputError(
            f"{system} sends {', '.join(sent)}: name the one the schema is for with --document"
        )

    def weigh(
        self,
        system: str,
        kind: str,
        *,
        fields: list[str] | None = None,
        codes: list[str] | None = None,
        schema: Any = None,
        document: str | None = None,
    ) -> dict[str, Any]:
        """What a change would touch and whom it would tell; nothing is written."""
        topo = self.hub.topology
        if system not in topo.systems:
            raise NotFound(f"unknown system {system!r} (known: {', '.join(sorted(topo.systems))})")
        if kind not in impact.KINDS:
            raise InputError(f"unknown kind {kind!r}; use one of {', '.join(impact.KINDS)}")
        names = [_clean(f) for f in fields or [] if _clean(f)]
        try:
            pairs = [impact.parse_code(c) for c in codes or [] if _clean(c)]
        except ValueError as exc:
            raise InputError(str(exc)) from None
        subject: dict[str, Any] = {"fields": names, "codes": [f"{t}:{v}" for t, v in pairs]}
        report = None
        if schema is not None:
            if "contracts" not in self.hub.capabilities:
                raise InputError("weighing a schema needs the contracts capability")
            from interlink.features.contracts.service import contracts

            doc = self._document_for(system, document, schema)
            report = contracts(self.hub).check(doc, schema, replay=0)
            subject.update(document=doc, schema=report["proposed"]["hash"])
            subject["breaking"] = report["breaking"]
        affected = impact.assess(topo, system, kind, fields=names, codes=pairs, contract=report)
        told = []
        for name in impact.systems_of(affected, system):
            for c in impact.recipients(topo, name, kind):
                if c.email or c.notify:
                    told.append(
                        {"system": name, "role": c.role, "name": c.name, "email": c.email,
                         "notify": c.notify}
                    )  # fmt: skip
        return {
            "subject": subject,
            "affected": [a.to_json() for a in affected],
            "systems": impact.systems_of(affected, system),
            "recipients": told,
        }

    def announce(
        self,
        system: str,
        *,
        title: str,
        at: datetime,
        kind: str,
        actor: str,
        description: str = "",
        fields: list[str] | None = None,
        codes: list[str] | None = None,
        schema: Any = None,
        document: str | None = None,
        attachments: list[tuple[str, bytes]] | None = None,
        send: bool = True,
    ) -> dict[str, Any]:
        title = _clean(title)
        if not title:
            raise InputError("a change needs a title")
        if _CONTROL.search(title):
            # The title is the notice's mail subject: a line break there would be a header.
            raise InputError("a change's title is one line, without control characters")
        files = []
        for filename, data in attachments or []:
            name = Path(filename.replace("\\", "/")).name or "attachment"
            files.append((name, data, check_attachment(name, data)))  # refused before any write
        weighed = self.weigh(
            system, kind, fields=fields, codes=codes, schema=schema, document=document
        )
        now = self.hub.clock.now()

        def write(conn: Connection) -> int:
            change_id = queries.insert_change(
                conn,
                {
                    "system": system,
                    "title": title[:300],
                    "kind": kind,
                    "at": at,
                    "description": description or "",
                    "subject": json.dumps(weighed["subject"]),
                    "affected": json.dumps(weighed["affected"]),
                    "created_at": now,
                    "created_by": actor,
                },
            )
            queries.insert_recipients(
                conn,
                [
                    {**r, "change_id": change_id, "attempts": 0, "next_at": now}
                    for r in _unique(weighed["recipients"])
                ],
            )
            audit.add_audit(
                conn, now, actor, "change_announce", f"change:{change_id}",
                {"system": system, "kind": kind, "at": at.isoformat(), "title": title,
                 "systems": weighed["systems"]},
            )  # fmt: skip
            return change_id

        change_id = self.hub.store.write_sync(write)
        for name, data, kind_of_file in files:
            self._store_attachment(change_id, name, data, kind_of_file, actor)
        if send:
            self.send_notices(now)
        return self.get(change_id)

    def _store_attachment(
        self, change_id: int, name: str, data: bytes, kind: str, actor: str
    ) -> dict[str, Any]:
        digest = hashlib.sha256(data).hexdigest()
        relative = f"changes/{change_id}/{digest[:16]}{ATTACHMENT_TYPES[kind][1][0]}"
        path = Incidents(self.hub).data_dir() / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(path.suffix + ".part")
        partial.write_bytes(data)
        partial.replace(path)
        values = {
            "change_id": change_id,
            "at": self.hub.clock.now(),
            "actor": actor,
            "filename": name[:255],
            "content_type": ATTACHMENT_TYPES[kind][0],
            "size": len(data),
            "sha256": digest,
            "stored_as": relative,
        }
        try:
            attachment_id = self.hub.store.write_sync(
                lambda conn: queries.add_attachment(conn, values)
            )
        except Exception:
            path.unlink(missing_ok=True)
            raise
        return {"id": attachment_id, "filename": name, "content_type": values["content_type"],
                "size": len(data), "sha256": digest}  # fmt: skip

    def attach(self, change_id: int, filename: str, data: bytes, actor: str) -> dict[str, Any]:
        """Check and store a file; nothing is written when it is refused."""
        name = Path(filename.replace("\\", "/")).name or "attachment"
        kind = check_attachment(name, data)
        self.get(change_id)  # NotFound before anything is written
        return self._store_attachment(change_id, name, data, kind, actor)

    def attachment(self, change_id: int, attachment_id: int) -> tuple[dict[str, Any], Path]:
        row = self.hub.store.read_sync(
            lambda conn: queries.get_attachment(conn, change_id, attachment_id)
        )
        if row is None:
            raise NotFound(f"no attachment {attachment_id} on change {change_id}")
        path = Incidents(self.hub).data_dir() / row.stored_as
        if not path.is_file():
            # The folder goes to the log, not to the caller: no machine paths in answers.
            log.warning("change attachment %s: its file %s is missing", attachment_id, path)
            raise NotFound(f"attachment {attachment_id}: its file is missing from the data folder")
        return {"filename": row.filename, "content_type": row.content_type, "size": row.size}, path

    # -- reading ------------------------------------------------------------------------------

    def search(
        self,
        *,
        system: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Changes, latest shipping first; ``system``: those it announced or that touch it."""
        if system is not None and system not in self.hub.topology.systems:
            raise NotFound(f"unknown system {system!r}")

        def read(conn: Connection) -> list[dict[str, Any]]:
            rows = queries.list_changes(
                conn, since=since, until=until, limit=None if system else limit
            )
            if system is not None:
                rows = [r for r in rows if system in _touched(r)][:limit]
            people = queries.recipients(conn, [r.id for r in rows])
            return [self._summary(r, [p for p in people if p.change_id == r.id]) for r in rows]

        return self.hub.store.read_sync(read)

    def get(self, change_id: int) -> dict[str, Any]:
        def read(conn: Connection) -> dict[str, Any] | None:
            row = queries.get_change(conn, change_id)
            if row is None:
                return None
            people = queries.recipients(conn, [change_id])
            out = self._summary(row, people)
            out["description"] = row.description
            out["subject"] = json.loads(row.subject)
            out["affected"] = json.loads(row.affected)
            out["recipients"] = [self._recipient(p) for p in people]
            out["attachments"] = [
                {"id": a.id, "filename": a.filename, "content_type": a.content_type,
                 "size": a.size, "sha256": a.sha256, "at": _iso(a.at), "by": a.actor}
                for a in queries.attachments(conn, change_id)
            ]  # fmt: skip
            return out

        found = self.hub.store.read_sync(read)
        if found is None:
            raise NotFound(f"no change {change_id}")
        return found

    def _summary(self, row: Any, people: list[Any]) -> dict[str, Any]:
        tz = self.hub.topology.tz
        acked = [p for p in people if p.acked_at is not None]
        return {
            "id": row.id,
            "system": row.system,
            "title": row.title,
            "kind": row.kind,
            "at": row.at.isoformat(),
            "at_local": row.at.astimezone(tz).isoformat(),
            "created_at": _iso(row.created_at),
            "created_by": row.created_by,
            "systems": sorted({p.system for p in people} | set(_touched(row)) - {row.system}),
            "flows": [a["flow"] for a in json.loads(row.affected)],
            "recipients_total": len(people),
            "acknowledged": len(acked),
            "unacknowledged": [address_of(p) for p in people if p.acked_at is None],
        }

    @staticmethod
    def _recipient(p: Any) -> dict[str, Any]:
        return {
            "id": p.id,
            "system": p.system,
            "role": p.role,
            "name": p.name,
            "email": p.email,
            "channel": "email" if p.email else "apprise",
            "notified_at": _iso(p.notified_at),
            "notify_error": p.notify_error,
            "reminded_at": _iso(p.reminded_at),
            "acknowledged_at": _iso(p.acked_at),
            "acknowledged_by": p.acked_by,
        }

    # -- acknowledging ------------------------------------------------------------------------

    def link(self, change_id: int, recipient: Any, at: datetime) -> str:
        """The recipient's personal link (absolute, on the console's address)."""
        expires = max(at, self.hub.clock.now()) + LINK_VALID
        token = links.sign(self.key(), change_id, recipient.id, address_of(recipient), expires)
        return self.console_url() + links.path(change_id, recipient.id, token)

    def link_for(self, change_id: int, recipient_id: int) -> str:
        """A recipient's personal link, made again (as the notice carries it)."""

        def read(conn: Connection) -> tuple[Any, Any]:
            return queries.get_change(conn, change_id), queries.get_recipient(
                conn, change_id, recipient_id
            )

        change, recipient = self.hub.store.read_sync(read)
        if change is None or recipient is None:
            raise NotFound(f"no recipient {recipient_id} on change {change_id}")
        return self.link(change_id, recipient, change.at)

    def check_link(self, change_id: int, recipient_id: int, token: str) -> dict[str, Any]:
        """The recipient a link is for; Forbidden when it is not a valid link."""
        row = self.hub.store.read_sync(
            lambda conn: queries.get_recipient(conn, change_id, recipient_id)
        )
        if row is None:
            # As for a forged link: the link's page is public, and must not tell which
            # changes and recipients exist.
            raise Forbidden("this acknowledgement link is not valid (altered or forged)")
        links.verify(
            self.key(), token, change_id, recipient_id, address_of(row), self.hub.clock.now()
        )
        return self._recipient(row)

    def acknowledge_link(self, change_id: int, recipient_id: int, token: str) -> dict[str, Any]:
        """Acknowledge by a personal link: the link is the credential."""
        recipient = self.check_link(change_id, recipient_id, token)
        who = f"link:{recipient['email'] or recipient['name'] or recipient_id}"
        return self._acknowledge(change_id, recipient_id, who)

    def acknowledge(self, change_id: int, recipient_id: int, actor: str) -> dict[str, Any]:
        """Acknowledge for a recipient, by a signed-in person (told by phone, in a meeting)."""
        found = self.hub.store.read_sync(
            lambda conn: queries.get_recipient(conn, change_id, recipient_id)
        )
        if found is None:
            raise NotFound(f"no recipient {recipient_id} on change {change_id}")
        return self._acknowledge(change_id, recipient_id, actor)

    def _acknowledge(self, change_id: int, recipient_id: int, by: str) -> dict[str, Any]:
        now = self.hub.clock.now()

        def write(conn: Connection) -> None:
            if queries.acknowledge(conn, recipient_id, now, by):
                audit.add_audit(
                    conn, now, by, "change_ack", f"change:{change_id}",
                    {"recipient": recipient_id},
                )  # fmt: skip

        self.hub.store.write_sync(write)
        return self.get(change_id)

    # -- notices and reminders ----------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> RunResult:
        now = now or self.hub.clock.now()
        result = self.send_notices(now)
        due = self.hub.store.read_sync(
            lambda conn: queries.due_reminders(conn, now, self.reminder, BATCH)
        )
        if not due:
            return result
        rows = self.hub.store.write_sync(lambda conn: queries.claim_reminders(conn, due, now))
        outcomes = self._send(rows, reminder=True)
        failed: dict[int, dict[str, Any]] = {}
        for row in rows:
            error = outcomes.get(row.id)
            if error is None:
                result.reminded += 1
            else:
                result.failed += 1
                failed[row.id] = {"notify_error": f"reminder: {error}"[:1000]}
        if failed:
            self.hub.store.write_sync(lambda conn: queries.finish_notices(conn, failed))
        return result

    def send_notices(self, now: datetime) -> RunResult:
        """Send every notice that is due; failures are tried again after :data:`RETRY`."""
        result = RunResult()
        due = self.hub.store.read_sync(lambda conn: queries.due_notices(conn, now, BATCH))
        if not due:
            return result
        rows = self.hub.store.write_sync(
            lambda conn: queries.claim_notices(conn, due, now, now + LEASE)
        )
        outcomes = self._send(rows, reminder=False)
        finished: dict[int, dict[str, Any]] = {}
        for row in rows:
            error = outcomes.get(row.id)
            attempts = row.attempts + 1
            if error is None:
                result.sent += 1
                finished[row.id] = {"notified_at": now, "next_at": None, "attempts": attempts,
                                    "notify_error": None}  # fmt: skip
            else:
                result.failed += 1
                again = now + RETRY[attempts - 1] if attempts <= len(RETRY) else None
                finished[row.id] = {"attempts": attempts, "next_at": again,
                                    "notify_error": error[:1000]}  # fmt: skip
        self.hub.store.write_sync(lambda conn: queries.finish_notices(conn, finished))
        return result

    def _send(self, rows: list[Any], *, reminder: bool) -> dict[int, str | None]:
        """Send each row's message in a worker thread; row id → None when sent, else why."""
        outcomes: dict[int, str | None] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="change")
        try:
            futures = {}
            for row in rows:
                subject, body = self.message(row, reminder=reminder)
                channel, target, to = (
                    ("email", "", [row.email]) if row.email else ("apprise", row.notify, [])
                )
                futures[pool.submit(self.sender.send, channel, target, to, subject, body)] = row.id
            done, late = concurrent.futures.wait(futures, timeout=notify.DEFAULT_TIMEOUT * 2 + 5)
            for future in done:
                error = future.exception()
                outcomes[futures[future]] = None if error is None else str(error) or "failed"
            for future in late:
                outcomes[futures[future]] = "timed out"
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return outcomes

    def message(self, row: Any, *, reminder: bool) -> tuple[str, str]:
        """Subject and body of the notice (or the reminder) to one recipient."""
        tz = self.hub.topology.tz
        when = times.local_text(row.at, tz)
        source = self.hub.topology.systems.get(row.change_system)
        origin = (
            f"{source.title} ({row.change_system})"
            if source and source.title
            else row.change_system
        )
        lead = "Reminder: " if reminder else ""
        subject = f"[interlink] {lead}{origin} change on {when}: {row.title}"
        mine = [a for a in json.loads(row.affected) if a["system"] == row.system]
        lines = [
            f"{origin} ships a {row.kind} change on {when}:",
            f"  {row.title}",
            "",
            f"It touches {row.system}:",
            *(f"  - flow {a['flow']} ({a['from']} → {a['to']}): {'; '.join(a['reasons'])}"
              for a in mine),
            "",
        ]  # fmt: skip
        if row.description:
            lines += ["What changes:", row.description, ""]
        expires = max(row.at, self.hub.clock.now()) + LINK_VALID
        lines += [
            "Please confirm that you have read it (the link is yours alone, until "
            f"{times.local_text(expires, tz)}):",
            f"  {self.link(row.change_id, row, row.at)}",
            "",
            f"The change in the console: {self.console_url()}/changes/{row.change_id}",
        ]
        return subject, "\n".join(lines)

    async def loop(self, stop: asyncio.Event) -> None:
        """Run :meth:`run_once` every few seconds until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("change notices step failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)

    # -- for other pages and readiness ----------------------------------------------------------

    def unacknowledged_due(self, within: timedelta) -> list[dict[str, Any]]:
        """Changes shipping in the next ``within`` that someone has not acknowledged."""
        now = self.hub.clock.now()
        rows = self.hub.store.read_sync(
            lambda conn: queries.unacknowledged_due(conn, now, now + within)
        )
        return [self.get(r.id) for r in rows]

    def calendar(self) -> list[dict[str, Any]]:
        """Every change as a calendar entry (a moment: it starts and ends when it ships)."""
        return [
            {
                "uid": f"change-{c['id']}",
                "start": c["at"],
                "end": c["at"],
                "summary": f"{c['system']} {c['kind']} change: {c['title']}",
                "description": (
                    f"Touches: {', '.join(c['systems']) or 'no other system'}\n"
                    f"Acknowledged: {c['acknowledged']} of {c['recipients_total']}"
                ),
                "href": f"/changes/{c['id']}",
                "system": c["system"],
                "created_at": c["created_at"],
            }
            for c in self.search(limit=1000)
        ]


def _touched(row: Any) -> list[str]:
    """The systems a change row touches: its own and every affected flow's ends."""
    found = [row.system]
    for a in json.loads(row.affected):
        found += [a["from"], a["to"]]
    return list(dict.fromkeys(found))


def _unique(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, str]] = set()
    out = []
    for r in rows:
        key = (r["system"], (r["email"] or r["notify"] or "").lower())
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def install(hub: Hub) -> None:
    service = Changes(hub)
    hub.capabilities[NAME] = service
    hub.hooks.background.append(service.loop)


def changes(hub: Hub) -> Changes:
    service: Changes = hub.capabilities[NAME]
    return service
