"""The session page's exposure card shows the session's exposure summary as given: AUC, peak
and time above each reference concentration, provisional while the pump runs, stored once it
stops (with when and why), for the roles that read exposure."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient
from tests.unit.test_web_sessions import (
    Chart,
    app,
    browser,
    database,
    element,
    migrated,
    scheduled,
    users,
)

from ketapath.services.permissions import Actor
from ketapath.store.db import Database

__all__ = ["app", "browser", "database", "migrated", "users"]  # fixtures used below


def test_the_exposure_card_shows_the_summary_provisional_then_stored(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    chart.open()
    chart.check_in()
    page = chart.chart("start", "09:05")
    summary = element(page, "exposure-summary")
    assert "Exposure summary as given (provisional: the pump is running)" in summary
    assert "Not stored while the pump runs." in summary
    page = chart.chart("stop", "10:05", reason="patient_request")
    summary = element(page, "exposure-summary")
    assert "provisional" not in summary.split("Stored")[0]
    table = element(page, "exposure-summary-table")
    assert "S-ketamine, plasma" in table and "S-norketamine" in table
    assert "AUC to infinity, ng·h/mL" in table and "Perez-Ruixo" in table
    above = element(page, "exposure-summary-above")
    assert "ketamine 100 ng/mL" in above and "published" in above
    assert "norketamine 50 ng/mL" in above and "ketapath policy" in above
    record = element(page, "exposure-summary-record")
    assert record.startswith("Stored ") and "first computed" in record
    assert "seed" not in summary.lower()
    # read again: the same stored summary, nothing recomputed
    again = element(chart.open(), "exposure-summary-record")
    assert again == record
    assert 'id="exposure-summary"' in Chart(browser("pharmacist"), chart.session_id).open()


def test_nothing_given_says_so(
    database: Database, users: dict[str, Actor], browser: Callable[[str], TestClient]
) -> None:
    chart = Chart(browser("nurse"), scheduled(database, users))
    chart.open()
    page = chart.check_in()
    assert "Nothing given yet: no summary." in element(page, "exposure-summary")
