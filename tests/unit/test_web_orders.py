"""Screening and the protocol chooser as pages: who may do what, and what a refusal looks like."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.web_app import client, database, form_token, migrated, signed_in

from ketapath.web.pages import clock, number

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

# Kang's midazolam loading dose (0.1 mg/kg) is 7.2 mg for patient 1 (72 kg): over the soft
# limit of 5 mg per dose.
SOFT = {"protocol_id": "mixed-kang-3session", "setting": "clinic"}
HARD = {"protocol_id": "crps-sigtermans-continuous", "setting": "clinic"}


def screened(client: TestClient, patient_id: int = 1) -> str:
    token = signed_in(client, "physician")
    response = client.post(f"/patients/{patient_id}/screening", data={"csrf_token": token})
    assert response.status_code == 303
    return token


def sign_form(html: str) -> dict[str, str]:
    form = html[html.index('class="form sign-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def test_a_physician_runs_the_screen_and_sees_each_finding_with_its_source(client: TestClient):
    screened(client, 2)
    page = client.get("/patients/2/screening")
    assert "Needs a physician" in page.text
    assert 'data-code="purpose:not-stated"' in page.text
    assert 'href="/references#fpm-anzca-2016-ketamine"' in page.text
    assert "FPM (ANZCA) ketamine proposal 2016, section 1 (purpose)" in page.text
    assert "seed" not in page.text.lower()


def test_a_nurse_reads_the_screen_but_may_not_run_it(client: TestClient):
    token = signed_in(client, "nurse")
    assert "Run the screen" not in client.get("/patients/1/screening").text
    response = client.post("/patients/1/screening", data={"csrf_token": token})
    assert response.status_code == 403
    assert "'screening.run' needs the role physician" in html.unescape(response.text)


def test_a_hard_limit_course_is_shown_as_a_refusal_without_a_sign_form(client: TestClient):
    screened(client)
    page = client.get("/patients/1/plan", params=HARD)
    assert page.status_code == 200
    assert "Refused: hard limit" in page.text
    assert "session_total_mg_per_kg" in page.text
    assert "Sign the course" not in page.text


def test_the_chooser_answers_htmx_with_only_the_course_panel(client: TestClient):
    screened(client)
    page = client.get(
        "/patients/1/plan",
        params=SOFT,
        headers={"HX-Request": "true", "HX-Target": "course-panel"},
    )
    assert "<html" not in page.text
    assert 'id="course-status"' in page.text and "limit:midazolam-iv_dose:soft" in page.text


def test_an_unknown_setting_is_reported_naming_the_field(client: TestClient):
    signed_in(client, "physician")
    page = client.get("/patients/1/plan", params={"protocol_id": "asra-initial", "setting": "home"})
    text = html.unescape(page.text)
    assert '<a href="#setting">Care setting: choose one of the options offered.</a>' in text
    assert "Sign the course" not in text


def test_a_concentration_that_is_not_a_number_is_reported_naming_the_field(client: TestClient):
    signed_in(client, "physician")
    page = client.get(
        "/patients/1/plan",
        params={"protocol_id": "asra-initial", "concentration_mg_per_ml": "lots"},
    )
    assert '<a href="#concentration_mg_per_ml">Bag concentration must be a number.</a>' in page.text


def test_signing_without_the_override_reason_is_refused_naming_the_field(client: TestClient):
    token = screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    assert fields["csrf_token"] == token
    response = client.post("/patients/1/orders", data=fields)
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "Reason for override: this course needs a physician" in text
    assert 'aria-invalid="true" aria-describedby="override_reason-error"' in text


def test_what_needs_an_override_is_said_in_words_with_codes_only_in_tooltips(client: TestClient):
    screened(client, 2)  # patient 2 states no purpose: a screening finding needs a reason
    page = client.get("/patients/2/plan", params=SOFT)
    text = html.unescape(page.text)
    sign_card = text[text.index('id="sign-h"') :]
    assert "<code>limit:" not in sign_card and "<code>purpose:" not in sign_card
    limits = sign_card[sign_card.index('id="override-limits"') :]
    assert 'data-code="limit:midazolam-iv_dose:soft"' in limits
    assert "The midazolam (iv) dose of 7.5 mg is above the day clinic soft limit of 5 mg." in limits
    screen = sign_card[sign_card.index('id="screen-needs-reason"') :]
    assert "(1 finding needing a physician's reason: <span" in screen
    assert 'title="code purpose:not-stated" data-code="purpose:not-stated">The purpose of' in screen
    refused = client.post("/patients/2/orders", data=sign_form(page.text))
    assert refused.status_code == 422
    words = html.unescape(refused.text)
    assert (
        "Soft limits: the midazolam (iv) dose of 7.5 mg is above the day clinic soft limit of "
        "5 mg. Screening findings: the purpose of the infusion is not stated"
    ) in words
    summary = words[
        words.index('id="sign-errors"') : words.index("</div>", words.index('id="sign-errors"'))
    ]
    assert "limit:midazolam" not in summary and "purpose:not-stated" not in summary


def test_a_physician_signs_with_a_reason_and_the_order_page_shows_it(client: TestClient):
    screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    response = client.post(
        "/patients/1/orders", data={**fields, "override_reason": "tolerated 40 mg/h before"}
    )
    assert response.status_code == 303
    order = client.get(response.headers["location"])
    assert "Signed by <strong>physician</strong>" in order.text
    assert "tolerated 40 mg/h before" in order.text
    assert "Signed order: mixed-kang-3session" in client.get("/patients/1").text
    # what the override accepted is said in words; the code is only in the tooltip
    accepted = html.unescape(order.text)
    accepted = accepted[
        accepted.index("Accepted: ") : accepted.index("</p>", accepted.index("Accepted: "))
    ]
    assert "above the day clinic soft limit of 5 mg" in accepted
    assert 'title="limit:midazolam-iv_dose:soft"' in accepted
    assert "course: limit:" not in accepted


def test_a_course_that_changed_since_it_was_reviewed_is_not_signed(client: TestClient):
    screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    fields["course_digest"] = "0" * 64
    response = client.post("/patients/1/orders", data={**fields, "override_reason": "ok"})
    assert response.status_code == 409
    assert "The course computed now differs from the one reviewed" in response.text
    assert "course_digest" not in response.text.replace('name="course_digest"', "")


def test_a_physician_cancels_an_order_with_a_reason(client: TestClient):
    token = screened(client)
    fields = sign_form(client.get("/patients/1/plan", params=SOFT).text)
    location = client.post("/patients/1/orders", data={**fields, "override_reason": "r"}).headers[
        "location"
    ]
    response = client.post(f"{location}/cancel", data={"csrf_token": token, "reason": "wrong bag"})
    assert response.status_code == 303
    page = client.get(location)
    assert "Cancelled by physician" in page.text and "wrong bag" in page.text


def test_a_researcher_may_not_open_the_chooser(client: TestClient):
    signed_in(client, "researcher")
    assert client.get("/patients/1/plan", params=SOFT).status_code == 403


def test_a_pharmacist_sees_signed_orders_but_no_sign_form(client: TestClient):
    screened(client)
    client.cookies.clear()
    token = signed_in(client, "pharmacist")
    page = client.get("/patients/1/plan", params=SOFT)
    assert page.status_code == 200
    assert "Only a physician can sign" in page.text
    assert form_token(page.text) == token


@given(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(0, 4))
def test_a_shown_number_has_the_value_of_the_number_rounded_to_its_digits(
    value: float, digits: int
):
    assert float(number(value, digits)) == float(f"{value:.{digits}f}")


def test_whole_numbers_keep_their_zeros():
    assert number(7200, 0) == "7200"
    assert number(40.0, 3) == "40"
    assert number(0.5556, 3) == "0.556"
    assert number(None) == ""


def test_minutes_are_shown_as_hours_and_minutes():
    assert clock(0) == "0:00"
    assert clock(90) == "1:30"
    assert clock(7200) == "120:00"


def test_a_course_within_limits_for_an_eligible_patient_is_signed_without_an_override(
    client: TestClient,
):
    screened(client, 1)
    page = client.get("/patients/1/plan", params={"protocol_id": "asra-initial"})
    assert "Within limits" in page.text
    assert "Reason for override" not in page.text
    response = client.post("/patients/1/orders", data=sign_form(page.text))
    assert response.status_code == 303
    order = client.get(response.headers["location"])
    assert 'id="order-status">signed' in order.text
    assert "Override reason" not in order.text


def test_every_protocol_in_every_setting_renders_as_a_course_or_a_refusal(client: TestClient):
    from ketapath.knowledge.clinical import knowledge

    screened(client, 1)
    for protocol in knowledge().protocols.entries:
        for setting in ("clinic", "ward", "icu"):
            page = client.get(
                "/patients/1/plan", params={"protocol_id": protocol.id, "setting": setting}
            )
            assert page.status_code == 200, (protocol.id, setting)
            shown = 'id="course-status"' in page.text or "Refused: hard limit" in page.text
            assert shown, (protocol.id, setting)
            if 'id="course-status"' in page.text:
                assert 'id="sessions"' in page.text and "mL/h" in page.text


def test_dose_ladder_steps_typed_on_the_form_give_one_session_per_step(client: TestClient):
    screened(client, 1)
    params = {"protocol_id": "dose-ladder", "ladder_steps": "0.4, 0.5 0.6", "ladder_ceiling": ""}
    page = client.get("/patients/1/plan", params=params)
    assert page.status_code == 200
    # the guideline starting dose first, then one session per step
    assert page.text.count('class="session-start"') == 4
    fields = sign_form(page.text)
    assert fields["ladder_steps"] == "0.4 0.5 0.6"
    response = client.post("/patients/1/orders", data=fields)
    assert response.status_code == 303, response.text
    order = client.get(response.headers["location"])
    assert order.text.count('class="session-start"') == 4


def test_a_ladder_step_that_is_not_a_number_is_reported_naming_the_field(client: TestClient):
    signed_in(client, "physician")
    page = client.get(
        "/patients/1/plan", params={"protocol_id": "dose-ladder", "ladder_steps": "0.1 lots"}
    )
    assert '<a href="#ladder_steps">Ladder steps must be a number.</a>' in page.text
    assert "Sign the course" not in page.text
