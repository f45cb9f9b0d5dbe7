"""The evidence explorer's pages (issue 13): the published studies as a filterable table with
a dose-versus-relief plot, each study's own page, and the filtered studies as CSV.

- ``/evidence``: the filter form (GET, so a filtered view is a link), the plot of total dose
  (normalised to 70 kg) against relief duration on log scales, each point a link to its
  study, the studies not plotted listed beside it with the reason, the table of studies, and
  Table 6 of the consensus and Table 1 of the review;
- ``/evidence.csv``: the same filters, the studies as a CSV download;
- ``/evidence/<study>``: one study, cell by cell, with what is unreadable and why.

Every signed-in role may read it (``evidence.read``): it is published data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from ketapath.api.deps import DatabaseDep
from ketapath.knowledge.evidence import DAYS_PER_UNIT, SETTING_LABELS, evidence
from ketapath.services import evidence as service
from ketapath.services.errors import InvalidInput
from ketapath.services.evidence import STUDY_ID_PATTERN, StudyFilters, StudyView
from ketapath.web.charts import ScatterPoint, Tick, decade_ticks, log_scatter_chart
from ketapath.web.forms import FormErrors, validated
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

FILTER_LABELS = {
    "indication": "Indication",
    "design": "Design",
    "setting": "Setting",
    "cebm_level": "CEBM level",
    "dose_min_mg": "Lowest total dose",
    "dose_max_mg": "Highest total dose",
    "relief_min_days": "Shortest relief",
    "relief_max_days": "Longest relief",
}
NUMBER_FIELDS = ("dose_min_mg", "dose_max_mg", "relief_min_days", "relief_max_days")
CHOICE_LENGTH = 40
# Relief durations on the plot's axis, in days, with the words for them.
RELIEF_TICKS = (
    Tick(10 * DAYS_PER_UNIT["min"], "10 min"),
    Tick(DAYS_PER_UNIT["h"], "1 h"),
    Tick(6 * DAYS_PER_UNIT["h"], "6 h"),
    Tick(1.0, "1 d"),
    Tick(DAYS_PER_UNIT["wk"], "1 wk"),
    Tick(DAYS_PER_UNIT["mo"], "1 mo"),
    Tick(6 * DAYS_PER_UNIT["mo"], "6 mo"),
    Tick(12 * DAYS_PER_UNIT["mo"], "1 y"),
)


def read_filters(
    params: Mapping[str, str],
) -> tuple[StudyFilters | None, FormErrors, dict[str, str]]:
    """The filters typed into the form (empty fields: no filter), every problem in
    ``FormErrors``, and what was typed (to show it back)."""
    form = {name: str(params.get(name, "")).strip() for name in FILTER_LABELS}
    errors = FormErrors(FILTER_LABELS)
    data: dict[str, Any] = {}
    for name in ("indication", "design", "setting", "cebm_level"):
        errors.limit(form, name, CHOICE_LENGTH)
        if form[name] and name not in errors:
            data[name] = form[name]
    for name in NUMBER_FIELDS:
        number = errors.number(form, name)
        if number is not None:
            data[name] = number
    for low, high, words in (
        ("dose_min_mg", "dose_max_mg", "the lowest total dose"),
        ("relief_min_days", "relief_max_days", "the shortest relief"),
    ):
        if low in data and high in data and data[low] > data[high]:
            errors.add(high, f"{FILTER_LABELS[high]} must be at least {words}.")
    if errors:
        return None, errors, form
    filters = validated(errors, StudyFilters, data)
    return filters, errors, form


def filter_query(form: Mapping[str, str]) -> str:
    """The filters as a query string (empty fields left out)."""
    return urlencode({name: value for name, value in form.items() if value})


def _days(value: float) -> str:
    """A relief duration in words: minutes, hours, days, weeks or months."""
    if value < DAYS_PER_UNIT["h"]:
        return f"{value / DAYS_PER_UNIT['min']:.0f} min"
    if value < 1:
        return f"{value / DAYS_PER_UNIT['h']:.3g} h"
    if value < 2 * DAYS_PER_UNIT["wk"]:
        return f"{value:.3g} d"
    if value < 2 * DAYS_PER_UNIT["mo"]:
        return f"{value / DAYS_PER_UNIT['wk']:.3g} wk"
    return f"{value / DAYS_PER_UNIT['mo']:.3g} mo"


def _mg(low: float, high: float) -> str:
    return f"{low:g} mg" if low == high else f"{low:g}-{high:g} mg"


@dataclass(frozen=True)
class Plot:
    svg: Markup
    plotted: list[StudyView]
    not_plotted: list[StudyView]


def dose_relief_plot(views: list[StudyView]) -> Plot:
    """Total dose (70 kg) against relief duration for the studies that have both."""
    plotted = [v for v in views if not v.not_plotted]
    points = []
    for v in plotted:
        assert v.dose_low_mg is not None and v.dose_high_mg is not None
        assert v.relief_days is not None
        from_table = v.dose_from == "table" and v.relief_from == "table"
        relief = ("at least " if v.relief_at_least else "") + _days(v.relief_days)
        source = "Table 2" if from_table else "the review's text"
        points.append(
            ScatterPoint(
                x_low=v.dose_low_mg,
                x_high=v.dose_high_mg,
                y=v.relief_days,
                label=v.title,
                href=f"/evidence/{v.id}",
                tip=f"{v.title}: {_mg(v.dose_low_mg, v.dose_high_mg)}, relief {relief} "
                f"(from {source})",
                marker=0 if from_table else 1,
                at_least=v.relief_at_least,
            )
        )
    described = "; ".join(p.tip for p in points) or "no study"
    highest = max((p.x_high for p in points), default=1000.0)
    lowest = min((p.x_low for p in points), default=10.0)
    svg = log_scatter_chart(
        points,
        title="Total ketamine dose (normalised to 70 kg) against duration of relief",
        description=f"Both axes logarithmic. {described}.",
        x_label="Total dose normalised to 70 kg, mg (log scale)",
        y_label="Duration of relief (log scale)",
        x_ticks=decade_ticks(min(lowest, 10.0), max(3 * highest, 1000.0)),
        y_ticks=RELIEF_TICKS,
        legend=((0, "From Table 2's cells"), (1, "As the review's text states it")),
        chart_id="evidence-plot",
    )
    return Plot(svg, plotted, [v for v in views if v.not_plotted])


def _choices() -> dict[str, list[tuple[str, str]]]:
    data = evidence()
    return {
        "indication": [(g.id, g.label) for g in data.indication_groups],
        "design": [(d.id, f"{d.label} (CEBM level {d.cebm_level})") for d in data.design_classes],
        "setting": list(SETTING_LABELS.items()),
        "cebm_level": [(str(level.level), f"Level {level.level}") for level in data.levels],
    }


@router.get("/evidence", response_class=HTMLResponse)
def evidence_page(request: Request, actor: PageUser, db: DatabaseDep) -> HTMLResponse:
    filters, errors, form = read_filters(request.query_params)
    everything = service.list_studies(db, actor, StudyFilters())
    views = service.list_studies(db, actor, filters) if filters is not None else []
    context = {
        "form": form,
        "errors": errors,
        "choices": _choices(),
        "views": views,
        "total": len(everything),
        "filtered": filters is not None and filters.active,
        "query": filter_query(form),
        "plot": dose_relief_plot(views) if filters is not None else None,
        "recommendations": service.recommendations(db, actor),
        "levels": service.levels(db, actor),
        "table_source": evidence().table_source,
        "days": _days,
    }
    return render(request, "evidence.html", context, status_code=422 if errors else 200)


@router.get("/evidence.csv", response_class=Response)
def evidence_csv(request: Request, actor: PageUser, db: DatabaseDep) -> Response:
    filters, errors, _ = read_filters(request.query_params)
    if filters is None:
        raise InvalidInput(" ".join(p.message for p in errors.problems))
    views = service.list_studies(db, actor, filters)
    return Response(
        service.studies_csv(views),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{service.csv_filename(filters)}"'},
    )


@router.get("/evidence/{study_id}", response_class=HTMLResponse)
def study_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    study_id: Annotated[str, Path(max_length=60, pattern=STUDY_ID_PATTERN)],
) -> HTMLResponse:
    view = service.get_study(db, actor, study_id)
    recommendations = [
        r for r in service.recommendations(db, actor) if set(r.indications) & set(view.indications)
    ]
    return render(
        request,
        "evidence_study.html",
        {"s": view, "recommendations": recommendations, "days": _days},
    )
