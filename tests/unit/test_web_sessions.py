"""The infusion day's pages (issue 10): the worklist and the board, scheduling from the order
page, the session's chart with its forms, prompts, corrections, discharge and the rule that
two nurses charting one session never overwrite each other; roles.

The clinic clock is stopped at 12:00 UTC today (the pages' clock dependency is replaced), so
a morning is charted with typed times as a nurse charts late entries.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import clinic_noon, signed_order
from tests.unit.web_app import PASSWORD, database, form_token, migrated

from ketapath.api.app import create_app
from ketapath.api.params import clinic_clock_of
from ketapath.config import Settings
from ketapath.services import auth, orders, patients, sessions
from ketapath.services.demo import seed_demo
from ketapath.services.permissions import NURSE, SYSTEM, Actor
from ketapath.services.sessions import ScheduleRequest
from ketapath.store.db import Database

__all__ = ["database", "migrated"]  # fixtures used by the tests below

CLOCK = clinic_noon()
TODAY = CLOCK.today().isoformat()
BASELINE = {
    "heart_rate": "72",
    "systolic": "124",
    "diastolic": "78",
    "spo2": "98",
    "respiratory_rate": "14",
    "sedation": "0",
}
CONFIRMED = {
    "consent_confirmed": "on",
    "allergies_confirmed": "on",
    "fasting_confirmed": "on",
    "escort_present": "on",
    "pregnancy_test": "negative",
    "baseline_pain_nrs": "6",
}


@pytest.fixture
def users(database: Database) -> dict[str, Actor]:
    """The web tests' users (user name = role) and a second nurse."""
    view = auth.add_user(database, SYSTEM, "nurse2", NURSE, PASSWORD)
    found = {u.username: Actor(u.id, u.username, u.role) for u in auth.list_users(database, SYSTEM)}
    found["nurse2"] = Actor(view.id, view.username, view.role)
    return found


@pytest.fixture
def app(database: Database) -> Any:
    settings = Settings(
        database_url=database.url, secret_key="session-pages-secret", timezone="UTC"
    )
    application = create_app(settings, database=database)
    application.dependency_overrides[clinic_clock_of] = lambda: CLOCK
    return application


@pytest.fixture
def browser(app: Any) -> Iterator[Callable[[str], TestClient]]:
    """A signed-in browser per user: browser("nurse")."""
    opened: list[TestClient] = []

    def _open(username: str) -> TestClient:
        client = TestClient(app, base_url="https://testserver", follow_redirects=False)
        client.__enter__()
        opened.append(client)
        token = form_token(client.get("/login").text)
        answer = client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": token}
        )
        assert answer.status_code == 303, answer.text
        return client

    yield _open
    for client in opened:
        client.__exit__(None, None, None)


class Chart:
    """One user at one session's page: opens it, posts its forms as the browser would
    (with the last entry the page showed), reads what it shows."""

    def __init__(self, client: TestClient, session_id: int) -> None:
        self.client, self.session_id = client, session_id
        self.token, self.seen, self.page = "", 0, ""

    def open(self, query: str = "") -> str:
        answer = self.client.get(f"/sessions/{self.session_id}{query}")
        assert answer.status_code == 200, answer.text
        self.read(answer.text)
        return self.page

    def read(self, page: str) -> None:
        self.page = page
        self.token = form_token(page) if 'name="csrf_token"' in page else self.token
        match = re.search(r'data-last-seq="(\d+)"', page)
        self.seen = int(match.group(1)) if match else self.seen

    def post(self, kind: str, time: str = "", **fields: str) -> httpx.Response:
        data = {
            "csrf_token": self.token,
            "expected_seq": str(self.seen),
            "day": TODAY,
            "kind": kind,
            "time": time,
            **fields,
        }
        answer = self.client.post(f"/sessions/{self.session_id}/entries", data=data)
        if answer.status_code != 303:
            self.read(answer.text)
        return answer

    def chart(self, kind: str, time: str = "", **fields: str) -> str:
        """Post a form that must be saved; returns the page it leads to."""
        answer = self.post(kind, time, **fields)
        assert answer.status_code == 303, html.unescape(answer.text)[-3000:]
        return self.open(answer.headers["location"].removeprefix(f"/sessions/{self.session_id}"))

    def check_in(self, time: str = "09:00", **changes: str) -> str:
        return self.chart("check_in", time, **{**CONFIRMED, **BASELINE, **changes})

    def acknowledge(self, prompt_id: str, note: str = "") -> httpx.Response:
        data = {"csrf_token": self.token, "expected_seq": str(self.seen), "note": note}
        return self.client.post(
            f"/sessions/{self.session_id}/prompts/{prompt_id}/acknowledge", data=data
        )


