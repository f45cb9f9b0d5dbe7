"""The evidence explorer in a real browser: a researcher filters the evidence table, follows a
point of the dose-versus-relief plot to its study, and downloads the filtered rows as CSV."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import LAPTOP, Screens, assert_accessible_basics, sign_in

from ketapath.services.evidence import StudyFilters, all_study_views, filter_studies

pytestmark = pytest.mark.browser


def test_a_researcher_filters_the_evidence_and_downloads_the_rows_as_csv(
    new_page: Any, screens: Screens
) -> None:
    from playwright.sync_api import expect

    everything = all_study_views()
    wanted = filter_studies(everything, StudyFilters(indication="crps", relief_min_days=7))
    assert 3 <= len(wanted) < len(everything)

    page = new_page(LAPTOP)
    sign_in(page, "researcher")
    page.get_by_role("link", name="Evidence").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Evidence")
    expect(page.locator("#result-count")).to_have_text(str(len(everything)))
    expect(page.locator("#evidence-plot")).to_be_visible()
    assert_accessible_basics(page)
    screens.shot(page, "all-studies")

    page.get_by_label("Indication").select_option("crps")
    page.get_by_label("Shortest relief (days)").fill("7")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("#result-count")).to_have_text(str(len(wanted)))
    rows = page.locator("#evidence-table tbody tr")
    expect(rows).to_have_count(len(wanted))
    assert [rows.nth(i).get_attribute("data-study") for i in range(len(wanted))] == [
        v.id for v in wanted
    ]
    # every study shown is on the plot or listed beside it with the reason
    points = page.locator("#evidence-plot a.point")
    listed = page.locator("#not-plotted li")
    assert points.count() + listed.count() == len(wanted)
    expect(listed.first).to_contain_text("not plotted:")
    screens.shot(page, "filtered")

    # a point of the plot leads to its study, and back
    page.locator('#evidence-plot a.point[href="/evidence/schwartzman-2009"]').click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Schwartzman et al. 2009")
    expect(page.locator("#not-in-copy")).to_be_visible()
    expect(page.locator("#study-text-point")).to_contain_text("1000 mg normalized to a 70-kg")
    assert_accessible_basics(page)
    screens.shot(page, "study")
    page.go_back()
    expect(page.locator("#result-count")).to_have_text(str(len(wanted)))

    with page.expect_download() as download:
        page.locator("#download-csv").click()
    assert download.value.suggested_filename == "ketamine-evidence-filtered.csv"
    text = Path(download.value.path()).read_text(encoding="utf-8")
    rows_read = list(csv.DictReader(text.splitlines()))
    assert [r["id"] for r in rows_read] == [v.id for v in wanted]
    kiefer = next(r for r in rows_read if r["id"] == "kiefer-2008")
    assert kiefer["table_relief_days"] == "182.625"
    assert kiefer["cell_size"] == "unreadable: 50"  # an unreadable cell is never a number
    assert kiefer["n"] == ""
    assert kiefer["dose_not_computed"].startswith("The rate was increased")
    assert all("Complex regional pain syndrome" in r["indication_groups"] for r in rows_read)
