"""What an alert message says to people: a short text per kind, for business contacts as much
as for developers.

A message reads top down: what happened, where (flow, systems), how many documents and by
when, what to do (with the command), the console page when ``INTERLINK_CONSOLE_URL`` is set,
then the first documents concerned. The event's raw fields stay in the events table and the
alerts API; the body ends with one ``ref:`` line naming the kind and event ids, so a chat bot
or a developer can find them. Pure functions over plain data: no clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from interlink import times
from interlink.config import Topology

if TYPE_CHECKING:
    from interlink.features.alerts.rules import Event, Message, Refs

CONSOLE_URL_ENV = "INTERLINK_CONSOLE_URL"
SHOWN = 5  # documents listed in one message


@dataclass(frozen=True)
class Context:
    """What a message may name besides its events: the topology (zone, titles, the ends of a
    flow) and the console's address."""

    topology: Topology | None = None
    console_url: str | None = None

    @property
    def tz(self) -> tzinfo:
        return self.topology.tz if self.topology is not None else UTC

    def when(self, at: datetime | str | None) -> str:
        if at is None or at == "":
            return "-"
        moment = datetime.fromisoformat(at) if isinstance(at, str) else at
        return times.local_text(moment, self.tz)

    def title(self, system: str | None) -> str:
        """``Treasury (treasury)`` when the topology gives a title, else the name."""
        if not system:
            return "the hub"
        found = self.topology.systems.get(system) if self.topology is not None else None
        title = getattr(found, "title", None)
        return f"{title} ({system})" if title and title != system else system

    def ends(self, flow: str | None) -> str:
        found = self.topology.flows.get(flow) if (self.topology is not None and flow) else None
        return f" ({found.source} → {found.target})" if found is not None else ""

    def source_of(self, flow: str | None) -> str | None:
        found = self.topology.flows.get(flow) if (self.topology is not None and flow) else None
        return found.source if found is not None else None

    def link(self, message: Message) -> str | None:
        if not self.console_url:
            return None
        base = self.console_url.rstrip("/")
        if message.flow:
            return f"{base}/flows/{message.flow}"
        if message.kind.startswith("maintenance_"):
            return f"{base}/maintenance"
        return f"{base}/systems" if message.system else base + "/"


