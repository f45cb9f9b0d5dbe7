"""FHIR in a real browser: a physician exports a patient's FHIR Bundle from the patient page
(a download), the file parses as JSON and is valid by both validators (ketapath's FHIR R4B
models and the official FHIR R4 JSON schema); a nurse imports it as a new patient with the
import form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import fhir_schema_errors
from tests.e2e.conftest import LAPTOP, Screens, assert_accessible_basics, sign_in

from ketapath.interop import fhir

pytestmark = pytest.mark.browser


def test_a_physician_downloads_a_patient_s_fhir_bundle_and_a_nurse_imports_it(
    new_page: Any, screens: Screens, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    page = new_page(LAPTOP)
    sign_in(page, "physician")
    page.goto("/patients/1")
    export = page.get_by_role("link", name="Export FHIR bundle")
    expect(export).to_be_visible()
    screens.shot(page, "patient-with-export")
    with page.expect_download() as caught:
        export.click()
    download = caught.value
    assert download.suggested_filename == "patient-1-fhir.json"
    path = tmp_path / download.suggested_filename
    download.save_as(str(path))
    bundle = json.loads(path.read_text(encoding="utf-8"))
    assert bundle["resourceType"] == "Bundle" and bundle["meta"]["tag"][0]["code"] == "4.3.0"
    assert fhir.validate_bundle(bundle) == []
    assert fhir_schema_errors(bundle) == []
    names = [e["resource"].get("name") for e in bundle["entry"]]
    assert [{"text": "Alex Example"}] in names

    nurse = new_page(LAPTOP)
    sign_in(nurse, "nurse")
    nurse.get_by_role("link", name="Patients").click()
    nurse.get_by_role("link", name="Import a FHIR bundle").click()
    expect(nurse.get_by_role("heading", level=1, name="Import a FHIR bundle")).to_be_visible()
    assert_accessible_basics(nurse)
    nurse.get_by_label("Bundle file").set_input_files(str(path))
    nurse.get_by_role("button", name="Import the bundle").click()
    expect(nurse.locator("#import-result")).to_contain_text("Patient registered")
    screens.shot(nurse, "imported")
    nurse.locator("#imported-patient").click()
    expect(nurse.get_by_role("heading", level=1)).to_contain_text("Alex Example")
