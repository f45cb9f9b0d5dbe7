"""`ketapath fhir export|import` on both databases, acting for a named clinician."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from click.testing import Result
from tests.conftest import fhir_schema_errors
from tests.integration.conftest import clinic_noon, fhir_patient
from typer.testing import CliRunner

from ketapath.cli import fhir as fhir_cli
from ketapath.interop import fhir
from ketapath.services.permissions import Actor
from ketapath.store.db import Database


def run(database: Database, *args: str, user: str = "") -> Result:
    app = typer.Typer()
    fhir_cli.register(app)
    env = {"KETAPATH_DATABASE_URL": database.url, "KETAPATH_USER": user}
    return CliRunner().invoke(app, ["fhir", *args], env=env)


def test_a_physician_exports_a_bundle_a_nurse_imports_it_as_a_new_patient(
    database: Database, users: dict[str, Actor], tmp_path: Path
) -> None:
    patient_id = fhir_patient(database, users, clinic_noon())
    out = tmp_path / "bundle.json"
    result = run(database, "export", str(patient_id), "--output", str(out), user="physician")
    assert result.exit_code == 0, result.output
    bundle = json.loads(out.read_text())
    assert fhir.validate_bundle(bundle) == [] and fhir_schema_errors(bundle) == []
    imported = run(database, "import", str(out), "--json", user="nurse")
    assert imported.exit_code == 0, imported.output
    answer = json.loads(imported.output)
    assert answer["created"] and answer["record"]["id"] != patient_id
    assert run(database, "export", str(patient_id), user="nurse").exit_code == 2
    assert "Not allowed" in run(database, "export", str(patient_id), user="researcher").output


def test_a_file_that_is_no_bundle_exits_2_naming_the_problem(
    database: Database, users: dict[str, Actor], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"resourceType": "Bundle", "type": "collection", "entry": []}')
    result = run(database, "import", str(bad), user="nurse")
    assert result.exit_code == 2 and "one Patient is needed" in result.output
    bad.write_text("{not json")
    assert run(database, "import", str(bad), user="nurse").exit_code == 2
    assert run(database, "import", str(tmp_path / "missing.json"), user="nurse").exit_code == 2
