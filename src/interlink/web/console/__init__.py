"""The web console: server-rendered pages over the same service layer as the API and CLI.

``router`` carries every page; :mod:`interlink.web.routes.console` hands it to the app. Each
page module has its own ``router`` (see :mod:`interlink.web.console.render` for the pattern);
pages of a capability call that capability's service and say "not installed" without it.
"""

from __future__ import annotations

from fastapi import APIRouter

from interlink.web.console import (
    activity,
    contracts,
    documents,
    flows,
    incidents,
    maintenance,
    overview,
    session,
    systems,
)

router = APIRouter(include_in_schema=False)
for _module in (
    session,
    overview,
    flows,
    documents,
    systems,
    activity,
    maintenance,
    incidents,
    contracts,
):
    router.include_router(_module.router)

__all__ = ["router"]
