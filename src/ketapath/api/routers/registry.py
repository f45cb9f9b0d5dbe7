"""The registry analytics (issue 13): outcomes by protocol, indication, dose and duration,
relief-duration curves, responder rates, adverse events against cumulative dose, and the
regression of relief duration. Physicians and researchers; researchers' rows de-identified.

- ``GET /registry``: every analysis of the registry page at once (JSON);
- ``GET /registry/courses``: the course rows (``offset``, ``limit``);
- ``GET /registry/responders``, ``/relief``, ``/adverse-events``, ``/regression``.

Each takes the same filters (``protocol``, ``indication``, ``dose_band``, ``date_from``,
``date_to``); ``format=csv`` answers the analysis as a CSV download. No number is NaN or
infinite: what cannot be estimated is null, with the reason beside it.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from ketapath.api.deps import CurrentUser, DatabaseDep
from ketapath.api.errors import SIGNED_IN, responses
from ketapath.api.params import ClockDep
from ketapath.domain.registry import GroupBy
from ketapath.reports import registry as rendering
from ketapath.services import registry
from ketapath.services.registry import (
    MAX_PAGE,
    AdverseView,
    CoursesView,
    Overview,
    RegistryFilters,
    RegressionView,
    ReliefView,
    RespondersView,
)

router = APIRouter(prefix="/registry", tags=["registry"], responses=SIGNED_IN)

Filters = Annotated[RegistryFilters, Query()]
Format = Annotated[
    Literal["json", "csv"], Query(description="json (the typed analysis) or csv (a download).")
]
GroupByQuery = Annotated[GroupBy, Query(description="What to group the courses by.")]
CSV: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {}},
        "description": "The analysis (JSON), or with format=csv a download.",
    }
}


def _answer(view: Any, fmt: str, name: str, render: Any) -> Response:
    if fmt == "json":
        return Response(view.model_dump_json(), media_type="application/json")
    return Response(
        render(view),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="registry-{name}.csv"'},
    )


@router.get(
    "",
    response_model=Overview,
    summary="Every registry analysis at once (the registry page's data)",
    responses=responses(403, 422),
)
def overview(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    filters: Filters,
    group_by: GroupByQuery = "protocol",
) -> Overview:
    return registry.overview(db, actor, filters, by=group_by, clock=clock)


@router.get(
    "/courses",
    response_model=CoursesView,
    summary="The registry's courses (physicians: with the patient; researchers: de-identified)",
    responses={**responses(403, 422), **CSV},
)
def courses(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    filters: Filters,
    offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
    limit: Annotated[
        int, Query(ge=0, le=MAX_PAGE, description="At most this many (CSV: every course).")
    ] = 100,
    format: Format = "json",
) -> Response:
    if format == "csv":
        table = registry.course_table(db, actor, filters, clock=clock)
        return _answer(table, format, "courses", rendering.courses_csv)
    view: CoursesView = registry.courses(
        db, actor, filters, offset=offset, limit=limit, clock=clock
    )
    return _answer(view, format, "courses", rendering.courses_csv)


@router.get(
    "/responders",
    response_model=RespondersView,
    summary="Responder rates at 30% and 50% with Wilson 95% intervals, by group",
    responses={**responses(403, 422), **CSV},
)
def responders(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    filters: Filters,
    group_by: GroupByQuery = "protocol",
    format: Format = "json",
) -> Response:
    view = registry.responders(db, actor, filters, by=group_by, clock=clock)
    return _answer(view, format, "responders", rendering.responders_csv)


@router.get(
    "/relief",
    response_model=ReliefView,
    summary="Kaplan-Meier curves of relief duration (with censoring) and median relief",
    responses={**responses(403, 422), **CSV},
)
def relief(
    actor: CurrentUser,
    db: DatabaseDep,
    clock: ClockDep,
    filters: Filters,
    group_by: Annotated[
        GroupBy | Literal["all"], Query(description="A grouping, or all for one curve.")
    ] = "all",
    format: Format = "json",
) -> Response:
    by = None if group_by == "all" else group_by
    view: ReliefView = registry.relief(db, actor, filters, by=by, clock=clock)
    return _answer(view, format, "relief", rendering.relief_csv)


@router.get(
    "/adverse-events",
    response_model=AdverseView,
    summary="Adverse-event rates by the patient's cumulative dose per kg",
    responses={**responses(403, 422), **CSV},
)
def adverse_events(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep, filters: Filters, format: Format = "json"
) -> Response:
    view = registry.adverse_events(db, actor, filters, clock=clock)
    return _answer(view, format, "adverse-events", rendering.adverse_csv)


@router.get(
    "/regression",
    response_model=RegressionView,
    summary="Cox regression of relief duration on dose per kg and infusion hours, or why not",
    responses={**responses(403, 422), **CSV},
)
def regression(
    actor: CurrentUser, db: DatabaseDep, clock: ClockDep, filters: Filters, format: Format = "json"
) -> Response:
    view = registry.regression(db, actor, filters, clock=clock)
    return _answer(view, format, "regression", rendering.regression_csv)
