"""The research export through the API on SQLite and PostgreSQL: a zip of CSV or Parquet for
researchers and physicians, refused to everyone else, a bad format refused naming it, every
download audited."""

from __future__ import annotations

import io
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.test_api import API, a_patient

from ketapath.domain import research as rules
from ketapath.interop import research as files
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry

EXPORT = f"{API}/research/export"


def _registry(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    patient = {**a_patient(), "zip_code": "02139", "gp": "Dr Who, 10 Downing Street"}
    assert client.post(f"{API}/patients", json=patient, headers=headers["nurse"]).is_success


@pytest.mark.parametrize(("role", "fmt"), [("researcher", "csv"), ("physician", "parquet")])
def test_a_researcher_or_a_physician_downloads_the_export_as_a_zip(
    client: TestClient, headers: dict[str, dict[str, str]], role: str, fmt: str
) -> None:
    _registry(client, headers)
    response = client.get(EXPORT, params={"format": fmt}, headers=headers[role])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="ketapath-research-export-{fmt}.zip"'
    )
    assert int(response.headers["content-length"]) == len(response.content)
    with zipfile.ZipFile(io.BytesIO(response.content)) as bundle:
        names = set(bundle.namelist())
    assert {f"{t}.{fmt}" for t in rules.TABLE_NAMES} <= names
    tables = files.read_archive(response.content)
    (patient,) = tables["patients"]
    # the GP's text and the morphine's frequency ("bd") are free text: withheld, counted
    assert patient["zip3"] == "021" and patient["free_text_withheld"] == 2
    assert b"Quill" not in response.content and b"Downing" not in response.content


def test_csv_is_the_default_format(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    response = client.get(EXPORT, headers=headers["researcher"])
    assert response.status_code == 200
    assert "csv.zip" in response.headers["content-disposition"]


@pytest.mark.parametrize("role", ["nurse", "pharmacist", "admin"])
def test_other_roles_are_refused_and_get_no_data(
    client: TestClient, headers: dict[str, dict[str, str]], role: str
) -> None:
    _registry(client, headers)
    response = client.get(EXPORT, headers=headers[role])
    assert response.status_code == 403
    assert "research.export" in response.json()["detail"]


def test_an_unknown_format_is_a_422_naming_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(EXPORT, params={"format": "xlsx"}, headers=headers["researcher"])
    assert response.status_code == 422
    assert "format" in response.text


def test_without_sign_in_the_export_is_401(client: TestClient) -> None:
    assert client.get(EXPORT).status_code == 401


def test_each_download_is_audited_with_its_format_and_row_counts(
    client: TestClient, headers: dict[str, dict[str, str]], database: Database
) -> None:
    _registry(client, headers)
    client.get(EXPORT, params={"format": "parquet"}, headers=headers["researcher"])
    with database.read_only() as session:
        (row,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "research.export")
        ).all()
    assert (row.username, row.outcome, row.detail["format"]) == ("researcher", "ok", "parquet")
    assert row.detail["tables"]["patients"] == 1 and row.detail["tables"]["sessions"] == 0


def test_an_export_that_cannot_be_audited_sends_no_data(
    client: TestClient, headers: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The zip is written and audited before its first byte is sent: if the audit fails, the
    answer is an error, never the file."""
    from ketapath.services import audit

    _registry(client, headers)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", broken)
    server = TestClient(client.app, base_url=str(client.base_url), raise_server_exceptions=False)
    response = server.get(EXPORT, headers=headers["researcher"])
    assert response.status_code == 500
    assert response.headers["content-type"] != "application/zip"
    assert b"PK" not in response.content[:2]
