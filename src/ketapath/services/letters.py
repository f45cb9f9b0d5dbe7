"""Letters after a course (PRODUCT step 10; issue 12 item 6): discharge summary, GP letter and
patient information sheet, drafted from the records, signed by a physician, kept as versions.

- ``draft_letter``: a new version (n + 1) of a kind of letter for a course, its facts read
  from the records at that moment (``ketapath.domain.letters.assemble``) and frozen with its
  HTML and PDF (``ketapath.reports.letters``: one template per kind, the PDF laid out from
  the same body as the HTML). Physicians and nurses draft. The discharge summary and the GP
  letter also report the course's outcome as its Outcome card computes it
  (``services.outcomes.compute_outcome``) and the physician's current repeat decision
  (``services.outcome_decisions.current_decision_in``), read in the same transaction.
- ``sign_letter``: a physician signs the newest version: a new version with the same facts,
  ``signed_by`` and ``signed_at``, its HTML and PDF made again with the signature. No stored
  version ever changes (the table is append-only); a newer draft supersedes a signed one.
- ``list_letters``, ``get_letter``, ``letter_html``, ``letter_pdf``: the versions and their
  documents (physicians and nurses; pharmacists, researchers and administrators do not read
  letters: they hold the whole clinical summary).

Version numbers are taken in turn: a unique index (migration 0011) refuses a second row of
the same number, and the draft (or signature) is then made again with the next number, up
to ``ATTEMPTS`` times, before a clear conflict. Every call is audited, reads included.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketapath.config import Settings, get_settings
from ketapath.domain import letters as domain
from ketapath.domain import opioids as opioid_domain
from ketapath.domain.letters import FindingFacts, LetterFacts, LetterKind
from ketapath.knowledge.clinical import knowledge
from ketapath.reports import letters as rendering
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.opioids import (
    DoseView,
    OmeView,
    PlanView,
    current_plan_in,
    doses_in,
)
from ketapath.services.orders import OrderView, order_in
from ketapath.services.outcome_decisions import current_decision_in
from ketapath.services.outcome_reading import course_sessions, read_course
from ketapath.services.outcome_views import PainReading, ResponderView
from ketapath.services.outcomes import compute_outcome
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.permissions import Actor
from ketapath.services.sessions import course_charts
from ketapath.services.unit import action
from ketapath.store.db import Database
from ketapath.store.models import Letter, Order, PatientVersion, RepeatDecision, User

ATTEMPTS = 3
T = TypeVar("T")


class DraftInput(BaseModel):
    """Which letter to draft for the course."""

    model_config = ConfigDict(extra="forbid")

    kind: LetterKind = Field(
        description="discharge_summary, gp_letter or patient_information", examples=["gp_letter"]
    )


class LetterSummary(BaseModel):
    """One version of a letter: who made it, whether it is signed, what it could not say."""

    id: int
    patient_id: int
    order_id: int | None
    kind: LetterKind
    title: str
    version: int
    status: Literal["draft", "signed"]
    current: bool = Field(description="No later version of this letter exists.")
    created_at: datetime
    created_by: str | None
    signed_at: datetime | None
    signed_by: str | None
    amends_id: int | None
    digest: str = Field(description="SHA-256 of the facts (the same for a draft and its signing).")
    findings: list[FindingFacts] = Field(description="What the letter could not say, and why.")


class LetterView(LetterSummary):
    """A version with every fact it shows (frozen when it was drafted)."""

    facts: LetterFacts


class LetterDocument(BaseModel):
    """A stored document of a version: its bytes, media type and file name."""

    letter_id: int
    media_type: str
    filename: str
    content: bytes


# ------------------------------------------------------------------ reading the records


def _diagnosis(code: str, name: str) -> str:
    """A diagnosis as the record names it, else the vocabulary's name for its code."""
    if name:
        return name
    try:
        return knowledge().condition(code).name
    except KeyError:
        return code


def _patient(version: PatientVersion) -> domain.PatientInput:
    patient = as_patient(version.document)
    return domain.PatientInput(
        name=patient.name or version.full_name,
        birth_date=patient.birth_date,
        gp=patient.gp,
        referrer=patient.referrer,
        diagnoses=tuple(_diagnosis(d.code, d.name) for d in patient.diagnoses),
        allergies=tuple(
            a.substance + (f" ({a.reaction})" if a.reaction else "") for a in patient.allergies
        ),
    )