def scheduled(
    database: Database, users: dict[str, Actor], chair: str = "Chair 1", **order: Any
) -> int:
    """A signed order scheduled from today in ``chair``; its first session's id."""
    order_id = signed_order(database, users, **order)
    request = ScheduleRequest(first_date=CLOCK.today(), chair=chair)
    return sessions.schedule_course(database, users["nurse"], order_id, request, clock=CLOCK)[0].id


def text(page: str) -> str:
    """The page's words (tags dropped, entities read, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def element(page: str, element_id: str) -> str:
    """The words of the element with ``element_id`` (to the end of its tag's block)."""
    start = page.index(f'id="{element_id}"')
    tag = page.rfind("<", 0, start)
    name = re.match(r"<(\w+)", page[tag:]).group(1)  # type: ignore[union-attr]
    depth, index = 0, tag
    for match in re.finditer(rf"<(/?){name}\b[^>]*>", page[tag:]):
        depth += -1 if match.group(1) else 1
        if depth == 0:
            index = tag + match.end()
            break
    return text(page[tag:index])


def field_error(page: str, field_id: str) -> str:
    match = re.search(rf'<p class="field-error" id="{field_id}-error">([^<]*)</p>', page)
    return html.unescape(match.group(1)) if match else ""


# ------------------------------------------------------------------ worklist, board, roles


def test_the_worklist_lists_the_days_sessions_by_chair_with_what_to_do_next(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    scheduled(database, users, "Chair 1", name="Ada First")
    scheduled(database, users, "Chair 2", name="Bea Second")
    nurse = browser("nurse")
    page = nurse.get("/sessions").text
    assert f'<input type="date" id="worklist-on" name="on" value="{TODAY}">' in page
    rows = element(page, "worklist")
    assert "Ada First" in rows and "Bea Second" in rows
    assert rows.count("Check the patient in") == 2
    one_chair = element(nurse.get("/sessions", params={"chair": "Chair 2"}).text, "worklist")
    assert "Bea Second" in one_chair and "Ada First" not in one_chair
    tomorrow = (CLOCK.today() + timedelta(days=1)).isoformat()
    assert "No sessions on" in nurse.get("/sessions", params={"on": tomorrow}).text
    assert nurse.get("/sessions", params={"on": "not a date"}).status_code == 422


def test_the_board_shows_each_chair_with_its_rate_observations_due_and_alerts(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users, "Chair 7", name="Cal Running")
    nurse = Chart(browser("nurse"), session_id)
    nurse.open()
    nurse.check_in("11:00", fasting_confirmed="")
    nurse.chart("start", "11:05")
    board = nurse.client.get("/sessions/board").text
    chair = element(board, "board")
    assert "Cal Running" in chair and "Running" in chair and "26.66 mg/h" in chair
    assert "Observations overdue by 45 min (11:15 UTC)" in chair
    assert "Fasting was not confirmed at check-in" in chair  # an alert nobody has answered
    assert 'hx-trigger="every 60s"' in board and 'http-equiv="refresh"' in board
    partial = nurse.client.get("/sessions/board", headers={"HX-Request": "true"}).text
    assert partial.lstrip().startswith("<section") and "<html" not in partial


def test_nurses_and_physicians_chart_pharmacists_read_researchers_and_admins_are_refused(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users)
    for role in ("nurse", "physician"):
        page = browser(role).get(f"/sessions/{session_id}").text
        assert '<a href="/sessions"' in page and 'id="check-in"' in page
    pharmacist = browser("pharmacist")
    page = pharmacist.get(f"/sessions/{session_id}").text
    assert 'id="read-only"' in page and "/entries" not in page
    assert '<a href="/sessions"' not in page  # no link in the navigation
    refused = Chart(pharmacist, session_id)
    refused.read(page)
    answer = refused.post("check_in", "09:00", **CONFIRMED, **BASELINE)
    assert answer.status_code == 403 and "Not allowed for your role" in answer.text
    for role in ("researcher", "admin"):
        client = browser(role)
        for path in ("/sessions", "/sessions/board", f"/sessions/{session_id}"):
            answer = client.get(path)
            assert answer.status_code == 403, path
            assert "Not allowed for your role" in answer.text


# ------------------------------------------------------------------ scheduling


def test_a_signed_order_is_scheduled_from_its_page_and_the_patient_page_lists_its_sessions(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    order_id = signed_order(database, users, protocol_id="mixed-kang-3session")
    nurse = browser("nurse")
    page = nurse.get(f"/orders/{order_id}").text
    assert 'id="schedule-form"' in page and f'value="{TODAY}"' in page
    yesterday = (CLOCK.today() - timedelta(days=1)).isoformat()
    token = form_token(page)
    refused = nurse.post(
        f"/orders/{order_id}/sessions",
        data={"csrf_token": token, "first_date": yesterday, "chair": "Chair #1!"},
    )
    assert refused.status_code == 422
    assert "letters, digits, spaces" in field_error(refused.text, "schedule-chair")
    assert f'value="{yesterday}"' in refused.text and 'value="Chair #1!"' in refused.text
    refused = nurse.post(
        f"/orders/{order_id}/sessions",
        data={"csrf_token": token, "first_date": yesterday, "chair": "Chair 4"},
    )
    assert "is before today" in field_error(refused.text, "schedule-first_date")
    answer = nurse.post(
        f"/orders/{order_id}/sessions",
        data={"csrf_token": token, "first_date": TODAY, "chair": "Chair 4"},
    )
    assert answer.status_code == 303
    assert re.fullmatch(r"/sessions/\d+\?scheduled=3", answer.headers["location"])
    assert "Scheduled 3 sessions" in text(nurse.get(answer.headers["location"]).text)
    listed = element(nurse.get(f"/orders/{order_id}").text, "order-sessions")
    assert listed.count("Chair 4") == 3 and "Session 3 of 3" in listed
    patient_id = orders.get_order(database, users["nurse"], order_id).patient_id
    patient_page = nurse.get(f"/patients/{patient_id}").text
    assert "Session 1 of 3" in element(patient_page, "patient-sessions")
    assert "Ketamine delivered over every session: 0 mg" in text(patient_page)


def test_a_cancelled_or_stale_order_says_why_it_cannot_be_scheduled(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    cancelled = signed_order(database, users)
    orders.cancel_order(database, users["physician"], cancelled, reason="plan changed")
    stale = signed_order(database, users, name="Stale Weight")
    patient_id = orders.get_order(database, users["nurse"], stale).patient_id
    record = patients.get_patient(database, users["nurse"], patient_id)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**record.document, "weight_kg": 95},
        reason="re-weighed",
        expected_version=record.version,
    )
    nurse = browser("nurse")
    page = nurse.get(f"/orders/{cancelled}").text
    assert "schedule-form" not in page
    assert "Cannot be scheduled: order" in text(page) and "plan changed" in text(page)
    page = nurse.get(f"/orders/{stale}").text
    assert "schedule-form" not in page
    assert "its dosing facts changed after signing" in element(page, "schedule-blocked")
    answer = nurse.post(
        f"/orders/{stale}/sessions",
        data={"csrf_token": form_token(page), "first_date": TODAY, "chair": "Chair 1"},
    )
    assert answer.status_code == 409
    assert "dosing facts changed" in text(answer.text)


# ------------------------------------------------------------------ the chart


def test_check_in_names_every_problem_at_once_beside_its_field_and_keeps_what_was_typed(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    page = chart.open()
    assert 'id="programme-vtbi">80 mL' in page and "26.66" in element(page, "programme-steps")
    assert re.search(r'id="check_in-consent_confirmed"[^>]*autofocus', page)
    answer = chart.post("check_in", "9:7x", heart_rate="72", systolic="abc", escort_present="on")
    assert answer.status_code == 422
    page = answer.text
    assert "Not saved." in element(page, "chart-refused")
    for field in ("consent_confirmed", "allergies_confirmed", "pregnancy_test", "diastolic"):
        assert field_error(page, f"check_in-{field}"), field
    assert field_error(page, "check_in-systolic") == "A whole number, please."
    assert field_error(page, "check_in-time").startswith("A time as HH:MM")
    assert field_error(page, "check_in-baseline_pain_nrs") == "Required."
    assert 'id="check_in-heart_rate" name="heart_rate"' in page and 'value="72"' in page
    assert 'value="abc"' in page and re.search(r'id="check_in-escort_present"[^>]*checked', page)
    assert re.search(r'id="check_in-systolic"[^>]*aria-invalid="true"', page)
    page = chart.check_in()
    assert 'data-state="checked_in"' in page
    assert "frozen at check-in" in element(page, "programme")
    assert 'id="form-start"' in page and 'id="form-pause"' not in page


def test_only_the_actions_the_state_allows_are_shown_and_an_illegal_one_is_refused_plainly(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    chart.open()
    chart.check_in()
    page = chart.chart("start", "09:05")
    for shown in ("form-pause", "form-stop", "form-complete", "form-vitals", "form-side_effect"):
        assert f'id="{shown}"' in page, shown
    for hidden in ("form-start", "form-resume", "form-bolus", "form-discharge", "check-in"):
        assert f'id="{hidden}"' not in page, hidden
    assert 'id="form-rate_change"' not in page  # the order has one rate only
    answer = chart.post("resume", "09:10")
    assert answer.status_code == 409
    assert (
        "Not saved. Cannot resume the infusion: the session is running. Allowed now: "
        "change the rate, pause the infusion, stop the infusion"
    ) in element(answer.text, "chart-refused")
    answer = chart.post("teleport", "09:10")
    assert answer.status_code == 422 and "does not say what it charts" in answer.text


def test_a_full_set_of_vitals_is_one_row_saved_with_enter_and_plotted_with_the_rate(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    chart.open()
    chart.check_in()
    page = chart.chart("start", "09:05")
    assert re.search(r'id="vitals-heart_rate"[^>]*autofocus', page)
    form = page[
        page.index('id="form-vitals"') : page.index("</form>", page.index('id="form-vitals"'))
    ]
    assert form.count('type="submit"') == 1  # Enter in any field saves the row
    page = chart.chart("vitals", "09:20", **{**BASELINE, "heart_rate": "88", "systolic": "141"})
    assert "Saved: observations at 09:20 UTC (entry 3)." in element(page, "chart-saved")
    assert "88" in element(page, "vitals-table") and "141/78" in element(page, "vitals-table")
    for chart_id in ("chart-haemodynamics", "chart-respiration", "chart-rate"):
        assert '<svg class="chart time-chart"' in page and f'id="{chart_id}"' in page
    assert "Heart rate /min: 09:00 72, 09:20 88" in html.unescape(page)
    assert "Ketamine mg/h: 09:05 26.66, 12:00 26.66" in html.unescape(page)
    # delivered from the chart at the clinic's now (12:00): 26.66 mg/h for 2 h 55 min
    assert "77.8 mg of 80 mg ordered (97%)" in element(page, "live-dose")
    live = chart.client.get(f"/sessions/{chart.session_id}/live", params={"seen": 1}).text
    assert "Charted since this page was opened: 2 new entries" in text(live)
    assert 'id="session-charts" aria-labelledby="charts-h" hx-swap-oob="true"' in live


def test_a_troublesome_side_effect_asks_for_an_hours_pause_which_holds_a_nurses_resume(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users)
    chart = Chart(browser("nurse"), session_id)
    chart.open()
    chart.check_in("10:00")
    chart.chart("start", "10:05")
    page = chart.chart("side_effect", "11:25", effect="hallucination", severity="severe")
    prompt = element(page, "active-prompts")
    assert "Hallucination at 11:25 is troublesome: pause the infusion for 60 minutes" in prompt
    assert "FPM (ANZCA) ketamine proposal 2016, section 5" in prompt
    assert 'href="/references#fpm-anzca-2016-ketamine"' in page
    assert '<option value="side_effect" selected>' in page[page.index('id="form-pause"') :]
    page = chart.chart("pause", "11:30", reason="side_effect")
    assert 'data-state="paused"' in page and 'id="form-resume"' not in page
    assert "the pause for a side effect lasts until 12:30" in element(page, "held-actions")
    physician = Chart(browser("physician"), session_id)
    page = physician.open()
    assert 'id="form-resume"' in page and "as a physician you may resume now" in page
    page = physician.chart("resume", "11:55")
    assert 'data-state="running"' in page
    assert "Resumed" in element(page, "entry-5") and "by physician (physician)" in page


def test_a_recurrence_asks_to_call_the_physician_and_the_acknowledgement_records_the_direction(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    chart.open()
    chart.check_in("08:00")
    chart.chart("start", "08:05")
    chart.chart("side_effect", "08:20", effect="nausea-vomiting", severity="moderate")
    chart.chart("pause", "08:21", reason="side_effect")
    chart.chart("resume", "09:25")
    page = chart.chart("side_effect", "09:40", effect="headache", severity="moderate")
    call = re.search(r'data-prompt="(call-\d+)"', page)
    assert call and "contact the responsible physician for direction" in element(
        page, f"prompt-{call.group(1)}"
    )
    answer = chart.acknowledge(call.group(1))
    assert answer.status_code == 422
    assert "Record the responsible physician's direction" in field_error(
        answer.text, f"ack-{call.group(1)}-note"
    )
    answer = chart.acknowledge(call.group(1), "Dr Lee: carry on, ondansetron 4 mg")
    assert answer.status_code == 303
    page = chart.open(answer.headers["location"].removeprefix(f"/sessions/{chart.session_id}"))
    resolved = element(page, "resolved-prompts")
    assert (
        "Acknowledged by nurse (nurse) at 12:00 UTC: “Dr Lee: carry on, ondansetron 4 mg”"
        in resolved
    )


def test_an_observation_from_a_second_nurse_lands_and_a_conflicting_change_shows_the_fresh_chart(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users)
    first = Chart(browser("nurse"), session_id)
    first.open()
    first.check_in()
    first.chart("start", "09:05")
    second = Chart(browser("nurse2"), session_id)
    second.open()
    second.chart("pause", "09:30", reason="patient_request")
    # the first nurse's page still shows entry 2: an observation lands all the same
    page = first.chart("vitals", "09:31", **BASELINE)
    saved = element(page, "chart-saved")
    assert "Saved: observations at 09:31 UTC (entry 4)." in saved
    assert "Charted meanwhile by others: entry 3, pause by nurse2 at 09:30 UTC." in saved
    # a change of state from a page that has not seen the pause is refused, on the fresh chart
    first.seen = 2
    answer = first.post("stop", "09:32", reason="equipment", note="line kinked")
    assert answer.status_code == 409
    conflict = element(answer.text, "chart-conflict")
    assert conflict.startswith(
        "Not saved: you were about to stop the infusion, but the chart changed after entry 2"
    )
    assert (
        "Charted since: entry 3, paused by nurse2 at 09:30 UTC; entry 4, observations by nurse "
        "at 09:31 UTC."
    ) in conflict
    assert "The chart below is the current one" in conflict
    assert 'data-state="paused"' in answer.text
    assert (
        '<option value="equipment" selected>' in answer.text
        and 'value="line kinked"' in answer.text
    )
    assert 'name="expected_seq" value="4"' in answer.text  # the form now carries the fresh chart


def test_a_rate_change_offers_only_the_orders_rates_and_refuses_another(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users, protocol_id="titrate-correll", setting="ward")
    chart = Chart(browser("nurse"), session_id)
    chart.open()
    chart.check_in()
    page = chart.chart("start", "09:05")
    form = page[page.index('id="form-rate_change"') :]
    form = form[: form.index("</form>")]
    options = re.findall(r'<option value="([^"]+)"', form)
    assert options == ["15.0", "20.0", "25.0"]  # mL/h: the order's other steps
    answer = chart.post("rate_change", "09:30", rate_ml_per_h="12.5")
    assert answer.status_code == 422
    assert "12.5 mL/h is not a rate of the signed order" in field_error(
        answer.text, "rate_change-rate_ml_per_h"
    )
    page = chart.chart("rate_change", "09:30", rate_ml_per_h="15.0")
    assert "15 mg/h" in element(page, "live-rate") and "(step 2)" in element(page, "live-rate")


def test_a_correction_keeps_the_original_struck_through_with_who_corrected_it_and_why(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users)
    chart = Chart(browser("nurse"), session_id)
    chart.open()
    chart.check_in()
    chart.chart("start", "09:05")
    chart.chart("vitals", "09:20", **{**BASELINE, "heart_rate": "47"})
    page = chart.client.get(f"/sessions/{session_id}/entries/3/correct").text
    assert 'id="vitals-heart_rate" name="heart_rate"' in page and 'value="47"' in page
    assert 'value="09:20"' in page
    data = {"csrf_token": chart.token, "expected_seq": "3", "day": TODAY, "kind": "vitals"}
    data |= {**BASELINE, "heart_rate": "74", "time": "09:20"}
    refused = chart.client.post(f"/sessions/{session_id}/entries/3/correct", data=data)
    assert refused.status_code == 422
    assert field_error(refused.text, "vitals-correction_reason").startswith("Required")
    assert 'value="74"' in refused.text
    data["correction_reason"] = "typed 47 for 74"
    answer = chart.client.post(f"/sessions/{session_id}/entries/3/correct", data=data)
    assert answer.status_code == 303
    page = chart.open()
    original = page[page.index('id="entry-3"') : page.index("</li>", page.index('id="entry-3"'))]
    assert "<del><strong>Observations</strong>: HR 47" in original
    assert "Corrected by nurse at" in text(original) and "typed 47 for 74" in text(original)
    assert "Corrects entry 3: “typed 47 for 74”" in element(page, "entry-4")
    assert "corrected" in element(page, "vitals-table") and "74" in element(page, "vitals-table")
    assert "vital-heart-rate" not in element(page, "prompts")  # the alert went with the 47
    # a side effect entered in error is voided, with a reason; it stays in the log
    chart.chart("side_effect", "09:40", effect="headache", severity="mild")
    void = chart.client.post(
        f"/sessions/{session_id}/entries/5/void",
        data={"csrf_token": chart.token, "expected_seq": "5", "reason": "wrong patient"},
    )
    assert void.status_code == 303
    page = chart.open()
    assert "side-effects-table" not in page
    assert "Voided by nurse" in element(page, "entry-5") and "wrong patient" in page


def test_discharge_waits_for_the_criteria_or_a_physicians_reason(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users)
    nurse = Chart(browser("nurse"), session_id)
    nurse.open()
    nurse.check_in("08:00")
    nurse.chart("start", "08:05")
    nurse.chart("stop", "11:30", reason="patient_request")
    page = nurse.chart("begin_observation", "11:31")
    assert 'id="form-discharge"' not in page
    held = element(page, "held-actions")
    assert "Discharge held: Observation until 12:30" in held
    assert "A physician may discharge with a written reason." in held
    assert "cannot be scored yet" in element(page, "discharge-blockers")
    physician = Chart(browser("physician"), session_id)
    page = physician.open()
    assert "As a physician you may discharge with a written reason" in page
    answer = physician.post("discharge", escort_present="on", emergency_plan_given="on")
    assert answer.status_code == 422
    assert field_error(answer.text, "discharge-override_reason").startswith(
        "Cannot discharge yet: Observation until 12:30"
    )
    page = physician.chart(
        "discharge",
        escort_present="on",
        emergency_plan_given="on",
        override_reason="Wants to go; reviewed, settled, carer at home",
    )
    assert 'data-state="discharged"' in page
    assert "reviewed, settled" in element(page, "discharge-override")
    assert "Observation until 12:30" in element(page, "overridden")
    assert 'id="chart-now"' not in page


def test_a_session_that_does_not_go_ahead_is_cancelled_with_a_reason(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    page = chart.open()
    assert "The patient did not attend" in element(page, "not-going-ahead")
    answer = chart.post("cancel", "08:00")
    assert answer.status_code == 422
    assert field_error(answer.text, "cancel-reason") == "Required."
    assert '<details class="card not-going-ahead" id="not-going-ahead" open>' in answer.text
    page = chart.chart("cancel", "08:00", reason="unwell today")
    assert 'data-state="cancelled"' in page and "unwell today" in element(page, "chart-log")


def test_a_session_whose_order_went_stale_offers_no_check_in_and_a_hand_made_one_is_refused(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users, name="Stale At The Door")
    patient_id = sessions.get_session(database, users["nurse"], session_id, clock=CLOCK).patient_id
    record = patients.get_patient(database, users["nurse"], patient_id)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**record.document, "weight_kg": 95},
        reason="re-weighed at the door",
        expected_version=record.version,
    )
    chart = Chart(browser("nurse"), session_id)
    page = chart.open()
    assert 'id="check-in"' not in page
    assert "Check-in is not possible: order" in element(page, "cannot-check-in")
    assert "dosing facts changed after signing" in element(page, "order-problem")
    answer = chart.post("check_in", "09:00", **CONFIRMED, **BASELINE)
    assert answer.status_code == 409
    assert "cannot be used: its dosing facts changed" in element(answer.text, "chart-refused")


def test_the_demo_clinic_opens_on_a_worklist_with_something_to_do(
    migrated: Path, tmp_path: Path
) -> None:
    path = tmp_path / "demo.sqlite3"
    shutil.copyfile(migrated, path)
    demo = Database(f"sqlite:///{path}")
    try:
        password = {u.role: u.password for u in seed_demo(demo)}["nurse"]
        settings = Settings(database_url=demo.url, secret_key="session-pages-demo-secret")
        with TestClient(create_app(settings, database=demo), base_url="https://testserver") as c:
            token = form_token(c.get("/login").text)
            c.post("/login", data={"username": "nurse", "password": password, "csrf_token": token})
            worklist = element(c.get("/sessions").text, "worklist")
    finally:
        demo.dispose()
    assert "Check the patient in" in worklist and "Observations due" in worklist


def test_every_kind_of_entry_opens_its_correction_form_filled_in_as_charted(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    session_id = scheduled(database, users, protocol_id="mixed-kang-3session")
    chart = Chart(browser("nurse"), session_id)
    chart.open()
    chart.check_in("08:00", high_respiratory_risk="on", etco2="38")
    chart.chart("bolus", "08:02", dose_mg="14")
    chart.chart("start", "08:05")
    chart.chart("adjunct", "08:06", drug="midazolam", dose="1", unit="mg", route="IV")
    chart.chart("pause", "08:10", reason="equipment")
    chart.chart("resume", "08:12")
    chart.chart("note", "08:13", note="line re-sited")
    page = chart.chart("stop", "08:20", reason="patient_request")
    assert "midazolam 1 mg iv" in element(page, "chart-log")  # the route as the library has it
    expected = {
        1: ('name="consent_confirmed" required checked', 'value="38"', 'value="08:00"'),
        2: ('value="14"', 'value="08:02"'),
        3: ('value="08:05"',),
        4: ('value="midazolam"', 'value="iv"', 'value="08:06"'),
        5: ('<option value="equipment" selected>', 'value="08:10"'),
        6: ('value="08:12"',),
        7: ("line re-sited</textarea>", 'value="08:13"'),
        8: ('<option value="patient_request" selected>', 'value="08:20"'),
    }
    for seq, shown in expected.items():
        page = chart.client.get(f"/sessions/{session_id}/entries/{seq}/correct").text
        assert 'id="form-correct"' in page, seq
        for snippet in shown:
            assert snippet in re.sub(r'id="[^"]+" (name="[^"]+")', r"\1", page), (seq, snippet)
        assert ('id="form-void"' in page) == (seq in (4, 7)), seq


def test_the_session_page_shows_the_predicted_exposure_as_ordered_and_as_given(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    page = chart.open()
    assert 'id="session-exposure"' not in page  # nothing to compare before check-in
    chart.check_in()
    page = chart.chart("start", "09:05")
    panel = element(page, "session-exposure")
    assert "Predicted exposure: as ordered and as given" in panel
    assert "The as-given curves start at the first dose charted, 09:05" in panel
    # the clinic's now is 12:00: 2 h 55 min of 26.66 mg/h given, of 80 mg ordered
    assert "80 mg ordered, 77.8 mg given so far" in panel
    assert '<svg class="chart curves" id="session-exposure-chart"' in page
    assert "as ordered:" in html.unescape(page) and "as given:" in html.unescape(page)
    summary = element(page, "session-exposure-summary")
    assert "Given, % of ordered AUC" in summary and "seed" not in panel.lower()
    pharmacist = Chart(browser("pharmacist"), chart.session_id)
    assert 'id="session-exposure"' in pharmacist.open()
