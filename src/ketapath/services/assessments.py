"""Assessments: an instrument's answers as given, with the score computed from them.

A correction is a new row that amends the previous one (with who, when and why); lists show
the current version of each assessment, and the history of any one is available.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.domain import instruments
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import EARLIEST_DATE, check_day
from ketapath.knowledge.instruments import Instrument
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.patients import load_patient
from ketapath.services.people import username_of, usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import Assessment, utcnow

# More answers than any instrument has items (DASS-21 has 21) cannot be one assessment.
MAX_ANSWERS = 200


class AssessmentInput(BaseModel):
    """What the clinician enters: the instrument, the answers item by item, and when."""

    model_config = ConfigDict(allow_inf_nan=False)

    instrument_id: str = Field(min_length=1, max_length=40, examples=["nrs"])
    answers: dict[str, instruments.Answer] = Field(
        examples=[{"pain": 7}],
        max_length=MAX_ANSWERS,
        description="Item id to answer: a number, a text such as 'yes', or null (missing).",
    )
    administered_at: datetime | None = Field(
        default=None,
        description=(
            "When the patient answered, with its time zone; default: now. Not in the future, "
            "not before 1900 nor before the patient's birth date (the clinic's date)."
        ),
    )


class AssessmentView(BaseModel):
    id: int
    patient_id: int
    instrument_id: str
    answers: dict[str, Any]
    score: dict[str, Any] | None
    total: float | None
    administered_at: datetime
    recorded_at: datetime
    recorded_by: str | None
    amends_id: int | None
    reason: str | None


def instrument_catalogue() -> tuple[Instrument, ...]:
    """The instruments that can be recorded, with their items, answer ranges and sources.

    Reference data, not patient data: any signed-in user may read it.
    """
    return instruments.list_instruments()


def score_answers(instrument_id: str, answers: dict[str, Any]) -> dict[str, Any]:
    """The instrument's score (``ketapath.domain.instruments``) as stored with the answers.

    A wrong instrument or answer raises ``InvalidInput`` naming it (``answers.q3``); an answer
    is never clipped or guessed.
    """
    try:
        result = instruments.score(instrument_id, answers)
    except instruments.UnknownInstrumentError as error:
        raise InvalidInput(f"instrument_id: {error}", field="instrument_id") from error
    except (
        instruments.UnknownItemError,
        instruments.InvalidAnswerError,
        instruments.DuplicateAnswerError,
    ) as error:
        field = f"answers.{error.item_id}"
        raise InvalidInput(f"{field}: {error}", field=field) from error
    except instruments.InstrumentError as error:
        raise InvalidInput(f"answers: {error}", field="answers") from error
    return result.to_dict()


def _view(
    session: Session, row: Assessment, names: dict[int | None, str] | None = None
) -> AssessmentView:
    """The view of a stored assessment (``names``: user names fetched for a whole list)."""
    recorded_by = (
        names.get(row.recorded_by_id)
        if names is not None
        else username_of(session, row.recorded_by_id)
    )
    return AssessmentView(
        id=row.id,
        patient_id=row.patient_id,
        instrument_id=row.instrument_id,
        answers=row.answers,
        score=row.score,
        total=row.total,
        administered_at=row.administered_at,
        recorded_at=row.recorded_at,
        recorded_by=recorded_by,
        amends_id=row.amends_id,
        reason=row.reason,
    )


def _administered_at(value: datetime | None, clock: ClinicClock, birth: date | None) -> datetime:
    if value is None:
        return utcnow()
    if value.tzinfo is None:
        raise InvalidInput(
            "administered_at: give the time zone (e.g. 2026-03-01T09:30:00Z).",
            field="administered_at",
        )
    # The year is checked before any comparison or conversion between zones, which overflows
    # at the ends of the calendar (year 1 or 9999 with an offset).
    if value.year < EARLIEST_DATE.year:
        early = OutOfBounds(
            f"{value.date().isoformat()} is before {EARLIEST_DATE.isoformat()}",
            kind="before_earliest",
            day=value.date(),
            earliest=EARLIEST_DATE,
        )
        raise InvalidInput(f"administered_at: {early}.", field="administered_at") from early
    if value.year > clock.today().year + 1 or value > utcnow():
        future = OutOfBounds("is in the future", kind="in_future", today=clock.today())
        raise InvalidInput(f"administered_at: {future}.", field="administered_at") from future
    try:
        check_day(clock.date_of(value), None, "administered_at", birth=birth)
    except ValueError as error:
        raise InvalidInput(f"{error}.", field="administered_at") from error
    return value


def _new_row(
    actor: Actor,
    patient_id: int,
    data: AssessmentInput,
    clock: ClinicClock,
    birth: date | None,
    *,
    amends: Assessment | None = None,
    reason: str | None = None,
) -> Assessment:
    score = score_answers(data.instrument_id, data.answers)
    total = score.get("total")
    return Assessment(
        patient_id=patient_id,
        instrument_id=score["instrument_id"],
        answers=data.answers,
        score=score,
        total=float(total) if isinstance(total, int | float) else None,
        administered_at=_administered_at(data.administered_at, clock, birth),
        recorded_at=utcnow(),
        recorded_by_id=actor.user_id,
        amends_id=amends.id if amends else None,
        reason=reason,
    )


def record_assessment(
    db: Database,
    actor: Actor,
    patient_id: int,
    data: AssessmentInput,
    *,
    clock: ClinicClock | None = None,
) -> AssessmentView:
    """Record an administered instrument for a patient (scored on the way in); its time is
    checked against the clinic's calendar (``clock``) and the patient's birth date."""
    with action(
        db, actor, "assessment.record", entity="assessment", patient_id=patient_id
    ) as session:
        _, version = load_patient(session, patient_id)
        row = _new_row(actor, patient_id, data, clock or clinic_clock(), version.birth_date)
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "assessment.record",
            entity="assessment",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"instrument_id": row.instrument_id, "total": row.total},
        )
        return _view(session, row)


def amend_assessment(
    db: Database,
    actor: Actor,
    assessment_id: int,
    data: AssessmentInput,
    *,
    reason: str,
    clock: ClinicClock | None = None,
) -> AssessmentView:
    """Correct an assessment: a new row amending the current one; the old one stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the assessment is amended.", field="reason")
    with action(
        db, actor, "assessment.amend", entity="assessment", entity_id=assessment_id
    ) as session:
        current = session.get(Assessment, assessment_id)
        if current is None:
            raise NotFound(f"assessment_id: no assessment {assessment_id}.", field="assessment_id")
        newer = session.scalar(select(Assessment.id).where(Assessment.amends_id == current.id))
        if newer is not None:
            raise Conflict(
                f"assessment_id: assessment {assessment_id} was already amended by "
                f"{newer}; amend the current version.",
                field="assessment_id",
            )
        _, version = load_patient(session, current.patient_id)
        row = _new_row(
            actor,
            current.patient_id,
            data,
            clock or clinic_clock(),
            version.birth_date,
            amends=current,
            reason=reason.strip(),
        )
        if row.instrument_id != current.instrument_id:
            raise InvalidInput(
                "instrument_id: an amendment keeps the instrument; record a new assessment.",
                field="instrument_id",
            )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "assessment.amend",
            entity="assessment",
            entity_id=row.id,
            patient_id=current.patient_id,
            detail={"amends_id": current.id, "reason": reason.strip()},
        )
        return _view(session, row)


