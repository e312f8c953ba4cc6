"""Intake: identity, revisions, contract check, scenario and fan-out, in one transaction.

A submission is prepared (shape, size, key, contract, scenario: pure checks that raise an
:class:`~interlink.errors.InputError`) and then written with its deliveries to every flow in one
job of the store's writer, so a batch of requests shares one commit. In a batch each item is
accepted or refused on its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from interlink import tracing
from interlink.clock import Clock
from interlink.config import Flow, System, Topology
from interlink.engine.applier import load_holds
from interlink.errors import Conflict, Forbidden, InterlinkError, Invalid, TooLarge
from interlink.hooks import FlowRoute, Hooks, Route
from interlink.ids import new_id
from interlink.metrics import DOCUMENTS
from interlink.model import HoldReason, Status
from interlink.scenarios import Ambiguous, classify, distinguishing
from interlink.store.db import Store
from interlink.store.queries import deliveries, documents, events
from interlink.transports.signing import MAX_HEADER_VALUE_BYTES, header_value_problem
from interlink.validation import ContractValidator

# An Idempotency-Key is a header: printable ASCII (the IETF draft makes it a Structured Field
# string), at most the 256 bytes any header-bound value may take.
MAX_IDEMPOTENCY_KEY = MAX_HEADER_VALUE_BYTES
_IDEMPOTENCY_KEY = re.compile(rf"[\x20-\x7e]{{1,{MAX_IDEMPOTENCY_KEY}}}")
# The store's key column (documents.key, deliveries.key) holds 200 characters.
MAX_KEY_CHARACTERS = 200


def key_problem(key: str) -> str | None:
    """Why a business key cannot be accepted, or None: it goes out as ``Interlink-Key``, so
    it must be able to travel in a header, and fit the store's column."""
    problem = header_value_problem(key)
    if problem is None and len(key) > MAX_KEY_CHARACTERS:
        problem = f"is {len(key)} characters; a business key may take at most {MAX_KEY_CHARACTERS}"
    return problem


@dataclass(slots=True)
class Item:
    """One submitted document, as it came off the wire."""

    type: Any
    payload: Any
    idempotency_key: str | None = None


@dataclass(slots=True)
class Prepared:
    source: str
    type: str
    key: str
    payload_text: str
    payload_hash: str
    identity: str
    scenario: str | None
    deadline: datetime | None
    amount: str | None
    flows: list[Flow]
    # The W3C context stored with the document, its deliveries' parent (interlink.tracing).
    traceparent: str | None = None


Result = dict[str, Any] | InterlinkError


def canonical(payload: Any) -> bytes:
    """The payload's canonical JSON: sorted keys, no spaces. Hashed for identity, and sent."""
    try:
        return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits
        return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


