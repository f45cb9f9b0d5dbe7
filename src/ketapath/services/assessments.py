"""Assessments: an instrument's answers as given, with the score computed from them.

A correction is a new row that amends the previous one (with who, when and why); lists show
the current version of each assessment, and the history of any one is available.

An assessment may belong to a course (its signed order): the baseline before it, one after a
session of it (``post-session``, naming the session) or a follow-up ``timepoint_days`` after
its last session (``follow-up``). The context is stored with the assessment as first recorded
(``AssessmentContext``, in the same transaction); an amendment keeps it, read back through the
chain of amendments.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.domain import instruments
from ketapath.domain.errors import OutOfBounds
from ketapath.domain.patient import EARLIEST_DATE, check_day
from ketapath.knowledge.instruments import Instrument
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.patients import load_patient, patient_order
from ketapath.services.people import username_of, usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.services.validation import MAX_RECORD_ID
from ketapath.store.db import Database
from ketapath.store.models import Assessment, AssessmentContext, InfusionSession, Order, utcnow

# More answers than any instrument has items (DASS-21 has 21) cannot be one assessment.
MAX_ANSWERS = 200
AssessmentLabel = Literal["baseline", "post-session", "follow-up"]
LABELS: tuple[AssessmentLabel, ...] = ("baseline", "post-session", "follow-up")
# A follow-up is 1 day to 2 years after the last session: the default schedule ends at
# 6 months, and a repeated course is usually decided well within two years.
MAX_TIMEPOINT_DAYS = 730


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
    order_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RECORD_ID,
        description="The course (signed order) the assessment belongs to, if any.",
    )
    label: AssessmentLabel | None = Field(
        default=None,
        description="With order_id: baseline, post-session (give session_id) or follow-up "
        "(give timepoint_days).",
    )
    timepoint_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_TIMEPOINT_DAYS,
        description="A follow-up's days after the course's last session (1-730).",
    )
    session_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RECORD_ID,
        description="A post-session assessment's session (one of the course's).",
    )

    @model_validator(mode="after")
    def _consistent_context(self) -> AssessmentInput:
        problem = context_problem(self.order_id, self.label, self.timepoint_days, self.session_id)
        if problem:
            raise ValueError(problem)
        return self

    @property
    def has_context(self) -> bool:
        return any(
            v is not None for v in (self.order_id, self.label, self.timepoint_days, self.session_id)
        )


def context_problem(
    order_id: int | None,
    label: str | None,
    timepoint_days: int | None,
    session_id: int | None,
) -> str:
    """What is inconsistent in an assessment's course context, in words ('' when nothing)."""
    if order_id is None and label is None and timepoint_days is None and session_id is None:
        return ""
    if order_id is None:
        return "a label, timepoint or session needs the course (order_id)"
    if label is None:
        return "an assessment for a course needs its label: baseline, post-session or follow-up"
    if label == "post-session" and session_id is None:
        return "a post-session assessment needs the session (session_id)"
    if label != "post-session" and session_id is not None:
        return "only a post-session assessment names a session"
    if label == "follow-up" and timepoint_days is None:
        return "a follow-up needs its timepoint: days after the last session (1-730)"
    if label != "follow-up" and timepoint_days is not None:
        return "only a follow-up has a timepoint"
    return ""


class ContextView(BaseModel):
    """The course an assessment belongs to, and what it is for."""

    order_id: int
    label: AssessmentLabel
    timepoint_days: int | None
    session_id: int | None


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
    context: ContextView | None = None


class CourseAssessments(BaseModel):
    """A course's assessments (current versions) by label; follow-ups by timepoint."""

    order_id: int
    patient_id: int
    baseline: list[AssessmentView]
    post_session: list[AssessmentView]
    follow_up: list[AssessmentView]
    timepoints_days: list[int] = Field(description="The follow-up timepoints recorded.")


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


def _context_view(row: AssessmentContext | None) -> ContextView | None:
    if row is None:
        return None
    return ContextView(
        order_id=row.order_id,
        label=row.label,
        timepoint_days=row.timepoint_days,
        session_id=row.session_id,
    )


# Ids per IN list: a whole registry's assessments (136,000) exceed psycopg's 65,535
# parameters and SQLite's 32,766.
IN_BATCH = 5_000


