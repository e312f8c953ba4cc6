"""Where a delivery goes when it may not be sent now: the one rule for held states.

Used at intake, when a blocked revision is released, on resume, on re-push and when a circuit
closes, so that every path agrees on what ``held`` means.
"""

from __future__ import annotations

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


# When several system holds apply, the first listed is the one a delivery shows.
SYSTEM_HOLDS = (HoldReason.MAINTENANCE, HoldReason.DOWNSTREAM_DOWN)


def merge_system_holds(*sources: dict[str, str]) -> dict[str, str]:
    """system → the hold that wins among several sources (maintenance before down)."""
    merged: dict[str, str] = {}
    for source in sources:
        for system, reason in source.items():
            current = merged.get(system)
            if current is None or _rank(reason) < _rank(current):
                merged[system] = reason
    return merged


def _rank(reason: str) -> int:
    try:
        return SYSTEM_HOLDS.index(HoldReason(reason))
    except ValueError:
        return len(SYSTEM_HOLDS)
