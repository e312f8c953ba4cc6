"""Alert rules, routing by role and aggregation: pure functions over plain data.

:data:`RULES` is the one table of what each event kind means for people: who is told (roles of
which systems), whether repeats are folded into summaries, whether it opens an incident, and
the command that acts on it. :func:`route` turns an event into recipients from the topology's
contacts; :class:`Aggregator` decides which messages go out now and which are folded into a
summary sent when the aggregation interval ends. Nothing here does I/O or reads a clock: the
alerter (:mod:`interlink.features.alerts.service`) passes ``now``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from interlink.config import Topology
from interlink.features.alerts import wording

ALL_ROLES = ("product", "dev", "ops", "business")
EXAMPLES = 5


@dataclass(frozen=True)
class Rule:
    """What an event kind means for people.

    ``scope`` names whose contacts are told:

    - ``ends``: both ends; of the event's flow if it has one, else the event's system and the
      upstream systems of every flow into it;
    - ``upstream``: the flow's source; ``downstream``: the flow's target (the event's system);
    - ``neighbours``: the event's system and every upstream system with a flow into it;
    - ``affected``: the systems listed in ``detail["systems"]``.
    """

    title: str
    scope: str
    roles: tuple[str, ...]
    fold: bool = True
    incident: bool = False
    severity: str = "medium"
    category: str = ""
    action: str = ""  # a command to act, with {flow} and {system} filled in


_MAINTENANCE = {
    "maintenance_announced": "maintenance announced",
    "maintenance_reminder": "maintenance reminder",
    "maintenance_started": "maintenance started",
    "maintenance_ended": "maintenance ended",
    "maintenance_drained": "maintenance backlog drained",
    "maintenance_cancelled": "maintenance cancelled",
}

RULES: dict[str, Rule] = {
    "circuit_opened": Rule(
        "downstream down", "ends", ("dev", "ops"), incident=True, severity="high",
        category="downstream_down", action="interlink status",
    ),
    "circuit_closed": Rule("downstream back", "ends", ("dev", "ops")),
    "flow_throttled": Rule(
        "flow throttled", "ends", ("dev", "ops"), incident=True, severity="low",
        category="throttled", action="interlink status",
    ),
    "delivery_rejected": Rule(
        "delivery rejected", "upstream", ("product", "dev"), incident=True, severity="medium",
        category="rejected", action="interlink repush --flow {flow} --reason rejected --dry-run",
    ),
    "document_unmapped": Rule(
        "document matches no scenario", "upstream", ("product", "dev"), incident=True,
        severity="medium", category="unmapped_scenario",
        action="interlink deliveries --flow {flow} --status held --reason unmapped_scenario",
    ),
    "flow_held_auth": Rule(
        "flow held: unauthorized", "downstream", ("ops",), incident=True, severity="high",
        category="auth", action="interlink flows resume {flow}",
    ),
    "deadline_at_risk": Rule(
        "deadline at risk", "ends", ALL_ROLES, incident=True, severity="high",
        category="deadline", action="interlink deliveries --flow {flow} --status held",
    ),
    "deadline_missed": Rule(
        "deadline missed", "ends", ALL_ROLES, incident=True, severity="critical",
        category="deadline", action="interlink deliveries --flow {flow} --status held",
    ),
    "delivery_gave_up": Rule(
        "delivery gave up", "ends", ("dev", "ops"), incident=True, severity="high",
        category="gave_up", action="interlink repush --flow {flow} --reason gave_up --dry-run",
    ),
    # A request we could not build or sign (a key that cannot be a header, a secret that
    # cannot sign): the upstream's data or the downstream's secret, so both ends' dev and ops.
    "delivery_local_error": Rule(
        "delivery could not be built", "ends", ("dev", "ops"), incident=True, severity="high",
        category="local_error",
        action="interlink deliveries --flow {flow} --status dead --reason local_error",
    ),
    **{
        kind: Rule(title, "neighbours", ALL_ROLES, fold=False, severity="low",
                   category="maintenance")
        for kind, title in _MAINTENANCE.items()
    },
    "contract_published": Rule(
        "contract published", "affected", ALL_ROLES, severity="low", category="contract"
    ),
    # File exchange (docs/transports.md): a batch file the downstream's server did not take,
    # a result file missing by its deadline, result lines that match no line sent.
    "file_send_failed": Rule(
        "batch file not sent", "ends", ("dev", "ops"), incident=True, severity="high",
        category="file_send_failed", action="interlink files list --flow {flow}",
    ),
    "file_result_missing": Rule(
        "result file missing", "ends", ("dev", "ops", "business"), incident=True,
        severity="high", category="file_result_missing",
        action="interlink files fetch-results {flow}",
    ),
    "file_result_problems": Rule(
        "result lines unmatched", "downstream", ("dev", "ops"), severity="medium",
        category="file_result_problems", action="interlink files list",
    ),
    # Sources (docs/sources.md): Interlink pulls from the system named in detail["systems"].
    "source_behind": Rule(
        "source behind", "affected", ("dev", "ops"), incident=True, severity="medium",
        category="source_behind", action="interlink sources",
    ),
    "source_unreachable": Rule(
        "source unreachable", "affected", ("dev", "ops"), incident=True, severity="high",
        category="source_unreachable", action="interlink sources",
    ),
    "source_rows_refused": Rule(
        "source rows refused", "affected", ("product", "dev"), severity="medium",
        category="rejected", action="interlink sources problems",
    ),
}  # fmt: skip

# The incident a kind adds a timeline entry to instead of opening one: (its kind, the text).
JOINS: dict[str, tuple[str, str]] = {"circuit_closed": ("circuit_opened", "downstream back")}


@dataclass(frozen=True)
class Event:
    id: int
    at: datetime
    kind: str
    system: str | None
    flow: str | None
    detail: dict[str, Any]


@dataclass(frozen=True)
class Recipient:
    system: str
    role: str
    name: str | None
    email: str | None
    notify: str | None


def _systems(event: Event, scope: str, topology: Topology) -> list[str]:
    flow = topology.flows.get(event.flow) if event.flow else None
    if scope == "upstream":
        return [flow.source] if flow else []
    if scope == "downstream":
        return [flow.target] if flow else ([event.system] if event.system else [])
    if scope == "ends" and flow is not None:
        return [flow.target, flow.source]
    if scope in ("ends", "neighbours"):
        if not event.system:
            return []
        return [event.system, *(f.source for f in topology.flows_to(event.system))]
    if scope == "affected":
        listed = event.detail.get("systems") or []
        return [s for s in listed if isinstance(s, str)]
    return []


def route(event: Event, topology: Topology) -> list[Recipient]:
    """The contacts told of ``event``, without duplicates, in a stable order."""
    rule = RULES.get(event.kind)
    if rule is None:
        return []
    seen: set[tuple[str | None, str | None]] = set()
    found: list[Recipient] = []
    for name in dict.fromkeys(_systems(event, rule.scope, topology)):
        system = topology.systems.get(name)
        if system is None:
            continue
        for contact in system.contacts_with(*rule.roles):
            ident = (contact.email, contact.notify)
            if ident in seen or ident == (None, None):
                continue
            seen.add(ident)
            found.append(Recipient(name, contact.role, contact.name, contact.email, contact.notify))
    return found


def scope_key(event: Event) -> str:
    """What a problem is about: its flow, else its system."""
    return event.flow or event.system or ""


def action(event: Event) -> str:
    rule = RULES.get(event.kind)
    if rule is None or not rule.action:
        return ""
    return rule.action.format(flow=event.flow or "", system=event.system or "")


@dataclass
class Message:
    """One alert message: the first event of a problem, or a summary of those folded."""

    kind: str
    system: str | None
    flow: str | None
    count: int
    examples: list[Event]
    summary: bool = False
    first_at: datetime | None = None

    @property
    def rule(self) -> Rule | None:
        return RULES.get(self.kind)

    def subject(self) -> str:
        rule = self.rule
        title = rule.title if rule else self.kind
        where = self.flow or self.system or "hub"
        if self.summary:
            return f"[interlink] {title}: {where} ({self.count} more)"
        return f"[interlink] {title}: {where}"

    def body(
        self,
        interval: timedelta | None = None,
        refs: Refs | None = None,
        context: wording.Context | None = None,
    ) -> str:
        """The text people read: see :mod:`interlink.features.alerts.wording`."""
        return wording.body(self, interval, refs, context)


Refs = Mapping[int, tuple[str, str]]
"""Delivery id -> (business key, document id), to name the documents in examples."""


def describe(event: Event, refs: Refs | None = None) -> str:
    """One event in words: the message a writer gave, else its detail as key=value; a
    delivery is named by its business key and document id when ``refs`` knows it."""
    detail = dict(event.detail)
    for name in ("message", "text", "summary"):
        if isinstance(detail.get(name), str):
            return str(detail[name])
    parts = []
    delivery = detail.get("delivery")
    if refs and isinstance(delivery, int) and delivery in refs:
        business_key, document = refs[delivery]
        parts.append(f"delivery={delivery} key={business_key} document={document}")
        del detail["delivery"]
    for name, value in detail.items():
        parts.append(f"{name}={_text(value)}")
    return "; ".join(parts) or event.kind


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


@dataclass
class Bucket:
    """The problem of one (kind, flow or system) within its current interval."""

    until: datetime
    count: int = 0
    examples: list[Event] = field(default_factory=list)
    system: str | None = None
    flow: str | None = None


class Aggregator:
    """At most one message per (kind, flow or system) per interval after the first.

    The first event of a problem goes out at once and opens an interval; later ones within it
    are counted, and at its end one summary carries the count and the first examples, opening
    the next interval. An interval that ends with nothing folded closes the problem: the next
    event goes out at once again. Kinds whose rule says ``fold=False`` always go out alone.
    """

    def __init__(self, interval: timedelta, buckets: dict[str, Bucket] | None = None) -> None:
        self.interval = interval
        self.buckets: dict[str, Bucket] = buckets or {}

    @staticmethod
    def key(event: Event) -> str:
        return f"{event.kind}|{scope_key(event)}"

    def offer(self, event: Event, now: datetime) -> Message | None:
        """The message to send now for ``event``, or None when it is folded."""
        rule = RULES.get(event.kind)
        if rule is not None and not rule.fold:
            return Message(event.kind, event.system, event.flow, 1, [event], first_at=event.at)
        key = self.key(event)
        bucket = self.buckets.get(key)
        if bucket is not None and now >= bucket.until and bucket.count == 0:
            bucket = None  # the problem went quiet for a whole interval: it starts anew
        if bucket is not None:
            # Within the interval, or past it with a summary still owed (due() sends it).
            bucket.count += 1
            if len(bucket.examples) < EXAMPLES:
                bucket.examples.append(event)
            return None
        self.buckets[key] = Bucket(now + self.interval, system=event.system, flow=event.flow)
        return Message(event.kind, event.system, event.flow, 1, [event], first_at=event.at)

    def due(self, now: datetime) -> list[Message]:
        """Summaries of the intervals that ended by ``now``."""
        out: list[Message] = []
        for key, bucket in list(self.buckets.items()):
            if now < bucket.until:
                continue
            if bucket.count == 0:
                del self.buckets[key]
                continue
            kind = key.split("|", 1)[0]
            out.append(
                Message(
                    kind,
                    bucket.system,
                    bucket.flow,
                    bucket.count,
                    bucket.examples,
                    summary=True,
                    first_at=bucket.examples[0].at if bucket.examples else None,
                )
            )
            self.buckets[key] = Bucket(now + self.interval, system=bucket.system, flow=bucket.flow)
        return out

    def feed(self, events: list[Event], now: datetime) -> list[Message]:
        """Every message due at ``now`` after ``events``: summaries that ended, then firsts."""
        messages = self.due(now)
        for event in events:
            message = self.offer(event, now)
            if message is not None:
                messages.append(message)
        return messages

    # -- persistence (plain JSON, saved with the alerter's cursor) ------------------------------

    def dump(self) -> str:
        return json.dumps(
            {
                key: {
                    "until": b.until.isoformat(),
                    "count": b.count,
                    "system": b.system,
                    "flow": b.flow,
                    "examples": [_event_json(e) for e in b.examples],
                }
                for key, b in self.buckets.items()
            }
        )

    @classmethod
    def load(cls, interval: timedelta, text: str | None) -> Aggregator:
        buckets: dict[str, Bucket] = {}
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            data = {}
        for key, b in data.items() if isinstance(data, dict) else []:
            try:
                buckets[key] = Bucket(
                    datetime.fromisoformat(b["until"]),
                    int(b["count"]),
                    [_event_from(e) for e in b.get("examples", [])],
                    b.get("system"),
                    b.get("flow"),
                )
            except (KeyError, TypeError, ValueError):
                continue  # a bucket we cannot read only costs a repeated first message
        return cls(interval, buckets)


def _event_json(e: Event) -> dict[str, Any]:
    return {
        "id": e.id,
        "at": e.at.isoformat(),
        "kind": e.kind,
        "system": e.system,
        "flow": e.flow,
        "detail": e.detail,
    }


def _event_from(d: dict[str, Any]) -> Event:
    return Event(
        int(d["id"]),
        datetime.fromisoformat(d["at"]),
        str(d["kind"]),
        d.get("system"),
        d.get("flow"),
        dict(d.get("detail") or {}),
    )


def incident_key(kind: str, system: str | None, flow: str | None) -> str:
    """The key an alert-opened incident is found by: (rule, system, flow)."""
    return f"{kind}|{system or ''}|{flow or ''}"