def contexts_of(session: Session, rows: list[Assessment]) -> dict[int, AssessmentContext]:
    """The course context of each assessment (by id), read through its amendments: the
    context belongs to the first version of the chain."""
    if not rows:
        return {}
    patient_ids = sorted({row.patient_id for row in rows})
    parents: dict[int, int | None] = {}
    for i in range(0, len(patient_ids), IN_BATCH):
        parents.update(
            session.execute(
                select(Assessment.id, Assessment.amends_id).where(
                    Assessment.patient_id.in_(patient_ids[i : i + IN_BATCH])
                )
            ).all()
        )
    roots = {}
    for row in rows:
        root: int = row.id
        while (parent := parents.get(root)) is not None:
            root = parent
        roots[row.id] = root
    wanted = sorted(set(roots.values()))
    found = {
        c.assessment_id: c
        for i in range(0, len(wanted), IN_BATCH)
        for c in session.scalars(
            select(AssessmentContext).where(
                AssessmentContext.assessment_id.in_(wanted[i : i + IN_BATCH])
            )
        )
    }
    return {rid: found[root] for rid, root in roots.items() if root in found}


def _view(
    session: Session,
    row: Assessment,
    names: dict[int | None, str] | None = None,
    contexts: dict[int, AssessmentContext] | None = None,
) -> AssessmentView:
    """The view of a stored assessment (``names``, ``contexts``: fetched for a whole list)."""
    if contexts is None:
        contexts = contexts_of(session, [row])
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
        context=_context_view(contexts.get(row.id)),
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
        if data.order_id is not None:
            _check_course(session, patient_id, data)
        session.add(row)
        session.flush()
        detail: dict[str, Any] = {"instrument_id": row.instrument_id, "total": row.total}
        if data.order_id is not None:
            session.add(
                AssessmentContext(
                    assessment_id=row.id,
                    patient_id=patient_id,
                    order_id=data.order_id,
                    label=data.label,
                    timepoint_days=data.timepoint_days,
                    session_id=data.session_id,
                    recorded_at=row.recorded_at,
                    recorded_by_id=actor.user_id,
                )
            )
            session.flush()
            detail.update(
                order_id=data.order_id,
                label=data.label,
                timepoint_days=data.timepoint_days,
                session_id=data.session_id,
            )
        audit.record(
            session,
            actor,
            "assessment.record",
            entity="assessment",
            entity_id=row.id,
            patient_id=patient_id,
            detail=detail,
        )
        return _view(session, row)


def _check_course(session: Session, patient_id: int, data: AssessmentInput) -> None:
    """The order is the patient's course, and a post-session's session is one of its own."""
    assert data.order_id is not None
    patient_order(session, patient_id, data.order_id)
    if data.session_id is not None:
        infusion = session.get(InfusionSession, data.session_id)
        if infusion is None or infusion.order_id != data.order_id:
            raise InvalidInput(
                f"session_id: session {data.session_id} is not a session of order {data.order_id}.",
                field="session_id",
            )


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
    if data.has_context:
        raise InvalidInput(
            "order_id: an amendment keeps the course, label and timepoint of the assessment it "
            "amends; leave them out.",
            field="order_id",
        )
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
        contexts = contexts_of(s, rows)
        return [_view(s, row, names, contexts) for row in rows]


def assessments_for_course(db: Database, actor: Actor, order_id: int) -> CourseAssessments:
    """A course's assessments (current versions), grouped by label: the baselines and the
    post-session ones by when they were given, the follow-ups by timepoint."""
    with action(db, actor, "assessment.read", entity="order", entity_id=order_id) as s:
        order = s.get(Order, order_id)
        if order is None or order.status != "signed":
            raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
        rows = current_assessments(s, order.patient_id)
        contexts = {rid: c for rid, c in contexts_of(s, rows).items() if c.order_id == order_id}
        chosen = [row for row in rows if row.id in contexts]
        audit.record(
            s,
            actor,
            "assessment.course",
            entity="order",
            entity_id=order_id,
            patient_id=order.patient_id,
            detail={"count": len(chosen)},
        )
        names = usernames_of(s, [row.recorded_by_id for row in chosen])
        views = [_view(s, row, names, contexts) for row in chosen]
        by_label = {
            label: [v for v in views if v.context and v.context.label == label] for label in LABELS
        }
        follow_up = sorted(
            by_label["follow-up"],
            key=lambda v: (v.context.timepoint_days if v.context else 0, v.administered_at),
        )
        return CourseAssessments(
            order_id=order_id,
            patient_id=order.patient_id,
            baseline=by_label["baseline"],
            post_session=by_label["post-session"],
            follow_up=follow_up,
            timepoints_days=sorted(
                {
                    v.context.timepoint_days
                    for v in follow_up
                    if v.context and v.context.timepoint_days
                }
            ),
        )


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
        contexts = contexts_of(session, chain)
        return [_view(session, r, contexts=contexts) for r in chain]
