"""The evidence explorer (issue 13): the studies of Table 2 of Maher et al. 2017, Table 1's
CEBM levels and Table 6 of the ASRA/AAPM/ASA consensus 2018, as cited data.

- ``GET /evidence/studies``: the studies, filtered (indication, design, setting, CEBM level,
  dose range, relief range);
- ``GET /evidence/studies.csv``: the same studies as a CSV download;
- ``GET /evidence/studies/{study_id}``: one study, cell by cell;
- ``GET /evidence/recommendations``, ``GET /evidence/levels``: Table 6 and Table 1.

Published data: every signed-in role reads it (``evidence.read``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.services import evidence
from ketapath.services.evidence import (
    STUDY_ID_PATTERN,
    LevelView,
    RecommendationView,
    StudyFilters,
    StudyView,
)

router = APIRouter(prefix="/evidence", tags=["evidence"], responses=SIGNED_IN)

CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "The studies as CSV (one header row, one row per study), a download.",
    }
}


@router.get(
    "/studies",
    response_model=list[StudyView],
    summary="The studies of the evidence table, filtered",
)
def list_studies(
    actor: CurrentUser, db: DatabaseDep, filters: Annotated[StudyFilters, Query()]
) -> list[StudyView]:
    """Every study that passes every filter given, in the order of the review's references.

    A dose or relief filter keeps only the studies that have a dose (or relief) from the
    table or the review's text; a dose range matches a study whose dose range overlaps it.
    """
    return evidence.list_studies(db, actor, filters)


@router.get(
    "/studies.csv",
    response_class=Response,
    summary="The filtered studies as a CSV download",
    responses=CSV_RESPONSE,
)
def studies_csv(
    actor: CurrentUser, db: DatabaseDep, filters: Annotated[StudyFilters, Query()]
) -> Response:
    views = evidence.list_studies(db, actor, filters)
    return Response(
        evidence.studies_csv(views),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{evidence.csv_filename(filters)}"'},
    )


@router.get(
    "/studies/{study_id}",
    response_model=StudyView,
    summary="One study, cell by cell",
    responses=responses(404),
)
def get_study(
    actor: CurrentUser,
    db: DatabaseDep,
    study_id: Annotated[str, Path(max_length=60, pattern=STUDY_ID_PATTERN)],
) -> StudyView:
    return evidence.get_study(db, actor, study_id)


@router.get(
    "/recommendations",
    response_model=list[RecommendationView],
    summary="Table 6 of the ASRA/AAPM/ASA consensus 2018",
)
def list_recommendations(actor: CurrentUser, db: DatabaseDep) -> list[RecommendationView]:
    return evidence.recommendations(db, actor)


@router.get(
    "/levels",
    response_model=list[LevelView],
    summary="Table 1 of Maher et al. 2017: the CEBM levels, with the designs at each",
)
def list_levels(actor: CurrentUser, db: DatabaseDep) -> list[LevelView]:
    return evidence.levels(db, actor)
