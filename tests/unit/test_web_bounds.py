"""Web pages refuse numbers and text the records cannot hold with an HTML page, never a 500."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from tests.unit.test_web_record import FILLED
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.web import (
    assessment_pages,
    ledger_pages,
    opioid_pages,
    order_pages,
    patient_pages,
    record_pages,
    screening_pages,
)

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below
PAGE_MODULES = (
    assessment_pages,
    ledger_pages,
    opioid_pages,
    order_pages,
    patient_pages,
    record_pages,
    screening_pages,
)

BEYOND_64_BITS = "99999999999999999999999"


def page_routes() -> list[tuple[str, str]]:
    """(method, path) of every web page that takes a record id in its path."""
    found = []
    for module in PAGE_MODULES:
        for route in module.router.routes:
            if isinstance(route, APIRoute) and re.search(r"\{[a-z_]+_id\}", route.path):
                found += [(method, route.path) for method in sorted(route.methods)]
    return found


@pytest.mark.parametrize("bad_id", [BEYOND_64_BITS, "2147483648", "0"])
def test_a_page_for_an_id_no_record_can_have_is_an_html_422(client: TestClient, bad_id: str):
    token = signed_in(client, "physician")
    routes = page_routes()
    assert len(routes) >= 15
    for method, path in routes:
        url = re.sub(r"\{[a-z_]+\}", bad_id, path)
        response = client.request(
            method, url, data={"csrf_token": token} if method == "POST" else None
        )
        assert response.status_code == 422, (method, url, response.status_code)
        assert response.headers["content-type"].startswith("text/html"), (method, url)


def test_correcting_a_dose_the_form_cannot_name_is_refused_on_the_form(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/opioid-doses",
        data={
            "csrf_token": token,
            "taken_on": "2025-01-02",
            "amends": BEYOND_64_BITS,
            "reason": "typo",
        },
    )
    assert response.status_code == 422
    assert "The form names no recorded dose to correct: reload the page." in response.text


def test_a_record_form_that_does_not_say_which_version_it_amends_is_refused(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/record",
        data={**FILLED, "reason": "weighed", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "The form does not say which version of the record it amends" in response.text


def test_an_assessment_dated_in_year_one_is_refused_on_the_form(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={
            "csrf_token": token,
            "instrument_id": "nrs",
            "item_pain": "5",
            "administered_at": "0001-01-01T00:00",
        },
    )
    assert response.status_code == 422
    assert "Given at cannot be before 1 January 1900." in response.text


def test_a_record_form_with_a_version_number_of_thousands_of_digits_is_refused(
    client: TestClient,
):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/record",
        data={**FILLED, "expected_version": "9" * 5000, "reason": "x", "csrf_token": token},
    )
    assert response.status_code == 422
    assert "expected_version" in response.text


def test_a_plan_form_with_a_version_number_of_thousands_of_digits_is_not_a_500(
    client: TestClient,
):
    token = signed_in(client, "physician")
    response = client.post(
        "/patients/1/opioid-plans",
        data={"csrf_token": token, "patient_version": "9" * 5000, "convert_opioid_id": "x"},
    )
    assert response.status_code < 500