def _n(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def _delivery_line(event: Event, refs: Refs | None, ctx: Context) -> str:
    """One delivery named for people: its business key first, then the numbers."""
    detail = event.detail
    delivery = detail.get("delivery")
    name = f"delivery {delivery}" if delivery is not None else "a delivery"
    if refs and isinstance(delivery, int) and delivery in refs:
        key, document = refs[delivery]
        name = f"key {key} (delivery {delivery}, document {document})"
    why = detail.get("detail") or detail.get("message") or ""
    return f"{ctx.when(event.at)}  {name}" + (f": {why}" if why else "")


# -- one function per kind: (headline, documents, to do) --------------------------------------

Parts = tuple[str, list[str], str]


def _circuit_opened(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    e = m.examples[0] if m.examples else None
    why = f" (last answer: {e.detail.get('detail')})" if e and e.detail.get("detail") else ""
    return (
        f"{ctx.title(m.system)} is not answering{why}. Interlink stopped sending to it; "
        "its deliveries are held, not lost, and go out by themselves once it answers again.",
        [],
        f"{m.system}'s developers and operations: bring the service back. Nothing needs "
        "re-pushing.",
    )


def _circuit_closed(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    return (
        f"{ctx.title(m.system)} answers again. The deliveries held while it was down are "
        "going out now.",
        [],
        "Nothing to do.",
    )


def _rejected(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    target = ctx.title(m.system)
    source = ctx.source_of(m.flow) or "the sending system"
    return (
        f"{target} refused {_n(m.count, 'document')} on flow {m.flow}{ctx.ends(m.flow)} as "
        "invalid. They are not retried.",
        [_delivery_line(e, refs, ctx) for e in m.examples[:SHOWN]],
        f"{source}'s product and development people: read the reason, correct the data (or "
        f"agree the rule with {m.system}), then send them again.",
    )


def _gave_up(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    flow = ctx.topology.flows.get(m.flow or "") if ctx.topology is not None else None
    span = f" for {times.duration(flow.give_up_after)}" if flow is not None else ""
    return (
        f"Interlink stopped retrying {_n(m.count, 'delivery', 'deliveries')} to "
        f"{ctx.title(m.system)} on flow {m.flow}{ctx.ends(m.flow)} after trying{span}.",
        [_delivery_line(e, refs, ctx) for e in m.examples[:SHOWN]],
        f"Check why {m.system} did not take them, then send them again.",
    )


def _local_error(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    return (
        f"Interlink could not build the request for {_n(m.count, 'delivery', 'deliveries')} "
        f"on flow {m.flow}{ctx.ends(m.flow)} (a key that cannot travel in a header, or a "
        "signing secret that does not work).",
        [_delivery_line(e, refs, ctx) for e in m.examples[:SHOWN]],
        "Correct the data or the secret, then send them again.",
    )


def _unmapped(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    lines = []
    for e in m.examples[:SHOWN]:
        d = e.detail
        fields = d.get("fields") or {}
        shown = ", ".join(f"{k}={v}" for k, v in fields.items()) if isinstance(fields, dict) else ""
        lines.append(
            f"{ctx.when(e.at)}  {d.get('type', 'document')} key {d.get('key', '?')}"
            + (f" ({shown})" if shown else "")
        )
    return (
        f"{_n(m.count, 'document')} on flow {m.flow}{ctx.ends(m.flow)} "
        f"{'matches' if m.count == 1 else 'match'} none of the agreed scenarios, and "
        f"{'is' if m.count == 1 else 'are'} held for a decision, not sent.",
        lines,
        "Product people: decide whether this is a new scenario (add it to the topology) or "
        "bad data (correct it at the source).",
    )


def _auth(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    e = m.examples[0] if m.examples else None
    why = f" ({e.detail.get('detail')})" if e and e.detail.get("detail") else ""
    return (
        f"{ctx.title(m.system)} refused Interlink's credentials{why}. Flow {m.flow} is held: "
        "nothing is lost, nothing goes out until it is resumed.",
        [],
        f"Operations: fix the token or secret agreed with {m.system}, then resume the flow.",
    )


def _deadline(missed: bool) -> Callable[[Message, Context, Refs | None], Parts]:
    def parts(m: Message, ctx: Context, refs: Refs | None) -> Parts:
        e = m.examples[0] if m.examples else None
        d = e.detail if e is not None else {}
        total = int(d.get("total") or m.count)
        reasons = d.get("reasons") or {}
        why = (
            ", ".join(f"{n} {str(r).replace('_', ' ')}" for r, n in reasons.items())
            if isinstance(reasons, dict)
            else ""
        )
        lines = []
        for doc in (d.get("documents") or [])[:SHOWN]:
            if not isinstance(doc, Mapping):
                continue
            lines.append(
                f"key {doc.get('key', '?')}: due {ctx.when(doc.get('deadline'))}, "
                f"{str(doc.get('reason') or doc.get('status', '')).replace('_', ' ')}"
            )
        if total > len(lines) and lines:
            lines.append(f"… and {total - len(lines)} more")
        if missed:
            where = f"on flow {m.flow}{ctx.ends(m.flow)}"
            head = f"{_n(total, 'document')} {where} missed their deadline"
            todo = "Tell the people waiting for them; find out why they are stuck and release them."
        else:
            lead = d.get("lead_seconds")
            within = f" within {times.duration(float(lead))}" if lead else ""
            head = (
                f"{_n(total, 'document')} on flow {m.flow}{ctx.ends(m.flow)} may miss their "
                f"deadline{within}"
            )
            todo = "Release what holds them (a down system, a pause, an earlier revision) now."
        return (head + (f" ({why})." if why else "."), lines, todo)

    return parts


def _maintenance(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    e = m.examples[0] if m.examples else None
    d = e.detail if e is not None else {}
    if isinstance(d.get("summary"), str):
        head = str(d["summary"])
    else:
        verb = {
            "maintenance_announced": "announces maintenance",
            "maintenance_reminder": "has maintenance coming",
            "maintenance_started": "is in maintenance",
            "maintenance_ended": "finished its maintenance",
            "maintenance_cancelled": "cancelled its maintenance",
            "maintenance_drained": "drained the maintenance backlog",
        }.get(m.kind, m.kind.replace("_", " "))
        span = ""
        if d.get("start"):
            span = f" from {ctx.when(d.get('start'))} to {ctx.when(d.get('end'))}"
        reason = f" ({d['reason']})" if d.get("reason") else ""
        head = f"{ctx.title(m.system)} {verb}{span}{reason}."
    lines = []
    flows = d.get("affected_flows") or []
    if isinstance(flows, list) and flows:
        names = ", ".join(
            str(f.get("flow", f)) if isinstance(f, Mapping) else str(f) for f in flows
        )
        lines.append(f"Flows affected: {names}")
    if d.get("held") is not None:
        lines.append(f"Deliveries held: {d['held']}")
    backlog = d.get("expected_backlog")
    if isinstance(backlog, Mapping) and backlog.get("total") is not None:
        lines.append(f"Expected backlog: {backlog['total']} deliveries")
    for warning in d.get("warnings") or []:
        lines.append(f"Warning: {warning}")
    if m.kind == "maintenance_started":
        todo = "Nothing to do: deliveries wait and go out when the window ends."
    elif m.kind in ("maintenance_announced", "maintenance_reminder"):
        todo = "Plan around it; deliveries in the window are held, not lost."
    else:
        todo = "Nothing to do."
    return head, lines, todo


def _contract(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    e = m.examples[0] if m.examples else None
    d = e.detail if e is not None else {}
    kind = "a breaking" if d.get("breaking") else "a compatible"
    head = (
        "A contract was published: "
        f"{d.get('document', 'a document type')} version {d.get('version', '?')}, {kind} change"
        + (f", by {d['published_by']}" if d.get("published_by") else "")
        + "."
    )
    lines = [f"Flows reading it: {', '.join(map(str, d.get('flows') or [])) or 'none'}"]
    lines += [f"To do: {a}" for a in (d.get("actions") or [])[:SHOWN]]
    return head, lines, "Check the change against what your system reads."


def _generic(m: Message, ctx: Context, refs: Refs | None) -> Parts:
    from interlink.features.alerts.rules import describe

    return (
        f"{m.rule.title if m.rule else m.kind.replace('_', ' ')} on "
        f"{m.flow or m.system or 'the hub'}.",
        [f"{ctx.when(e.at)}  {describe(e, refs)}" for e in m.examples[:SHOWN]],
        "",
    )


WORDING: dict[str, Callable[[Message, Context, Refs | None], Parts]] = {
    "circuit_opened": _circuit_opened,
    "circuit_closed": _circuit_closed,
    "delivery_rejected": _rejected,
    "delivery_gave_up": _gave_up,
    "delivery_local_error": _local_error,
    "document_unmapped": _unmapped,
    "flow_held_auth": _auth,
    "deadline_at_risk": _deadline(missed=False),
    "deadline_missed": _deadline(missed=True),
    "contract_published": _contract,
    **{k: _maintenance for k in (
        "maintenance_announced", "maintenance_reminder", "maintenance_started",
        "maintenance_ended", "maintenance_drained", "maintenance_cancelled",
    )},
}  # fmt: skip


def body(
    message: Message,
    interval: timedelta | None = None,
    refs: Refs | None = None,
    ctx: Context | None = None,
) -> str:
    """The text of ``message`` for mail and chat."""
    from interlink.features.alerts.rules import action

    ctx = ctx or Context()
    headline, documents, todo = WORDING.get(message.kind, _generic)(message, ctx, refs)
    if message.summary:
        # A summary counts what was folded since the first message about the same problem.
        span = f"In the last {times.duration(interval)}" if interval else "Since the last message"
        headline = f"{span}: {headline}"
    where = []
    if message.flow:
        where.append(f"Flow: {message.flow}{ctx.ends(message.flow)}")
    if message.system:
        where.append(f"System: {ctx.title(message.system)}")
    if message.first_at is not None:
        where.append(f"Since: {ctx.when(message.first_at)}")
    sections = [[headline], where]
    if documents:
        plain = message.kind.startswith(("maintenance_", "contract_"))
        listed = ["Details:" if plain else "Documents:", *(f"  {line}" for line in documents)]
        shown = min(len(message.examples), SHOWN)
        if message.count > shown and message.kind not in ("deadline_at_risk", "deadline_missed"):
            listed.append(f"  … and {message.count - shown} more")
        sections.append(listed)
    command = action(message.examples[0]) if message.examples else ""
    if todo.startswith("Nothing to do") and not command:
        sections.append([todo])
    else:
        sections.append(["What to do:", *(f"  {text}" for text in (todo, command) if text)])
    link = ctx.link(message)
    if link:
        sections.append([f"Console: {link}"])
    ids = ",".join(str(e.id) for e in message.examples[:SHOWN])
    sections.append([f"ref: {message.kind} events {ids}" if ids else f"ref: {message.kind}"])
    lines = []
    for section in sections:
        if section and section != ["What to do:"]:
            lines += [*section, ""]
    return "\n".join(lines).strip() + "\n"
