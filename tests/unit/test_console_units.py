"""The console's pure parts: languages, passwords and sessions, graph states, charts, the
maintenance calendar grid, and that every string a template asks for is in the catalogue."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from interlink.config import User
from interlink.features.maintenance.console import month_grid
from interlink.web.console import charts, graph, i18n
from interlink.web.console.auth import Accounts, csrf_ok, hash_password, may, verify_password

TEMPLATES = Path(i18n.__file__).parent / "templates"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("en-US,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh-CN"),
        ("zh", "zh-CN"),
        ("zh-TW", None),
        ("fr-FR, en;q=0.5, zh-CN;q=0.7", "zh-CN"),
        ("fr, de", None),
        ("zh-CN;q=0, en", "en"),
        ("en;q=abc, zh-CN;q=0.1", "zh-CN"),
    ],
)
def test_accept_language(header: str | None, expected: str | None) -> None:
    assert i18n.from_accept_language(header) == expected


@pytest.mark.parametrize(
    ("query", "session", "accept", "expected"),
    [
        (None, None, None, "en"),
        ("zh-CN", "en", "en", "zh-CN"),
        (None, "zh-CN", "en", "zh-CN"),
        ("xx", None, "zh-CN", "zh-CN"),
        (None, None, "de", "en"),
    ],
)
def test_language_precedence(
    query: str | None, session: str | None, accept: str | None, expected: str
) -> None:
    assert i18n.pick_language(query, session, accept) == expected


def test_translate_falls_back_to_english_then_the_key() -> None:
    assert i18n.translate("zh-CN", "repush.done", count=3) == "已重推 3 条投递。"
    assert i18n.translate("fr", "repush.done", count=3) == "3 deliveries re-pushed."
    assert i18n.translate("en", "no.such.key") == "no.such.key"


def test_the_chinese_catalogue_covers_every_english_string() -> None:
    assert set(i18n.ZH) == set(i18n.EN)
    for key, text in i18n.EN.items():
        assert set(re.findall(r"{(\w+)}", text)) == set(re.findall(r"{(\w+)}", i18n.ZH[key])), key


def test_every_string_a_template_asks_for_is_in_the_catalogue() -> None:
    asked = set()
    for template in TEMPLATES.glob("*.html"):
        asked |= set(re.findall(r"""\bt\(\s*["']([\w.]+)["']""", template.read_text()))
    asked = {k for k in asked if not k.endswith(".")}  # "state." ~ name: built at run time
    assert asked, "no t() calls found"
    assert asked - set(i18n.EN) == set()


def test_password_hashes_are_salted_and_checked() -> None:
    first, second = hash_password("s3cret"), hash_password("s3cret")
    assert first != second
    assert verify_password("s3cret", first) and verify_password("s3cret", second)
    assert not verify_password("S3cret", first)


@pytest.mark.parametrize(
    ("role", "needed", "allowed"),
    [
        ("viewer", "viewer", True),
        ("viewer", "operator", False),
        ("operator", "operator", True),
        ("operator", "admin", False),
        ("admin", "operator", True),
        ("admin", "admin", True),
        ("root", "viewer", False),
    ],
)
def test_roles(role: str, needed: str, allowed: bool) -> None:
    assert may(role, needed) is allowed


def test_sessions_are_signed_and_bound_to_known_users() -> None:
    users = [
        User(name="duty", role="operator", password_env="P1"),
        User(name="nopass", role="admin", password_env="P2"),
    ]
    accounts = Accounts.from_users(users, {"P1": "pw", "INTERLINK_SECRET_KEY": "k"})
    assert accounts.authenticate("duty", "pw") is not None
    assert accounts.authenticate("duty", "nope") is None
    assert accounts.authenticate("nopass", "") is None  # no password set: cannot sign in
    assert accounts.authenticate("ghost", "pw") is None
    session = accounts.new_session(accounts.accounts["duty"], "zh-CN")
    cookie = accounts.dump(session)
    loaded = accounts.load(cookie)
    assert loaded == session and loaded.actor == "console:duty"
    assert accounts.load(cookie[:-2] + "xx") is None
    assert accounts.load(None) is None and accounts.load("") is None
    other = Accounts.from_users(users, {"P1": "pw", "INTERLINK_SECRET_KEY": "other"})
    assert other.load(cookie) is None
    random_key = Accounts.from_users(users, {"P1": "pw"})
    assert random_key.ephemeral_key and random_key.load(cookie) is None
    assert csrf_ok(session, session.csrf)
    assert not csrf_ok(session, None) and not csrf_ok(session, session.csrf + "x")


@pytest.mark.parametrize(
    ("flow", "target", "failing", "expected"),
    [
        ({}, "up", False, ("flowing", None)),
        ({}, "up", True, ("failing", None)),
        ({"hold": {"reason": "paused"}}, "up", True, ("held", "paused")),
        ({"hold": {"reason": "auth"}}, "up", False, ("held", "auth")),
        ({}, "down", True, ("held", "down")),
        ({}, "maintenance", False, ("held", "maintenance")),
        ({"held": {"downstream_down": 4}}, "up", False, ("held", "down")),
        ({"held": {"maintenance": 1}}, "up", False, ("held", "maintenance")),
        ({"held": {"blocked": 2}}, "up", False, ("held", "blocked")),  # issue 14
        ({"dead": 1}, "up", False, ("failing", None)),  # issue 14: while dead ones wait
    ],
)
def test_flow_state(
    flow: dict, target: str, failing: bool, expected: tuple[str, str | None]
) -> None:
    assert graph.flow_state(flow, target, failing) == expected


@pytest.mark.parametrize(
    ("system", "window", "expected"),
    [
        ({"circuit": "closed"}, False, "up"),
        ({"circuit": "open"}, True, "down"),
        ({"circuit": "closed"}, True, "maintenance"),
        ({"circuit": "closed", "window": {"id": 1}}, False, "maintenance"),
    ],
)
def test_system_state(system: dict, window: bool, expected: str) -> None:
    assert graph.system_state(system, window) == expected


def test_hour_slots_and_bars() -> None:
    now = datetime(2026, 1, 5, 10, 42, tzinfo=UTC)
    slots = charts.hour_slots(now)
    assert len(slots) == 24
    assert slots[-1] == datetime(2026, 1, 5, 10, tzinfo=UTC)
    assert slots[0] == datetime(2026, 1, 4, 11, tzinfo=UTC)
    data = {slots[-1]: {"delivered": 8, "rejected": 2}, slots[0]: {"unavailable": 5}}
    svg = charts.stacked_bars(slots, data, "attempts <per> hour")
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert svg.count('class="bar ok"') == 1 and svg.count('class="bar bad"') == 1
    assert svg.count('class="bar warn"') == 1
    assert "attempts &lt;per&gt; hour" in svg
    assert "<rect" not in charts.stacked_bars(slots, {}, "empty")


def test_month_grid_places_windows_on_the_local_days_they_touch() -> None:
    tz = ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 1, 6, 23, 0, tzinfo=tz)
    window = {
        "id": 1,
        "start": start.astimezone(UTC).isoformat(),
        "end": (start + timedelta(hours=2)).astimezone(UTC).isoformat(),
    }
    weeks = month_grid(2026, 1, [window], tz, date(2026, 1, 5))
    days = {d.day: d for week in weeks for d in week}
    assert all(len(week) == 7 for week in weeks)
    assert weeks[0][0].day == date(2025, 12, 29) and not weeks[0][0].in_month
    assert days[date(2026, 1, 5)].today
    touched = [d for d, cell in days.items() if cell.windows]
    assert touched == [date(2026, 1, 6), date(2026, 1, 7)]
