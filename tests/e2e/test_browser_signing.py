"""The signing checks in a real browser (issue 8, signing): a physician cannot sign while consent
is "not yet asked", sees the facts besides the dose on the order, and sees the stale-weight
warning on the order and patient pages after the record changes the weight."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from typing import Any

import pytest
from tests.e2e.conftest import LAPTOP, Screens, assert_accessible_basics, htmx_settled, sign_in

pytestmark = pytest.mark.browser

WEIGHED = (date.today() - timedelta(days=2)).isoformat()


def _screen(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Screening").click()
    page.get_by_role("button", name=re.compile("Run the screen|Screen again")).click()
    expect(page.locator("#decision")).to_be_visible()


def _choose_course(page: Any) -> None:
    page.get_by_role("link", name="Protocol & orders").click()
    page.get_by_label("Protocol", exact=True).select_option("asra-initial")
    page.get_by_label("Care setting").select_option("clinic")
    htmx_settled(page)


def _amend(page: Any, reason: str, **fields: str) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Amend record").click()
    for label, value in fields.items():
        control = page.get_by_label(label, exact=True)
        if control.evaluate("el => el.tagName") == "SELECT":
            control.select_option(label=value)
        else:
            control.fill(value)
    page.get_by_label("Why is the record amended?").fill(reason)
    page.get_by_role("button", name="Save the amendment").click()
    expect(page.locator(".patient-header")).to_be_visible()


def test_a_physician_cannot_sign_without_consent_and_sees_a_stale_weight_after_a_change(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Name", exact=True).fill("Pat Pending")
    page.get_by_label("Date of birth").fill("1975-06-01")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Weight kg", exact=True).fill("68")
    page.get_by_label("Weighed on").fill(WEIGHED)
    page.get_by_label("Height").fill("165")
    page.get_by_label("Pregnancy").select_option("not_pregnant")
    page.get_by_label("Side of the pain").select_option("left")
    page.get_by_label("Diagnoses").fill("G90.51 | left arm")
    page.get_by_label("Allergies").fill("penicillin: rash")
    page.get_by_label("Pain relief").check()
    expect(page.get_by_label("Consent to infusion")).to_have_value("pending")
    page.get_by_role("button", name="Register the patient").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Pat Pending")
    patient_url = page.url

    # consent not yet asked: no signature is offered, and a hand-made post is refused
    _screen(page)
    _choose_course(page)
    expect(page.locator("#consent-block")).to_contain_text(
        'consent to the infusion is recorded as "not yet asked"'
    )
    expect(page.locator("#signing-facts")).to_contain_text("penicillin (rash)")
    expect(page.get_by_role("button", name="Sign the course")).to_have_count(0)
    assert_accessible_basics(page)
    screens.shot(page, "consent-not-yet-asked")
    patient_id = patient_url.rsplit("/", 1)[1]
    answer = page.evaluate(
        """async (patientId) => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const body = new URLSearchParams(
                {csrf_token: token, protocol_id: 'asra-initial', setting: 'clinic'});
            const r = await fetch(`/patients/${patientId}/orders`, {method: 'POST', body});
            return {status: r.status, text: await r.text()};
        }""",
        patient_id,
    )
    assert answer["status"] == 422
    assert "recorded as 'not yet asked'" in html.unescape(answer["text"])

    # consent recorded as given: screen the amended record, then sign
    page.goto(patient_url)
    _amend(page, "consent given at the clinic visit", **{"Consent to infusion": "Given"})
    _screen(page)
    _choose_course(page)
    expect(page.locator("#consent-block")).to_have_count(0)
    page.get_by_role("button", name="Sign the course").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+$"))
    order_url = page.url
    facts = page.locator("#order-facts")
    expect(facts).to_contain_text(f"68 kg, measured on {WEIGHED} (2 days before")
    expect(facts).to_contain_text("penicillin (rash)")
    expect(facts.locator('[data-fact="laterality"]')).to_have_text("Left")
    expect(facts.locator('[data-fact="pregnancy"]')).to_have_text("Not pregnant")
    expect(page.locator("#order-state")).to_contain_text("Usable")
    assert_accessible_basics(page)
    screens.shot(page, "signed-order-facts")

    # the record now says 90 kg: stale on the order page and on the patient page
    page.goto(patient_url)
    _amend(page, "re-weighed at the pre-infusion visit", **{"Weight kg": "90"})
    page.goto(order_url)
    expect(page.locator("#order-state-top")).to_contain_text(
        "signed at 68 kg; the record now says 90 kg"
    )
    expect(page.locator('#order-checks [data-state="stale"]')).to_have_text("Stale: do not use")
    expect(page.locator("#order-facts")).to_contain_text("68 kg")  # as seen at signing
    assert_accessible_basics(page)
    screens.shot(page, "stale-order")
    page.goto(patient_url)
    expect(page.locator("[data-stale-order]")).to_contain_text(
        "Signed at 68 kg; the record now says 90 kg"
    )
    screens.shot(page, "stale-on-patient-page")

    # a physician confirms it with a reason: a new row, the order stays as signed
    page.goto(order_url)
    page.get_by_label("Why may this order be used as signed?").fill(
        "80 mg over 3 h is a fixed dose; 90 kg confirmed"
    )
    page.get_by_role("button", name="Confirm the order").click()
    expect(page.locator("#order-state")).to_contain_text("Usable")
    expect(page.locator("#confirmations")).to_contain_text("Confirmed by physician")
    screens.shot(page, "confirmed")
