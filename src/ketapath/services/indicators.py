"""Indicators of success: what the patient and the clinician agree, at assessment, that the
infusion should achieve (FPM (ANZCA) 2016, section 3: the comprehensive assessment identifies
and documents "indicators of success (or otherwise)", beside the patient's expectancy and the
clinician's goals). The repeat decision compares the outcome with them.

One current set per patient and course (order), or one for the patient without a course; a
change is a new row that amends the current one, with who, when and why.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.services import audit
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.patients import load_patient, patient_order
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.services.validation import MAX_RECORD_ID, REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import Order, utcnow
from ketapath.store.models import SuccessIndicators as IndicatorsRow

# A goal is a sentence or two, not a letter.
GOAL_LENGTH = 500
# Two years: the longest follow-up an assessment takes (services.assessments).
MAX_RELIEF_DAYS = 730
OTHER_GOALS_LENGTH = 1000


class SuccessIndicators(BaseModel):
    """The indicators of success of a course. Each is optional, but at least one is given;
    a percentage is a reduction from before the course (0-100)."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    pain_reduction_percent: float | None = Field(
        default=None, ge=0, le=100, description="Target reduction of pain, % of baseline."
    )
    relief_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RELIEF_DAYS,
        description="The shortest relief, in days after the last session, that counts as "
        "success (Clark 2020, point 2: the minimum duration of improvement).",
    )
    function_goal: str | None = Field(
        default=None, max_length=GOAL_LENGTH, examples=["walk to the shops and back"]
    )
    function_improvement_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Target fall of pain interference (BPI-SF interference), % of baseline.",
    )
    opioid_reduction_percent: float | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Target reduction of the daily opioid dose, %; null: no opioid target.",
    )
    sleep_goal: str | None = Field(default=None, max_length=GOAL_LENGTH)
    other_goals: str | None = Field(default=None, max_length=OTHER_GOALS_LENGTH)

    @field_validator("function_goal", "sleep_goal", "other_goals")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _something(self) -> SuccessIndicators:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("give at least one indicator of success")
        return self


class IndicatorsInput(BaseModel):
    """The indicators of success of a patient, for a course (``order_id``) or in general."""

    model_config = ConfigDict(extra="forbid")

    order_id: int | None = Field(default=None, ge=1, le=MAX_RECORD_ID)
    indicators: SuccessIndicators


class IndicatorsView(BaseModel):
    """A stored set of indicators of success."""

    id: int
    patient_id: int
    order_id: int | None
    indicators: SuccessIndicators
    recorded_at: datetime
    recorded_by: str | None
    amends_id: int | None
    reason: str | None


def _view(row: IndicatorsRow, names: dict[int | None, str]) -> IndicatorsView:
    return IndicatorsView(
        id=row.id,
        patient_id=row.patient_id,
        order_id=row.order_id,
        indicators=SuccessIndicators.model_validate(row.indicators),
        recorded_at=row.recorded_at,
        recorded_by=names.get(row.recorded_by_id),
        amends_id=row.amends_id,
        reason=row.reason,
    )


def _current() -> Any:
    newer = aliased(IndicatorsRow)
    return select(IndicatorsRow).where(
        ~select(newer.id).where(newer.amends_id == IndicatorsRow.id).exists()
    )


def _current_for(session: Session, patient_id: int, order_id: int | None) -> IndicatorsRow | None:
    query = _current().where(IndicatorsRow.patient_id == patient_id)
    query = query.where(
        IndicatorsRow.order_id.is_(None) if order_id is None else IndicatorsRow.order_id == order_id
    )
    return session.scalars(query.order_by(IndicatorsRow.id.desc())).first()


def indicators_in(session: Session, patient_id: int, order_id: int) -> IndicatorsView | None:
    """The indicators of success a course is judged against, inside a transaction the caller
    holds: the course's own current set, else the patient's general one (None: none agreed)."""
    row = _current_for(session, patient_id, order_id) or _current_for(session, patient_id, None)
    return _view(row, usernames_of(session, [row.recorded_by_id])) if row else None


