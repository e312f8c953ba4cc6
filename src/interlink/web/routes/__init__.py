"""API routers of the capabilities beyond the core: every module here that defines
``router`` (a FastAPI ``APIRouter``) is included by :func:`interlink.web.api.create_app`.

Handlers reach the hub with ``Depends(hub_of)`` and check access with ``Depends(reader)``
(viewer), ``Depends(operator)`` or ``Depends(admin)`` from :mod:`interlink.web.deps`.
"""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def routers() -> list[APIRouter]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found
