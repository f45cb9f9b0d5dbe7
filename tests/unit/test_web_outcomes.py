"""The outcome pages: the Outcome card and the safety checks due on the patient page (for
physicians and nurses only), the decision form (refused forms come back with the problem
beside its field and save nothing; only a physician sees and posts it), and /follow-ups."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import GivenCourse, course_assessment, past_course
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services import auth, diary
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database
from ketapath.store.models import RepeatDecision

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


@pytest.fixture
def course(database: Database) -> GivenCourse:
    """A course given 20 days ago with a baseline NRS of 7."""
    diary.reset_rate_limits()
    users = {u.role: Actor(u.id, u.username, u.role) for u in auth.list_users(database, SYSTEM)}
    given = past_course(database, users, days_ago=20, name="Card Patient")
    day = given.last_day - timedelta(days=1)
    course_assessment(database, users, given, "nrs", {"pain": 7}, label="baseline", day=day)
    return given


def text(page: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def decisions(database: Database) -> int:
    from sqlalchemy import func, select

    with database.transaction() as s:
        return s.scalar(select(func.count(RepeatDecision.id))) or 0


def test_a_nurse_sees_the_outcome_card_without_the_decision_form(
    client: TestClient, course: GivenCourse
) -> None:
    signed_in(client, "nurse")
    page = client.get(f"/patients/{course.patient_id}")
    assert page.status_code == 200
    card = page.text
    assert f'id="outcome-{course.order_id}"' in card
    assert 'svg class="chart days-chart"' in card
    words = text(card)
    assert "Not enough data yet" in words and "Safety checks of repeated courses" in words
    assert "ketapath proposes: Not enough data" in words
    assert f'id="decision-form-{course.order_id}"' not in card
    assert 'href="/follow-ups"' in card


@pytest.mark.parametrize("role", ["pharmacist", "researcher"])
def test_other_roles_see_no_outcome_and_no_follow_up_list(
    client: TestClient, course: GivenCourse, role: str
) -> None:
    signed_in(client, role)
    if role == "pharmacist":
        page = client.get(f"/patients/{course.patient_id}")
        assert page.status_code == 200 and "outcome-card" not in page.text
        assert 'href="/follow-ups"' not in page.text
    assert client.get("/follow-ups").status_code == 403


def test_a_decision_without_a_reason_comes_back_in_words_and_saves_nothing(
    client: TestClient, database: Database, course: GivenCourse
) -> None:
    token = signed_in(client, "physician")
    url = f"/orders/{course.order_id}/repeat-decisions"
    refused = client.post(url, data={"csrf_token": token, "decision": "stop", "reason": " "})
    assert refused.status_code == 422
    assert "Reason is required" in text(refused.text)
    assert 'value="stop" checked' in refused.text  # what was chosen is kept
    unknown = client.post(
        url,
        data={
            "csrf_token": token,
            "decision": "change protocol",
            "next_protocol_id": "unicorn",
            "reason": "short relief",
        },
    )
    assert unknown.status_code == 422 and "not a protocol of the library" in text(unknown.text)
    assert decisions(database) == 0
    made = client.post(
        url, data={"csrf_token": token, "decision": "stop", "reason": "No relief at all."}
    )
    assert made.status_code == 303
    assert made.headers["location"] == f"/patients/{course.patient_id}#outcome-{course.order_id}"
    page = client.get(made.headers["location"]).text
    assert 'data-decision="stop"' in page and "No relief at all." in page


def test_a_nurse_cannot_post_a_decision(
    client: TestClient, database: Database, course: GivenCourse
) -> None:
    token = signed_in(client, "nurse")
    answer = client.post(
        f"/orders/{course.order_id}/repeat-decisions",
        data={"csrf_token": token, "decision": "stop", "reason": "x"},
    )
    assert answer.status_code == 403 and decisions(database) == 0


def test_the_follow_up_list_links_each_overdue_timepoint_to_its_form(
    client: TestClient, course: GivenCourse
) -> None:
    signed_in(client, "nurse")
    page = client.get("/follow-ups")
    assert page.status_code == 200
    # 20 days after the session: the 1-week window ended on day 14 (overdue); the 2-week one
    # runs from day 11 to day 21 (due)
    assert f'data-order="{course.order_id}" data-timepoint="7" data-state="overdue"' in page.text
    assert f'data-order="{course.order_id}" data-timepoint="14" data-state="due"' in page.text
    link = (
        f"/patients/{course.patient_id}/assessments/new?instrument_id=nrs&amp;order_id="
        f"{course.order_id}&amp;label=follow-up&amp;timepoint_days=7"
    )
    assert link in page.text
    overdue = client.get("/follow-ups?status=overdue").text
    assert 'data-timepoint="14"' not in overdue
    assert client.get("/follow-ups?status=later").status_code == 422


def test_a_decision_the_service_refuses_comes_back_on_the_card_with_its_status(
    client: TestClient, database: Database, course: GivenCourse
) -> None:
    token = signed_in(client, "physician")
    url = f"/orders/{course.order_id}/repeat-decisions"
    made = client.post(url, data={"csrf_token": token, "decision": "stop", "reason": "No relief."})
    assert made.status_code == 303
    again = client.post(url, data={"csrf_token": token, "decision": "repeat", "reason": "Later."})
    assert again.status_code == 409
    assert f'id="decision-form-{course.order_id}"' in again.text
    assert "is already recorded for this course; amend it" in text(again.text)
    assert 'value="repeat" checked' in again.text  # what was chosen is kept
    unknown = client.post(
        url,
        data={"csrf_token": token, "decision": "repeat", "reason": "Later.", "amends_id": "999"},
    )
    assert unknown.status_code == 404
    assert f'id="decision-form-{course.order_id}"' in unknown.text
    assert f"No repeat decision 999 of order {course.order_id}." in text(unknown.text)
    assert decisions(database) == 1
