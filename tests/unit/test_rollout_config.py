"""A flow's ``rollout:`` block: what the topology accepts, and each mistake as file:line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from interlink.config import RolloutFallback, load, parse_share
from interlink.errors import ConfigError
from interlink.features.rollout import rules

TOPOLOGY = """\
systems:
  trading: {token_env: T}
  treasury: {url: "http://127.0.0.1:9101/"}
  legacy: {url: "http://127.0.0.1:9102/"}
documents:
  payment_order: {key: order_no}
  trade: {key: trade_no}
flows:
  legacy:
    from: trading
    to: legacy
    document: payment_order
  trades:
    from: trading
    to: legacy
    document: trade
  new:
    from: trading
    to: treasury
    document: payment_order
    rollout:
ROLLOUT"""


def problems(tmp_path: Path, rollout: str) -> list[str]:
    block = textwrap.indent(textwrap.dedent(rollout), "      ")
    path = tmp_path / "interlink.yaml"
    path.write_text(TOPOLOGY.replace("ROLLOUT", block), encoding="utf-8")
    try:
        load(path)
    except ConfigError as exc:
        return [p.removeprefix(f"{path}:") for p in exc.problems]
    return []


def test_a_pilot_with_a_matcher_a_share_and_a_fallback_loads(tmp_path: Path) -> None:
    assert (
        problems(tmp_path, 'when: {branch: "0571"}\nshare: 12.5%\noutside: {fallback: legacy}')
        == []
    )
    topology = load(tmp_path / "interlink.yaml")
    rollout = topology.flows["new"].rollout
    assert rollout is not None
    assert (rollout.stage, rollout.share, rollout.fallback) == ("pilot", 12.5, "legacy")
    assert isinstance(rollout.outside, RolloutFallback)
    assert rollout.gate.min_delivered == 1 and rollout.gate.max_dead == 0
    pilot = rules.Pilot.of(rollout)
    keys = [f"K{n}" for n in range(200)]
    inside = [k for k in keys if pilot.contains(k, {"branch": "0571"})]
    assert inside == [k for k in keys if rules.in_share(k, 12.5)]
    assert not any(pilot.contains(k, {"branch": "0999"}) for k in keys)


@pytest.mark.parametrize(
    ("rollout", "expected"),
    [
        (
            "stage: pilot",
            "21: flows.new.rollout: a pilot needs 'when' (a matcher on payload fields) or 'share'",
        ),
        ("stage: half", "22: flows.new.rollout.stage: Input should be 'pilot', 'full' or 'off'"),
        ("share: 150%", "22: flows.new.rollout.share: '150%' must be a share from 0% to 100%"),
        ("share: lots", "22: flows.new.rollout.share: 'lots' is not a share; use e.g. 10%"),
        (
            "share: 10%\noutside: {fallback: nowhere}",
            "23: flows.new.rollout.outside.fallback: unknown flow 'nowhere'",
        ),
        (
            "share: 10%\noutside: {fallback: new}",
            "23: flows.new.rollout.outside.fallback: a flow cannot be its own fallback",
        ),
        (
            "share: 10%\noutside: {fallback: trades}",
            "23: flows.new.rollout.outside.fallback: fallback 'trades' has document 'trade', not "
            "'payment_order': it must carry the same documents from the same source",
        ),
        ("when: {amount: {gt: [1]}}", "22: flows.new.rollout.when.amount.gt: "),
        (
            "share: 10%\ngate: {max_dead: -1}",
            "23: flows.new.rollout.gate.max_dead: Input should be greater than or equal to 0",
        ),
    ],
)
def test_mistakes_name_their_line(tmp_path: Path, rollout: str, expected: str) -> None:
    found = problems(tmp_path, rollout)
    assert len(found) >= 1 and found[0].startswith(expected), found


def test_full_and_off_need_no_filter(tmp_path: Path) -> None:
    assert problems(tmp_path, "stage: full") == []
    assert problems(tmp_path, "stage: off\noutside: skip") == []


def test_parse_share() -> None:
    assert parse_share("10%") == 10.0 and parse_share(5) == 5.0 and parse_share("0.25%") == 0.25
    with pytest.raises(ValueError, match="hundredths"):
        parse_share("0.125%")
