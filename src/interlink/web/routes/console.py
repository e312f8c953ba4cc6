"""The web console's pages join the app here (see :mod:`interlink.web.console`)."""

from __future__ import annotations

from interlink.web.console import pages

router = pages()

__all__ = ["router"]
