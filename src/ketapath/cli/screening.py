"""Screening from a patient file: ``ketapath screen``.

Exit codes: 0 done; 2 invalid input (the message names the field). The decision itself
(eligible, needs an override, not eligible) is in the output, not the exit code.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail, finding_lines, read_text_file

if TYPE_CHECKING:  # the command bodies import these: the command line must start fast
    from ketapath.domain.patient import Patient
    from ketapath.domain.screening import ScreeningResult


def register(app: typer.Typer) -> None:
    app.command("screen")(screen_command)


def read_patient_file(path: Path, as_json: bool) -> tuple[Patient, list[str]]:
    """The patient in a patient file, or exit 2 naming what is wrong with the file."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.patient import patient_from_text

    text = read_text_file(path, what="patient file")
    try:
        return patient_from_text(text, origin=str(path), suffix=path.suffix)
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)


def screen_command(
    patient_file: Path = typer.Argument(..., help="Patient file (.json, .yaml or .yml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Screen a patient for ketamine infusion: decision, indications, findings with sources.

    The file's ``questionnaires`` (PHQ-9, GAD-7, DASS-21 answers) are screened for self-harm
    and severe scores, as the clinic's recorded assessments are on the server."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.mood import screening_from_document
    from ketapath.domain.patient import document_from_text
    from ketapath.domain.screening import screen

    text = read_text_file(patient_file, what="patient file")
    try:
        raw = document_from_text(text, origin=str(patient_file), suffix=patient_file.suffix)
        patient, warnings, questionnaires = screening_from_document(raw, origin=str(patient_file))
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)
    result = screen(patient, input_warnings=warnings, questionnaires=questionnaires)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(format_screening(result))


def format_screening(result: ScreeningResult) -> str:
    from ketapath.domain.findings import sort_findings

    lines = [f"Screening of {result.patient_id or 'patient'}: {result.decision.upper()}"]
    lines.append(
        "Purpose: " + (", ".join(p.replace("_", " ") for p in result.purpose) or "not stated")
    )
    lines.append("Indications:")
    for ind in result.indications or ():
        lines.append(
            f"  - {ind.name} ({ind.given}): Grade {ind.grade}, {ind.certainty} "
            f"certainty; {ind.benefit}  [{ind.citation}]"
        )
    if not result.indications:
        lines.append("  (none recognised)")
    lines.append("Findings:")
    for f in sort_findings(result.findings):
        lines.extend(finding_lines(f))
    if result.decision == "needs_override":
        lines.append(
            "A physician must accept each finding marked 'needs override' with a written reason."
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ protocols
