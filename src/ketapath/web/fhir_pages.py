"""FHIR on the web pages (docs/fhir.md): the "Export FHIR bundle" download on the patient
page (physicians) and the form that imports a Bundle as a new patient, or as a new version
of a record (physicians and nurses).

Every rule is in ``ketapath.services.fhir``; the pages read the form and show what the service
returns: what was written, what was not imported, what was not recognised, or every problem
of a Bundle that was refused (nothing is written then).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import UploadFile

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId, record_id
from ketapath.interop.fhir import CONTENT_TYPE, FHIR_RELEASE, FHIR_VERSION
from ketapath.services import fhir
from ketapath.services.errors import InvalidInput, PermissionDenied, ServiceError
from ketapath.services.validation import REASON_LENGTH
from ketapath.web.forms import FormErrors
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# A Bundle file the form takes (a whole record with many sessions runs to megabytes).
MAX_BUNDLE_BYTES = 20_000_000
# Where a service names its input, and the form's field for it.
FIELDS = {
    "file": "bundle-file",
    "bundle": "bundle-file",
    "patient_id": "import-patient",
    "expected_version": "import-version",
    "reason": "import-reason",
}
LABELS = {
    "bundle-file": "Bundle file",
    "import-patient": "Patient number",
    "import-version": "Version amended",
    "import-reason": "The reason",
}


@router.get("/patients/{patient_id}/fhir.json", response_model=None)
def export_bundle(
    patient_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    """The patient's record as a FHIR R4B Bundle, downloaded as a file."""
    bundle = fhir.export_patient(db, actor, patient_id, clock=clock)
    return Response(
        json.dumps(bundle, ensure_ascii=False, allow_nan=False, indent=1),
        media_type=CONTENT_TYPE,
        headers={"Content-Disposition": f'attachment; filename="patient-{patient_id}-fhir.json"'},
    )


def _context(values: dict[str, str]) -> dict[str, Any]:
    return {
        "values": values,
        "errors": None,
        "bundle_problems": [],
        "result": None,
        "reason_length": REASON_LENGTH,
        "fhir_version": f"FHIR {FHIR_RELEASE} ({FHIR_VERSION})",
    }


@router.get("/fhir/import", response_class=HTMLResponse)
def import_form(
    request: Request, actor: PageUser, patient: str = "", version: str = ""
) -> HTMLResponse:
    if not actor.may("fhir.import"):
        raise PermissionDenied(
            "Not allowed: importing a FHIR Bundle needs the role nurse or physician."
        )
    values = {"import-patient": patient[:12], "import-version": version[:12]}
    return render(request, "fhir_import.html", _context(values))


async def _bundle(upload: UploadFile | None) -> Any:
    if upload is None or not upload.filename:
        raise InvalidInput("file: choose the FHIR Bundle file (.json).", field="file")
    raw = await upload.read(MAX_BUNDLE_BYTES + 1)
    if len(raw) > MAX_BUNDLE_BYTES:
        raise InvalidInput(
            f"file: a Bundle file is at most {MAX_BUNDLE_BYTES // 1_000_000} MB.", field="file"
        )
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise InvalidInput(
            "file: not a JSON file (a FHIR Bundle is JSON).", field="file"
        ) from error


def _ids(values: dict[str, str], errors: FormErrors) -> tuple[int | None, int | None]:
    patient_text = values.get("import-patient", "").strip()
    version_text = values.get("import-version", "").strip()
    patient = record_id(patient_text) if patient_text else None
    version = record_id(version_text) if version_text else None
    if patient_text and patient is None:
        errors.add("import-patient", "Patient number must be a patient's number (1, 2, 3 ...).")
    if version_text and version is None:
        errors.add("import-version", "Version amended must be a version number (1, 2, 3 ...).")
    if patient is not None:
        errors.require(values, "import-version", "import-reason")
    errors.limit(values, "import-reason", REASON_LENGTH)
    return patient, version


@router.post("/fhir/import", response_class=HTMLResponse)
async def import_bundle(
    request: Request, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> HTMLResponse:
    posted = await request.form()
    upload = posted.get("file")
    values = {k: v for k, v in posted.items() if isinstance(v, str) and k in LABELS}
    errors = FormErrors(LABELS, where=lambda path: FIELDS.get(path.split(".")[0], ""))
    context = _context(values)
    patient, version = _ids(values, errors)
    status = 422
    try:
        if not errors:
            bundle = await _bundle(upload if isinstance(upload, UploadFile) else None)
            context["result"] = fhir.import_bundle(
                db,
                actor,
                bundle,
                patient_id=patient,
                expected_version=version,
                reason=values.get("import-reason", ""),
                clock=clock,
            )
    except PermissionDenied:
        raise
    except ServiceError as error:  # refused: nothing was written
        status = error.status_code
        listed = error.details.get("errors") or []
        context["bundle_problems"] = [f"{p['field']}: {p['message']}" for p in listed]
        if listed:
            first = error.message.removeprefix("bundle: ")
            errors.add("bundle-file", f"The Bundle was refused: {first}")
        else:
            errors.add_error(error)
    if errors:
        context["errors"] = errors
        return render(request, "fhir_import.html", context, status_code=status)
    return render(request, "fhir_import.html", context, status_code=201)