class Intake:
    def __init__(
        self, topology: Topology, store: Store, clock: Clock, hooks: Hooks | None = None
    ) -> None:
        self.topology = topology
        self.hooks = hooks or Hooks()
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._waiting: list[tuple[list[Prepared | InterlinkError], Future[list[Result]]]] = []
        self._scheduled = False
        # OpenTelemetry's tracer when an SDK is configured: a span per document (tests set theirs).
        self.tracer = tracing.tracer()
        self.validators = {
            name: ContractValidator(doc.contract_schema, f"contract of {name}")
            for name, doc in topology.documents.items()
            if doc.contract_schema is not None
        }

    def set_contract(
        self, type_: str, schema: dict[str, Any], validator: ContractValidator | None = None
    ) -> None:
        """Validate ``type_`` documents against ``schema`` from now on (a published version);
        ``validator`` is its compiled validator when the caller has one already."""
        self.validators[type_] = validator or ContractValidator(schema, f"contract of {type_}")

    # -- checks that need no database ---------------------------------------------------

    def prepare(self, source: System, item: Item) -> Prepared:
        topology = self.topology
        if not isinstance(item.type, str) or not item.type:
            raise Invalid(
                "each document needs a 'type' string",
                [{"path": "$.type", "message": "missing or not a string"}],
            )
        doc = topology.documents.get(item.type)
        if doc is None:
            known = ", ".join(sorted(topology.documents)) or "none"
            raise Invalid(
                f"unknown document type {item.type!r} (known: {known})",
                [{"path": "$.type", "message": f"unknown document type {item.type!r}"}],
            )
        flows = [f for f in topology.flows_for(item.type) if f.source == source.name]
        if not flows:
            raise Forbidden(
                f"system {source.name!r} has no flow that sends {item.type!r} documents"
            )
        payload = item.payload
        if not isinstance(payload, dict):
            raise Invalid(
                "'payload' must be a JSON object",
                [{"path": "$.payload", "message": "missing or not an object"}],
            )
        text = canonical(payload)
        limit = doc.max_bytes or topology.engine.max_document_bytes
        if len(text) > limit:
            raise TooLarge(f"document is {len(text)} bytes; the limit is {limit} bytes")
        problems: list[dict[str, str]] = []
        key = payload.get(doc.key)
        if key is None or isinstance(key, (dict, list, bool)) or str(key) == "":
            problems.append(
                {
                    "path": f"$.{doc.key}",
                    "message": f"business key {doc.key!r} missing or not a string or number",
                }
            )
        else:
            problem = key_problem(str(key))
            if problem is not None:
                problems.append(
                    {"path": f"$.{doc.key}", "message": f"business key {doc.key!r} {problem}"}
                )
        validator = self.validators.get(item.type)
        if validator is not None:
            problems.extend(validator.problems(payload))
        deadline = amount = None
        if doc.deadline and payload.get(doc.deadline) is not None:
            try:
                deadline = self._parse_time(payload[doc.deadline])
            except ValueError as exc:
                problems.append({"path": f"$.{doc.deadline}", "message": str(exc)})
        if doc.amount and payload.get(doc.amount) is not None:
            try:
                amount = str(Decimal(str(payload[doc.amount])))
            except InvalidOperation:
                problems.append(
                    {"path": f"$.{doc.amount}", "message": "amount is not a decimal number"}
                )
        scenario = None
        if doc.scenarios:
            try:
                scenario = classify(doc.scenarios, payload)
            except Ambiguous as exc:
                problems.append({"path": "$", "message": f"scenario catalogue error: {exc}"})
        if problems:
            seen: set[tuple[str, str]] = set()
            unique = []
            for p in problems:
                if (p["path"], p["message"]) not in seen:
                    seen.add((p["path"], p["message"]))
                    unique.append(p)
            raise Invalid(f"{item.type} document violates its contract", unique)
        digest = hashlib.sha256(text).hexdigest()
        if item.idempotency_key is not None:
            if not _IDEMPOTENCY_KEY.fullmatch(item.idempotency_key):
                raise Invalid(
                    f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} printable ASCII "
                    "characters",
                    [
                        {
                            "path": "Idempotency-Key",
                            "message": "empty, too long, or not printable ASCII",
                        }
                    ],
                )
            identity = "key:" + item.idempotency_key
        else:
            identity = "sha256:" + digest
        return Prepared(
            source=source.name,
            type=item.type,
            key=str(key),
            payload_text=text.decode(),
            payload_hash=digest,
            identity=identity,
            scenario=scenario,
            deadline=deadline,
            amount=amount,
            flows=flows,
        )

    def _parse_time(self, value: Any) -> datetime:
        if not isinstance(value, str):
            raise ValueError("deadline must be an ISO 8601 date-time string")
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"deadline {value!r} is not an ISO 8601 date-time") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=self.topology.tz)
        return when

    # -- submission ----------------------------------------------------------------------

    def _prepare_all(
        self, source: System, items: Sequence[Item], traceparent: str | None = None
    ) -> tuple[list[Prepared | InterlinkError], list[Any]]:
        """Each item prepared or refused, and the items' intake spans (none without a
        tracer); ``traceparent`` is the upstream's, already validated (tracing.upstream)."""
        out: list[Prepared | InterlinkError] = []
        spans: list[Any] = []
        for item in items:
            span, context = tracing.intake(self.tracer, item.type, source.name, traceparent)
            if span is not None:
                spans.append(span)
            try:
                prepared = self.prepare(source, item)
            except InterlinkError as exc:
                out.append(exc)
            else:
                prepared.traceparent = context
                out.append(prepared)
        return out, spans

    async def submit(
        self, source: System, items: Sequence[Item], traceparent: str | None = None
    ) -> list[Result]:
        """Accept what can be accepted; one result (dict or error) per item, in order.
        ``traceparent``: the upstream's valid W3C context (tracing.upstream), for every item.

        Submissions that arrive while the writer is busy are written together, in one job
        with one set of queries: many small requests cost about what one batch does.
        """
        prepared, spans = self._prepare_all(source, items, traceparent)
        try:
            results = await self._submit(source, prepared)
        except BaseException as exc:
            tracing.intake_done(spans, [exc] * len(spans))
            raise
        tracing.intake_done(spans, results)
        return results

    async def _submit(
        self, source: System, prepared: list[Prepared | InterlinkError]
    ) -> list[Result]:
        if not any(isinstance(p, Prepared) for p in prepared):
            return self._count(source, list(prepared))
        future: Future[list[Result]] = Future()
        with self._lock:
            self._waiting.append((prepared, future))
            schedule = not self._scheduled
            self._scheduled = True
        if schedule:
            taken: list[tuple[list[Any], Future[list[Result]]]] = []
            job = self.store.submit(lambda conn: self._write_waiting(conn, taken))
            job.add_done_callback(lambda done: self._hand_out(done, taken))
        return self._count(source, await asyncio.wrap_future(future))

    def _write_waiting(
        self, conn: Connection, taken: list[tuple[list[Any], Future[list[Result]]]]
    ) -> list[list[Result]]:
        """Runs in the writer: takes every submission waiting now and writes them as one."""
        with self._lock:
            taken.extend(self._waiting)
            self._waiting = []
            self._scheduled = False
        flat = [p for prepared, _ in taken for p in prepared]
        results = self.write_retrying(conn, flat, self.clock.now())
        out, start = [], 0
        for prepared, _ in taken:
            out.append(results[start : start + len(prepared)])
            start += len(prepared)
        return out

    def _hand_out(
        self,
        done: Future[list[list[Result]]],
        taken: list[tuple[list[Any], Future[list[Result]]]],
    ) -> None:
        """After the commit, each submission gets its own results, or the failure."""
        error = done.exception()
        if error is None:
            for results, (_, future) in zip(done.result(), taken, strict=True):
                future.set_result(results)
            return
        if not taken:  # the job never ran: fail what was waiting for it
            with self._lock:
                taken.extend(self._waiting)
                self._waiting = []
                self._scheduled = False
        for _, future in taken:
            future.set_exception(error)

    def submit_sync(
        self, source: System, items: Sequence[Item], traceparent: str | None = None
    ) -> list[Result]:
        prepared, spans = self._prepare_all(source, items, traceparent)
        now = self.clock.now()
        try:
            results = self.store.write_sync(lambda conn: self.write_retrying(conn, prepared, now))
        except BaseException as exc:
            tracing.intake_done(spans, [exc] * len(spans))
            raise
        tracing.intake_done(spans, results)
        return self._count(source, results)

    def write_retrying(
        self, conn: Connection, batch: Sequence[Prepared | InterlinkError], now: datetime
    ) -> list[Result]:
        """``write``, again when another process took the same identity or revision first.

        With several API processes on PostgreSQL two of them may give one key the same next
        revision; the unique index refuses the second, which then sees the first's commit
        and numbers after it. Idle workers in other processes are woken at commit.
        """
        for attempt in range(1, 4):
            savepoint = conn.begin_nested()
            try:
                results = self.write(conn, batch, now)
            except IntegrityError:
                savepoint.rollback()
                if attempt == 3:
                    raise
                continue
            savepoint.commit()
            events.notify_work(conn)
            return results
        raise AssertionError("unreachable")

    def _count(self, source: System, results: list[Any]) -> list[Result]:
        for r in results:
            if isinstance(r, dict):
                label = "duplicate" if r.get("duplicate") else "accepted"
                DOCUMENTS.labels(r["type"], source.name, label).inc()
            else:
                DOCUMENTS.labels("", source.name, r.code).inc()
        return results

    def write(
        self,
        conn: Connection,
        batch: Sequence[Prepared | InterlinkError],
        now: datetime,
    ) -> list[Result]:
        """Store the prepared documents and their deliveries; runs inside the writer."""
        results: list[Any] = list(batch)
        todo = [(i, p) for i, p in enumerate(batch) if isinstance(p, Prepared)]
        # Identity, revisions and idempotency keys belong to the submitting system: every
        # lookup below is by (type, source), so one source never swallows or revises another's.
        by_group: dict[tuple[str, str], list[Prepared]] = defaultdict(list)
        for _, p in todo:
            by_group[(p.type, p.source)].append(p)
        existing: dict[tuple[str, str, str], Any] = {}
        # (type, source, key) → (revision, id, payload_hash) of its newest revision
        latest: dict[tuple[str, str, str], tuple[int, str, str]] = {}
        for (type_, source), items in by_group.items():
            found = documents.documents_by_identity(
                conn, type_, source, [p.identity for p in items]
            )
            existing.update({(type_, source, ident): row for ident, row in found.items()})
            rows = documents.latest_revisions(conn, type_, source, [p.key for p in items])
            for key, row in rows.items():
                latest[(type_, source, key)] = (row.revision, row.id, row.payload_hash)
        # Ordering barrier for keys that already have revisions stored. A flow has one source,
        # so the keys waiting on it are that source's alone.
        waiting: dict[str, set[str]] = defaultdict(set)
        keys_by_flow: dict[str, set[str]] = defaultdict(set)
        for _, p in todo:
            if (p.type, p.source, p.key) in latest:
                for flow in p.flows:
                    if flow.ordered:
                        keys_by_flow[flow.name].add(p.key)
        for flow_name, keys in keys_by_flow.items():
            waiting[flow_name] = deliveries.keys_with_undelivered(conn, flow_name, sorted(keys))
        holds = load_holds(conn, now, self.hooks.hold_sources)
        # flow → where a new document goes on it (rollout stages), read once per write.
        routes: dict[str, FlowRoute] = {}
        for route_source in self.hooks.routes:
            routes.update(route_source(conn, now))
        skipped: dict[str, list[dict[str, Any]]] = defaultdict(list)

        doc_rows: list[dict[str, Any]] = []
        delivery_rows: list[dict[str, Any]] = []
        duplicates: dict[int, str] = {}
        # identity → (id, hash) of the documents this batch adds
        fresh: dict[tuple[str, str, str], tuple[str, str]] = {}
        for i, p in todo:
            ident = (p.type, p.source, p.identity)
            prior = existing.get(ident)
            prior_id, prior_hash = (
                (prior.id, prior.payload_hash) if prior else fresh.get(ident, (None, None))
            )
            if prior_id is not None:
                if prior_hash != p.payload_hash:
                    results[i] = Conflict(
                        "this Idempotency-Key was used for a different payload",
                        document_id=prior_id,
                    )
                else:
                    duplicates[i] = prior_id
                continue
            slot = (p.type, p.source, p.key)
            last_revision, last_id, last_hash = latest.get(slot, (0, "", ""))
            if last_hash == p.payload_hash:
                # The newest revision again, under another Idempotency-Key: the same document
                # (a payment resent is never paid twice), not a new revision.
                duplicates[i] = last_id
                continue
            revision = last_revision + 1
            doc_id = new_id(now)
            latest[slot] = (revision, doc_id, p.payload_hash)
            fresh[ident] = (doc_id, p.payload_hash)
            doc_rows.append(
                {
                    "id": doc_id,
                    "type": p.type,
                    "key": p.key,
                    "revision": revision,
                    "identity": p.identity,
                    "payload_hash": p.payload_hash,
                    "payload": p.payload_text,
                    "source": p.source,
                    "scenario": p.scenario,
                    "deadline": p.deadline,
                    "amount": p.amount,
                    "received_at": now,
                    "traceparent": p.traceparent,
                }
            )
            outs = []
            unmapped: list[str] = []
            payload: Any = None
            for flow in p.flows:
                route = Route.DELIVER
                decide = routes.get(flow.name)
                if decide is not None:
                    if payload is None:
                        payload = orjson.loads(p.payload_text)
                    route = decide(p.key, payload)
                if route is Route.SKIP:
                    skipped[flow.name].append({"id": doc_id, "key": p.key, "revision": revision})
                if route in (Route.SKIP, Route.ROUTED):
                    continue
                blocked = flow.ordered and p.key in waiting[flow.name]
                status: Status
                reason: HoldReason | None
                if route is Route.HOLD:
                    # Outside the pilot, before any order or other hold: only the stage's
                    # change lets it go (and then in order, behind its key's earlier revisions).
                    status, reason = Status.HELD, HoldReason.ROLLOUT
                    if flow.require_scenario and p.scenario is None:
                        unmapped.append(flow.name)
                elif flow.require_scenario and p.scenario is None:
                    # Held for a person's decision, before any order or other hold.
                    status, reason = Status.HELD, HoldReason.UNMAPPED_SCENARIO
                    unmapped.append(flow.name)
                else:
                    status, reason = holds.place(flow.name, flow.target, blocked)
                if flow.ordered:
                    waiting[flow.name].add(p.key)
                delivery_rows.append(
                    {
                        "document_id": doc_id,
                        "flow": flow.name,
                        "system": flow.target,
                        "key": p.key,
                        "revision": revision,
                        "status": status,
                        "reason": reason,
                        "attempts": 0,
                        "failures": 0,
                        "next_at": now,
                        "deadline": p.deadline,
                        "probe": False,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                outs.append({"flow": flow.name, "status": str(status), "reason": reason})
            if unmapped:
                # For the alerter: the upstream's product and dev people decide.
                scenarios = self.topology.documents[p.type].scenarios
                events.add_event(
                    conn,
                    now,
                    "document_unmapped",
                    {
                        "document": doc_id,
                        "key": p.key,
                        "type": p.type,
                        "flows": unmapped,
                        "fields": distinguishing(scenarios, orjson.loads(p.payload_text)),
                    },
                    system=p.source,
                    flow=unmapped[0],
                )
            results[i] = {
                "id": doc_id,
                "type": p.type,
                "key": p.key,
                "revision": revision,
                "scenario": p.scenario,
                "deliveries": outs,
                "duplicate": False,
            }
        documents.insert_documents(conn, doc_rows)
        deliveries.insert_deliveries(conn, delivery_rows)
        for flow_name, docs in skipped.items():
            flow = self.topology.flows[flow_name]
            events.add_event(
                conn,
                now,
                "deliveries_skipped",
                {"reason": "rollout", "count": len(docs), "documents": docs},
                system=flow.target,
                flow=flow_name,
            )
        if duplicates:
            results = self._duplicates(conn, results, duplicates)
        return results

    def _duplicates(
        self, conn: Connection, results: list[Any], duplicates: dict[int, str]
    ) -> list[Any]:
        ids = sorted(set(duplicates.values()))
        docs = {doc_id: documents.get_document(conn, doc_id) for doc_id in ids}
        by_doc: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for d in deliveries.deliveries_of(conn, ids):
            by_doc[d.document_id].append({"flow": d.flow, "status": d.status, "reason": d.reason})
        for i, doc_id in duplicates.items():
            doc = docs[doc_id]
            assert doc is not None
            results[i] = {
                "id": doc.id,
                "type": doc.type,
                "key": doc.key,
                "revision": doc.revision,
                "scenario": doc.scenario,
                "deliveries": by_doc[doc_id],
                "duplicate": True,
            }
        return results


__all__ = ["Intake", "Item", "Prepared", "Result", "Status", "canonical"]
