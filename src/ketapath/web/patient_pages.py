"""Patient list and search, the patient page (record, timeline, charts), research and users."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from ketapath.api.deps import DatabaseDep
from ketapath.domain.vocabulary import resolve
from ketapath.knowledge.clinical import knowledge
from ketapath.services import assessments, auth, orders, patients, research, screening
from ketapath.services.assessments import AssessmentView
from ketapath.services.patients import PatientRecord
from ketapath.web import charts
from ketapath.web.pages import PageRoute, PageUser, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)


@dataclass(frozen=True)
class Event:
    """One line of the patient's timeline."""

    at: datetime
    kind: str
    title: str
    detail: str = ""
    by: str | None = None
    link: str | None = None


def coded_items(items: list[Any]) -> list[dict[str, str]]:
    """Diagnoses as code + name, the name from the vocabulary when the text was a code."""
    out = []
    kb = knowledge()
    for item in items or []:
        code = str(item.get("code", "")) if isinstance(item, dict) else str(item)
        name = str(item.get("name", "")) if isinstance(item, dict) else ""
        if not name:
            resolution = resolve(code, kb)
            name = resolution.condition.name if resolution.condition else ""
        out.append({"code": code, "name": name or "(not in the vocabulary)"})
    return out


def _timeline(
    history: list[PatientRecord], recorded: list[AssessmentView], extra: list[Event]
) -> list[Event]:
    events = [
        Event(
            at=record.recorded_at,
            kind="record",
            title="Registered"
            if record.version == 1
            else f"Record amended (version {record.version})",
            detail=record.reason or "",
            by=record.recorded_by,
        )
        for record in history
    ]
    for item in recorded:
        score = "" if item.total is None else f"total {item.total:g}"
        band = (item.score or {}).get("band")
        events.append(
            Event(
                at=item.administered_at,
                kind="assessment",
                title=f"Assessment: {item.instrument_id}",
                detail=", ".join(x for x in (score, str(band) if band else "") if x)
                + (f" (amended: {item.reason})" if item.amends_id else ""),
                by=item.recorded_by,
            )
        )
    events.extend(extra)
    return sorted(events, key=lambda e: e.at, reverse=True)


def assessment_charts(recorded: list[AssessmentView]) -> list[dict[str, Any]]:
    """One chart per instrument with scored totals, and the table of the same numbers."""
    by_instrument: dict[str, list[AssessmentView]] = defaultdict(list)
    for item in recorded:
        if item.total is not None:
            by_instrument[item.instrument_id].append(item)
    out = []
    for index, (instrument_id, items) in enumerate(sorted(by_instrument.items())):
        first_score = items[0].score or {}
        scale_range = first_score.get("range") or first_score.get("total_range")
        y_min, y_max = (None, None)
        if isinstance(scale_range, list | tuple) and len(scale_range) == 2:
            y_min, y_max = float(scale_range[0]), float(scale_range[1])
        points = [
            charts.Point(
                item.administered_at,
                float(item.total or 0.0),
                str((item.score or {}).get("band") or ""),
            )
            for item in items
        ]
        out.append(
            {
                "instrument_id": instrument_id,
                "svg": charts.line_chart(
                    points,
                    title=f"{instrument_id}: total score over time",
                    y_label=f"{instrument_id} total",
                    y_min=y_min,
                    y_max=y_max,
                    chart_id=f"chart-{index}",
                ),
                "items": items,
            }
        )
    return out


@router.get("/patients", response_class=HTMLResponse)
def patient_list(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    q: Annotated[str, Query(max_length=200)] = "",
) -> HTMLResponse:
    found = patients.search_patients(db, actor, q, limit=100)
    context = {"patients": found, "q": q}
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
    request: Request, patient_id: int, actor: PageUser, db: DatabaseDep
) -> HTMLResponse:
    context = patient_context(db, actor, patient_id)
    history = patients.patient_history(db, actor, patient_id)
    recorded = (
        assessments.list_assessments(db, actor, patient_id) if actor.may("assessment.read") else []
    )
    extra = [
        Event(
            at=item.run_at,
            kind="screening",
            title=f"Screened: {item.decision.replace('_', ' ')}",
            detail=f"record version {item.patient_version}",
            by=item.run_by,
            link=f"/patients/{patient_id}/screening",
        )
        for item in (
            screening.list_screenings(db, actor, patient_id) if actor.may("screening.read") else []
        )
    ]
    for order in orders.list_orders(db, actor, patient_id) if actor.may("order.read") else []:
        extra.append(
            Event(
                at=order.signed_at,
                kind="order",
                title=f"Order {order.id} signed: {order.protocol_id}",
                detail="override: " + order.override_reason if order.override_reason else "",
                by=order.signed_by,
                link=f"/orders/{order.id}",
            )
        )
        if order.cancelled_at is not None:
            extra.append(
                Event(
                    at=order.cancelled_at,
                    kind="order",
                    title=f"Order {order.id} cancelled",
                    detail=order.cancel_reason or "",
                    by=order.cancelled_by,
                    link=f"/orders/{order.id}",
                )
            )
    context.update(
        {
            "history": history,
            "assessments": recorded,
            "charts": assessment_charts(recorded),
            "timeline": _timeline(history, recorded, extra),
            "may_read_assessments": actor.may("assessment.read"),
        }
    )
    return render(request, "patient.html", context)


@router.get("/research", response_class=HTMLResponse)
def research_page(request: Request, actor: PageUser, db: DatabaseDep) -> HTMLResponse:
    rows = research.research_patients(db, actor)
    scored = research.research_assessments(db, actor)
    return render(request, "research.html", {"patients": rows, "assessments": scored})


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, actor: PageUser, db: DatabaseDep) -> HTMLResponse:
    return render(request, "users.html", {"users": auth.list_users(db, actor)})
