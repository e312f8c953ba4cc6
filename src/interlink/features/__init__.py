"""Capabilities beyond the core join a :class:`~interlink.service.Hub` here.

Every module in this package defines ``install(hub)``, which creates the capability's
service, stores it in ``hub.capabilities[NAME]`` and appends its hooks to ``hub.hooks``
(hold sources, housekeepers, event listeners, background loops). Each module also offers a
typed accessor, e.g. ``maintenance(hub) -> Maintenance``, for the API, console and CLI.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any


def install_capabilities(hub: Any) -> None:
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        install = getattr(module, "install", None)
        if callable(install):
            install(hub)
