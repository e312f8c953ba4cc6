"""The alerter: tails ``events``, routes, aggregates, records and sends alert messages.

:meth:`Alerter.run_once` is one synchronous step: read the events after the cursor, feed them
to the :class:`~.rules.Aggregator`, and in one write record the messages (one
row per channel), open or join incidents and move the cursor with the aggregation state; then
send every alert row that is due, in worker threads with timeouts, and record the outcome. A
channel that fails is tried again after :data:`RETRY` and recorded ``failed`` after the last.

The cursor and the aggregation state are saved in the same transaction as the alert rows, so
a restart neither sends twice nor skips; the cursor moves by compare-and-set, so two processes
running alerters (``serve`` and a ``worker``) never both take the same events.

:meth:`Alerter.loop` runs ``run_once`` in a thread beside the engine (``hub.hooks.background``),
so nothing here is ever in the engine's path.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Connection

from interlink.features.alerts import notify, queries, wording
from interlink.features.alerts.rules import RULES, Aggregator, Event, Message, route

if TYPE_CHECKING:
    from interlink.service import Hub

log = logging.getLogger(__name__)

CURSOR = "alerter"
BATCH = 5000
# Waits after the 1st, 2nd and 3rd failed attempt; the 4th failure is final.
RETRY = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15))
LEASE = timedelta(minutes=2)
POLL_SECONDS = 1.0


class Sender(Protocol):
    def send(self, channel: str, target: str, to: list[str], subject: str, body: str) -> None:
        """Send or raise :class:`~interlink.features.alerts.notify.SendError`."""
        ...


class ChannelSender:
    """Mail through the topology's SMTP settings, anything else through Apprise."""

    def __init__(self, hub: Hub, timeout: float = notify.DEFAULT_TIMEOUT) -> None:
        self.hub = hub
        self.timeout = timeout

    def send(self, channel: str, target: str, to: list[str], subject: str, body: str) -> None:
        if channel == "email":
            notify.send_mail(self.hub.topology.alerts.smtp, to, subject, body, self.timeout)
        elif channel == "apprise":
            notify.send_apprise(target, subject, body)
        else:
            raise notify.SendError(f"unknown channel {channel!r}")


@dataclass
class RunResult:
    events: int = 0
    messages: int = 0
    sent: int = 0
    failed: int = 0
    retrying: int = 0


