"""Letters through the API and the pages, on SQLite and PostgreSQL: drafting, signing, the
documents' media types, bad input refused without writing, and the course page's card."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.integration.conftest import browser_sign_in, given_course

from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import Letter

API = "/api/v1"


def _letters(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count(Letter.id))) or 0)


def test_a_letter_is_drafted_signed_and_downloaded_through_the_api(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    made = client.post(
        f"{API}/orders/{order_id}/letters",
        json={"kind": "discharge_summary"},
        headers=headers["nurse"],
    )
    assert made.status_code == 201, made.text
    draft = made.json()
    assert draft["version"] == 1 and draft["status"] == "draft"
    assert draft["facts"]["sessions"][0]["ketamine_mg"] == draft["facts"]["total_mg"]
    signed = client.post(f"{API}/letters/{draft['id']}/sign", headers=headers["physician"])
    assert signed.status_code == 201, signed.text
    letter_id = signed.json()["id"]
    pdf = client.get(f"{API}/letters/{letter_id}/pdf", headers=headers["nurse"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content[:5] == b"%PDF-"
    assert 'filename="discharge-summary-order-' in pdf.headers["content-disposition"]
    html = client.get(f"{API}/letters/{letter_id}/html", headers=headers["nurse"])
    assert html.headers["content-type"].startswith("text/html")
    assert "Signed by Physician (physician)" in html.text
    again = client.post(f"{API}/letters/{letter_id}/sign", headers=headers["physician"])
    assert again.status_code == 409 and "already signed" in again.json()["detail"]
    listed = client.get(
        f"{API}/orders/{order_id}/letters?kind=discharge_summary", headers=headers["nurse"]
    )
    assert [v["version"] for v in listed.json()] == [2, 1]


def test_bad_input_is_refused_and_writes_nothing(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    for body in ({"kind": "prescription"}, {}, {"kind": "gp_letter", "extra": 1}, {"kind": 3}):
        response = client.post(
            f"{API}/orders/{order_id}/letters", json=body, headers=headers["nurse"]
        )
        assert response.status_code == 422, (body, response.text)
    assert (
        client.post(
            f"{API}/orders/999999/letters", json={"kind": "gp_letter"}, headers=headers["nurse"]
        ).status_code
        == 404
    )
    assert client.get(f"{API}/letters/0", headers=headers["nurse"]).status_code == 422
    assert client.get(f"{API}/letters/999999/pdf", headers=headers["nurse"]).status_code == 404
    assert (
        client.get(
            f"{API}/orders/{order_id}/letters?kind=bogus", headers=headers["nurse"]
        ).status_code
        == 422
    )
    assert _letters(database) == 0


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "no CSRF token on the page"
    return match.group(1)


def test_the_course_page_drafts_and_the_letter_page_signs(
    client: TestClient, database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    browser_sign_in(client, "nurse")
    page = client.get(f"/orders/{order_id}")
    assert page.status_code == 200 and 'id="order-letters"' in page.text
    drafted = client.post(
        f"/orders/{order_id}/letters",
        data={"kind": "patient_information", "csrf_token": _csrf(page.text)},
        follow_redirects=False,
    )
    assert drafted.status_code == 303
    letter_page = client.get(drafted.headers["location"])
    assert letter_page.status_code == 200
    assert "Information for you after your ketamine infusions" in letter_page.text
    assert 'id="sign-form"' not in letter_page.text and "A physician signs" in letter_page.text
    bogus = client.post(
        f"/orders/{order_id}/letters",
        data={"kind": "prescription", "csrf_token": _csrf(page.text)},
    )
    assert bogus.status_code == 422 and _letters(database) == 1

    client.cookies.clear()
    browser_sign_in(client, "physician")
    letter_page = client.get(drafted.headers["location"])
    assert 'id="sign-form"' in letter_page.text
    letter_id = drafted.headers["location"].rsplit("/", 1)[1]
    signed = client.post(
        f"/letters/{letter_id}/sign",
        data={"csrf_token": _csrf(letter_page.text)},
        follow_redirects=True,
    )
    assert signed.status_code == 200 and 'id="letter-signed-by"' in signed.text
    assert "Version 2" in signed.text and "Version 1" in signed.text
    old = client.post(f"/letters/{letter_id}/sign", data={"csrf_token": _csrf(signed.text)})
    assert old.status_code == 409 and "not the newest" in old.text


def test_a_pharmacist_sees_no_letters_on_the_course_page(
    client: TestClient, database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    browser_sign_in(client, "pharmacist")
    page = client.get(f"/orders/{order_id}")
    assert page.status_code == 200 and 'id="order-letters"' not in page.text
