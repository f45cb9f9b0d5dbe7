"""The clinic in a real browser: the three scenarios of issue 4 item 7, on laptop and tablet."""

from __future__ import annotations

import re
from typing import Any

import pytest
from tests.e2e.conftest import TABLET, Screens, sign_in

pytestmark = pytest.mark.browser


def test_a_nurse_signs_in_finds_a_patient_and_reads_the_record(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    page = new_page(TABLET)
    page.goto("/patients")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=/patients$"))
    sign_in(page, "nurse")
    expect(page.get_by_test_id("username")).to_have_text("nurse")
    page.get_by_label("Search by name, number or pseudonym").fill("casey")
    expect(page.locator("#patient-results tbody tr")).to_have_count(1)
    screens.shot(page, "search")
    page.get_by_role("link", name="Casey Sample").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Casey Sample")
    expect(page.get_by_text("Phantom limb pain")).to_be_visible()
    expect(page.get_by_role("cell", name="morphine")).to_be_visible()
    screens.shot(page, "patient")
