"""The API documentation page works without internet: it loads Swagger UI from the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ketapath.api.app import create_app
from ketapath.config import Settings

STATIC = Path(__file__).resolve().parents[2] / "src" / "ketapath" / "web" / "static"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('docs') / 'ketapath.sqlite3'}"
    app = create_app(Settings(database_url=url, secret_key="docs-test-secret-key"))
    with TestClient(app) as client:
        yield client


def _references(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


def test_the_docs_page_references_no_other_host(client: TestClient) -> None:
    response = client.get("/api/v1/docs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    references = _references(response.text)
    assert references, "the page loads nothing"
    assert all(ref.startswith("/") and not ref.startswith("//") for ref in references)
    assert "http://" not in response.text and "https://" not in response.text
    assert 'data-openapi-url="/api/v1/openapi.json"' in response.text


def test_the_docs_page_policy_lets_it_reach_this_site_only(client: TestClient) -> None:
    policy = client.get("/api/v1/docs").headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"  # no inline script, no CDN
    assert directives["connect-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert "http" not in policy


def test_the_docs_page_s_scripts_and_styles_are_served_by_the_app(client: TestClient) -> None:
    page = client.get("/api/v1/docs").text
    for ref in _references(page):
        asset = client.get(ref)
        assert asset.status_code == 200, ref
        assert len(asset.content) > 100, ref
    bundle = client.get("/static/swagger-ui/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"]
    assert b"SwaggerUIBundle" in bundle.content
    assert "css" in client.get("/static/swagger-ui/swagger-ui.css").headers["content-type"]
    assert client.get("/api/v1/openapi.json").status_code == 200


def test_the_vendored_swagger_ui_ships_with_its_licence() -> None:
    folder = STATIC / "swagger-ui"
    assert "Apache License" in (folder / "LICENSE").read_text()
    assert "swagger-ui-dist" in (STATIC / "README.md").read_text()