def _course(session: Session, order: OrderView, clock: ClinicClock) -> domain.CourseInput:
    course = order.course
    charts = course_charts(session, order.id, clock)
    weight = course.get("dosing_weight_kg")
    return domain.CourseInput(
        order_id=order.id,
        protocol_name=str(course.get("protocol_name", "")),
        route=str(course.get("route", "")),
        setting=str(course.get("setting", "")),
        sessions_ordered=len(course.get("sessions") or []),
        dosing_weight_kg=float(weight) if isinstance(weight, int | float) else None,
        weight_basis=str(course.get("weight_basis", "")),
        signed_by=order.signed_by,
        signed_on=clock.date_of(order.signed_at),
        cancelled=order.status == "cancelled",
        sessions=tuple(
            domain.SessionInput(
                number=row.session_number,
                scheduled_on=row.scheduled_on,
                view=view,
                events=tuple(events),
            )
            for row, events, view in charts
        ),
    )


def _record(label: str, ome: OmeView) -> domain.OpioidRecord:
    lines = [
        domain.OpioidLineInput(
            medicine=line.medication,
            daily_dose=line.daily_dose,
            unit=line.unit,
            ome_mg_per_day=line.ome_mg_per_day,
            converted=line.converted,
        )
        for line in ome.lines
    ]
    lines += [
        domain.OpioidLineInput(name, None, None, None, converted=False) for name in ome.unrecognised
    ]
    return domain.OpioidRecord(
        label=label,
        lines=tuple(lines),
        total_ome_mg_per_day=ome.total_ome_mg_per_day,
        complete=ome.complete and not ome.unrecognised,
    )


def _ome_of(version: PatientVersion) -> OmeView:
    medications = list(as_patient(version.document).medications)
    result = opioid_domain.oral_morphine_equivalents(medications, opioid_domain.DEFAULT_TABLE)
    return OmeView.model_validate(json.loads(json.dumps(result.to_dict(), default=str)))


def _plan(plan: PlanView | None, clock: ClinicClock) -> domain.OpioidPlanInput | None:
    if plan is None:
        return None
    content = plan.plan
    conversion = ""
    if content.conversion is not None:
        c = content.conversion
        dose = domain.daily_text(c.daily_dose, c.unit)
        conversion = (
            f"Convert {c.from_ome_mg_per_day:g} mg OME/day, less {c.reduce_percent:g}% for "
            f"incomplete cross-tolerance, to {c.opioid_id} {dose} ({c.route})."
        )
    taper, steps = "", tuple[domain.TaperStepInput, ...]()
    if content.taper is not None:
        t = content.taper
        start = domain.daily_text(t.start_daily_dose, t.unit)
        taper = (
            f"Taper {t.opioid_id} ({t.route}) from {start} by {t.step_percent:g}% of the "
            f"{t.basis} dose every {t.every_days} days."
        )
        steps = tuple(
            domain.TaperStepInput(s.date, s.daily_dose, s.unit, s.ome_mg_per_day) for s in t.steps
        )
    return domain.OpioidPlanInput(
        agreed_on=clock.date_of(plan.agreed_at),
        agreed_by=plan.agreed_by,
        conversion=conversion,
        taper=taper,
        steps=steps,
    )


def _opioids(
    session: Session,
    order: OrderView,
    current: PatientVersion,
    first_day: date | None,
    clock: ClinicClock,
) -> domain.OpioidInput:
    """Before: the record the course was signed on. Now: the last daily dose recorded since
    the course began, else the record as it is now."""
    signed_on = session.scalar(
        select(PatientVersion).where(
            PatientVersion.patient_id == order.patient_id,
            PatientVersion.version == order.patient_version,
        )
    )
    before = _ome_of(signed_on) if signed_on is not None else None
    doses: list[DoseView] = [
        d for d in doses_in(session, order.patient_id) if first_day and d.taken_on >= first_day
    ]
    if doses:
        now = _record(f"taken on {doses[-1].taken_on.isoformat()} (recorded)", doses[-1].result)
    else:
        now = _record(f"the record now (version {current.version})", _ome_of(current))
    table = (doses[-1].result if doses else before or _ome_of(current)).table_name
    return domain.OpioidInput(
        table_name=table,
        before=(
            _record(f"before the course (record version {order.patient_version})", before)
            if before is not None
            else None
        ),
        now=now,
        plan=_plan(current_plan_in(session, order.patient_id), clock),
    )


def _score(reading: PainReading | None, clock: ClinicClock) -> domain.PainScoreInput | None:
    if reading is None:
        return None
    return domain.PainScoreInput(
        value=reading.value,
        on=clock.date_of(reading.administered_at),
        label=reading.label,
        timepoint_days=reading.timepoint_days,
    )


