"""Patient list and search, the patient page (record, timeline, charts), and users."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId
from ketapath.domain.vocabulary import explain, resolve
from ketapath.knowledge.clinical import knowledge
from ketapath.services import assessments, auth, orders, patients, timeline
from ketapath.services.assessments import AssessmentView
from ketapath.services.timeline import TimelineEvent
from ketapath.web import charts, session_links
from ketapath.web.instrument_forms import find_form
from ketapath.web.pages import PageRoute, PageUser, clinic_zone, in_zone, render, templates

router = APIRouter(route_class=PageRoute, include_in_schema=False)

# The longest search the patient list takes (a name is at most 200 characters).
SEARCH_LENGTH = 200


# Events whose summary needs a word in front (screens and orders say what they are).
KIND_PREFIXES = {
    "record": "Registered",
    "amendment": "Record amended",
    "assessment": "Assessment",
    "assessment_amendment": "Assessment corrected",
    "opioid_dose_amendment": "Corrected",
}


@dataclass(frozen=True)
class Event:
    """One line of the patient's timeline, as shown."""

    at: datetime
    kind: str
    title: str
    detail: str = ""
    by: str | None = None
    link: str | None = None


def shown_timeline(patient_id: int, events: list[TimelineEvent]) -> list[Event]:
    """The service's timeline, newest first, with links to the screen and the orders."""
    out = []
    for event in reversed(events):
        link = None
        if event.kind == "screening":
            link = f"/patients/{patient_id}/screening"
        elif event.kind in ("order", "cancel", "order_confirmation"):
            link = f"/orders/{event.id}"
        elif event.kind.startswith("opioid_"):
            link = f"/patients/{patient_id}/opioids"
        out.append(
            Event(
                at=event.at,
                kind=event.kind,
                title=(
                    f"{KIND_PREFIXES[event.kind]}: {event.summary}"
                    if event.kind in KIND_PREFIXES
                    else event.summary[:1].upper() + event.summary[1:]
                ),
                detail=event.reason or "",
                by=event.by,
                link=link,
            )
        )
    return out


def instrument_name(instrument_id: str) -> str:
    """The instrument's short name (NRS, BPI-SF) where the knowledge base defines it."""
    form = find_form(instrument_id)
    return form.short_name if form else instrument_id


templates.env.globals["instrument_name"] = instrument_name


def read_diagnosis(text: str) -> dict[str, Any]:
    """How one written diagnosis is read: the condition with its codes, or why not."""
    kb = knowledge()
    resolution = resolve(text, kb)
    cond = resolution.condition
    codes = []
    if cond is not None:
        if cond.icd10cm:
            codes.append("ICD-10-CM " + ", ".join(cond.icd10cm))
        if cond.icd11:
            codes.append("ICD-11 " + ", ".join(cond.icd11))
    return {
        "resolved": cond is not None,
        "condition_id": cond.id if cond is not None else "",
        "condition": cond.name if cond is not None else "Not recognised: check by hand",
        "codes": "; ".join(codes),
        "explanation": explain(resolution, kb),
    }


def coded_items(items: list[Any]) -> list[dict[str, Any]]:
    """Diagnoses as written, each with the condition it was read as (name and codes) or why
    it was not, so the clinician sees the interpretation that screening uses."""
    out = []
    for item in items or []:
        code = str(item.get("code", "")) if isinstance(item, dict) else str(item)
        recorded = str(item.get("name", "")) if isinstance(item, dict) else ""
        note = str(item.get("note", "")) if isinstance(item, dict) else ""
        read = read_diagnosis(code)
        out.append(
            {
                "code": code,
                "name": read["condition"],
                "recorded_name": recorded,
                "note": note,
                **read,
            }
        )
    return out


@dataclass(frozen=True)
class Reading:
    """One scale's value in one assessment (a point of a chart, a row of its table)."""

    at: datetime
    value: float
    band: str


def _scale_readings(item: AssessmentView) -> dict[str, tuple[str, float, float, Reading]]:
    """The scales to chart from one scored assessment: its total, or else every subscale.

    Keyed by scale id: (scale name, range low, range high, reading). Scales that could not be
    scored (too many items missing) are left out, never drawn as zero.
    """
    score = item.score or {}
    scales = score.get("subscales") or {}
    total_id = score.get("total_scale_id")
    chosen = [str(total_id)] if total_id in scales else sorted(scales)
    out: dict[str, tuple[str, float, float, Reading]] = {}
    for scale_id in chosen:
        scale = scales[scale_id]
        value = scale.get("value")
        low, high = (scale.get("range") or [None, None])[:2]
        if value is None or not scale.get("scorable", True) or low is None or high is None:
            continue
        reading = Reading(item.administered_at, float(value), str(scale.get("band") or ""))
        out[scale_id] = (str(scale.get("name") or scale_id), float(low), float(high), reading)
    return out


