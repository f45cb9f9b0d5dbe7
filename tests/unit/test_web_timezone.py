"""KETAPATH_TIMEZONE: pages show times, and forms read them, in the clinic's zone."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from tests.unit.web_app import database, migrated, signed_in

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import assessments
from ketapath.services.permissions import PHYSICIAN, Actor
from ketapath.store.db import Database
from ketapath.web.assessment_pages import parse_given_at
from ketapath.web.pages import format_time

__all__ = ["database", "migrated"]  # fixtures used by the tests below

READER = Actor(user_id=None, username="test-reader", role=PHYSICIAN)


def client_in(database: Database, zone: str) -> Iterator[TestClient]:
    settings = Settings(database_url=database.url, secret_key="tz-test-secret-key", timezone=zone)
    with TestClient(
        create_app(settings, database=database),
        base_url="https://testserver",
        follow_redirects=False,
    ) as c:
        yield c


@pytest.fixture
def sydney(database: Database) -> Iterator[TestClient]:
    yield from client_in(database, "Australia/Sydney")


def test_an_unknown_zone_is_refused_naming_it():
    with pytest.raises(ValidationError, match="Mars/Olympus"):
        Settings(timezone="Mars/Olympus")
    assert Settings(timezone="").zone() is None
    assert Settings(timezone="Europe/London").zone() == ZoneInfo("Europe/London")


def test_times_are_shown_in_the_given_zone_with_its_name():
    noon_utc = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    assert format_time(noon_utc, ZoneInfo("Australia/Sydney")) == "2026-01-15 23:00 AEDT"
    assert format_time(noon_utc, ZoneInfo("America/New_York")) == "2026-01-15 07:00 EST"


def test_a_typed_time_is_read_in_the_clinic_zone():
    given = parse_given_at("2026-01-15T23:00", ZoneInfo("Australia/Sydney"))
    assert given == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def test_the_assessment_form_and_the_patient_page_use_the_clinic_zone(
    sydney: TestClient, database: Database
):
    token = signed_in(sydney, "nurse")
    response = sydney.post(
        "/patients/3/assessments",
        data={
            "instrument_id": "nrs",
            "item_pain": "6",
            "administered_at": "2026-01-15T23:00",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303, response.text
    (stored,) = assessments.list_assessments(database, READER, 3)
    assert stored.administered_at == datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    page = html.unescape(sydney.get("/patients/3").text)
    assert "2026-01-15 23:00 AEDT" in page
