"""Predicted exposure in a real browser: the protocol chooser and the signed order show the
plasma, effect-site and norketamine curves for this patient as an inline chart, with a caption,
a table of peaks and AUC, and the model's population and limitations beside it; another
session of the course is one choice away."""

from __future__ import annotations

import re
from datetime import date, timedelta
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

WEIGHED = (date.today() - timedelta(days=1)).isoformat()


def _register(page: Any) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name="Register a patient").click()
    page.get_by_label("Name", exact=True).fill("Kim Exposure")
    page.get_by_label("Date of birth").fill("1972-03-10")
    page.get_by_label("Sex").select_option("male")
    page.get_by_label("Weight kg", exact=True).fill("84")
    page.get_by_label("Weighed on").fill(WEIGHED)
    page.get_by_label("Height").fill("178")
    page.get_by_label("Side of the pain").select_option("left")
    page.get_by_label("Diagnoses").fill("G90.51 | left leg")
    page.get_by_label("Pain relief").check()
    page.get_by_label("Consent to infusion").select_option("given")
    page.get_by_role("button", name="Register the patient").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Kim Exposure")


def test_the_order_page_shows_the_exposure_chart_with_the_model_s_population(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    _register(page)
    page.get_by_role("link", name="Screening").click()
    page.get_by_role("button", name=re.compile("Run the screen|Screen again")).click()
    expect(page.locator("#decision")).to_be_visible()

    # the chooser: the course and, below it, its first session's predicted exposure
    page.get_by_role("link", name="Protocol & orders").click()
    page.get_by_label("Protocol", exact=True).select_option("crps-schwartzman-10day")
    page.get_by_label("Care setting").select_option("clinic")
    htmx_settled(page)
    panel = page.locator("#exposure")
    expect(panel.get_by_role("heading", level=2)).to_have_text(
        "Predicted exposure: session 1 of 10"
    )
    expect(panel.locator("svg[role=img] polyline.line")).to_have_count(3)
    expect(page.locator("#exposure-population")).to_contain_text("Age 18-86 years")
    assert_accessible_basics(page)
    screens.shot(page, "chooser-exposure")

    if page.get_by_label("Reason for override").count():
        page.get_by_label("Reason for override").fill("reviewed: adjuncts as planned")
    page.get_by_role("button", name="Sign the course").click()
    expect(page).to_have_url(re.compile(r"/orders/\d+$"))

    # the order: the chart, its caption and table, the model and its population
    chart = page.locator("#exposure svg.chart")
    expect(chart).to_be_visible()
    expect(chart.locator("title").first).to_have_text("Predicted concentrations, session 1 of 10")
    expect(page.locator("#exposure-caption")).to_contain_text("84 kg")
    expect(page.locator("#exposure-caption")).to_contain_text("S-norketamine")
    rows = page.locator("#exposure-summary tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.first).to_contain_text("S-ketamine, plasma")
    expect(page.locator("#exposure-model h3")).to_contain_text("Perez-Ruixo 2021")
    expect(page.locator("#exposure-population")).to_contain_text(
        "820 subjects (256 healthy volunteers, 564 patients"
    )
    expect(page.locator("#exposure-limitations li").first).to_be_visible()
    assert "seed" not in page.locator("#exposure").inner_text().lower()
    assert_accessible_basics(page)
    screens.shot(page, "order-exposure")

    # another session and another model, chosen on the page
    page.get_by_label("Session shown").select_option("4")
    page.get_by_label("PK model").select_option("kamp")
    page.get_by_role("button", name="Show the prediction").click()
    expect(page.locator("#exposure h2")).to_have_text("Predicted exposure: session 4 of 10")
    expect(page.locator("#exposure-summary tbody tr")).to_have_count(2)  # no norketamine
    expect(page.locator("#exposure-chosen")).to_have_text("As asked.")
    page.set_viewport_size(TABLET)
    expect(chart).to_be_visible()
    screens.shot(page, "order-exposure-tablet")
