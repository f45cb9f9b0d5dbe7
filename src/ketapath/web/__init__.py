"""Server-rendered web pages (Jinja2 + htmx) over the same services as the API and the CLI.

``install(app)`` adds the pages and their static files (CSS, the vendored htmx) to the
application made by ``ketapath.api.app.create_app``.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ketapath.web.pages import HERE


def warm_up() -> None:
    """Compile every page template now, not on the first request that shows it."""
    from ketapath.web.pages import templates

    for name in templates.env.list_templates(extensions=["html"]):
        templates.env.get_template(name)


def install(app: FastAPI, *, api_prefix: str) -> None:
    """Mount the pages at / and their static files at /static; answer an unknown address, a
    wrong method or a server error outside ``api_prefix`` with an HTML page."""
    from ketapath.web.pages import install_error_pages
    from ketapath.web.routes import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    install_error_pages(app, api_prefix)
