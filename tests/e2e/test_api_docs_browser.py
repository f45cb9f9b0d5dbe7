"""The API documentation in a real browser with no internet: Swagger UI draws the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import pytest
from tests.e2e.conftest import LAPTOP, Screens

pytestmark = pytest.mark.browser


def test_the_api_docs_draw_every_endpoint_with_no_internet(new_page: Any, screens: Screens) -> None:
    page = new_page(LAPTOP)
    elsewhere: list[str] = []
    problems: list[str] = []

    def offline(route: Any) -> None:
        # what a clinic without internet has: this server only
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", offline)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto("/api/v1/docs")
    page.locator(".opblock-tag").first.wait_for()
    assert "ketapath" in page.locator(".info .title").inner_text()
    # every operation, drawn from openapi.json: Swagger UI draws the blocks near the viewport
    # only, so the page is scrolled to its end and every block seen on the way is counted
    spec = page.request.get("/api/v1/openapi.json").json()
    expected = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops}
    drawn: set[tuple[str, str]] = set()
    for _ in range(400):
        seen = page.evaluate(
            """() => Array.from(document.querySelectorAll('.opblock-summary')).map(b => [
                (b.querySelector('.opblock-summary-method') || {}).textContent || '',
                (b.querySelector('.opblock-summary-path') || {dataset: {}}).dataset.path || ''
            ])"""
        )
        drawn.update((method.strip(), path) for method, path in seen)
        at_end = page.evaluate(
            "() => { window.scrollBy(0, window.innerHeight * 0.8);"
            " return window.innerHeight + window.scrollY >= document.body.scrollHeight - 2; }"
        )
        if at_end and drawn >= expected:
            break
        page.wait_for_timeout(50)
    assert len(expected) > 20
    assert drawn == expected
    page.evaluate("() => window.scrollTo(0, 0)")
    page.get_by_role("button", name="Authorize").wait_for()
    screens.shot(page, "api-docs-offline")
    assert elsewhere == []
    assert problems == []  # no script error and no Content-Security-Policy violation
