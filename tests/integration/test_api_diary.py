"""The patient diary through the API: the clinic's links (the address once, never again), the
patient's single opening and entries by cookie or header, and bad input refused with a 4xx
naming the field and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.conftest import signed_order

from ketapath.config import Settings
from ketapath.services import diary
from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import DiaryEntry

API = "/api/v1"


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    diary.reset_rate_limits()
    yield
    diary.reset_rate_limits()


@pytest.fixture
def order_id(database: Database, users: dict[str, Actor]) -> int:
    return signed_order(database, users)


def today(settings: Settings) -> str:
    return clinic_clock(settings).today().isoformat()


def day_entry(day: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "day": day,
        "pain_nrs": 3,
        "sleep_quality": 7,
        "side_effects": [{"effect": "other", "description": "dizzy in the morning"}],
        "opioid_doses": [{"name": "Zapnoxidol", "dose": 5, "unit": "mg", "times": 1}],
        "note": "walked to the shop",
    }
    body.update(changes)
    return body


def new_link(client: TestClient, headers: dict[str, str], order_id: int, **body: Any) -> Any:
    answer = client.post(f"{API}/orders/{order_id}/diary-links", json=body, headers=headers)
    assert answer.status_code == 201, answer.text
    return answer.json()


def test_a_nurse_gives_a_link_and_the_patient_writes_today_s_diary_with_the_cookie(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    order_id: int,
    settings: Settings,
) -> None:
    issued = new_link(client, headers["nurse"], order_id, days_valid=42)
    token = issued["url"].rsplit("/", 1)[1]
    assert issued["link"]["state"] == "not_opened" and issued["sent"] is False
    listed = client.get(f"{API}/orders/{order_id}/diary-links", headers=headers["nurse"]).json()
    assert token not in str(listed) and listed[0]["id"] == issued["link"]["id"]

    opened = client.post(f"{API}/diary/open", json={"token": token})
    assert opened.status_code == 200, opened.text
    cookie = opened.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "secure" in cookie
    written = client.post(f"{API}/diary/entries", json=day_entry(today(settings)))
    assert written.status_code == 201, written.text
    assert written.json()["not_recognised"] == ["Zapnoxidol"]

    own = client.get(f"{API}/diary/entries").json()
    assert own["today_entry"]["pain_nrs"] == 3

    read = client.get(f"{API}/orders/{order_id}/diary", headers=headers["physician"]).json()
    assert read["days"] == 1 and read["not_recognised"] == ["Zapnoxidol"]
    assert read["entries"][0]["opioid_doses"][0]["check"].endswith("not recognised: check by hand")


def test_the_header_carries_the_session_as_well(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int, settings: Settings
) -> None:
    token = new_link(client, headers["nurse"], order_id)["url"].rsplit("/", 1)[1]
    session = client.post(f"{API}/diary/open", json={"token": token}).json()["session"]
    client.cookies.clear()
    answer = client.post(
        f"{API}/diary/entries",
        json=day_entry(today(settings)),
        headers={"X-Diary-Session": session},
    )
    assert answer.status_code == 201, answer.text


def test_a_reused_link_is_refused_in_words(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int
) -> None:
    token = new_link(client, headers["nurse"], order_id)["url"].rsplit("/", 1)[1]
    assert client.post(f"{API}/diary/open", json={"token": token}).status_code == 200
    again = client.post(f"{API}/diary/open", json={"token": token})
    assert again.status_code == 410
    assert again.json() == {
        "detail": "This link has already been used: ask the clinic for a new one.",
        "field": "token",
    }


@pytest.mark.parametrize(
    ("changes", "field", "status"),
    [
        ({"pain_nrs": 11}, "pain_nrs", 422),
        ({"day_offset": -1}, "day", 422),
        ({"day_offset": 1}, "day", 422),
        ({"side_effects": [{"effect": "unicorns"}]}, "side_effects[0]", 422),
    ],
)
def test_bad_input_gets_a_4xx_naming_the_field_and_writes_nothing(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    order_id: int,
    settings: Settings,
    database: Database,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    token = new_link(client, headers["nurse"], order_id)["url"].rsplit("/", 1)[1]
    client.post(f"{API}/diary/open", json={"token": token})
    offset = changes.pop("day_offset", 0)
    day = (clinic_clock(settings).today() + timedelta(days=offset)).isoformat()
    answer = client.post(f"{API}/diary/entries", json=day_entry(day, **changes))
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert answer.json()["detail"]
    with database.read_only() as session:
        assert session.scalars(select(DiaryEntry)).all() == []


def test_without_a_diary_session_nothing_is_written(client: TestClient, settings: Settings) -> None:
    answer = client.post(f"{API}/diary/entries", json=day_entry(today(settings)))
    assert answer.status_code == 401
    assert "link the clinic gave you" in answer.json()["detail"]


def test_a_withdrawn_link_stops_its_diary(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int, settings: Settings
) -> None:
    issued = new_link(client, headers["physician"], order_id)
    client.post(f"{API}/diary/open", json={"token": issued["url"].rsplit("/", 1)[1]})
    revoked = client.post(
        f"{API}/diary-links/{issued['link']['id']}/revoke", headers=headers["nurse"]
    )
    assert revoked.status_code == 200 and revoked.json()["state"] == "revoked"
    answer = client.post(f"{API}/diary/entries", json=day_entry(today(settings)))
    assert answer.status_code == 410


@pytest.mark.parametrize("role", ["pharmacist", "researcher", "admin"])
def test_only_physicians_and_nurses_give_links(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int, role: str
) -> None:
    answer = client.post(f"{API}/orders/{order_id}/diary-links", json={}, headers=headers[role])
    assert answer.status_code == 403


def test_days_valid_out_of_range_and_e_mail_without_mail_settings_are_refused(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int
) -> None:
    path = f"{API}/orders/{order_id}/diary-links"
    too_long = client.post(path, json={"days_valid": 121}, headers=headers["nurse"])
    assert too_long.status_code == 422 and too_long.json()["field"] == "days_valid"
    mailed = client.post(path, json={"send_to": "p@example.org"}, headers=headers["nurse"])
    assert mailed.status_code == 422 and mailed.json()["field"] == "send_to"
    assert client.get(path, headers=headers["nurse"]).json() == []