class Alerter:
    def __init__(
        self,
        hub: Hub,
        sender: Sender | None = None,
        send_timeout: float = notify.DEFAULT_TIMEOUT,
        batch: int = BATCH,
    ) -> None:
        self.hub = hub
        self.sender: Sender = sender or ChannelSender(hub, send_timeout)
        self.send_timeout = send_timeout
        self.batch = batch

    @property
    def wording(self) -> wording.Context:
        # Read per message: one environment lookup, and a new address needs no restart.
        return wording.Context(self.hub.topology, os.environ.get(wording.CONSOLE_URL_ENV))

    @property
    def interval(self) -> timedelta:
        return self.hub.topology.alerts.aggregate

    # -- one step -----------------------------------------------------------------------------

    def run_once(self, now: datetime | None = None) -> RunResult:
        """Take new events, record what is due, send what is due. Safe to call any time."""
        now = now or self.hub.clock.now()
        result = RunResult()
        while True:
            taken, made = self._take(now)
            result.events += taken
            result.messages += made
            if taken < self.batch:
                break
        self._send_due(now, result)
        return result

    def _take(self, now: datetime) -> tuple[int, int]:
        def read(conn: Connection) -> tuple[tuple[int, str] | None, int, list[Any]]:
            cursor = queries.load_cursor(conn, CURSOR)
            # Without a cursor (the migration makes one), alerting starts from now.
            after = cursor[0] if cursor else queries.last_event_id(conn)
            return cursor, after, queries.events_after(conn, after, self.batch)

        cursor, after, rows = self.hub.store.read_sync(read)
        state = cursor[1] if cursor else "{}"
        events = [_event(r) for r in rows]
        aggregator = Aggregator.load(self.interval, state)
        messages = aggregator.feed(events, now)
        if not events and not messages and cursor is not None:
            return 0, 0
        ids = [
            e.detail["delivery"]
            for m in messages
            for e in m.examples
            if isinstance(e.detail.get("delivery"), int)
        ]
        refs = self.hub.store.read_sync(lambda conn: queries.delivery_refs(conn, ids))
        alert_rows = [row for m in messages for row in self._rows(m, now, refs)]
        last_id = events[-1].id if events else after
        incidents = self.hub.capabilities.get("incidents")

        def write(conn: Connection) -> bool:
            if not queries.save_cursor(conn, CURSOR, cursor[0] if cursor else None, last_id,
                                 aggregator.dump(), now):  # fmt: skip
                return False
            queries.insert_alerts(conn, alert_rows)
            if incidents is not None:
                for m in messages:
                    incidents.record_alert(conn, now, m, refs)
            return True

        if not self.hub.store.write_sync(write):
            log.info("another alerter took these events")
            return 0, 0
        return len(events), len(messages)

    def _rows(
        self, message: Message, now: datetime, refs: dict[int, tuple[str, str]]
    ) -> list[dict[str, Any]]:
        base = {
            "at": now,
            "rule": message.kind if message.rule else "unrouted",
            "kind": message.kind,
            "system": message.system,
            "flow": message.flow,
            "subject": message.subject(),
            "body": message.body(self.interval, refs, self.wording),
            "count": message.count,
            "attempts": 0,
            "next_at": now,
            "sent_at": None,
            "error": None,
        }
        if message.rule is None:
            return [
                {**base, "recipients": "[]", "channel": "none", "target": "",
                 "status": "unrouted", "next_at": None, "error": "no alert rule for this kind"}
            ]  # fmt: skip
        recipients = route(message.examples[0], self.hub.topology) if message.examples else []
        rows = []
        emails = list(dict.fromkeys(r.email for r in recipients if r.email))
        if emails and self.hub.topology.alerts.smtp is None:
            # Trying again cannot help until someone configures mail: say so once.
            rows.append(
                {**base, "recipients": json.dumps(emails), "channel": "email", "target": "",
                 "status": "failed", "next_at": None,
                 "error": "no SMTP settings: add alerts.smtp to the topology"}
            )  # fmt: skip
        elif emails:
            rows.append(
                {**base, "recipients": json.dumps(emails), "channel": "email", "target": "",
                 "status": "pending"}
            )  # fmt: skip
        for url in dict.fromkeys(r.notify for r in recipients if r.notify):
            who = [f"{r.system}/{r.role}" for r in recipients if r.notify == url]
            rows.append(
                {**base, "recipients": json.dumps(who), "channel": "apprise", "target": url,
                 "status": "pending"}
            )  # fmt: skip
        if not rows:
            rule = RULES[message.kind]
            rows.append(
                {**base, "recipients": "[]", "channel": "none", "target": "",
                 "status": "unrouted", "next_at": None,
                 "error": f"no contact with role {'/'.join(rule.roles)} to tell"}
            )  # fmt: skip
        return rows

    def _send_due(self, now: datetime, result: RunResult) -> None:
        rows = self.hub.store.write_sync(
            lambda conn: queries.claim_due(conn, now, now + LEASE, 200)
        )
        if not rows:
            return
        outcomes = self.send_rows(rows)
        finished = []
        for row in rows:
            error = outcomes.get(row.id)
            attempts = row.attempts + 1
            if error is None:
                result.sent += 1
                finished.append(
                    {"id": row.id, "status": "sent", "attempts": attempts, "next_at": None,
                     "sent_at": now, "error": None}
                )  # fmt: skip
            elif attempts > len(RETRY):
                result.failed += 1
                finished.append(
                    {"id": row.id, "status": "failed", "attempts": attempts, "next_at": None,
                     "sent_at": None, "error": error}
                )  # fmt: skip
            else:
                result.retrying += 1
                finished.append(
                    {"id": row.id, "status": "pending", "attempts": attempts,
                     "next_at": now + RETRY[attempts - 1], "sent_at": None, "error": error}
                )  # fmt: skip
        self.hub.store.write_sync(lambda conn: queries.finish(conn, finished))

    def send_rows(self, rows: list[Any]) -> dict[int, str | None]:
        """Send each row in a worker thread; row id -> None when sent, else the error."""
        outcomes: dict[int, str | None] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="alert")
        try:
            futures = {
                pool.submit(
                    self.sender.send,
                    row.channel,
                    row.target,
                    json.loads(row.recipients),
                    row.subject,
                    row.body,
                ): row.id
                for row in rows
            }
            done, late = concurrent.futures.wait(futures, timeout=self.send_timeout * 2 + 5)
            for future in done:
                error = future.exception()
                outcomes[futures[future]] = None if error is None else _error_text(error)
            for future in late:
                outcomes[futures[future]] = "timed out"
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return outcomes

    # -- beside the engine ---------------------------------------------------------------------

    async def loop(self, stop: asyncio.Event) -> None:
        """Run :meth:`run_once` about every second until ``stop`` is set."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.run_once)
            except Exception:
                log.exception("alerter step failed; trying again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)

    # -- reads and checks ----------------------------------------------------------------------

    def history(
        self,
        *,
        status: str | None = None,
        kind: str | None = None,
        flow: str | None = None,
        system: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        limit = max(1, min(limit, 1000))
        rows = self.hub.store.read_sync(
            lambda conn: queries.list_alerts(
                conn, status=status, kind=kind, flow=flow, system=system, since=since, limit=limit
            )
        )
        return [alert_json(r) for r in rows]

    def send_test(self) -> dict[str, str]:
        """Send a test message to every channel of every contact: channel -> "ok" or error."""
        topo = self.hub.topology
        channels: dict[str, tuple[str, str, list[str]]] = {}
        emails = sorted({c.email for s in topo.systems.values() for c in s.contacts if c.email})
        if emails:
            channels["email"] = ("email", "", emails)
        for system in topo.systems.values():
            for contact in system.contacts:
                if contact.notify:
                    channels.setdefault(
                        f"apprise {notify.redact(contact.notify)} ({system.name}/{contact.role})",
                        ("apprise", contact.notify, []),
                    )
        subject = "[interlink] test message"
        body = "A test of Interlink's alert channels (interlink alerts test). No action needed.\n"
        results: dict[str, str] = {}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="alert")
        try:
            futures = {
                name: pool.submit(self.sender.send, channel, target, to, subject, body)
                for name, (channel, target, to) in channels.items()
            }
            for name, future in futures.items():
                try:
                    future.result(timeout=self.send_timeout * 2 + 5)
                    results[name] = "ok"
                except concurrent.futures.TimeoutError:
                    results[name] = "timed out"
                except Exception as exc:
                    results[name] = _error_text(exc)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
        return results


def send_test(hub: Hub) -> dict[str, str]:
    """For readiness checks: channel -> "ok" or the error, after a test message to each."""
    return alerts(hub).send_test()


def alert_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "rule": row.rule,
        "kind": row.kind,
        "system": row.system,
        "flow": row.flow,
        "recipients": json.loads(row.recipients),
        "channel": row.channel,
        "target": notify.redact(row.target) if row.target else "",
        "subject": row.subject,
        "body": row.body,
        "count": row.count,
        "status": row.status,
        "attempts": row.attempts,
        "next_at": row.next_at.isoformat() if row.next_at else None,
        "sent_at": row.sent_at.isoformat() if row.sent_at else None,
        "error": row.error,
    }


def _event(row: Any) -> Event:
    try:
        detail = json.loads(row.detail)
    except ValueError:
        detail = {"text": str(row.detail)}
    return Event(
        int(row.id),
        row.at,
        str(row.kind),
        row.system,
        row.flow,
        detail if isinstance(detail, dict) else {"value": detail},
    )


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, notify.SendError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"[:500]


NAME = "alerts"


def install(hub: Hub) -> None:
    alerter = Alerter(hub)
    hub.capabilities[NAME] = alerter
    hub.hooks.background.append(alerter.loop)


def alerts(hub: Hub) -> Alerter:
    alerter: Alerter = hub.capabilities[NAME]
    return alerter
