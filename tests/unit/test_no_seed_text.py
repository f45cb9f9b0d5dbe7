"""No text a user reads says "seed": seed ids are the team's provenance, never a citation.

Walks what a clinician meets: the command line's output for every protocol, the screen, the
opioid plan and the knowledge commands; the API's answers and its OpenAPI document; and the
pages of a screened patient with each protocol previewed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.conftest import base_patient
from tests.unit.web_app import client, database, migrated, signed_in  # noqa: F401
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.evidence import evidence

SEED = re.compile(r"\bseeds?\b", re.IGNORECASE)
runner = CliRunner()


def _clean(text: str, where: str) -> None:
    match = SEED.search(text)
    assert match is None, f"{where}: ...{text[max(0, match.start() - 80) : match.end() + 80]}..."


def _cli(*args: str) -> str:
    result = runner.invoke(app, list(args))
    return result.stdout + result.stderr


PROTOCOLS = [p.id for p in knowledge().protocols.entries]


@pytest.mark.parametrize("protocol_id", PROTOCOLS)
def test_no_plan_or_protocol_text_says_seed(protocol_id: str) -> None:
    for weight in ("45", "70", "120"):
        for extra in ((), ("--json",)):
            _clean(_cli("plan", protocol_id, "--weight-kg", weight, *extra), protocol_id)
    _clean(_cli("protocols", "show", protocol_id), protocol_id)
    _clean(_cli("protocols", "show", protocol_id, "--json"), protocol_id)


def test_no_screen_opioid_or_knowledge_text_says_seed(write_patient) -> None:
    path = str(
        write_patient(
            base_patient(
                comorbidities=["I20.0", "F20.9", "unknown thing"],
                medications=[
                    {"name": "lorazepam"},
                    {"name": "codeine", "dose": 30, "unit": "mg", "frequency": "prn"},
                    {"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd"},
                ],
                consent="pending",
                purpose=[],
            )
        )
    )
    outputs = {
        "screen": _cli("screen", path),
        "screen json": _cli("screen", path, "--json"),
        "opioids": _cli("opioids", path),
        "opioids json": _cli("opioids", path, "--json"),
        "protocols": _cli("protocols", "list", "--json"),
        "findings": _cli("knowledge", "findings"),
        "findings json": _cli("knowledge", "findings", "--json"),
        "references": _cli("knowledge", "references", "--json"),
        "adverse effects": _cli("knowledge", "adverse-effects", "--json"),
        "pk models": _cli("pk-models", "--json"),
        "instruments": _cli("score", "--list", "--json"),
        "demo": _cli("demo"),
        "library": _cli("library", "show", "--default", "--outcomes"),
        "library json": _cli("library", "show", "--default", "--json"),
        "library export": _cli("library", "export", "--default"),
    }
    for where, text in outputs.items():
        assert text.strip(), where
        _clean(text, where)


def test_no_page_or_api_answer_says_seed(client: TestClient) -> None:  # noqa: F811
    token = signed_in(client, "physician")
    client.post("/patients/2/screening", data={"csrf_token": token})
    pages = ["/patients/2", "/patients/2/screening", "/patients/2/opioids", "/references"]
    pages += ["/library", "/evidence"]
    pages += [f"/evidence/{s.id}" for s in evidence().entries]
    pages += [f"/patients/2/plan?protocol_id={p}" for p in PROTOCOLS]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        _clean(response.text, page)
    _clean(client.get("/api/v1/openapi.json").text, "openapi")
    for path in (
        "/api/v1/patients/2/screenings",
        "/api/v1/references",
        "/api/v1/instruments",
        "/api/v1/library",
        "/api/v1/evidence/studies",
        "/api/v1/evidence/studies.csv",
        "/api/v1/evidence/recommendations",
        "/api/v1/evidence/levels",
    ):
        response = client.get(path)
        assert response.status_code == 200, path
        _clean(response.text, path)
    preview = client.post(
        "/api/v1/patients/2/plans",
        json={"protocol_id": "crps-schwartzman-10day"},
        headers={"X-CSRF-Token": token},
    )
    assert preview.status_code == 200, preview.text
    _clean(preview.text, "plan preview")


# A provenance id as the team writes it ("seed 004"); a random seed ("--seed 1") is not one.
SEED_ID = re.compile(r"\bseeds? \d{3}\b", re.IGNORECASE)
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "path", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_the_documentation_cites_sources_not_seed_ids(path: Path) -> None:
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        assert SEED_ID.search(line) is None, f"{path.name}:{number}: {line.strip()}"
