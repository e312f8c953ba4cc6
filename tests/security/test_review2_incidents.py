"""A missing incident attachment answers 404 without naming the hub's data folder (a machine
path); the folder goes to the log instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from interlink.errors import NotFound
from interlink.features.incidents.service import incidents
from interlink.service import Hub


def test_a_missing_incident_attachment_does_not_name_the_data_folder(
    hub: Hub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("INTERLINK_DATA_DIR", str(tmp_path / "secret-data-dir"))
    svc = incidents(hub)
    incident = svc.new(title="a problem", actor="test")
    attached = svc.attach(incident["id"], "notes.txt", b"hello", "test")
    files = list((tmp_path / "secret-data-dir").rglob("*.txt"))
    assert files
    for path in files:
        path.unlink()
    with pytest.raises(NotFound) as raised:
        svc.attachment(incident["id"], attached["id"])
    assert "secret-data-dir" not in raised.value.message
    assert "missing" in raised.value.message
    assert "secret-data-dir" in caplog.text
