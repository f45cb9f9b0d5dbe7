"""Forms that help, in a real browser (issue 9 item 7): a nurse's several mistakes in the record
form are all shown at once, in plain words beside each field, with what she typed kept; she
corrects them and saves. An unknown address is an HTML page with a way back; an expired form
says so and offers to reload it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.e2e.conftest import TABLET, Screens, assert_accessible_basics, sign_in

pytestmark = pytest.mark.browser

TEN_THOUSAND = ("Pasted from the wrong document. " * 313)[:9_999] + "!"  # 10,000 characters


def problem(page: Any, field: str) -> Any:
    return page.locator(f"#{field}-error")


def test_a_nurse_sees_every_mistake_of_the_record_form_in_words_then_corrects_them(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.get_by_role("link", name="Register a patient").click()
    name = page.get_by_label("Name", exact=True)
    birth = page.get_by_label("Date of birth")
    weight = page.get_by_label("Weight")
    # required fields are marked for the eye and for assistive technology
    expect(name).to_have_attribute("required", "")
    expect(weight).to_have_attribute("aria-required", "true")
    expect(page.locator(".label-line", has=page.locator('label[for="name"]'))).to_contain_text(
        "(required)"
    )

    # several mistakes at once: no name, a birth date of 1800, a weight of 0
    birth.fill("1800-01-01")
    page.get_by_label("Sex").select_option("female")
    weight.fill("0")
    page.get_by_label("Medicine 1: name").fill("morphine")
    page.get_by_label("Medicine 1: dose").fill("1e300")
    page.get_by_label("Medicine 1: unit").fill("mg")
    page.get_by_role("button", name="Register the patient").click()

    summary = page.locator("#record-errors")
    expect(summary).to_be_visible()
    expect(summary.get_by_role("heading")).to_have_text(
        "There are 4 problems with what was entered"
    )
    expect(problem(page, "name")).to_have_text("Problem: Name is required.")
    expect(problem(page, "birth_date")).to_have_text(
        "Problem: Date of birth cannot be before 1 January 1900."
    )
    expect(problem(page, "weight_kg")).to_contain_text("Weight must be between")
    expect(problem(page, "weight_kg")).to_contain_text(" kg.")
    expect(problem(page, "med_dose_0")).to_contain_text("Dose in medicine row 1: 1e+300 mg is")
    for field in ("name", "birth_date", "weight_kg", "med_dose_0"):
        control = page.locator(f"#{field}")
        expect(control).to_have_attribute("aria-invalid", "true")
        expect(control).to_have_attribute("aria-describedby", f"{field}-error")
        expect(summary.locator(f'a[href="#{field}"]')).to_have_count(1)
    text = summary.inner_text()
    assert "patient." not in text and "Input should" not in text and "Value error" not in text
    # what she typed is kept
    expect(birth).to_have_value("1800-01-01")
    expect(weight).to_have_value("0")
    expect(page.get_by_label("Medicine 1: dose")).to_have_value("1e300")
    expect(page.get_by_label("Sex")).to_have_value("female")
    assert_accessible_basics(page)
    screens.shot(page, "every-mistake")

    # 10,000 characters pasted into the name: the field takes no more than the record holds
    name.click()
    page.keyboard.insert_text(TEN_THOUSAND)
    assert len(name.input_value()) == 200
    # and where the limit is not applied (an old browser, a hand-made form), the server
    # refuses the text in words, the other mistakes still shown
    page.evaluate("document.getElementById('name').removeAttribute('maxlength')")
    name.fill(TEN_THOUSAND)
    page.get_by_role("button", name="Register the patient").click()
    expect(problem(page, "name")).to_have_text(
        f"Problem: Name can be at most 200 characters long; this has {len(TEN_THOUSAND):,}."
    )
    expect(problem(page, "birth_date")).to_be_visible()
    expect(problem(page, "weight_kg")).to_be_visible()
    assert name.input_value() == TEN_THOUSAND  # kept, so that she can cut it down
    screens.shot(page, "pasted-name")

    # the summary links to each field
    summary.get_by_role("link", name=re.compile("^Weight must be")).click()
    expect(page).to_have_url(re.compile(r"#weight_kg$"))

    # she corrects every mistake and saves
    name.fill("Jo Bloggs")
    birth.fill("1980-05-01")
    weight.fill("70")
    page.get_by_label("Medicine 1: dose").fill("10")
    page.get_by_role("button", name="Register the patient").click()
    expect(page).to_have_url(re.compile(r"/patients/\d+$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Jo Bloggs")
    expect(page.locator(".patient-header")).to_contain_text("70 kg")
    screens.shot(page, "saved")


def test_an_unknown_address_is_an_html_page_with_a_way_back(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    answer = page.goto("/no-such-page")
    assert answer is not None and answer.status == 404
    assert answer.headers["content-type"].startswith("text/html")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")
    expect(page.locator("#error-message")).to_contain_text("There is no page at this address")
    assert_accessible_basics(page)
    screens.shot(page, "not-found")
    page.get_by_role("link", name="Back to the start page").click()
    expect(page).to_have_url(re.compile(r"/patients$"))


def test_an_expired_form_says_so_and_reloads(new_page: Any, screens: Screens) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    sign_in(page, "nurse")
    page.goto("/patients/new")
    page.get_by_label("Name", exact=True).fill("Sam Expired")
    # the form's token no longer matches the session (signed in again elsewhere, say)
    page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]')"
        ".forEach(e => e.value = 'from-an-old-session')"
    )
    page.get_by_role("button", name="Register the patient").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("This form has expired")
    expect(page.locator("#error-message")).to_contain_text("Reload the page")
    expect(page.get_by_text("Not allowed for your role")).to_have_count(0)
    screens.shot(page, "expired")
    page.get_by_role("link", name="Reload the form").click()
    expect(page).to_have_url(re.compile(r"/patients/new$"))
    expect(page.get_by_role("button", name="Register the patient")).to_be_visible()
