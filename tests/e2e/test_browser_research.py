"""The research export in a real browser: a researcher signs in, lands on the research page,
downloads the de-identified export as CSV and as Parquet with the page's button (through the
signed-in session), and the files hold the web tests' three patients under research codes,
with no name, birth date or pseudonym. A physician finds the page in the navigation and
downloads too; a nurse has no link to it."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import LAPTOP, Screens, assert_accessible_basics, sign_in
from tests.unit.web_app import PATIENTS

NAMES = [p["name"] for p in PATIENTS]
BIRTH_DATES = [str(p["birth_date"]) for p in PATIENTS if "birth_date" in p]


def _download(page: Any, fmt: str) -> tuple[str, bytes]:
    form = page.locator("#research-export-form")
    form.get_by_label("File format").select_option(fmt)
    with page.expect_download() as download:
        form.get_by_role("button", name="Download the export").click()
    return download.value.suggested_filename, Path(download.value.path()).read_bytes()


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def test_a_researcher_downloads_the_de_identified_export_csv(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    researcher = new_page(LAPTOP)
    sign_in(researcher, "researcher")
    expect(researcher).to_have_url(re.compile(r"/research$"))
    expect(researcher.get_by_role("heading", name="Research export")).to_be_visible()
    expect(researcher.locator("#safe-harbor tbody tr")).to_have_count(18)
    assert_accessible_basics(researcher)
    screens.shot(researcher, "research-page")

    name, data = _download(researcher, "csv")
    assert name == "ketapath-research-export-csv.zip"
    files = _members(data)
    assert {"patients.csv", "sessions.csv", "data_dictionary.csv", "safe_harbor.csv"} <= set(files)
    patients = files["patients.csv"].decode("utf-8").splitlines()
    assert patients[0].startswith("patient_code,sex,age_band,registration_year,zip3,")
    # every patient of the server (other browser tests register more on the shared server)
    registered = researcher.request.get("/api/v1/research/patients")
    assert registered.ok
    assert len(registered.json()) >= len(PATIENTS)
    assert len(patients) == 1 + len(registered.json())
    assert all(line.startswith("P-") for line in patients[1:])
    text = b"".join(files.values()).decode("utf-8", errors="replace")
    for secret in [*NAMES, *BIRTH_DATES]:
        assert secret not in text, secret
    assert not re.search(r"KP-[0-9A-F]{10}", text)  # no clinic pseudonym
    codes_on_page = set(
        researcher.locator("section.card code").filter(has_text="P-").all_inner_texts()
    )
    assert {line.split(",")[0] for line in patients[1:]} <= codes_on_page

    name, data = _download(researcher, "parquet")
    assert name == "ketapath-research-export-parquet.zip"
    assert _members(data)["patients.parquet"][:4] == b"PAR1"


def test_a_physician_finds_the_export_in_the_navigation_and_a_nurse_does_not(
    new_page: Any,
) -> None:
    from playwright.sync_api import expect

    physician = new_page(LAPTOP)
    sign_in(physician, "physician")
    physician.get_by_role("link", name="Research").click()
    expect(physician.locator("#research-export-form")).to_be_visible()
    expect(physician.get_by_role("heading", name="Patients")).to_have_count(0)
    name, _ = _download(physician, "csv")
    assert name.endswith("csv.zip")
    nurse = new_page(LAPTOP)
    sign_in(nurse, "nurse")
    expect(nurse.get_by_role("link", name="Research")).to_have_count(0)
