"""A change's title is its notices' mail subject: a line break in it would start a header
(``Bcc:``) or, refused by the mail library at send time, fail every notice again and again.
It is refused when the change is announced, with a clear error."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from interlink.clock import FakeClock
from interlink.errors import Forbidden, InputError, NotFound
from interlink.features.changes.service import changes
from interlink.service import Hub

TITLES = ["Refunds\r\nBcc: all@example.test", "Refunds\nX-Evil: 1", "tab\tin it", "a\u2028b"]


def test_a_title_with_a_line_break_or_control_character_is_refused(
    hub: Hub, clock: FakeClock
) -> None:
    svc = changes(hub)
    for title in TITLES:
        with pytest.raises(InputError, match="one line, without control characters"):
            svc.announce(
                "trading",
                title=title,
                at=clock.now() + timedelta(days=3),
                kind="release",
                actor="cli:test",
                send=False,
            )
    assert svc.search() == []


def test_a_missing_attachment_file_does_not_name_the_data_folder(
    hub: Hub, clock: FakeClock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INTERLINK_DATA_DIR", str(tmp_path / "secret-data-dir"))
    svc = changes(hub)
    change = svc.announce(
        "trading",
        title="Refunds",
        at=clock.now() + timedelta(days=3),
        kind="release",
        actor="cli:test",
        send=False,
    )
    attached = svc.attach(change["id"], "notes.txt", b"hello", "cli:test")
    for path in (tmp_path / "secret-data-dir").rglob("*.txt"):
        path.unlink()
    with pytest.raises(NotFound) as raised:
        svc.attachment(change["id"], attached["id"])
    assert "secret-data-dir" not in raised.value.message
    assert "missing" in raised.value.message


def test_a_link_to_a_change_or_recipient_that_does_not_exist_is_just_not_valid(
    hub: Hub, clock: FakeClock
) -> None:
    # The link's page needs no sign-in: its answer must not tell which ids exist.
    svc = changes(hub)
    for change_id, recipient_id in ((1, 1), (999, 3)):
        with pytest.raises(Forbidden) as raised:
            svc.check_link(change_id, recipient_id, "forged")
        assert raised.value.message == "this acknowledgement link is not valid (altered or forged)"
