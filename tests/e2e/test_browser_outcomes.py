"""Outcomes in a real browser: a physician opens a patient whose course (given 50 days ago)
has a diary and follow-ups, sees the Outcome card (the pain chart with the session and the
relief, the table with each definition's source, the proposal with its reasoning), is told
what is missing when the decision has no reason, records a repeat decision with a reason and
sees it recorded; the follow-up list is reached from the navigation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from argon2 import PasswordHasher
from tests.e2e.conftest import (
    E2E_PASSWORD,
    LAPTOP,
    Screens,
    assert_accessible_basics,
    serving,
    sign_in,
)
from tests.integration.conftest import GivenCourse, course_assessment, past_course, write_diary

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, diary, indicators
from ketapath.services.indicators import IndicatorsInput
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser


@dataclass
class Clinic:
    url: str
    course: GivenCourse


def _course(database: Database, users: dict[str, Actor]) -> GivenCourse:
    """Baseline NRS 8; diary 3 for days 1-20, then 7 (back within 1 point): relief 21 days;
    NRS 3 at the 4-week follow-up (62.5% less); indicators: 30% less pain, 14 days."""
    course = past_course(database, users, days_ago=50, name="Outcome Patient")
    last = course.last_day
    course_assessment(
        database, users, course, "nrs", {"pain": 8}, label="baseline", day=last - timedelta(1)
    )
    course_assessment(
        database,
        users,
        course,
        "nrs",
        {"pain": 3},
        label="follow-up",
        day=last + timedelta(days=28),
        timepoint_days=28,
    )
    pains = {last + timedelta(days=k): 3 if k <= 20 else 7 for k in range(1, 41)}
    write_diary(database, users, course.order_id, pains)
    indicators.record_indicators(
        database,
        users["physician"],
        course.patient_id,
        IndicatorsInput.model_validate(
            {
                "order_id": course.order_id,
                "indicators": {"pain_reduction_percent": 30, "relief_days": 14},
            }
        ),
    )
    return course


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Clinic]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-outcomes') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    users = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        users[role] = Actor(view.id, view.username, view.role)
    course = _course(database, users)
    diary.reset_rate_limits()
    settings = Settings(database_url=url, secret_key="browser-outcomes-secret-key")
    try:
        with serving(create_app(settings, database=database)) as base_url:
            yield Clinic(base_url, course)
    finally:
        database.dispose()
        monkeypatch.undo()


def test_a_physician_sees_the_outcome_and_records_a_repeat_decision(
    browser: Any, clinic: Clinic, screens: Screens
) -> None:
    context = browser.new_context(viewport=LAPTOP, base_url=clinic.url)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        sign_in(page, "physician")
        page.goto(f"/patients/{clinic.course.patient_id}")
        card = page.locator(f"#outcome-{clinic.course.order_id}")
        card.scroll_into_view_if_needed()
        assert card.locator("svg.days-chart").count() == 1
        assert card.locator("svg.days-chart .marker").count() == 1  # the session
        assert "relief 21 days" in (card.locator("svg.days-chart .band-label").text_content() or "")
        relief = card.locator('tr[data-outcome="relief"]')
        assert "21 days" in relief.inner_text() and "ended" in relief.inner_text()
        assert relief.locator("a.cite").count() >= 1  # the definition's source
        auc = card.locator('tr[data-outcome="pain-auc"]').inner_text()
        assert "160 pain score-days" in auc  # 19 x 3 + (3 + 7) / 2 + 14 x 7
        assert "responder" in card.locator('tr[data-outcome="responder-50"]').inner_text()
        timepoint = card.locator('tr[data-outcome="responder-30"] [data-timepoint]')
        assert "judged at the latest" in timepoint.inner_text()  # the registry: the first
        proposal = card.locator(f"#proposal-{clinic.course.order_id}")
        assert proposal.get_attribute("data-proposal") == "repeat"
        assert "Every agreed indicator was met" in proposal.inner_text()
        assert_accessible_basics(page)
        screens.shot(page, "outcome-card")

        form = page.locator(f"#decision-form-{clinic.course.order_id}")
        form.get_by_label("Repeat the course").check()
        form.get_by_role("button", name="Record the decision").click()
        page.wait_for_load_state()
        assert "Reason is required" in page.locator(".error-summary").first.inner_text()
        screens.shot(page, "reason-missing")

        form = page.locator(f"#decision-form-{clinic.course.order_id}")
        form.get_by_label("Repeat the course").check()
        form.get_by_label("Reason").fill("Relief for three weeks, as agreed; repeat in a month.")
        form.get_by_role("button", name="Record the decision").click()
        page.wait_for_load_state()
        decided = page.locator(f"#decision-{clinic.course.order_id}")
        assert decided.get_attribute("data-decision") == "repeat"
        assert "Relief for three weeks" in decided.inner_text()
        assert "by physician" in decided.inner_text()
        screens.shot(page, "decision-recorded")

        page.get_by_role("link", name="Follow-ups").click()
        page.wait_for_load_state()
        assert page.locator("h1").inner_text() == "Follow-ups due and overdue"
        assert_accessible_basics(page)
        screens.shot(page, "follow-ups")
    finally:
        context.close()
