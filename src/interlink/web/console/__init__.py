"""The web console: server-rendered pages over the same service layer as the API and CLI.

``pages()`` carries every page; :mod:`interlink.web.routes.console` hands it to the app. Each
page module has its own ``router`` (see :mod:`interlink.web.console.render` for the pattern);
the features' pages come from :mod:`interlink.features.registry`; each calls its feature's
service and says "not installed" without it.
"""

from __future__ import annotations

from fastapi import APIRouter


def pages() -> APIRouter:
    """Every console page: the core's, then the features' from the registry. Built on
    demand, not at import: a feature's pages import this package's ``render``."""
    from interlink.features.registry import console_routers
    from interlink.web.console import activity, documents, flows, overview, session, systems

    router = APIRouter(include_in_schema=False)
    for module in (session, overview, flows, documents, systems, activity):
        router.include_router(module.router)
    for feature_pages in console_routers():
        router.include_router(feature_pages)
    router.include_router(overview.fallback)  # last: only what no page above took
    return router


__all__ = ["pages"]