def current_assessments(session: Session, patient_id: int) -> list[Assessment]:
    newer = aliased(Assessment)
    return list(
        session.scalars(
            select(Assessment)
            .where(Assessment.patient_id == patient_id)
            .where(~select(newer.id).where(newer.amends_id == Assessment.id).exists())
            .order_by(Assessment.administered_at, Assessment.id)
        )
    )


def latest_assessments(
    session: Session, patient_id: int, instrument_ids: tuple[str, ...]
) -> list[Assessment]:
    """The latest current assessment of each of ``instrument_ids`` (by when it was given)."""
    newer = aliased(Assessment)
    rows = session.scalars(
        select(Assessment)
        .where(Assessment.patient_id == patient_id)
        .where(Assessment.instrument_id.in_(instrument_ids))
        .where(~select(newer.id).where(newer.amends_id == Assessment.id).exists())
        .order_by(Assessment.administered_at, Assessment.id)
    )
    latest = {row.instrument_id: row for row in rows}
    return [latest[i] for i in instrument_ids if i in latest]


def list_assessments(db: Database, actor: Actor, patient_id: int) -> list[AssessmentView]:
    """The current version of each of the patient's assessments, oldest first."""
    with action(db, actor, "assessment.read", entity="assessment", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        rows = current_assessments(s, patient_id)
        audit.record(
            s,
            actor,
            "assessment.list",
            entity="assessment",
            patient_id=patient_id,
            detail={"count": len(rows)},
        )
        names = usernames_of(s, [row.recorded_by_id for row in rows])
        return [_view(s, row, names) for row in rows]


def assessment_history(db: Database, actor: Actor, assessment_id: int) -> list[AssessmentView]:
    """Every version of one assessment, oldest first (from any version in the chain)."""
    with action(
        db, actor, "assessment.read", entity="assessment", entity_id=assessment_id
    ) as session:
        row = session.get(Assessment, assessment_id)
        if row is None:
            raise NotFound(f"assessment_id: no assessment {assessment_id}.", field="assessment_id")
        while row.amends_id is not None:
            previous = session.get(Assessment, row.amends_id)
            assert previous is not None
            row = previous
        chain = [row]
        while True:
            following = session.scalar(select(Assessment).where(Assessment.amends_id == row.id))
            if following is None:
                break
            chain.append(following)
            row = following
        audit.record(
            session,
            actor,
            "assessment.history",
            entity="assessment",
            entity_id=assessment_id,
            patient_id=row.patient_id,
        )
        return [_view(session, r) for r in chain]