def _result(response: ResponderView) -> domain.ResultInput:
    return domain.ResultInput(response.status, response.reason, response.definition.citation)


def _outcome(session: Session, order_id: int, clock: ClinicClock) -> domain.OutcomeInput:
    """The course's outcome as its Outcome card computes it (``services.outcomes``), today."""
    course = read_course(session, order_id)
    given = course_sessions(session, [order_id], clock)[order_id]
    view = compute_outcome(session, course, given, clock.today()).view
    pain, change = view.pain, view.pain.change
    note = pain.reason if change is None else change.percent_undefined
    return domain.OutcomeInput(
        baseline=_score(pain.baseline, clock),
        compared=_score(pain.compared, clock),
        change_points=change.absolute if change is not None else None,
        change_percent=change.percent if change is not None else None,
        change_note=note,
        change_citation=pain.definition.citation,
        responder_30=_result(view.responder_30),
        responder_50=_result(view.responder_50),
        relief=domain.ResultInput(
            view.relief.status, view.relief.explanation, view.relief.definition.citation
        ),
        relief_days=view.relief.days,
        pgic=domain.ResultInput(view.pgic.status, view.pgic.label, view.pgic.definition.citation),
        pgic_category=view.pgic.category,
        pgic_timepoint_days=view.pgic.timepoint_days,
    )


def _protocol_name(protocol_id: str | None) -> str | None:
    if protocol_id is None:
        return None
    try:
        return knowledge().protocol(protocol_id).name
    except KeyError:
        return protocol_id


def _decision(session: Session, order_id: int, clock: ClinicClock) -> domain.DecisionInput | None:
    """The physician's current repeat decision of the course (None: not recorded yet)."""
    current = current_decision_in(session, order_id)
    if current is None:
        return None
    row = session.get(RepeatDecision, current.id)
    assert row is not None
    return domain.DecisionInput(
        decision=current.decision,
        next_protocol=_protocol_name(current.next_protocol_id),
        reason=current.reason,
        decided_on=clock.date_of(current.decided_at),
        decided_by=_names(session, [row.decided_by_id]).get(row.decided_by_id),
    )


def _facts(
    session: Session,
    actor: Actor,
    order_id: int,
    kind: LetterKind,
    clock: ClinicClock,
    settings: Settings,
) -> tuple[OrderView, LetterFacts]:
    order = order_in(session, order_id, clock)
    _, version = load_patient(session, order.patient_id)
    course = _course(session, order, clock)
    given = [s.scheduled_on for s in course.sessions if domain.given(s)]
    facts = domain.assemble(
        kind,
        patient=_patient(version),
        course=course,
        opioids=_opioids(session, order, version, min(given) if given else None, clock),
        clinic=domain.ClinicInput(
            name=settings.clinic_name,
            address=settings.clinic_address,
            after_hours=settings.clinic_after_hours,
        ),
        today=clock.today(),
        written_by=actor.username,
        zone=clock.tz(),
        outcome=_outcome(session, order.id, clock) if kind in domain.OUTCOME_KINDS else None,
        decision=_decision(session, order.id, clock) if kind in domain.OUTCOME_KINDS else None,
    )
    return order, facts


# ------------------------------------------------------------------ versions


