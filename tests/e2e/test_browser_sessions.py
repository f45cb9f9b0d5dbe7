"""The infusion day in a real browser (issue 10): a nurse schedules a signed course, checks the
patient in, runs the pump and charts a full session to discharge, at tablet (768x1024) and
desktop sizes, with a pause for a troublesome side effect and a recurrence that calls the
physician; a second session stops for dissociation and a physician discharges it early with a
reason; the clinic board shows the running chair.

The server here has its own database and a clinic clock stopped at 12:00 UTC today, so a
morning is charted with typed times (HH:MM, as a nurse charts late entries) and the hour's
pause, the observation period and the discharge score read the same on every run.
"""

from __future__ import annotations

import re
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
from tests.integration.conftest import check_in_entry, clinic_noon, signed_order

from ketapath.api.app import create_app
from ketapath.api.params import clinic_clock_of
from ketapath.config import Settings
from ketapath.services import auth, sessions
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.services.sessions import ChartWrite, ScheduleRequest
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

pytestmark = pytest.mark.browser

TABLET_PORTRAIT = {"width": 768, "height": 1024}
CLOCK = clinic_noon()


@dataclass
class Clinic:
    """The server's address and what the scenarios start from."""

    url: str
    database: Database
    users: dict[str, Actor]

    def order(self, **changes: Any) -> int:
        """A screened patient with a physician's signed order (asra-initial by default)."""
        return signed_order(self.database, self.users, **changes)

    def session(self, chair: str, **changes: Any) -> int:
        """A signed order scheduled today in ``chair``: its first session's id."""
        order_id = self.order(**changes)
        request = ScheduleRequest(first_date=CLOCK.today(), chair=chair)
        scheduled = sessions.schedule_course(
            self.database, self.users["nurse"], order_id, request, clock=CLOCK
        )
        return scheduled[0].id


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Clinic]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e-sessions') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    users = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        users[role] = Actor(view.id, view.username, view.role)
    settings = Settings(database_url=url, secret_key="browser-session-secret", timezone="UTC")
    app = create_app(settings, database=database)
    app.dependency_overrides[clinic_clock_of] = lambda: CLOCK
    try:
        with serving(app) as base_url:
            yield Clinic(base_url, database, users)
    finally:
        database.dispose()
        monkeypatch.undo()


@pytest.fixture
def open_page(browser: Any, clinic: Clinic) -> Iterator[Any]:
    contexts = []

    def _open(viewport: dict[str, int]) -> Any:
        context = browser.new_context(viewport=viewport, base_url=clinic.url)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


def _submit(form: Any) -> None:
    form.get_by_role("button").last.click()


def _chart(page: Any, form_id: str, time: str, **fields: str) -> None:
    """Fill one of the chart's forms (selects by value), type the time, save it."""
    form = page.locator(f"#{form_id}")
    for name, value in fields.items():
        control = form.locator(f'[name="{name}"]')
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.locator('[name="time"]').fill(time)
    form.locator('button[type="submit"]').click()
    page.wait_for_load_state()


