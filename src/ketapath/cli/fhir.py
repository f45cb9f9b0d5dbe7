"""FHIR on the command line (docs/fhir.md).

- ``fhir export PATIENT_ID --user physician1 [--output FILE]``: the patient's record as a FHIR
  R4B Bundle (JSON), to standard output or a file; audited like the API's export.
- ``fhir import FILE --user nurse1 [--patient ID --expected-version N --reason TEXT]``: a
  Bundle (JSON) registers a new patient, or becomes a new version of that record; prints
  the record's number and version, what was not imported and what was not recognised.

They act for a clinician, named with ``--user`` (or ``KETAPATH_USER``), as the sessions
commands do. Exit codes: 0 done; 1 no database; 2 invalid input or refused (the message
names the field or the Bundle entry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail
from ketapath.cli.sessions import _acting, _database


def _run(call: Any, as_json: bool) -> Any:
    """A service call on the clinic's database, its refusals as one line."""
    from ketapath.services.errors import ServiceError

    try:
        return call()
    except typer.Exit:
        raise
    except ServiceError as error:
        fail(error.message, code=EXIT_INVALID, as_json=as_json, field=error.field or "")
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot use the clinic's database ({type(error).__name__}); run "
            "`ketapath db upgrade` first",
            code=1,
            as_json=as_json,
            kind="database",
        )


fhir_app = typer.Typer(
    help="FHIR: export a patient's record as a Bundle, import a Bundle as a record.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(fhir_app, name="fhir")


@fhir_app.command("export")
def fhir_export(
    patient_id: int = typer.Argument(..., min=1, max=2**31 - 1, help="The patient's number."),
    user: str = typer.Option("", "--user", help="The physician the export is for."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Write to this file."),
) -> None:
    """The patient's record as a FHIR R4B Bundle (application/fhir+json)."""
    from ketapath.services import fhir

    db = _database()
    actor = _run(lambda: _acting(db, user or None, False), False)
    bundle = _run(lambda: fhir.export_patient(db, actor, patient_id), as_json=False)
    text = json.dumps(bundle, ensure_ascii=False, allow_nan=False, indent=1)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    typer.echo(f"{output}: Bundle of patient {patient_id}, {len(bundle['entry'])} resources")


# A Bundle of a whole record with many sessions runs to megabytes; more than this is not one.
MAX_BUNDLE_BYTES = 50_000_000


def _read_bundle(file: Path, as_json: bool) -> Any:
    try:
        with file.open("rb") as handle:
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as error:
        fail(f"{file}: cannot read it ({error.strerror})", as_json=as_json, field="file")
    if len(data) > MAX_BUNDLE_BYTES:
        fail(
            f"{file}: larger than {MAX_BUNDLE_BYTES // 1_000_000} MB", as_json=as_json, field="file"
        )
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:
        fail(f"{file}: not JSON text ({error})", code=EXIT_INVALID, as_json=as_json, field="file")


@fhir_app.command("import")
def fhir_import(
    file: Path = typer.Argument(..., help="A FHIR Bundle as JSON."),
    user: str = typer.Option("", "--user", help="The clinician who registers or amends."),
    patient: int | None = typer.Option(
        None, "--patient", min=1, max=2**31 - 1, help="Amend this patient's record."
    ),
    expected_version: int | None = typer.Option(
        None, "--expected-version", min=1, max=2**31 - 1, help="The version amended."
    ),
    reason: str = typer.Option("", "--reason", help="Why the record is amended."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Register a patient from a FHIR Bundle, or record it as a new version of a record."""
    from ketapath.services import fhir

    bundle = _read_bundle(file, as_json)
    db = _database()
    actor = _run(lambda: _acting(db, user or None, as_json), as_json)
    result = _run(
        lambda: fhir.import_bundle(
            db,
            actor,
            bundle,
            patient_id=patient,
            expected_version=expected_version,
            reason=reason,
        ),
        as_json,
    )
    if as_json:
        emit_json(result.model_dump(mode="json"))
        return
    what = "registered" if result.created else "amended"
    typer.echo(f"patient {result.record.id} {what}: record version {result.record.version}")
    for line in [*result.skipped, *result.not_recognised]:
        typer.echo(f"  {line}")
