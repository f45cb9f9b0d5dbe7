"""Outcomes where the clinic works with them (``services.outcomes``, docs/outcomes.md):

- on the patient page, an **Outcome** card per course with a session given: pain over time
  (the diary and the assessments' NRS) with the sessions marked and the relief shaded, the
  outcome table with each definition's rule and citation, the follow-up timepoints, the
  repeat proposal with its reasoning and the physician's decision form; and the safety checks
  of repeated courses due by courses and cumulative dose;
- ``/follow-ups``: the clinic's follow-ups due today and overdue, each linking to the form
  that records it (physicians, nurses).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId, record_id
from ketapath.knowledge.clinical import knowledge
from ketapath.services import outcome_decisions, outcomes
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.outcome_views import CourseOutcomeView, CourseOverview, RepeatDecisionInput
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web import charts
from ketapath.web.forms import FormErrors, submit, validated
from ketapath.web.pages import PageRoute, PageUser, posted_form, render

router = APIRouter(route_class=PageRoute, include_in_schema=False)

DECISIONS = {
    "repeat": "Repeat the course",
    "change protocol": "Change protocol",
    "stop": "Stop",
}
LABELS = {
    "rd-decision": "Decision",
    "rd-next_protocol_id": "Next protocol",
    "rd-reason": "Reason",
}
PREFIX = "rd-"


@dataclass
class DecisionForm:
    """A refused decision, shown again on its course's card with what was typed."""

    order_id: int
    values: dict[str, str] = field(default_factory=dict)
    errors: FormErrors | None = None


def decision_errors() -> FormErrors:
    return FormErrors(LABELS, where=lambda path: PREFIX + path if PREFIX + path in LABELS else "")


# ------------------------------------------------------------------ the pain chart


def pain_chart(outcome: CourseOutcomeView) -> Markup:
    """Pain over time for one course: the daily diary (joined day to day, gaps left open) and
    the assessments' NRS, the sessions marked, the baseline dashed and the relief shaded."""
    diary = tuple(charts.DayPoint(p.day, p.pain_nrs) for p in outcome.diary)
    pain = outcome.pain
    readings = [r for r in (pain.baseline, pain.compared) if r is not None]
    assessed = [charts.DayPoint(r.administered_at.date(), r.value, r.label) for r in readings]
    for t in pain.by_timepoint:
        day = t.administered_at.date()
        if all(p.day != day for p in assessed):
            assessed.append(charts.DayPoint(day, t.value, f"follow-up {t.timepoint_days} days"))
    markers = [charts.DayMarker(s.day, f"S{s.number}") for s in outcome.sessions]
    relief = outcome.relief
    bands = []
    if relief.start is not None and relief.days and relief.status in ("ended", "censored"):
        end = relief.start + timedelta(days=relief.days)
        words = (
            f"relief {relief.days} days (continuing: censored)"
            if relief.censored
            else f"relief {relief.days} days"
        )
        bands.append(charts.DayBand(relief.start, end, words))
    levels = []
    if pain.baseline is not None:
        levels.append(charts.Level(pain.baseline.value, f"baseline {pain.baseline.value}"))
    description = (
        f"Daily pain of the diary ({len(diary)} days) and {len(assessed)} pain score(s) of the "
        f"assessments; sessions on {', '.join(s.day.isoformat() for s in outcome.sessions)}; "
        f"duration of relief: {relief.explanation}."
    )
    return charts.days_chart(
        [
            charts.DaySeries("Diary: daily pain (NRS)", diary),
            charts.DaySeries("Assessments: pain (NRS)", tuple(assessed), joined=False),
        ],
        title=f"Pain over time, order {outcome.order_id}",
        y_label="Pain (NRS 0-10)",
        description=description,
        y_min=0,
        y_max=10,
        markers=markers,
        bands=bands,
        levels=levels,
        chart_id=f"pain-chart-{outcome.order_id}",
    )


# ------------------------------------------------------------------ the patient page


