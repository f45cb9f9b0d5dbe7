"""FHIR (docs/fhir.md): a patient's record as a FHIR R4B Bundle, and a Bundle imported as a
record.

- ``GET /patients/{id}/fhir``: the Bundle, ``application/fhir+json`` (``?download=true``: as
  a file); a physician's, audited;
- ``POST /fhir/import``: a Bundle (``application/fhir+json`` or ``application/json``)
  registers a new patient, or with ``patient_id``, ``expected_version`` and ``reason`` becomes
  a new version of that record; an invalid Bundle is a 422 naming every entry at fault, and
  nothing is written.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep, RecordId
from ketapath.interop.fhir import CONTENT_TYPE, FHIR_VERSION, MEDIA_TYPE
from ketapath.services import fhir
from ketapath.services.fhir import MAX_ENTRIES, ImportResult
from ketapath.services.validation import MAX_RECORD_ID, REASON_LENGTH

router = APIRouter(tags=["fhir"], responses=SIGNED_IN)

BUNDLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": f"A FHIR Bundle (type collection), FHIR R4B ({FHIR_VERSION}).",
    "properties": {
        "resourceType": {"type": "string", "enum": ["Bundle"]},
        "type": {"type": "string"},
        "timestamp": {"type": "string"},
        "meta": {"type": "object"},
        "entry": {"type": "array", "items": {"type": "object"}},
    },
    "required": ["resourceType", "type", "entry"],
}


class ImportEntry(BaseModel):
    """One entry of a Bundle; its resource is validated as FHIR R4B by the import."""

    model_config = ConfigDict(extra="allow")

    fullUrl: str | None = Field(default=None, max_length=4096)
    resource: dict[str, Any] | None = None


class ImportBundle(BaseModel):
    """A FHIR Bundle to import (any Bundle type; only its resources are read)."""

    model_config = ConfigDict(extra="allow")

    resourceType: Literal["Bundle"]
    type: str = Field(min_length=1, max_length=40)
    entry: list[ImportEntry] = Field(default=[], max_length=MAX_ENTRIES)


@router.get(
    "/patients/{patient_id}/fhir",
    response_model=None,
    summary=f"The patient's record as a FHIR R4B ({FHIR_VERSION}) Bundle",
    responses={
        200: {
            "description": "The Bundle (application/fhir+json).",
            "content": {MEDIA_TYPE: {"schema": BUNDLE_SCHEMA}},
        },
        **responses(404, 422),
    },
)
def export_fhir(
    patient_id: RecordId,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    download: Annotated[bool, Query(description="Answer as a file to save.")] = False,
) -> Response:
    bundle = fhir.export_patient(db, actor, patient_id, clock=clock)
    headers = (
        {"Content-Disposition": f'attachment; filename="patient-{patient_id}-fhir.json"'}
        if download
        else None
    )
    return Response(
        json.dumps(bundle, ensure_ascii=False, allow_nan=False, indent=1),
        media_type=CONTENT_TYPE,
        headers=headers,
    )


@router.post(
    "/fhir/import",
    response_model=ImportResult,
    status_code=status.HTTP_201_CREATED,
    summary="Import a FHIR Bundle as a new patient, or as a new version of a record",
    responses=responses(400, 404, 409, 422),
)
def import_fhir(
    body: ImportBundle,
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    patient_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_RECORD_ID, description="Amend this patient's record (else: new)."),
    ] = None,
    expected_version: Annotated[
        int | None,
        Query(ge=1, le=MAX_RECORD_ID, description="The version amended (with patient_id)."),
    ] = None,
    reason: Annotated[
        str, Query(max_length=REASON_LENGTH, description="Why the record is amended.")
    ] = "",
) -> ImportResult:
    return fhir.import_bundle(
        db,
        actor,
        body.model_dump(mode="json", exclude_unset=True),
        patient_id=patient_id,
        expected_version=expected_version,
        reason=reason,
        clock=clock,
    )
