"""The research page: researchers see the de-identified views and download the export;
physicians download the export (and see no views); everyone else is refused. The download
is the API's, through the signed-in session."""

from __future__ import annotations

import html
import io
import re
import zipfile

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.domain import research as rules

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def _form_action(page: str) -> str:
    match = re.search(r'<form method="get" action="([^"]+)"[^>]*id="research-export-form"', page)
    assert match, "the page has no export form"
    return match.group(1)


def test_a_researcher_sees_the_export_with_its_tables_and_the_18_identifiers(client: TestClient):
    signed_in(client, "researcher")
    page = html.unescape(client.get("/research").text)
    assert _form_action(page) == "/api/v1/research/export"
    assert 'name="format"' in page and "Download the export" in page
    for table in rules.TABLE_NAMES:
        assert f"<code>{table}</code>" in page
    assert len(re.findall(r'<tr data-letter="[A-R]">', page)) == 18
    assert "036" in page and "90 or older" in page
    # and the views, under research codes
    assert "<code>P-" in page and "Alex" not in page


def test_the_researcher_s_button_downloads_the_csv_export(client: TestClient):
    signed_in(client, "researcher")
    action = _form_action(client.get("/research").text)
    response = client.get(action, params={"format": "csv"})
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        patients = bundle.read("patients.csv").decode("utf-8")
    assert patients.count("\n") == 4  # a header and the three patients of the web tests
    assert "Alex" not in patients and "1968" not in patients


def test_a_physician_downloads_the_export_but_sees_no_research_views(client: TestClient):
    signed_in(client, "physician")
    page = client.get("/research")
    assert page.status_code == 200
    assert 'id="research-export-form"' in page.text
    assert "<h2>Patients</h2>" not in page.text
    assert 'href="/research"' in page.text  # reachable from the navigation


def test_a_nurse_is_refused_the_research_page(client: TestClient):
    signed_in(client, "nurse")
    page = client.get("/research")
    assert page.status_code == 403
    assert "research.export" in html.unescape(page.text)
    assert 'href="/research"' not in page.text
