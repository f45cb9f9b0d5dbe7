"""The clinic in a real browser: the three scenarios of issue 4 item 7, on laptop and tablet."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from tests.e2e.conftest import (
    LAPTOP,
    TABLET,
    Screens,
    assert_accessible_basics,
    htmx_settled,
    sign_in,
)

pytestmark = pytest.mark.browser


def test_a_nurse_signs_in_finds_a_patient_and_reads_the_record(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    page.goto("/patients")
    expect(page).to_have_url(re.compile(r"/login\?next=/patients$"))
    sign_in(page, "nurse")
    expect(page.get_by_test_id("username")).to_have_text("nurse")
    page.get_by_label("Search by name, number or pseudonym").fill("sam s")
    expect(page.locator("#patient-results tbody tr")).to_have_count(1)
    assert_accessible_basics(page)
    screens.shot(page, "search")
    page.get_by_role("link", name="Sam Sample").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Sam Sample")
    expect(page.get_by_text("Phantom limb pain")).to_be_visible()
    expect(page.get_by_role("cell", name="morphine")).to_be_visible()
    screens.shot(page, "patient")


def test_a_physician_screens_a_patient_and_signs_a_course_over_a_soft_limit_with_a_reason(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    page.get_by_role("link", name="Alex Example").click()
    page.get_by_role("link", name="Screening").click()
    page.get_by_role("button", name="Run the screen").click()
    expect(page.locator("#decision")).to_contain_text("Eligible")
    expect(page.locator('[data-code="indication:evidence"]')).to_contain_text(
        "Source: ASRA/AAPM/ASA consensus 2018, Table 6"
    )
    assert_accessible_basics(page)
    screens.shot(page, "screening")

    page.get_by_role("link", name="Protocol & orders").click()
    page.get_by_label("Protocol", exact=True).select_option("crps-sigtermans-continuous")
    page.get_by_label("Care setting").select_option("clinic")
    htmx_settled(page)
    expect(page.locator("#refusal")).to_contain_text("hard limit")
    expect(page.get_by_role("button", name="Sign the course")).to_have_count(0)
    screens.shot(page, "hard-limit-refused")

    # Kang's midazolam loading dose, 0.1 mg/kg, is 7.2 mg at 72 kg: over the 5 mg soft limit
    page.get_by_label("Protocol", exact=True).select_option("mixed-kang-3session")
    page.get_by_label("Care setting").select_option("clinic")
    htmx_settled(page)
    expect(page.locator("#course-status")).to_have_text("Needs a physician's override")
    expect(page.locator("#limit-findings")).to_contain_text("soft limit")
    expect(page.locator("#sessions")).to_contain_text("mL/h")
    expect(page.get_by_test_id("override-physician")).to_have_text("physician")
    page.get_by_label("Reason for override").fill("Tolerated 7.5 mg midazolam in 2025")
    assert_accessible_basics(page)
    screens.shot(page, "soft-limit-override")
    page.get_by_role("button", name="Sign the course").click()

    expect(page).to_have_url(re.compile(r"/orders/\d+$"))
    expect(page.locator("#order-status")).to_have_text("signed")
    expect(page.locator("#signature")).to_contain_text("Signed by physician")
    expect(page.locator("#override")).to_contain_text("Tolerated 7.5 mg midazolam in 2025")
    screens.shot(page, "signed-order")


def test_a_nurse_sees_the_course_but_cannot_sign_it(new_page: Any, screens: Screens) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.goto("/patients/3/screening")
    expect(page.get_by_role("button", name="Run the screen")).to_have_count(0)
    page.goto("/patients/3/plan?protocol_id=asra-initial")
    expect(
        page.get_by_role("heading", level=2, name=re.compile("ASRA|initial", re.I))
    ).to_be_visible()
    expect(page.locator("#cannot-sign")).to_contain_text("Only a physician can sign")
    expect(page.get_by_role("button", name="Sign the course")).to_have_count(0)
    screens.shot(page, "no-sign-button")

    # Even a hand-made post with the nurse's own valid session and CSRF token is refused.
    answer = page.evaluate(
        """async () => {
            const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
            const body = new URLSearchParams({csrf_token: token, protocol_id: 'asra-initial'});
            const r = await fetch('/patients/3/orders', {method: 'POST', body});
            return {status: r.status, text: await r.text()};
        }"""
    )
    assert answer["status"] == 403
    assert "'order.sign' needs the role physician" in html.unescape(answer["text"])
    page.goto("/patients/3/plan")
    expect(page.get_by_role("heading", name="Signed orders")).to_have_count(0)


def test_a_nurse_records_an_assessment_and_sees_it_on_the_patient_page(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.goto("/patients/3")
    page.get_by_role("link", name="New assessment").click()
    page.get_by_label("Instrument").select_option("nrs")
    question = page.get_by_role("group", name=re.compile(r"^1\. Pain intensity"))
    question.get_by_text("7", exact=True).click()
    expect(question.get_by_role("radio", name=re.compile(r"^7"))).to_be_checked()
    assert_accessible_basics(page)
    screens.shot(page, "form")
    page.get_by_role("button", name="Save the assessment").click()

    expect(page).to_have_url(re.compile(r"/patients/3#assessments$"))
    row = page.locator("#assessment-list tbody tr").first
    expect(row).to_contain_text("pain 7")
    expect(row).to_contain_text("nurse")
    expect(row).to_contain_text("7 (severe)")
    expect(page.get_by_role("img", name=re.compile("NRS"))).to_be_visible()
    expect(page.locator("ol.timeline")).to_contain_text("Assessment")
    assert_accessible_basics(page)
    screens.shot(page, "patient-page")


def test_a_nurse_registers_a_patient_and_a_physician_amends_the_record(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Name", exact=True).fill("Kim Registered")
    page.get_by_label("Date of birth").fill("1980-03-04")
    page.get_by_label("Sex").select_option("female")
    page.get_by_label("Weight").fill("64")
    page.get_by_label("Height").fill("166")
    page.get_by_label("Pregnancy").select_option("not_pregnant")
    page.get_by_label("Diagnoses").fill("G90.51 | right leg after fracture\nnot-a-condition")
    page.get_by_label("Medicine 1: name").fill("morphine")
    page.get_by_label("Medicine 1: dose").fill("20")
    page.get_by_label("Medicine 1: unit").fill("mg")
    page.get_by_label("Medicine 1: frequency").fill("bd")
    page.get_by_label("Pain relief").check()
    assert_accessible_basics(page)
    screens.shot(page, "form")
    page.get_by_role("button", name="Register the patient").click()

    # the unknown code is reported, nothing typed is lost, and it is kept only on request
    expect(page.locator("#diagnoses-error")).to_contain_text("not-a-condition")
    expect(page.locator("#record-errors")).to_contain_text("There is a problem")
    expect(page.get_by_label("Name", exact=True)).to_have_value("Kim Registered")
    screens.shot(page, "unknown-code")
    page.get_by_label("Diagnoses").fill("G90.51 | right leg after fracture")
    page.get_by_role("button", name="Register the patient").click()
    expect(page).to_have_url(re.compile(r"/patients/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kim Registered")
    expect(page.get_by_role("cell", name="morphine")).to_be_visible()
    expect(page.locator("ol.timeline")).to_contain_text("Registered")
    patient_url = page.url

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    page.goto(patient_url)
    page.get_by_role("link", name="Amend record").click()
    page.get_by_label("Weight").fill("66.5")
    page.get_by_label("Why is the record amended?").fill("Weighed at the pre-assessment visit")
    assert_accessible_basics(page)
    page.get_by_role("button", name="Save the amendment").click()
    expect(page.locator(".patient-header")).to_contain_text("66.5 kg")
    expect(page.locator(".patient-header")).to_contain_text("version 2")
    page.get_by_role("link", name="History").click()
    versions = page.locator("#record-versions > li")
    expect(versions).to_have_count(2)
    expect(versions.first).to_contain_text("Version 2 (amends version 1)")
    expect(versions.first).to_contain_text("Weighed at the pre-assessment visit")
    expect(versions.first).to_contain_text("by physician")
    screens.shot(page, "history")


def test_a_physician_agrees_an_opioid_plan_and_a_nurse_records_the_dose_taken(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    page.goto("/patients/2")
    page.get_by_role("link", name="Opioid plan").click()
    # morphine 30 mg twice a day by mouth: 60 mg oral morphine equivalents (CDC 2022)
    expect(page.locator("#ome-total")).to_have_text("60")
    expect(page.locator("#ome")).to_contain_text("CDC")
    page.get_by_label("Opioid", exact=True).select_option("oxycodone")
    page.get_by_label("Reduction for incomplete cross-tolerance").fill("25")
    page.get_by_label("Reduction per step").fill("10")
    page.get_by_label("Percent of").select_option("current")
    page.get_by_label("Every").fill("7")
    page.get_by_label("First step on").fill("2026-12-07")
    page.get_by_label("Round down to").fill("5")
    page.get_by_role("button", name="Preview the plan").click()
    # 60 mg OME less 25% = 45 mg OME = 30 mg/day oral oxycodone (factor 1.5)
    expect(page.locator("#plan-preview")).to_contain_text("oral oxycodone 30 mg/day")
    expect(page.locator("#plan-status")).to_have_text("Ready to agree")
    assert_accessible_basics(page)
    screens.shot(page, "preview")
    page.get_by_role("button", name="Agree the plan").click()
    expect(page.locator("#current-plan")).to_contain_text("oral oxycodone 30 mg/day")
    expect(page.locator("#plan")).to_contain_text("Agreed by physician")
    screens.shot(page, "agreed")

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.goto("/patients/2/opioids")
    expect(page.get_by_role("button", name="Agree the plan")).to_have_count(0)
    page.get_by_label("Day", exact=True).fill("2026-01-14")
    page.get_by_label("Opioid 1", exact=True).fill("oxycodone")
    page.get_by_label("Opioid 1: taken per day").fill("25")
    page.get_by_label("Opioid 1: unit").fill("mg")
    page.get_by_role("button", name="Record", exact=True).click()
    row = page.locator("#dose-list tbody tr").first
    expect(row).to_contain_text("37.5")
    expect(row).to_contain_text("nurse")
    expect(page.get_by_role("img", name=re.compile("morphine equivalents"))).to_be_visible()
    assert_accessible_basics(page)
    screens.shot(page, "dose-recorded")
