"""Where a delivery goes when it may not be sent now: the one rule for held states.

:func:`placement` is the rule; :class:`Holds` is everything it reads (flow holds, system holds
from the hold sources such as maintenance windows, open circuits), taken once per write and
asked by intake, the engine, re-push, resume and maintenance alike, so that every path agrees
on what ``held`` means. Loading it from the store is ``engine.applier.load_holds``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import NamedTuple, Protocol

# Several hold sources merged into one hold per system: the rule lives with the hold sources.
from interlink.hooks import SYSTEM_HOLDS, merge_system_holds  # noqa: F401 (re-exported)
from interlink.model import HoldReason, Status


def placement(
    *, blocked: bool = False, flow_hold: str | None = None, system_hold: str | None = None
) -> tuple[Status, HoldReason | None]:
    """Status and reason for a delivery that is otherwise ready to send.

    ``blocked`` wins: a later revision must wait for its predecessor whatever else is true, and
    only the head of a key's queue carries the flow's or system's hold. Then a flow hold
    (``paused``, ``auth``) and then a system hold (``maintenance`` before ``downstream_down``).
    """
    if blocked:
        return Status.HELD, HoldReason.BLOCKED
    if flow_hold:
        return Status.HELD, HoldReason(flow_hold)
    if system_hold:
        return Status.HELD, HoldReason(system_hold)
    return Status.PENDING, None


class Placeable(Protocol):
    """A delivery to place: a claimed row, a stale hold, a returned job."""

    @property
    def id(self) -> int: ...
    @property
    def flow(self) -> str: ...
    @property
    def system(self) -> str: ...


class Placed(NamedTuple):
    """A delivery to place, when the caller has no row of its own."""

    id: int
    flow: str
    system: str


Groups = dict[tuple[Status, HoldReason | None], list[int]]


@dataclass(frozen=True)
class Holds:
    """What holds deliveries now: one snapshot, read in the write that acts on it."""

    flows: Mapping[str, str] = field(default_factory=dict)
    """flow → its hold (``paused``, ``auth``)."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """system → the hold its hold sources give it (``maintenance``)."""
    open: frozenset[str] = frozenset()
    """Systems whose circuit is open (``downstream_down``)."""

    def system_hold(self, system: str) -> str | None:
        """The hold a system's deliveries show: maintenance before downstream_down."""
        source = self.sources.get(system)
        if system not in self.open:
            return source
        if source is None:
            return HoldReason.DOWNSTREAM_DOWN
        return merge_system_holds({system: HoldReason.DOWNSTREAM_DOWN}, {system: source})[system]

    def place(
        self, flow: str, system: str, blocked: bool = False
    ) -> tuple[Status, HoldReason | None]:
        """Status and reason for a delivery of ``flow`` to ``system`` that is otherwise ready."""
        return placement(
            blocked=blocked, flow_hold=self.flows.get(flow), system_hold=self.system_hold(system)
        )

    def place_rows(
        self, rows: Iterable[Placeable], blocked: frozenset[int] = frozenset()
    ) -> Groups:
        """Delivery ids grouped by where they go, one group per (status, reason)."""
        groups: Groups = defaultdict(list)
        for row in rows:
            groups[self.place(row.flow, row.system, row.id in blocked)].append(row.id)
        return groups

    def holds_flow(self, flow: str, system: str) -> bool:
        """Nothing of ``flow`` may go now: its flow or its system is held."""
        return flow in self.flows or system in self.sources or system in self.open

    def with_flow_hold(self, flow: str, reason: str) -> Holds:
        return replace(self, flows={**self.flows, flow: reason})

    def with_open(self, systems: Iterable[str]) -> Holds:
        """The same holds, with these circuits open (the engine's own view of them)."""
        return replace(self, open=frozenset(systems))
