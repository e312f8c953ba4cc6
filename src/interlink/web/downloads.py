"""A stored attachment sent back: its checked type, its name, never sniffed by the browser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.responses import FileResponse

# What a browser may show in place rather than save (the console's links open these).
VIEWABLE = ("image/", "application/pdf")


def attachment(meta: dict[str, Any], path: Path, *, view: bool = False) -> FileResponse:
    """The file at ``path`` as ``meta`` (``content_type``, ``filename``) describes it; with
    ``view``, pictures and PDFs open in the browser instead of downloading."""
    content_type = meta["content_type"]
    inline = view and content_type.startswith(VIEWABLE)
    return FileResponse(
        path,
        media_type=content_type,
        filename=meta["filename"],
        content_disposition_type="inline" if inline else "attachment",
        headers={"X-Content-Type-Options": "nosniff"},
    )
