"""The registry page (``/registry``): outcomes across the clinic's courses, for physicians and
researchers (``services.registry``; a researcher's view is de-identified).

The filters are a GET form (the address can be bookmarked and shared); the page shows the
relief-duration curves with their medians, the responder rates with their intervals, the
adverse events against cumulative dose and the regression with what it can and cannot say,
each with a CSV download from the API (``/api/v1/registry/...?format=csv``, the same filters).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep
from ketapath.domain.registry import GROUP_BYS, GroupBy
from ketapath.services import registry
from ketapath.services.errors import InvalidInput
from ketapath.services.registry import Overview, RegistryFilters
from ketapath.web import registry_charts
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

API = "/api/v1/registry"
COURSES_SHOWN = 25  # the first courses on the page; the CSV has every one
TEXT = Annotated[str, Query(max_length=80)]


def _day(text: str, field: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise InvalidInput(f"{field}: {text!r} is not a date (YYYY-MM-DD).", field=field) from error


def _filters(
    protocol: str, indication: str, dose_band: str, date_from: str, date_to: str
) -> RegistryFilters:
    return RegistryFilters(
        protocol=protocol.strip() or None,
        indication=indication.strip() or None,
        dose_band=dose_band.strip() or None,
        date_from=_day(date_from, "date_from"),
        date_to=_day(date_to, "date_to"),
    )


def downloads(filters: RegistryFilters, by: GroupBy) -> dict[str, str]:
    """The CSV address of each analysis, with the page's filters."""
    data = filters.model_dump(mode="json", exclude={"note"})
    query = {k: str(v) for k, v in data.items() if v is not None}
    grouped = {**query, "group_by": by}

    def url(path: str, params: dict[str, str]) -> str:
        return f"{API}/{path}?{urlencode({**params, 'format': 'csv'})}"

    return {
        "courses": url("courses", query),
        "responders": url("responders", grouped),
        "relief": url("relief", grouped),
        "adverse": url("adverse-events", query),
        "regression": url("regression", query),
    }


@router.get("/registry", response_class=HTMLResponse)
async def registry_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    protocol: TEXT = "",
    indication: TEXT = "",
    dose_band: TEXT = "",
    date_from: TEXT = "",
    date_to: TEXT = "",
    group_by: GroupBy = "protocol",
) -> HTMLResponse:
    filters = _filters(protocol, indication, dose_band, date_from, date_to)
    view: Overview = await run_in_threadpool(
        registry.overview, db, actor, filters, by=group_by, clock=clock
    )
    listed = await run_in_threadpool(
        registry.courses, db, actor, filters, limit=COURSES_SHOWN, clock=clock
    )
    context: dict[str, Any] = {
        "view": view,
        "group_by": group_by,
        "group_bys": GROUP_BYS,
        "form": {
            "protocol": protocol.strip(),
            "indication": indication.strip(),
            "dose_band": dose_band.strip(),
            "date_from": date_from.strip(),
            "date_to": date_to.strip(),
        },
        "downloads": downloads(view.filters, group_by),
        "listed": listed,
        "relief_chart": registry_charts.relief_chart(
            view.relief.groups, f"Relief duration by {view.choices.group_bys[group_by].lower()}"
        ),
        "adverse_chart": registry_charts.adverse_chart(view.adverse),
    }
    return render(request, "registry.html", context)
