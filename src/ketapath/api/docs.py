"""The interactive API documentation (Swagger UI) at /api/v1/docs, served by the app itself.

FastAPI's own page loads Swagger UI from a CDN, so a clinic without internet saw a blank
page. This page loads the vendored Swagger UI from /static/swagger-ui (see
``web/static/README.md``) and starts it with /static/api-docs.js, and its
Content-Security-Policy lets it reach this site only.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

STATIC = "/static"

# As the web pages' policy (web/pages.py), but Swagger UI sets inline style attributes as it
# renders (its React components), so styles may also be inline; scripts still only from this
# site, and it fetches only this site's OpenAPI document and API.
DOCS_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
        "frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def docs_router(docs_url: str, openapi_url: str, title: str) -> APIRouter:
    """The route of the documentation page (not itself part of the OpenAPI document)."""
    router = APIRouter()
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>{escape(title)} - API documentation</title>
<link rel="stylesheet" href="{STATIC}/swagger-ui/swagger-ui.css">
<link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{STATIC}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{STATIC}/api-docs.js"></script>
</body>
</html>
"""

    @router.get(docs_url, include_in_schema=False)
    def api_docs() -> HTMLResponse:
        return HTMLResponse(page, headers=DOCS_SECURITY_HEADERS)

    return router
