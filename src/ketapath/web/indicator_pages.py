"""Indicators of success on the order page: what the patient and the clinician agreed the
course should achieve (FPM (ANZCA) 2016, section 3), shown, recorded and changed with a reason
(``services.indicators``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ketapath.api.deps import DatabaseDep
from ketapath.api.params import ClockDep, RecordId, record_id
from ketapath.services import indicators
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.indicators import (
    GOAL_LENGTH,
    OTHER_GOALS_LENGTH,
    IndicatorsInput,
    IndicatorsView,
    SuccessIndicators,
)
from ketapath.services.orders import OrderView
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.web.forms import FormErrors, submit, validated
from ketapath.web.pages import PageRoute, PageUser, posted_form

router = APIRouter(route_class=PageRoute, include_in_schema=False)

PREFIX = "ind-"
LABELS = {
    "pain_reduction_percent": "Target pain reduction (%)",
    "relief_days": "Shortest relief that counts (days)",
    "function_goal": "Function goal",
    "function_improvement_percent": "Target fall in pain interference (%)",
    "opioid_reduction_percent": "Target opioid reduction (%)",
    "sleep_goal": "Sleep goal",
    "other_goals": "Other goals",
    "reason": "Reason for the change",
}
NUMBERS = (
    "pain_reduction_percent",
    "relief_days",
    "function_improvement_percent",
    "opioid_reduction_percent",
)
TEXTS = {"function_goal": GOAL_LENGTH, "sleep_goal": GOAL_LENGTH, "other_goals": OTHER_GOALS_LENGTH}


@dataclass
class IndicatorsForm:
    """A refused form, shown again with what was typed and its problems."""

    values: dict[str, str] = field(default_factory=dict)
    errors: FormErrors | None = None


def indicator_errors() -> FormErrors:
    labels = {PREFIX + name: words for name, words in LABELS.items()}
    return FormErrors(labels, where=lambda path: PREFIX + path if path in LABELS else "")


def order_indicators(
    db: Database, actor: Actor, order: OrderView, form: IndicatorsForm | None = None
) -> dict[str, Any]:
    """What the order page shows of the course's indicators of success (None when the role
    may not read them) and the form to record or change them."""
    if not actor.may("indicators.read"):
        return {"indicators": None}
    current = indicators.course_indicators(db, actor, order.id)
    values = form.values if form else _values_of(current)
    return {
        "indicators": current,
        "indicators_form": {
            "values": values,
            "errors": form.errors if form else None,
            "may_record": actor.may("indicators.record"),
            "labels": LABELS,
            "lengths": {**TEXTS, "reason": REASON_LENGTH},
        },
    }


def _values_of(current: IndicatorsView | None) -> dict[str, str]:
    if current is None:
        return {}
    data = current.indicators.model_dump()
    return {
        name: "" if data[name] is None else (f"{data[name]:g}" if name in NUMBERS else data[name])
        for name in data
    }


def parse_indicators(posted: dict[str, str], errors: FormErrors) -> SuccessIndicators | None:
    """The indicators typed into the form (empty fields are absent, never zero)."""
    data: dict[str, Any] = {}
    for name in NUMBERS:
        data[name] = errors.number({PREFIX + name: posted.get(name, "")}, PREFIX + name)
    for name, length in TEXTS.items():
        text = posted.get(name, "")
        errors.limit({PREFIX + name: text}, PREFIX + name, length)
        data[name] = text.strip() or None
    if errors:
        return None
    return validated(errors, SuccessIndicators, data)


@router.post("/orders/{order_id}/indicators", response_model=None)
async def save_indicators(
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
    from ketapath.web.order_pages import render_order_page

    check(db, actor, "indicators.record", entity="order", entity_id=order_id)
    order = get_order(db, actor, order_id, clock=clock)
    errors = indicator_errors()
    agreed = parse_indicators(posted, errors)
    amends = record_id(posted.get("indicators_id", ""))
    reason = posted.get("reason", "")
    if amends is not None:
        errors.require({PREFIX + "reason": reason}, PREFIX + "reason")
        errors.limit({PREFIX + "reason": reason}, PREFIX + "reason", REASON_LENGTH)

    def save(agreed: SuccessIndicators) -> object:
        if amends is None:
            data = IndicatorsInput(order_id=order_id, indicators=agreed)
            return indicators.record_indicators(db, actor, order.patient_id, data)
        return indicators.amend_indicators(db, actor, amends, agreed, reason=reason)

    return submit(
        errors,
        agreed,
        save,
        lambda _: f"/orders/{order_id}#indicators",
        lambda status_code: render_order_page(
            request,
            db,
            actor,
            order_id,
            clock,
            indicators_form=IndicatorsForm(values=posted, errors=errors),
            status_code=status_code,
        ),
        refusals=(InvalidInput, Conflict, NotFound),
    )
