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
