"""The pages of issue 12's course context: the assessment form for a course, the course's
assessments and indicators of success on the order page, the safety follow-up on the
patient page. Refused forms come back with every problem in words and save nothing."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import signed_order
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services import assessments, auth, indicators, safety
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database
from ketapath.store.models import Order

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


@pytest.fixture
def users(database: Database) -> dict[str, Actor]:
    return {u.role: Actor(u.id, u.username, u.role) for u in auth.list_users(database, SYSTEM)}


@pytest.fixture
def order(database: Database, users: dict[str, Actor]) -> tuple[int, int]:
    """A signed order of a new patient: (order id, patient id)."""
    order_id = signed_order(database, users, name="Course Patient")
    with database.transaction() as s:
        row = s.get(Order, order_id)
        assert row is not None
        return order_id, row.patient_id


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def test_the_assessment_form_opened_from_an_order_records_a_follow_up_for_the_course(
    client: TestClient, database: Database, users: dict[str, Actor], order: tuple[int, int]
) -> None:
    order_id, patient_id = order
    token = signed_in(client, "nurse")
    page = client.get(f"/orders/{order_id}")
    assert "Assessments of this course" in page.text
    assert f"order_id={order_id}&amp;label=follow-up" in page.text
    form = client.get(
        f"/patients/{patient_id}/assessments/new",
        params={
            "instrument_id": "nrs",
            "order_id": order_id,
            "label": "follow-up",
            "timepoint_days": 28,
        },
    )
    assert form.status_code == 200
    assert f"For course (order {order_id})" in form.text
    assert 'name="timepoint_days"' in form.text and 'value="28"' in form.text
    saved = client.post(
        f"/patients/{patient_id}/assessments",
        data={
            "csrf_token": token,
            "instrument_id": "nrs",
            "item_pain": "4",
            "order_id": str(order_id),
            "label": "follow-up",
            "timepoint_days": "28",
        },
    )
    assert saved.status_code == 303, text(saved.text)[-600:]
    assert saved.headers["location"] == f"/orders/{order_id}#course-assessments"
    course = assessments.assessments_for_course(database, users["nurse"], order_id)
    assert [a.context.timepoint_days for a in course.follow_up if a.context] == [28]
    assert "Follow-up after the last session: day 28" in text(
        client.get(f"/orders/{order_id}").text
    )


def test_a_follow_up_without_its_timepoint_is_shown_again_in_words_and_nothing_is_saved(
    client: TestClient, database: Database, users: dict[str, Actor], order: tuple[int, int]
) -> None:
    order_id, patient_id = order
    token = signed_in(client, "nurse")
    refused = client.post(
        f"/patients/{patient_id}/assessments",
        data={
            "csrf_token": token,
            "instrument_id": "nrs",
            "item_pain": "4",
            "order_id": str(order_id),
            "label": "follow-up",
            "timepoint_days": "",
        },
    )
    assert refused.status_code == 422
    assert "Days after the last session: a follow-up needs its timepoint" in text(refused.text)
    assert assessments.list_assessments(database, users["nurse"], patient_id) == []


def test_indicators_of_success_are_recorded_and_changed_from_the_order_page(
    client: TestClient, database: Database, users: dict[str, Actor], order: tuple[int, int]
) -> None:
    order_id, _ = order
    token = signed_in(client, "physician")
    assert "No indicators of success are recorded" in client.get(f"/orders/{order_id}").text
    bad = client.post(
        f"/orders/{order_id}/indicators",
        data={"csrf_token": token, "pain_reduction_percent": "130", "function_goal": "walk"},
    )
    assert bad.status_code == 422
    assert "Target pain reduction (%) must be 100 or less." in text(bad.text)
    assert indicators.course_indicators(database, users["nurse"], order_id) is None
    saved = client.post(
        f"/orders/{order_id}/indicators",
        data={"csrf_token": token, "pain_reduction_percent": "30", "function_goal": "walk"},
    )
    assert saved.status_code == 303
    current = indicators.course_indicators(database, users["nurse"], order_id)
    assert current is not None and current.indicators.pain_reduction_percent == 30
    no_reason = client.post(
        f"/orders/{order_id}/indicators",
        data={
            "csrf_token": token,
            "indicators_id": str(current.id),
            "pain_reduction_percent": "50",
        },
    )
    assert no_reason.status_code == 422
    assert "Reason for the change is required." in text(no_reason.text)
    twice = client.post(
        f"/orders/{order_id}/indicators",
        data={"csrf_token": token, "pain_reduction_percent": "40"},
    )
    assert twice.status_code == 409
    assert f"Indicators of success {current.id} are already recorded" in text(twice.text)
    unknown = client.post(
        f"/orders/{order_id}/indicators",
        data={
            "csrf_token": token,
            "indicators_id": "999",
            "pain_reduction_percent": "50",
            "reason": "agreed again",
        },
    )
    assert unknown.status_code == 404
    assert "No indicators of success 999." in text(unknown.text)
    assert 'id="indicators-form"' in unknown.text  # the order page, what was typed kept
    assert re.search(r'id="ind-pain_reduction_percent"[^>]*value="50"', unknown.text)
    changed = client.post(
        f"/orders/{order_id}/indicators",
        data={
            "csrf_token": token,
            "indicators_id": str(current.id),
            "pain_reduction_percent": "50",
            "reason": "agreed again",
        },
    )
    assert changed.status_code == 303
    page = text(client.get(f"/orders/{order_id}").text)
    assert "Target pain reduction 50%" in page and "changed because: agreed again" in page


def test_a_safety_result_is_recorded_from_the_patient_page_and_shown_abnormal_with_its_source(
    client: TestClient, database: Database, users: dict[str, Actor]
) -> None:
    token = signed_in(client, "nurse")
    patient = client.get("/patients/1")
    assert "Safety follow-up" in patient.text and "check_id=liver-enzymes" in patient.text
    form = client.get("/patients/1/safety/new", params={"check_id": "liver-enzymes"})
    assert form.status_code == 200 and "ALT upper limit of normal" in form.text
    missing_limit = client.post(
        "/patients/1/safety-results",
        data={
            "csrf_token": token,
            "check_id": "liver-enzymes",
            "observed_on": "2026-01-05",
            "sf-alt_u_per_l": "80",
        },
    )
    assert missing_limit.status_code == 422
    assert "ALT upper limit of normal is required with ALT" in text(missing_limit.text)
    assert safety.list_safety_results(database, users["nurse"], 1) == []
    saved = client.post(
        "/patients/1/safety-results",
        data={
            "csrf_token": token,
            "check_id": "liver-enzymes",
            "observed_on": "2026-01-05",
            "sf-alt_u_per_l": "80",
            "sf-alt_uln_u_per_l": "40",
        },
    )
    assert saved.status_code == 303, text(saved.text)[-500:]
    page = text(client.get("/patients/1").text)
    assert "Abnormal" in page and "ALT 80 U/L (limit 40 U/L)" in page
    assert "ASRA/AAPM/ASA consensus 2018" in page


def test_a_pharmacist_reads_the_safety_results_but_gets_no_form_and_a_researcher_neither(
    client: TestClient,
) -> None:
    signed_in(client, "pharmacist")
    page = client.get("/patients/1")
    assert 'id="safety"' in page.text and 'id="safety-links"' not in page.text
    assert client.get("/patients/1/safety/new").status_code == 403
