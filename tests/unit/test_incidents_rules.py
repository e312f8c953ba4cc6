"""Attachment checks and incident figures: pure, table-driven."""

from __future__ import annotations

import pytest

from interlink.errors import InputError, TooLarge
from interlink.features.incidents.service import check_attachment, sniff


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"GIF89a\x01\x00", "gif"),
        (b"GIF87a\x01\x00", "gif"),
        (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "webp"),
        (b"%PDF-1.7\n", "pdf"),
        ("日志: 连接超时\n\tretry\r\n".encode(), "txt"),
        (b"MZ\x90\x00\x03", None),  # an executable
        (b"PK\x03\x04", None),  # a zip
        (b"\x00\x01binary", None),
        (b"\xc3\x28 not utf-8", None),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),  # RIFF but not WebP
    ],
)
def test_sniff_by_magic_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


@pytest.mark.parametrize(
    ("name", "data", "error"),
    [
        ("shot.png", b"\x89PNG\r\n\x1a\n", None),
        ("SHOT.JPEG", b"\xff\xd8\xff\xe0", None),
        ("photo.jpg", b"\xff\xd8\xff\xe0", None),
        ("server.log", b"err 09:00\n", None),
        ("shot.png", b"<svg onload=alert(1)>", InputError),  # text dressed as an image
        ("notes.txt", b"\x89PNG\r\n\x1a\n", InputError),  # an image dressed as text
        ("page.html", b"<html></html>", InputError),
        ("noext", b"hello", InputError),
        ("empty.txt", b"", InputError),
        ("big.txt", b"x" * 11, TooLarge),
    ],
)
def test_check_attachment(name: str, data: bytes, error: type[Exception] | None) -> None:
    if error is None:
        assert check_attachment(name, data, limit=10) in ("png", "jpeg", "txt")
    else:
        with pytest.raises(error):
            check_attachment(name, data, limit=10)