def record_indicators(
    db: Database, actor: Actor, patient_id: int, data: IndicatorsInput
) -> IndicatorsView:
    """Record the indicators of success agreed with the patient (for a course of theirs);
    a second set for the same course is refused: amend the current one."""
    with action(db, actor, "indicators.record", entity="indicators", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        if data.order_id is not None:
            patient_order(s, patient_id, data.order_id)
        existing = _current_for(s, patient_id, data.order_id)
        if existing is not None:
            raise Conflict(
                f"order_id: indicators of success {existing.id} are already recorded for "
                "this course; amend them.",
                field="order_id",
            )
        row = IndicatorsRow(
            patient_id=patient_id,
            order_id=data.order_id,
            indicators=data.indicators.model_dump(mode="json"),
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "indicators.record",
            entity="indicators",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"order_id": data.order_id},
        )
        return _view(row, usernames_of(s, [row.recorded_by_id]))


def amend_indicators(
    db: Database,
    actor: Actor,
    indicators_id: int,
    indicators: SuccessIndicators,
    *,
    reason: str,
) -> IndicatorsView:
    """Change the indicators: a new row amending the current one; the old one stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the indicators are changed.", field="reason")
    if len(reason) > REASON_LENGTH:
        raise InvalidInput(f"reason: at most {REASON_LENGTH:,} characters.", field="reason")
    with action(db, actor, "indicators.record", entity="indicators", entity_id=indicators_id) as s:
        current = s.get(IndicatorsRow, indicators_id)
        if current is None:
            raise NotFound(
                f"indicators_id: no indicators of success {indicators_id}.", field="indicators_id"
            )
        newer = s.scalar(select(IndicatorsRow.id).where(IndicatorsRow.amends_id == current.id))
        if newer is not None:
            raise Conflict(
                f"indicators_id: {indicators_id} was already amended by {newer}; amend the "
                "current version.",
                field="indicators_id",
            )
        row = IndicatorsRow(
            patient_id=current.patient_id,
            order_id=current.order_id,
            indicators=indicators.model_dump(mode="json"),
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
            amends_id=current.id,
            reason=reason.strip(),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "indicators.amend",
            entity="indicators",
            entity_id=row.id,
            patient_id=current.patient_id,
            detail={"amends_id": current.id, "reason": reason.strip()},
        )
        return _view(row, usernames_of(s, [row.recorded_by_id]))


def list_indicators(db: Database, actor: Actor, patient_id: int) -> list[IndicatorsView]:
    """The current indicators of success of each of the patient's courses (and in general)."""
    with action(db, actor, "indicators.read", entity="indicators", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        rows = list(
            s.scalars(
                _current().where(IndicatorsRow.patient_id == patient_id).order_by(IndicatorsRow.id)
            )
        )
        audit.record(
            s,
            actor,
            "indicators.list",
            entity="indicators",
            patient_id=patient_id,
            detail={"count": len(rows)},
        )
        names = usernames_of(s, [row.recorded_by_id for row in rows])
        return [_view(row, names) for row in rows]


def course_indicators(db: Database, actor: Actor, order_id: int) -> IndicatorsView | None:
    """The current indicators of success of a course (None when none are recorded)."""
    with action(db, actor, "indicators.read", entity="order", entity_id=order_id) as s:
        order = s.get(Order, order_id)
        if order is None or order.status != "signed":
            raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
        row = _current_for(s, order.patient_id, order_id)
        audit.record(
            s,
            actor,
            "indicators.read",
            entity="indicators",
            entity_id=row.id if row else None,
            patient_id=order.patient_id,
            detail={"order_id": order_id},
        )
        return _view(row, usernames_of(s, [row.recorded_by_id])) if row else None
