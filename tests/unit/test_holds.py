"""Where a delivery waits: blocked first, then the flow's hold, then the system's."""

from __future__ import annotations

import pytest

from interlink.engine.holds import placement
from interlink.model import HoldReason, Status


def test_ready_is_pending() -> None:
    assert placement() == (Status.PENDING, None)
    assert placement(blocked=False, flow_hold=None, system_hold=None) == (Status.PENDING, None)


@pytest.mark.parametrize("flow_hold", [None, "paused", "auth"])
@pytest.mark.parametrize("system_hold", [None, "maintenance", "downstream_down"])
def test_blocked_wins_over_everything(flow_hold: str | None, system_hold: str | None) -> None:
    assert placement(blocked=True, flow_hold=flow_hold, system_hold=system_hold) == (
        Status.HELD,
        HoldReason.BLOCKED,
    )


@pytest.mark.parametrize("flow_hold", ["paused", "auth"])
@pytest.mark.parametrize("system_hold", [None, "maintenance", "downstream_down"])
def test_flow_hold_wins_over_system_hold(flow_hold: str, system_hold: str | None) -> None:
    assert placement(flow_hold=flow_hold, system_hold=system_hold) == (
        Status.HELD,
        HoldReason(flow_hold),
    )


@pytest.mark.parametrize("system_hold", ["maintenance", "downstream_down"])
def test_system_hold_alone(system_hold: str) -> None:
    assert placement(system_hold=system_hold) == (Status.HELD, HoldReason(system_hold))


def test_empty_hold_strings_mean_no_hold() -> None:
    assert placement(flow_hold="", system_hold="") == (Status.PENDING, None)


def test_an_unknown_reason_is_refused() -> None:
    with pytest.raises(ValueError):
        placement(flow_hold="lunch")