def patient_outcomes(
    db: Database,
    actor: Actor,
    patient_id: int,
    clock: ClinicClock,
    form: DecisionForm | None = None,
) -> dict[str, Any]:
    """What the patient page shows of outcomes (None when the role may not read them): a card
    per course given, the safety checks due, and the decision form's state."""
    if not actor.may("outcome.read"):
        return {"course_overviews": None, "safety_due": None}
    overviews = outcome_decisions.course_overviews(db, actor, patient_id, clock=clock)
    return {
        "course_overviews": [_card(o, form) for o in overviews],
        "safety_due": outcomes.safety_due(db, actor, patient_id, clock=clock),
        "may_decide": actor.may("repeat.decide"),
        "decision_labels": DECISIONS,
        "protocols": [(p.id, p.name) for p in knowledge().protocols.entries],
        "reason_length": REASON_LENGTH,
    }


def _card(overview: CourseOverview, form: DecisionForm | None) -> dict[str, Any]:
    mine = form is not None and form.order_id == overview.outcome.order_id
    proposal = overview.decision.proposal
    current = overview.decision.current
    if mine and form is not None:
        values = form.values
    else:
        values = {
            "decision": proposal.proposal if proposal.proposal in DECISIONS else "",
            "next_protocol_id": proposal.next_protocol_id or "",
        }
    return {
        "overview": overview,
        "o": overview.outcome,
        "chart": pain_chart(overview.outcome),
        "form_values": values,
        "form_errors": form.errors if mine and form is not None else None,
        "current": current,
    }


@router.post("/orders/{order_id}/repeat-decisions", response_model=None)
async def save_decision(
    request: Request, order_id: RecordId, actor: PageUser, db: DatabaseDep, clock: ClockDep
) -> Response:
    posted = await posted_form(request)
    return await run_in_threadpool(_save, request, db, actor, order_id, clock, posted)


def _save(
    request: Request,
    db: Database,
    actor: Actor,
    order_id: int,
    clock: ClinicClock,
    posted: dict[str, str],
) -> Response:
    from ketapath.services.orders import get_order
    from ketapath.web.patient_pages import render_patient_page

    check(db, actor, "repeat.decide", entity="order", entity_id=order_id)
    order = get_order(db, actor, order_id, clock=clock)
    errors = decision_errors()
    errors.require(
        {PREFIX + k: posted.get(k, "") for k in ("decision", "reason")},
        *(
            PREFIX + "decision",
            PREFIX + "reason",
        ),
    )
    errors.limit({PREFIX + "reason": posted.get("reason", "")}, PREFIX + "reason", REASON_LENGTH)
    data = None
    if not errors:
        data = validated(
            errors,
            RepeatDecisionInput,
            {
                "decision": posted.get("decision", ""),
                "next_protocol_id": posted.get("next_protocol_id", "").strip() or None,
                "reason": posted.get("reason", ""),
                "amends_id": record_id(posted.get("amends_id", "")),
            },
        )
    return submit(
        errors,
        data,
        lambda data: outcome_decisions.record_decision(db, actor, order_id, data, clock=clock),
        lambda _: f"/patients/{order.patient_id}#outcome-{order_id}",
        lambda status_code: render_patient_page(
            request,
            db,
            actor,
            order.patient_id,
            clock,
            decision_form=DecisionForm(order_id, values=posted, errors=errors),
            status_code=status_code,
        ),
        refusals=(InvalidInput, Conflict, NotFound),
    )


# ------------------------------------------------------------------ the clinic's list


@router.get("/follow-ups", response_class=HTMLResponse)
def follow_up_page(
    request: Request,
    actor: PageUser,
    db: DatabaseDep,
    clock: ClockDep,
    status: Annotated[Literal["due", "overdue"] | None, Query()] = None,
) -> HTMLResponse:
    listed = outcomes.follow_ups(db, actor, status, clock=clock)
    return render(
        request,
        "follow_ups.html",
        {"listed": listed, "status": status or "", "record_url": record_url},
    )


def record_url(patient_id: int, order_id: int, offset_days: int) -> str:
    """The assessment form for a follow-up of a course (its course section filled in)."""
    return (
        f"/patients/{patient_id}/assessments/new?instrument_id=nrs&order_id={order_id}"
        f"&label=follow-up&timepoint_days={offset_days}"
    )
