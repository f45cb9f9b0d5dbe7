"""The drug library in a real browser: a pharmacist checks and approves a library file, a
physician's chooser offers only its stocked strengths, a crafted strength is refused, and the
signed order names the library it was checked against."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import LAPTOP, Screens, assert_accessible_basics, sign_in

from ketapath.knowledge.library import default_library, library_yaml

pytestmark = pytest.mark.browser


def test_a_pharmacist_approves_a_library_and_a_physician_orders_only_its_strengths(
    new_page: Any, screens: Screens, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "pharmacist")
    page.get_by_role("link", name="Drug library").click()
    expect(page.get_by_role("heading", level=1, name="Drug library")).to_be_visible()
    expect(page.locator("#library-pumps")).to_contain_text("Syringe driver")
    expect(page.locator("#limits-clinic")).to_contain_text("Follows:")
    assert_accessible_basics(page)
    screens.shot(page, "library")

    version = int(page.locator("#library-version").inner_text().split()[0]) + 1
    path = tmp_path / "clinic-library.yaml"
    text = library_yaml(default_library()).replace("version: 0", f"version: {version}", 1)
    path.write_text(text.replace("name: ketapath default drug library", "name: Browser clinic"))
    page.get_by_label("Library file").set_input_files(str(path))
    page.get_by_role("button", name="Check the file").click()
    expect(page.locator("#check-outcomes")).to_contain_text("asra-initial")
    page.get_by_label("What changed, and why").fill("our pumps and bags")
    screens.shot(page, "library-checked")
    page.get_by_role("button", name=f"Approve and load version {version}").click()
    expect(page.locator("#library-loaded")).to_contain_text(f"Version {version} is approved")
    expect(page.locator("#library-history")).to_contain_text("our pumps and bags")

    doctor = new_page(LAPTOP)
    sign_in(doctor, "physician")
    doctor.goto("/patients/1/screening")
    # (the shared browser server may have screened this patient in another scenario already)
    doctor.get_by_role("button", name=re.compile("^(Run the screen|Screen again)$")).click()
    expect(doctor.locator("#decision")).to_be_visible()
    doctor.goto("/patients/1/plan")
    strengths = doctor.locator("#concentration_mg_per_ml option")
    expect(strengths).to_have_count(4)
    doctor.get_by_label("Protocol", exact=True).select_option("inpatient-sc-anzca")
    expect(doctor.locator("#course-pump")).to_contain_text("Syringe driver")
    expect(strengths).to_have_count(2)  # the pump's default, and the syringe's 10 mg/mL
    expect(strengths.nth(1)).to_have_text(re.compile("^10 mg/mL"))

    doctor.goto("/patients/1/plan?protocol_id=asra-initial&concentration_mg_per_ml=0.001")
    expect(doctor.get_by_role("alert")).to_contain_text("0.001 mg/mL is not a strength")
    expect(doctor.get_by_role("alert")).to_contain_text("1, 2, 10 mg/mL")
    expect(doctor.get_by_role("button", name="Sign the course")).to_have_count(0)
    screens.shot(doctor, "crafted-strength-refused")

    doctor.goto("/patients/1/plan?protocol_id=asra-initial")
    expect(doctor.locator("#course-library")).to_contain_text(f"Browser clinic, version {version}")
    doctor.get_by_role("button", name="Sign the course").click()
    expect(doctor).to_have_url(re.compile(r"/orders/\d+$"))
    expect(doctor.locator("#order-library")).to_contain_text(f"version {version}")
    expect(doctor.locator("#sessions")).to_contain_text("80")
    screens.shot(doctor, "order-with-library")
