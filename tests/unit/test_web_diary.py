"""The patient diary's pages: the card on the order page (a link shown once, withdrawn, the
entries), the link's landing page that a preview cannot use up, the cookie, the phone-sized
form with its errors beside the fields, and the pages for a link that cannot be used."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import signed_order
from tests.unit.web_app import client, database, form_token, migrated, signed_in

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, diary
from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    diary.reset_rate_limits()
    yield
    diary.reset_rate_limits()


@pytest.fixture
def order_id(database: Database) -> int:
    users = {u.username: Actor(u.id, u.username, u.role) for u in auth.list_users(database, SYSTEM)}
    return signed_order(database, users)


@pytest.fixture
def phone(database: Database) -> Iterator[TestClient]:
    """The patient's phone: another browser, nobody signed in."""
    settings = Settings(database_url=database.url, secret_key="web-unit-test-secret")
    with TestClient(
        create_app(settings, database=database),
        base_url="https://testserver",
        follow_redirects=False,
    ) as c:
        yield c


def make_link(client: TestClient, order_id: int, **fields: str) -> tuple[str, str]:
    """A nurse makes a link on the order page; (the page, the link's address)."""
    token = signed_in(client, "nurse")
    page = client.get(f"/orders/{order_id}").text
    token = form_token(page)
    answer = client.post(
        f"/orders/{order_id}/diary-links",
        data={"csrf_token": token, "days_valid": "42", **fields},
    )
    assert answer.status_code == 201, answer.text
    url = re.search(r'id="diary-link-url" value="([^"]+)"', answer.text)
    assert url, "the new link is not shown"
    return answer.text, html.unescape(url.group(1))


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


def test_the_order_page_has_a_diary_card_and_shows_a_new_link_once(
    client: TestClient, order_id: int
) -> None:
    page, url = make_link(client, order_id)
    assert "Patient diary" in page and "shown only this once" in page
    assert 'data-copy="diary-link-url"' in page and "/static/copy.js" in page
    again = client.get(f"/orders/{order_id}").text
    assert url not in again
    assert 'data-state="not_opened"' in again and "Not opened" in again


def test_days_valid_out_of_range_is_shown_beside_the_field(
    client: TestClient, order_id: int
) -> None:
    signed_in(client, "nurse")
    token = form_token(client.get(f"/orders/{order_id}").text)
    answer = client.post(
        f"/orders/{order_id}/diary-links", data={"csrf_token": token, "days_valid": "500"}
    )
    assert answer.status_code == 422
    assert 'id="days_valid-error"' in answer.text
    assert "120" in answer.text


def test_the_landing_page_does_not_use_the_link_and_its_button_does(
    client: TestClient, phone: TestClient, order_id: int
) -> None:
    _, url = make_link(client, order_id)
    for _ in range(2):  # a messaging app's preview, then the patient
        landing = phone.get(path_of(url))
        assert landing.status_code == 200 and "Open my diary" in landing.text
    assert 'name="viewport"' in landing.text
    opened = phone.post(path_of(url))
    assert opened.status_code == 303 and opened.headers["location"] == "/diary"
    cookie = opened.headers["set-cookie"].lower()
    assert cookie.startswith("ketapath_diary=")
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    refused = phone.post(path_of(url))
    assert refused.status_code == 410
    assert "already been used: ask the clinic for a new one" in refused.text
    assert "What to do" in refused.text


def test_the_patient_writes_today_fails_once_with_words_beside_the_field_and_sees_the_entry(
    client: TestClient, phone: TestClient, order_id: int
) -> None:
    _, url = make_link(client, order_id)
    phone.post(path_of(url))
    form = phone.get("/diary")
    assert form.status_code == 200 and "Today's diary" in form.text
    today = clinic_clock().today().isoformat()
    missing = phone.post("/diary", data={"day": today, "note": "forgot the pain"})
    assert missing.status_code == 422
    assert 'id="pain_nrs-error"' in missing.text and "Pain today is required." in missing.text
    assert "forgot the pain" in missing.text  # what was typed is kept
    eleven = phone.post("/diary", data={"day": today, "pain_nrs": "11"})
    assert "Pain today must be 10 or less." in html.unescape(eleven.text)
    other = phone.post("/diary", data={"day": today, "pain_nrs": "3", "effects": "other"})
    assert 'id="other_effect-error"' in other.text
    dose = phone.post(
        "/diary",
        data={"day": today, "pain_nrs": "3", "dose_2_name": "oxycodone", "dose_2_dose": "lots"},
    )
    assert 'id="dose_2_dose-error"' in dose.text
    saved = phone.post(
        "/diary",
        data={
            "day": today,
            "pain_nrs": "3",
            "sleep_quality": "6",
            "effects": ["headache"],
            "dose_1_name": "Zapnoxidol",
            "dose_1_dose": "5",
            "dose_1_unit": "mg",
            "dose_1_times": "2",
            "note": "better",
        },
    )
    assert saved.status_code == 303, html.unescape(saved.text)[-2000:]
    page = phone.get(saved.headers["location"]).text
    assert "Saved. Thank you." in page and f'data-day="{today}"' in page
    order_page = client.get(f"/orders/{order_id}").text
    assert "Zapnoxidol" in order_page and "not recognised: check by hand" in order_page
    assert 'data-state="opened"' in order_page


def test_a_day_before_the_course_is_refused_beside_the_day(
    client: TestClient, phone: TestClient, order_id: int
) -> None:
    from datetime import timedelta

    _, url = make_link(client, order_id)
    phone.post(path_of(url))
    before = (clinic_clock().today() - timedelta(days=1)).isoformat()
    answer = phone.post("/diary", data={"day": before, "pain_nrs": "4"})
    assert answer.status_code == 422
    assert 'id="day-error"' in answer.text and "before the course began" in answer.text


def test_without_the_cookie_the_diary_says_what_to_do(phone: TestClient) -> None:
    answer = phone.get("/diary")
    assert answer.status_code == 401
    assert "link the clinic gave you" in answer.text
    assert "/login" not in answer.headers.get("location", "")


def test_a_nurse_withdraws_a_link_and_its_diary_stops(
    client: TestClient, phone: TestClient, order_id: int
) -> None:
    page, url = make_link(client, order_id)
    phone.post(path_of(url))
    link_id = re.search(r'data-link="(\d+)"', page)
    assert link_id
    token = form_token(page)
    answer = client.post(f"/diary-links/{link_id.group(1)}/revoke", data={"csrf_token": token})
    assert answer.status_code == 303
    assert 'data-state="revoked"' in client.get(f"/orders/{order_id}").text
    stopped = phone.get("/diary")
    assert stopped.status_code == 410 and "closed by the clinic" in stopped.text


def test_a_pharmacist_reads_the_diary_but_makes_no_link(client: TestClient, order_id: int) -> None:
    signed_in(client, "pharmacist")
    page = client.get(f"/orders/{order_id}").text
    assert "Patient diary" in page and "diary-link-form" not in page