def _state(page: Any, state: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#session-state")).to_have_attribute("data-state", state)


def _no_sideways_scroll(page: Any) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"the page scrolls sideways by {overflow}px on {page.url}"


@pytest.mark.parametrize("size", ["tablet", "desktop"])
def test_a_nurse_charts_a_session_from_check_in_to_discharge_with_a_pause_and_a_recurrence(
    size: str, clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    viewport = TABLET_PORTRAIT if size == "tablet" else LAPTOP
    chair = f"Chair {size.title()}"
    order_id = clinic.order(name=f"Full Session {size.title()}")
    page = open_page(viewport)
    sign_in(page, "nurse")

    # the order page schedules the course: first date today, a chair
    page.goto(f"/orders/{order_id}")
    page.get_by_label("Chair").fill(chair)
    page.get_by_role("button", name="Schedule the sessions").click()
    expect(page).to_have_url(re.compile(r"/sessions/\d+\?scheduled=1$"))
    _state(page, "scheduled")
    expect(page.locator("#programme-steps")).to_contain_text("26.66")
    expect(page.locator("#programme-vtbi")).to_have_text("80 mL")
    assert_accessible_basics(page)
    _no_sideways_scroll(page)
    session_url = page.url.split("?")[0]

    # the worklist of today lists it with what to do next
    page.get_by_role("link", name="Infusions").click()
    row = page.locator("#worklist tr", has_text=f"Full Session {size.title()}")
    expect(row.locator(".next-step")).to_contain_text("Check the patient in")
    row.get_by_role("link").click()

    # check-in: every missing item is named at once, beside its field
    page.locator("#check-in").get_by_role("button", name="Check in").click()
    expect(page.locator("#chart-refused")).to_be_visible()
    expect(page.locator("#check_in-consent_confirmed-error")).to_be_visible()
    expect(page.locator("#check_in-heart_rate-error")).to_contain_text("Required at check-in")
    expect(page.locator("#check_in-pregnancy_test-error")).to_be_visible()
    check_in = page.locator("#check-in")
    for label in (
        "Consent to the infusion confirmed",
        "Allergies confirmed with the patient",
        "Fasting confirmed",
        "Escort present",
    ):
        check_in.get_by_label(label).check()
    check_in.get_by_label("Pregnancy test").select_option("negative")
    for name, value in (
        ("heart_rate", "72"),
        ("systolic", "124"),
        ("diastolic", "78"),
        ("spo2", "98"),
        ("respiratory_rate", "14"),
        ("sedation", "0"),
        ("baseline_pain_nrs", "6"),
        ("time", "06:00"),
    ):
        check_in.locator(f'[name="{name}"]').fill(value)
    check_in.get_by_role("button", name="Check in").click()
    _state(page, "checked_in")
    screens.shot(page, f"{size}-checked-in")

    # start the pump at the order's rate
    _chart(page, "form-start", "06:05")
    _state(page, "running")
    expect(page.locator("#live-rate")).to_contain_text("26.66 mg/h")

    # a full set of observations in a few keystrokes: the cursor waits in HR
    expect(page.locator("#vitals-heart_rate")).to_be_focused()
    page.keyboard.type("74")
    for value in ("126", "80", "98", "14", "0"):
        page.keyboard.press("Tab")
        page.keyboard.type(value)
    page.keyboard.press("Tab")
    page.keyboard.type("06:20")
    page.keyboard.press("Enter")
    page.wait_for_load_state()
    expect(page.locator("#chart-saved")).to_contain_text("Saved: observations at 06:20")
    expect(page.locator("#vitals-table")).to_contain_text("126/80")
    expect(page.locator("#chart-haemodynamics")).to_be_visible()
    expect(page.locator("#chart-rate")).to_be_visible()

    # a troublesome side effect: the rule asks to pause for an hour, with its source
    _chart(page, "form-side_effect", "06:30", effect="nausea-vomiting", severity="moderate")
    prompt = page.locator('#active-prompts [data-code="session:pause-for-side-effect"]')
    expect(prompt).to_contain_text("pause the infusion for 60 minutes, then recommence")
    expect(prompt.locator(".source")).to_contain_text("FPM (ANZCA)")
    screens.shot(page, f"{size}-pause-prompt")
    expect(page.locator("#form-pause select")).to_have_value("side_effect")
    _chart(page, "form-pause", "06:31")
    _state(page, "paused")
    expect(
        page.locator('#resolved-prompts [data-code="session:pause-for-side-effect"]')
    ).to_contain_text("the infusion was paused")

    # resuming before the hour is refused in plain words beside the time; after it, allowed
    _chart(page, "form-resume", "07:00")
    expect(page.locator("#resume-time-error")).to_contain_text("resume from 07:31")
    _chart(page, "form-resume", "07:35")
    _state(page, "running")

    # the side effect recurs: call the responsible physician, and record the direction
    _chart(page, "form-side_effect", "07:50", effect="headache", severity="moderate")
    call = page.locator('#active-prompts [data-code="session:call-physician"]')
    expect(call).to_contain_text("contact the responsible physician for direction")
    call.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    call = page.locator('[data-code="session:call-physician"]')
    expect(call.locator(".field-error")).to_contain_text("physician's direction")
    call.get_by_label("The responsible physician's direction").fill(
        "Dr Lee called: continue at the same rate, paracetamol 1 g"
    )
    call.get_by_role("button", name="Acknowledge").click()
    page.wait_for_load_state()
    resolved = page.locator('#resolved-prompts [data-code="session:call-physician"]')
    expect(resolved.locator(".acknowledgement")).to_contain_text(
        "Acknowledged by nurse (nurse) at 12:00"
    )
    expect(resolved.locator(".acknowledgement")).to_contain_text("Dr Lee called")
    screens.shot(page, f"{size}-physician-called")

    # the ordered dose is given: complete, observe, assess, discharge
    page.locator("#vitals-heart_rate").fill("76")
    for name, value in (("systolic", "122"), ("diastolic", "78"), ("spo2", "97")):
        page.locator(f"#vitals-{name}").fill(value)
    page.locator("#vitals-respiratory_rate").fill("14")
    page.locator("#vitals-sedation").fill("0")
    page.locator("#vitals-time").fill("10:05")
    page.locator("#vitals-time").press("Enter")
    page.wait_for_load_state()
    _chart(page, "form-complete", "10:09")
    _state(page, "completed")
    expect(page.locator("#live-dose")).to_contain_text("80 mg of 80 mg ordered (100%)")
    _chart(page, "form-begin_observation", "10:12")
    _state(page, "observation")
    for name, value in (
        ("heart_rate", "70"),
        ("systolic", "120"),
        ("diastolic", "76"),
        ("spo2", "98"),
        ("respiratory_rate", "13"),
        ("sedation", "0"),
        ("time", "11:15"),
    ):
        page.locator(f"#vitals-{name}").fill(value)
    page.locator("#vitals-time").press("Enter")
    page.wait_for_load_state()
    assessment = page.locator("#form-discharge_assessment")
    for label in (
        "Oriented to person, place and time",
        "Steady gait",
        "Has had oral fluids",
        "Has voided",
    ):
        assessment.get_by_label(label).check()
    _chart(
        page,
        "form-discharge_assessment",
        "11:16",
        pain_nausea_vomiting="minimal",
        bleeding="minimal",
    )
    expect(page.locator("#padss-total")).to_have_text("10 of 10")
    expect(page.locator("#discharge-ready")).to_be_visible()
    discharge = page.locator("#form-discharge")
    expect(discharge.get_by_label("Escort present")).to_be_checked()
    discharge.get_by_label("Escort's name").fill("Sam Example")
    discharge.get_by_label("After-hours emergency plan given").check()
    _chart(page, "form-discharge", "11:20")
    _state(page, "discharged")
    expect(page.locator("#discharge-record")).to_contain_text("Discharged at 11:20 UTC by nurse")
    expect(page.locator("#chart-now")).to_have_count(0)
    expect(page.locator("#log-entries .log-entry")).to_have_count(14)
    assert_accessible_basics(page)
    _no_sideways_scroll(page)
    screens.shot(page, f"{size}-discharged")
    assert page.url.startswith(session_url)


def test_a_second_session_stops_for_dissociation_and_a_physician_discharges_it_early(
    clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    session_id = clinic.session("Chair 3", name="Dissociation Second")
    nurse = open_page(LAPTOP)
    sign_in(nurse, "nurse")
    nurse.goto(f"/sessions/{session_id}")
    check_in = nurse.locator("#check-in")
    for label in (
        "Consent to the infusion confirmed",
        "Allergies confirmed with the patient",
        "Fasting confirmed",
        "Escort present",
    ):
        check_in.get_by_label(label).check()
    check_in.get_by_label("Pregnancy test").select_option("negative")
    for name, value in zip(
        ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "sedation"),
        ("80", "130", "82", "97", "15", "0"),
        strict=True,
    ):
        check_in.locator(f'[name="{name}"]').fill(value)
    check_in.locator('[name="baseline_pain_nrs"]').fill("7")
    check_in.locator('[name="time"]').fill("10:30")
    check_in.get_by_role("button", name="Check in").click()
    _chart(nurse, "form-start", "10:40")
    _state(nurse, "running")

    # dissociation (any severity): the rule asks to stop; CADSS-6 is recorded without a cut-off
    _chart(
        nurse, "form-side_effect", "11:20", effect="dissociation", severity="mild", cadss6_total="9"
    )
    stop = nurse.locator('#active-prompts [data-code="session:stop-infusion"]')
    expect(stop).to_contain_text("Dissociation reported at 11:20: stop the infusion.")
    expect(nurse.locator("#side-effects-table")).to_contain_text("9")
    expect(nurse.locator("#form-stop select")).to_have_value("dissociation")
    screens.shot(nurse, "stop-prompt")
    _chart(nurse, "form-stop", "11:22")
    _state(nurse, "stopped")
    expect(nurse.locator('#resolved-prompts [data-code="session:stop-infusion"]')).to_contain_text(
        "the infusion was stopped"
    )
    # the pump stopped: the session's exposure summary as given is stored, under its curves
    expect(nurse.locator("#exposure-summary-table")).to_contain_text("S-norketamine")
    expect(nurse.locator("#exposure-summary-above")).to_contain_text("ketamine 100 ng/mL")
    expect(nurse.locator("#exposure-summary-record")).to_contain_text("first computed")
    screens.shot(nurse, "exposure-summary")
    _chart(nurse, "form-begin_observation", "11:25")
    _state(nurse, "observation")
    for name, value in zip(
        ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "sedation", "time"),
        ("78", "128", "80", "98", "14", "0", "11:50"),
        strict=True,
    ):
        nurse.locator(f"#vitals-{name}").fill(value)
    nurse.locator("#vitals-time").press("Enter")
    nurse.wait_for_load_state()
    assessment = nurse.locator("#form-discharge_assessment")
    for label in (
        "Oriented to person, place and time",
        "Steady gait",
        "Has had oral fluids",
        "Has voided",
    ):
        assessment.get_by_label(label).check()
    _chart(
        nurse,
        "form-discharge_assessment",
        "11:52",
        pain_nausea_vomiting="minimal",
        bleeding="minimal",
    )
    # the observation period runs until 12:22: a nurse cannot discharge yet
    expect(nurse.locator("#form-discharge")).to_have_count(0)
    expect(nurse.locator('[data-held="discharge"]')).to_contain_text("Observation until 12:22")

    physician = open_page(LAPTOP)
    sign_in(physician, "physician")
    physician.goto(f"/sessions/{session_id}")
    discharge = physician.locator("#form-discharge")
    expect(discharge.locator("#discharge-blocked")).to_contain_text("Observation until 12:22")
    discharge.get_by_label("After-hours emergency plan given").check()
    _chart(physician, "form-discharge", "")
    expect(physician.locator("#discharge-override_reason-error")).to_contain_text(
        "Cannot discharge yet"
    )
    discharge = physician.locator("#form-discharge")
    expect(discharge.get_by_label("After-hours emergency plan given")).to_be_checked()
    discharge.locator('[name="override_reason"]').fill(
        "Observed 40 minutes, settled, lives next door with a carer; reviewed in person"
    )
    _chart(physician, "form-discharge", "")
    _state(physician, "discharged")
    expect(physician.locator("#discharge-override")).to_contain_text("reviewed in person")
    expect(physician.locator("#overridden")).to_contain_text("Observation until 12:22")
    assert_accessible_basics(physician)
    screens.shot(physician, "physician-override")


def test_the_board_shows_the_running_chair(
    clinic: Clinic, open_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    session_id = clinic.session("Chair 9", name="Board Running")
    start = CLOCK.now() - timedelta(minutes=40)
    for seq, entry in enumerate(
        (check_in_entry(start), {"kind": "start", "occurred_at": start + timedelta(minutes=5)})
    ):
        write = ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
        sessions.chart(clinic.database, clinic.users["nurse"], session_id, write, clock=CLOCK)
    page = open_page(TABLET_PORTRAIT)
    sign_in(page, "nurse")
    page.goto("/sessions/board")
    chair = page.locator('[data-chair="Chair 9"]')
    expect(chair).to_have_attribute("data-state", "running")
    expect(chair).to_contain_text("Board Running")
    expect(chair.locator(".chair-rate")).to_have_text("26.66 mg/h")
    expect(chair.locator(".chair-due")).to_contain_text(
        "Observations overdue by 25 min (11:35 UTC)"
    )
    expect(page.locator("#board")).to_have_attribute("hx-trigger", "every 60s")
    assert_accessible_basics(page)
    _no_sideways_scroll(page)
    screens.shot(page, "board")
