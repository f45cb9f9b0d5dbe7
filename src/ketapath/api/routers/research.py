"""De-identified data for researchers: the views and the research export.

- ``GET /research/patients``, ``GET /research/assessments``: de-identified views (researchers);
- ``GET /research/export?format=csv|parquet``: the de-identified export as a zip of one file
  per table with its data dictionary (researchers and physicians; each export audited with its
  format and row counts; docs/research-export.md). The zip is written whole to an anonymous
  temporary file and audited before its first byte is sent, then streamed from that file, so
  a registry's export never sits in memory and a failed export sends nothing.
"""

from __future__ import annotations

import io
import tempfile
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ketapath.api.deps import CurrentUser, DatabaseDep, SettingsDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep
from ketapath.interop import research as files
from ketapath.services import research, research_export
from ketapath.services.research import DeidentifiedAssessment, DeidentifiedPatient

router = APIRouter(prefix="/research", tags=["research"], responses=SIGNED_IN)
CHUNK = 1 << 20  # bytes of the zip sent at a time

ARCHIVE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {files.MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}},
        "description": "A zip: one CSV or Parquet file per table, data_dictionary.csv, "
        "safe_harbor.csv and README.txt.",
    }
}


@router.get("/patients", response_model=list[DeidentifiedPatient])
def research_patients(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> list[DeidentifiedPatient]:
    return research.research_patients(db, actor, clock=clock, settings=settings)


@router.get("/assessments", response_model=list[DeidentifiedAssessment])
def research_assessments(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep, settings: SettingsDep
) -> list[DeidentifiedAssessment]:
    return research.research_assessments(db, actor, clock=clock, settings=settings)


@router.get(
    "/export",
    summary="The de-identified research export (HIPAA Safe Harbor) as a zip of CSV or Parquet",
    response_class=Response,
    responses={**responses(403, 422), **ARCHIVE},
)
def research_export_download(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["csv", "parquet"],
        Query(description="csv (one CSV per table) or parquet (one Parquet file per table)."),
    ] = "csv",
) -> Response:
    """Every table of the registry a researcher may have: patients, courses, sessions,
    adverse events, assessments and their scales, diary entries, safety results and values.
    Researchers and physicians get the same de-identified tables; the export is audited."""
    spool = tempfile.TemporaryFile()  # noqa: SIM115 (closed after the response is sent)
    try:
        research_export.export_research(db, actor, format, spool, clock=clock, settings=settings)
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return StreamingResponse(
        iter(lambda: spool.read(CHUNK), b""),
        media_type=files.MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{files.filename(format)}"',
            "Content-Length": str(size),
        },
        background=BackgroundTask(spool.close),
    )
