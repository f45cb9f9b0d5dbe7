"""The evidence explorer over the API, on SQLite and PostgreSQL: the studies filtered, one
study, the CSV download, Table 6 and Table 1; bad filters are a 422 naming the field; reading
writes nothing."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from tests.integration.test_api_roles import API

from ketapath.services.evidence import CSV_COLUMNS
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry


def _strict(response: Any) -> Any:
    """The body, refusing NaN and Infinity (not JSON)."""
    return json.loads(response.text, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


def _audit_rows(database: Database) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def test_a_researcher_lists_filters_and_reads_one_study(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    researcher = headers["researcher"]
    before = _audit_rows(database)
    everything = _strict(client.get(f"{API}/evidence/studies", headers=researcher))
    assert len(everything) == 27
    assert everything[0]["id"] == "sigtermans-2009" and everything[-1]["id"] == "kang-2010"

    crps = client.get(
        f"{API}/evidence/studies",
        params={"indication": "crps", "relief_min_days": 100},
        headers=researcher,
    )
    assert crps.status_code == 200
    assert [s["id"] for s in _strict(crps)] == ["kiefer-2008", "goldberg-2010", "correll-2004"]

    doses = _strict(
        client.get(
            f"{API}/evidence/studies",
            params={"dose_min_mg": 500, "dose_max_mg": 5000},
            headers=researcher,
        )
    )
    assert [(s["id"], s["dose_low_mg"], s["dose_high_mg"], s["dose_from"]) for s in doses] == [
        ("schwartzman-2009", 1000, 1000, "text"),
        ("tawfic-2014", 689.5, 2117.5, "table"),
    ]

    kiefer = _strict(client.get(f"{API}/evidence/studies/kiefer-2008", headers=researcher))
    assert kiefer["citation"] == "Maher et al. 2017, Table 2, row Kiefer et al (reference 6)"
    assert kiefer["n"] is None and kiefer["table_relief_days"] == 182.625
    size = next(c for c in kiefer["cells"] if c["name"] == "size")
    assert size == {
        "name": "size",
        "heading": "Study Size",
        "text": None,
        "raw": ["50"],
        "unreadable": True,
        "note": size["note"],
    }
    assert "6/20" in size["note"]
    assert kiefer["publication_doi"] == "" and kiefer["publication_pmid"] == ""
    assert "DOI or a PMID" in kiefer["publication_checked"]
    salas = _strict(client.get(f"{API}/evidence/studies/salas-2012", headers=researcher))
    assert (salas["publication_doi"], salas["publication_pmid"]) == (
        "10.1089/jpm.2011.0353",
        "22335487",
    )
    assert salas["publication_doi_url"] == "https://doi.org/10.1089/jpm.2011.0353"
    assert salas["publication_pubmed_url"] == "https://pubmed.ncbi.nlm.nih.gov/22335487/"
    assert _audit_rows(database) == before  # published data: reading writes nothing


def test_the_csv_download_holds_the_filtered_rows(
    client: TestClient, users: dict[str, Actor], headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(
        f"{API}/evidence/studies.csv",
        params={"indication": "fibromyalgia"},
        headers=headers["nurse"],
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert 'filename="ketamine-evidence-filtered.csv"' in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["id"] for r in rows] == [
        "graven-nielsen-2000-part-1",
        "graven-nielsen-2000-part-2",
        "sorensen-1995",
        "noppers-2011",
    ]
    assert rows[2]["table_relief_days"] == "0.0556"
    assert rows[0]["cell_size"] == "unreadable: 53"
    everything = client.get(f"{API}/evidence/studies.csv", headers=headers["admin"])
    assert 'filename="ketamine-evidence.csv"' in everything.headers["content-disposition"]
    assert len(list(csv.DictReader(io.StringIO(everything.text)))) == 27


def test_table_6_and_table_1(
    client: TestClient, users: dict[str, Actor], headers: dict[str, dict[str, str]]
) -> None:
    recs = _strict(client.get(f"{API}/evidence/recommendations", headers=headers["pharmacist"]))
    assert [(r["id"], r["grade"], r["certainty"]) for r in recs][:2] == [
        ("indications-spinal-cord-injury", "C", "low"),
        ("indications-crps", "B", "low to moderate"),
    ]
    assert recs[1]["citation"] == "ASRA/AAPM/ASA consensus 2018, Table 6, indications (2)"
    levels = _strict(client.get(f"{API}/evidence/levels", headers=headers["physician"]))
    assert [(lv["level"], lv["studies"]) for lv in levels] == [
        (1, 0),
        (2, 18),
        (3, 5),
        (4, 4),
        (5, 0),
    ]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"dose_min_mg": 100, "dose_max_mg": 10}, ""),
        ({"relief_min_days": "soon"}, "relief_min_days"),
        ({"dose_max_mg": "inf"}, "dose_max_mg"),
        ({"dose_min_mg": "nan"}, "dose_min_mg"),
        ({"dose_min_mg": -5}, "dose_min_mg"),
        ({"cebm_level": 9}, "cebm_level"),
        ({"indication": "migraine"}, "indication"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_filters_are_a_422_naming_the_field(
    client: TestClient,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
    params: dict[str, Any],
    field: str,
) -> None:
    for path in ("/evidence/studies", "/evidence/studies.csv"):
        response = client.get(f"{API}{path}", params=params, headers=headers["researcher"])
        assert response.status_code == 422, (path, response.text)
        body = _strict(response)
        assert body["detail"]
        if field:
            assert field in json.dumps(body["errors"]), body


def test_a_study_that_does_not_exist_or_cannot_is_404_or_422(
    client: TestClient, users: dict[str, Actor], headers: dict[str, dict[str, str]]
) -> None:
    missing = client.get(f"{API}/evidence/studies/smith-1999", headers=headers["researcher"])
    assert missing.status_code == 404 and _strict(missing)["field"] == "study_id"
    bad = client.get(f"{API}/evidence/studies/Not%20an%20id", headers=headers["researcher"])
    assert bad.status_code == 422
    long = client.get(f"{API}/evidence/studies/{'a' * 61}", headers=headers["researcher"])
    assert long.status_code == 422


def test_without_a_sign_in_nothing_is_read(client: TestClient, users: dict[str, Actor]) -> None:
    for path in ("/evidence/studies", "/evidence/studies.csv", "/evidence/studies/amr-2010"):
        assert client.get(f"{API}{path}").status_code == 401
