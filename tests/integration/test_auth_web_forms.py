"""The dependencies the web pages use: cookie sessions and CSRF tokens in form posts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, Form, Request, Response
from fastapi.testclient import TestClient
from tests.integration.conftest import browser_sign_in

from ketapath.api.app import create_app
from ketapath.api.deps import (
    CurrentUser,
    SettingsDep,
    anonymous_csrf_token,
    require_csrf,
)
from ketapath.config import Settings
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

PASSWORD = "correct horse battery"


@pytest.fixture
def web(settings: Settings, database: Database) -> Iterator[TestClient]:
    app = create_app(settings, database=database)

    @app.post("/form-echo")
    def form_echo(actor: CurrentUser, note: Annotated[str, Form()]) -> dict[str, str]:
        return {"user": actor.username, "note": note}

    @app.get("/sign-in-form")
    def sign_in_form(request: Request, response: Response, settings: SettingsDep) -> dict[str, str]:
        return {"csrf_token": anonymous_csrf_token(request, response, settings)}

    @app.post("/sign-in", dependencies=[Depends(require_csrf)])
    def sign_in(username: Annotated[str, Form()]) -> dict[str, str]:
        return {"username": username}

    with TestClient(app, base_url="https://testserver") as client:
        yield client


def sign_in(client: TestClient, username: str) -> str:
    response = browser_sign_in(client, username, PASSWORD)
    assert response.status_code == 200, response.text
    token: str = response.json()["csrf_token"]
    return token


def test_a_form_post_with_the_session_csrf_field_is_accepted_and_the_form_still_reads(
    web: TestClient, users: dict[str, Actor]
) -> None:
    csrf = sign_in(web, "nurse")
    response = web.post("/form-echo", data={"note": "hello", "csrf_token": csrf})
    assert response.status_code == 200, response.text
    assert response.json() == {"user": "nurse", "note": "hello"}


def test_a_form_post_without_the_csrf_field_is_refused(
    web: TestClient, users: dict[str, Actor]
) -> None:
    sign_in(web, "nurse")
    response = web.post("/form-echo", data={"note": "hello"})
    assert response.status_code == 403
    assert response.json()["field"] == "csrf_token"


def test_the_sign_in_form_uses_a_double_submit_token(web: TestClient) -> None:
    token = web.get("/sign-in-form").json()["csrf_token"]
    assert web.post("/sign-in", data={"username": "x", "csrf_token": token}).status_code == 200
    assert web.post("/sign-in", data={"username": "x", "csrf_token": "forged"}).status_code == 403
    web.cookies.clear()
    assert web.post("/sign-in", data={"username": "x", "csrf_token": token}).status_code == 403