def assessment_charts(
    recorded: list[AssessmentView], zone: tzinfo | None = None
) -> list[dict[str, Any]]:
    """One chart per instrument scale over time (the total, or each subscale), with its table.

    Times are drawn in the clinic's zone (``zone``; the server's own when None), as the
    tables beside the charts show them.
    """
    series: dict[tuple[str, str], dict[str, Any]] = {}
    for item in recorded:
        for scale_id, (name, low, high, reading) in _scale_readings(item).items():
            entry = series.setdefault(
                (item.instrument_id, scale_id),
                {"name": name, "low": low, "high": high, "readings": []},
            )
            entry["readings"].append(reading)
    out = []
    for index, ((instrument_id, _scale_id), entry) in enumerate(sorted(series.items())):
        readings = sorted(entry["readings"], key=lambda r: r.at)
        title = f"{instrument_name(instrument_id)}: {entry['name']}"
        out.append(
            {
                "instrument_id": instrument_id,
                "name": title,
                "svg": charts.line_chart(
                    [charts.Point(in_zone(r.at, zone), r.value, r.band) for r in readings],
                    title=f"{title} over time",
                    y_label=title,
                    y_min=entry["low"],
                    y_max=entry["high"],
                    chart_id=f"chart-{index}",
                ),
                "readings": readings,
            }
        )
    return out


@router.get("/patients", response_class=HTMLResponse)
def patient_list(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    q: Annotated[str, Query(max_length=SEARCH_LENGTH)] = "",
) -> HTMLResponse:
    found = patients.search_patients(db, actor, q, limit=100)
    context = {"patients": found, "q": q, "search_length": SEARCH_LENGTH}
    if request.headers.get("HX-Target") == "patient-results":
        return render(request, "_patient_rows.html", context)
    return render(request, "patients.html", context)


def patient_context(db: Any, actor: Any, patient_id: int) -> dict[str, Any]:
    """What the patient page and the pages under it show about the patient."""
    record = patients.get_patient(db, actor, patient_id)
    return {
        "record": record,
        "doc": record.document,
        "diagnoses": coded_items(record.document.get("diagnoses", [])),
        "comorbidities": coded_items(record.document.get("comorbidities", [])),
    }


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request, patient_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> HTMLResponse:
    return render_patient_page(request, db, actor, patient_id, clock)


def render_patient_page(
    request: Request,
    db: Any,
    actor: Any,
    patient_id: int,
    clock: Any,
    *,
    decision_form: Any = None,
    status_code: int = 200,
) -> HTMLResponse:
    """The patient page (``decision_form``: a refused repeat decision, shown again on its
    course's Outcome card)."""
    context = patient_context(db, actor, patient_id)
    recorded = (
        assessments.list_assessments(db, actor, patient_id) if actor.may("assessment.read") else []
    )
    events = (
        timeline.patient_timeline(db, actor, patient_id) if actor.may("patient.timeline") else None
    )
    context.update(
        {
            "assessments": recorded,
            "charts": assessment_charts(recorded, clinic_zone(request)),
            "timeline": shown_timeline(patient_id, events) if events is not None else None,
            "may_read_assessments": actor.may("assessment.read"),
            # signed orders with whether each may be used (stale, consent): None when the
            # role may not read orders
            "orders": (
                orders.list_orders(db, actor, patient_id, clock=clock)
                if actor.may("order.read")
                else None
            ),
        }
    )
    context.update(session_links.patient_sessions(db, actor, patient_id, clock))
    context.update(safety_links(db, actor, patient_id))
    context.update(outcome_links(db, actor, patient_id, clock, decision_form))
    return render(request, "patient.html", context, status_code=status_code)


def outcome_links(
    db: Any, actor: Any, patient_id: int, clock: Any, form: Any = None
) -> dict[str, Any]:
    """The Outcome cards and the safety checks due (``outcome_pages``, imported here to
    avoid a cycle)."""
    from ketapath.web.outcome_pages import patient_outcomes

    return patient_outcomes(db, actor, patient_id, clock, form)


def safety_links(db: Any, actor: Any, patient_id: int) -> dict[str, Any]:
    """The safety follow-up card (``safety_pages``, imported here to avoid a cycle)."""
    from ketapath.web.safety_pages import patient_safety

    return patient_safety(db, actor, patient_id)


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: PageUser, db: DatabaseDep) -> HTMLResponse:
    return render(request, "users.html", {"users": auth.list_users(db, actor)})
