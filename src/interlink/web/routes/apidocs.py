"""``/docs`` (Swagger UI) over ``/openapi.json``, every file served by this app: no CDN, so
no third party can change the script that runs next to a user's token, and the page works
without the internet.

The Swagger UI bundle comes from the ``fastapi-offline`` package (a pinned dependency,
upgraded with the others and checked by pip-audit); only the names in :data:`ASSETS` are
served from its folder. The page that starts Swagger UI is ours, with its start-up script as
a file of its own, so the strict Content-Security-Policy of
:mod:`interlink.web.security_headers` holds on ``/docs``.

There is no ``/redoc``: the packaged ReDoc still loads its logo from a CDN of its own, and
needs inline styles; one documentation page is enough.
"""

from __future__ import annotations

from html import escape
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from interlink.errors import NotFound

router = APIRouter(include_in_schema=False)

BUNDLES = Path(str(files("fastapi_offline") / "static"))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}
# Our own start-up script for Swagger UI: the OpenAPI URL comes from the page's markup, so
# the page needs no inline script. validatorUrl null: no badge fetched from swagger.io.
SWAGGER_INIT = """\
"use strict";
(function () {
  var holder = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: holder.getAttribute("data-openapi"),
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
})();
"""
_SWAGGER_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} - API</title>
<link rel="icon" href="{root}/docs/assets/favicon.png">
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi="{openapi}"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/assets/swagger-init.js"></script>
</body>
</html>
"""


def _page(request: Request, template: str) -> str:
    root = request.scope.get("root_path", "")
    openapi = f"{root}{request.app.openapi_url or '/openapi.json'}"
    return template.format(
        title=escape(request.app.title), root=escape(root), openapi=escape(openapi)
    )


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return HTMLResponse(_page(request, _SWAGGER_PAGE))


@router.get("/docs/assets/swagger-init.js")
def swagger_init() -> Response:
    return Response(SWAGGER_INIT, media_type="text/javascript")


@router.get("/docs/assets/{name}")
def asset(name: str) -> Response:
    media = ASSETS.get(name)
    if media is None:
        raise NotFound(f"no asset {name!r}")
    # the packaged files change only with the package: let browsers keep them a day
    return FileResponse(
        BUNDLES / name, media_type=media, headers={"Cache-Control": "public, max-age=86400"}
    )