def _digest(facts: LetterFacts) -> str:
    canonical = json.dumps(facts.stored(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _names(session: Session, ids: list[int | None]) -> dict[int | None, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(User.id, User.username, User.full_name).where(User.id.in_(wanted))
    ).all()
    return {i: (f"{full} ({name})" if full else name) for i, name, full in rows}


def _stamp(
    row: Letter, draft: Letter, names: dict[int | None, str], clock: ClinicClock
) -> rendering.Stamp:
    """The version's stamp: its number and digest, who drafted the facts and when (``draft``:
    the row itself, or for a signature the version it signs), who signed and when."""

    def when(at: datetime) -> str:
        return f"{clock.local(at):%Y-%m-%d %H:%M %Z}".strip()

    return rendering.Stamp(
        version=row.version,
        drafted_by=names.get(draft.created_by_id, "not recorded"),
        drafted_at=when(draft.created_at),
        digest=row.digest,
        signed_by=names.get(row.signed_by_id, "not recorded") if row.signed_by_id else None,
        signed_at=when(row.signed_at) if row.signed_at else None,
    )


def _newest(session: Session, patient_id: int, order_id: int | None, kind: str) -> Letter | None:
    query = select(Letter).where(Letter.patient_id == patient_id, Letter.kind == kind)
    query = query.where(
        Letter.order_id.is_(None) if order_id is None else Letter.order_id == order_id
    )
    return session.scalars(query.order_by(Letter.version.desc()).limit(1)).first()


def _write(
    session: Session,
    actor: Actor,
    facts: LetterFacts,
    *,
    patient_id: int,
    order_id: int | None,
    previous: Letter | None,
    signed: bool,
    clock: ClinicClock,
) -> Letter:
    """A new version after ``previous``, rendered; the unique index refuses a duplicate. Its
    time is the clinic clock's (the clock that gave the letter its date), shown in the
    clinic's zone."""
    now = clock.now()
    row = Letter(
        patient_id=patient_id,
        order_id=order_id,
        kind=facts.kind,
        version=(previous.version if previous else 0) + 1,
        facts=facts.stored(),
        html="",
        pdf=b"",
        digest=_digest(facts),
        created_at=now,
        created_by_id=actor.user_id,
        signed_at=now if signed else None,
        signed_by_id=actor.user_id if signed else None,
        amends_id=previous.id if previous else None,
    )
    draft = previous if signed and previous is not None else row
    names = _names(session, [draft.created_by_id, row.signed_by_id])
    if actor.user_id is not None:
        names.setdefault(actor.user_id, actor.username)
    row.html, row.pdf = rendering.render(facts, _stamp(row, draft, names, clock))
    session.add(row)
    session.flush()
    return row


def _taking_turns(make: Callable[[], T], what: str) -> T:
    """``make`` again when another version took its number at the same moment."""
    for attempt in range(ATTEMPTS):
        try:
            return make()
        except Conflict as error:
            if not isinstance(error.__cause__, IntegrityError):
                raise
            if attempt == ATTEMPTS - 1:
                raise Conflict(
                    f"{what}: another version of this letter was saved at the same moment "
                    f"{ATTEMPTS} times; reload the letter and try again."
                ) from error
    raise AssertionError("unreachable")


def _summary(
    row: Letter, facts: LetterFacts, names: dict[int | None, str], current: bool
) -> dict[str, Any]:
    return {
        "id": row.id,
        "patient_id": row.patient_id,
        "order_id": row.order_id,
        "kind": facts.kind,
        "title": facts.title,
        "version": row.version,
        "status": "signed" if row.signed_by_id is not None else "draft",
        "current": current,
        "created_at": row.created_at,
        "created_by": names.get(row.created_by_id),
        "signed_at": row.signed_at,
        "signed_by": names.get(row.signed_by_id),
        "amends_id": row.amends_id,
        "digest": row.digest,
        "findings": facts.findings,
    }


def _view(session: Session, row: Letter) -> LetterView:
    names = _names(session, [row.created_by_id, row.signed_by_id])
    newer = session.scalar(select(Letter.id).where(Letter.amends_id == row.id))
    facts = LetterFacts.model_validate(row.facts)
    return LetterView.model_validate({**_summary(row, facts, names, newer is None), "facts": facts})


# ------------------------------------------------------------------ the actions


def draft_letter(
    db: Database,
    actor: Actor,
    order_id: int,
    data: DraftInput,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> LetterView:
    """Draft the next version of a letter of ``data.kind`` for the course ``order_id``, from
    the records as they are now (a cancelled course included: its sessions were given)."""
    clock = clock or clinic_clock()
    settings = settings or get_settings()

    def once() -> LetterView:
        with action(db, actor, "letters.draft", entity="order", entity_id=order_id) as session:
            order, facts = _facts(session, actor, order_id, data.kind, clock, settings)
            previous = _newest(session, order.patient_id, order.id, data.kind)
            row = _write(
                session,
                actor,
                facts,
                patient_id=order.patient_id,
                order_id=order.id,
                previous=previous,
                signed=False,
                clock=clock,
            )
            audit.record(
                session,
                actor,
                "letters.draft",
                entity="letter",
                entity_id=row.id,
                patient_id=order.patient_id,
                detail={
                    "order_id": order.id,
                    "kind": data.kind,
                    "version": row.version,
                    "digest": row.digest,
                    "findings": [f.code for f in facts.findings],
                },
            )
            return _view(session, row)

    return _taking_turns(once, "kind")


def _letter(session: Session, letter_id: int) -> Letter:
    row = session.get(Letter, letter_id)
    if row is None:
        raise NotFound(f"letter_id: no letter {letter_id}.", field="letter_id")
    return row


def sign_letter(
    db: Database, actor: Actor, letter_id: int, *, clock: ClinicClock | None = None
) -> LetterView:
    """A physician signs the newest version of a letter: a new version with the same facts,
    signed. An older or already signed version is refused (409), naming the newest."""
    clock = clock or clinic_clock()

    def once() -> LetterView:
        with action(db, actor, "letters.sign", entity="letter", entity_id=letter_id) as session:
            row = _letter(session, letter_id)
            newest = _newest(session, row.patient_id, row.order_id, row.kind)
            assert newest is not None
            if newest.id != row.id:
                raise Conflict(
                    f"letter_id: version {row.version} is not the newest; version "
                    f"{newest.version} (letter {newest.id}) is. Read it, then sign that one.",
                    field="letter_id",
                )
            if row.signed_by_id is not None:
                raise Conflict(
                    f"letter_id: version {row.version} is already signed; draft a new version "
                    "to change the letter.",
                    field="letter_id",
                )
            facts = LetterFacts.model_validate(row.facts)
            signed = _write(
                session,
                actor,
                facts,
                patient_id=row.patient_id,
                order_id=row.order_id,
                previous=row,
                signed=True,
                clock=clock,
            )
            audit.record(
                session,
                actor,
                "letters.sign",
                entity="letter",
                entity_id=signed.id,
                patient_id=row.patient_id,
                detail={"signs": row.id, "version": signed.version, "digest": signed.digest},
            )
            return _view(session, signed)

    return _taking_turns(once, "letter_id")


def list_letters(
    db: Database, actor: Actor, order_id: int, kind: LetterKind | None = None
) -> list[LetterSummary]:
    """Every version of the course's letters (of one kind, if given), newest first."""
    with action(db, actor, "letters.read", entity="order", entity_id=order_id) as session:
        order = session.get(Order, order_id)
        if order is None or order.status != "signed":
            raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
        query = select(Letter).where(Letter.order_id == order_id)
        if kind is not None:
            query = query.where(Letter.kind == kind)
        rows = session.scalars(query.order_by(Letter.kind, Letter.version.desc())).all()
        names = _names(session, [i for r in rows for i in (r.created_by_id, r.signed_by_id)])
        audit.record(
            session,
            actor,
            "letters.list",
            entity="order",
            entity_id=order_id,
            patient_id=order.patient_id,
            detail={"kind": kind, "count": len(rows)},
        )
        newer = set(
            session.scalars(
                select(Letter.amends_id).where(Letter.amends_id.in_([r.id for r in rows]))
            )
        )
        return [
            LetterSummary.model_validate(
                _summary(row, LetterFacts.model_validate(row.facts), names, row.id not in newer)
            )
            for row in rows
        ]


def get_letter(db: Database, actor: Actor, letter_id: int) -> LetterView:
    """One version with its facts."""
    with action(db, actor, "letters.read", entity="letter", entity_id=letter_id) as session:
        row = _letter(session, letter_id)
        audit.record(
            session,
            actor,
            "letters.read",
            entity="letter",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail={"format": "json", "version": row.version},
        )
        return _view(session, row)


def _document(
    db: Database, actor: Actor, letter_id: int, fmt: Literal["html", "pdf"]
) -> LetterDocument:
    with action(db, actor, "letters.read", entity="letter", entity_id=letter_id) as session:
        row = _letter(session, letter_id)
        audit.record(
            session,
            actor,
            "letters.read",
            entity="letter",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail={"format": fmt, "version": row.version},
        )
        facts = LetterFacts.model_validate(row.facts)
        stamp = rendering.Stamp(version=row.version, drafted_by="", drafted_at="", digest="")
        content = row.html.encode("utf-8") if fmt == "html" else bytes(row.pdf)
        return LetterDocument(
            letter_id=row.id,
            media_type="text/html; charset=utf-8" if fmt == "html" else "application/pdf",
            filename=rendering.filename(facts, stamp, fmt),
            content=content,
        )


def letter_html(db: Database, actor: Actor, letter_id: int) -> LetterDocument:
    """The version's HTML document, as stored when it was made."""
    return _document(db, actor, letter_id, "html")


def letter_pdf(db: Database, actor: Actor, letter_id: int) -> LetterDocument:
    """The version's PDF, as stored when it was made."""
    return _document(db, actor, letter_id, "pdf")


def refuse_unknown_kind(kind: str) -> LetterKind:
    """A kind of letter typed into a form or a query, or ``InvalidInput`` naming ``kind``."""
    if kind not in domain.LETTER_KINDS:
        raise InvalidInput(
            f"kind: one of {', '.join(domain.LETTER_KINDS)}, not {kind[:40]!r}.", field="kind"
        )
    return kind
