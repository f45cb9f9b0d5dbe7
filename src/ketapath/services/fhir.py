"""FHIR: a patient's record exported as a Bundle, and a Bundle imported as a record
(docs/fhir.md). The mapping is ``ketapath.interop.fhir`` (pure); here are the permission
checks, the one transaction of each action, and the audit.

- **Export** (physicians only: the Bundle identifies the patient; researchers never get one):
  the current version of the record, the current assessments, the signed courses with their
  sessions (each chart replayed at the clinic's now, so the delivered dose is the chart's),
  and the decision after each course. Validated against FHIR R4B before it is returned; the
  export is audited (``fhir.export``, with the record version and the number of resources).
- **Import** (physicians and nurses, who register and amend records): the Bundle is read
  and validated first; a new patient is registered from it, or, given a patient number, the
  version it amends and a reason, its demographics, conditions, allergies, medicines, weight
  and height become a new version of that record (the other fields are kept). Any problem is
  a 422 naming the entry at fault, and nothing is written; the write is audited as
  ``patient.create`` / ``patient.amend`` with ``source: fhir``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.interop import fhir
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.fhir import fhir_codes
from ketapath.knowledge.instruments import load_instruments
from ketapath.knowledge.outcomes import outcome_rules
from ketapath.services import audit, patients
from ketapath.services.assessments import contexts_of, current_assessments
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput
from ketapath.services.patients import PatientRecord, load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.sessions import patient_charts
from ketapath.services.unit import action, check
from ketapath.store.db import Database
from ketapath.store.models import CourseRecord, Order, PatientVersion, RepeatDecision

# The most entries an imported Bundle may hold (a record is a few dozen resources; a whole
# history a few thousand): a larger one is refused, not read.
MAX_ENTRIES = 5000


class ImportResult(BaseModel):
    """What an import wrote, and what the Bundle held that it did not read."""

    record: PatientRecord
    created: bool = Field(description="True: a new patient; false: a new version.")
    skipped: list[str] = Field(description="What was not imported, and why.")
    not_recognised: list[str] = Field(
        description="Diagnoses and medicines kept as written that ketapath's vocabulary does "
        "not read: not recognised, check by hand."
    )


# ------------------------------------------------------------------ export


def _orders(session: Session, patient_id: int) -> list[fhir.OrderFacts]:
    signed = session.scalars(
        select(Order)
        .where(Order.patient_id == patient_id, Order.status == "signed")
        .order_by(Order.id)
    ).all()
    if not signed:
        return []
    ids = [o.id for o in signed]
    cancels = {
        c.amends_id: c for c in session.scalars(select(Order).where(Order.amends_id.in_(ids)))
    }
    courses: dict[int, dict[str, Any]] = dict(
        session.execute(
            select(CourseRecord.id, CourseRecord.course).where(
                CourseRecord.id.in_([o.course_id for o in signed])
            )
        ).all()
    )
    names = usernames_of(session, [o.recorded_by_id for o in signed])
    return [
        fhir.OrderFacts(
            id=o.id,
            status="cancelled" if o.id in cancels else "signed",
            course=courses[o.course_id],
            signed_at=o.recorded_at,
            signed_by=names.get(o.recorded_by_id),
            cancelled_at=cancels[o.id].recorded_at if o.id in cancels else None,
            cancel_reason=cancels[o.id].reason if o.id in cancels else None,
        )
        for o in signed
    ]


def _assessments(session: Session, patient_id: int) -> list[fhir.AssessmentFacts]:
    rows = current_assessments(session, patient_id)
    contexts = contexts_of(session, rows)
    out = []
    for row in rows:
        context = contexts.get(row.id)
        out.append(
            fhir.AssessmentFacts(
                id=row.id,
                instrument_id=row.instrument_id,
                answers=row.answers,
                score=row.score,
                administered_at=row.administered_at,
                label=context.label if context else None,
                order_id=context.order_id if context else None,
                timepoint_days=context.timepoint_days if context else None,
            )
        )
    return out


def _decisions(session: Session, patient_id: int) -> list[fhir.DecisionFacts]:
    newer = aliased(RepeatDecision)
    rows = session.scalars(
        select(RepeatDecision)
        .where(RepeatDecision.patient_id == patient_id)
        .where(~select(newer.id).where(newer.amends_id == RepeatDecision.id).exists())
        .order_by(RepeatDecision.decided_at)
    ).all()
    return [
        fhir.DecisionFacts(
            order_id=r.order_id,
            decision=r.decision,
            reason=r.reason,
            decided_at=r.decided_at,
            next_protocol_id=r.next_protocol_id,
        )
        for r in rows
    ]


def _facts(
    session: Session, patient_id: int, current: PatientVersion, clock: ClinicClock
) -> fhir.PatientFacts:
    sessions = [
        fhir.SessionFacts(row.id, row.order_id, row.session_number, row.scheduled_on, chart)
        for row, chart in patient_charts(session, patient_id, clock)
    ]
    return fhir.PatientFacts(
        patient_id=patient_id,
        document=current.document,
        recorded_at=current.recorded_at,
        assessments=_assessments(session, patient_id),
        orders=_orders(session, patient_id),
        sessions=sessions,
        decisions=_decisions(session, patient_id),
        follow_up_days=[t.offset_days for t in outcome_rules().follow_up.timepoints],
    )


def build_bundle(facts: fhir.PatientFacts, exported_at: datetime) -> dict[str, Any]:
    """The Bundle of ``facts``, validated against FHIR R4B; a record that does not make a
    valid Bundle is refused (422) naming the problem rather than sent."""
    bundle = fhir.export_bundle(
        facts,
        exported_at=exported_at,
        kb=knowledge(),
        codes=fhir_codes(),
        instruments=load_instruments(),
    )
    problems = fhir.validate_bundle(bundle)
    if problems:
        raise InvalidInput(
            f"the record cannot be exported as valid FHIR {fhir.FHIR_RELEASE}: {problems[0]}",
            field="patient_id",
        )
    return bundle


def export_patient(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> dict[str, Any]:
    """The patient's record as a FHIR R4B Bundle (JSON data); audited."""
    clock = clock or clinic_clock()
    with action(
        db, actor, "fhir.export", entity="patient", entity_id=patient_id, patient_id=patient_id
    ) as session:
        _, current = load_patient(session, patient_id)
        bundle = build_bundle(_facts(session, patient_id, current, clock), clock.now())
        audit.record(
            session,
            actor,
            "fhir.export",
            entity="patient",
            entity_id=patient_id,
            patient_id=patient_id,
            detail={
                "version": current.version,
                "resources": len(bundle["entry"]),
                "fhir_version": fhir.FHIR_VERSION,
            },
        )
        return bundle


# ------------------------------------------------------------------ import


def _invalid(error: fhir.InvalidBundle) -> InvalidInput:
    problems = [
        {"field": p.where, "message": p.message, "type": "fhir"} for p in error.problems[:200]
    ]
    return InvalidInput(
        f"bundle: {error}", field=error.problems[0].where, details={"errors": problems}
    )


def _not_recognised(fields: dict[str, Any]) -> list[str]:
    from ketapath.domain.medicines import recognise
    from ketapath.domain.vocabulary import resolve

    kb = knowledge()
    kinds = {"diagnoses": "diagnosis", "comorbidities": "comorbidity"}
    out = [
        f"{kinds[key]} {item['code']!r}"
        for key in kinds
        for item in fields.get(key, [])
        if resolve(item["code"], kb).condition is None
    ]
    out += [
        f"medicine {m['name']!r}"
        for m in fields.get("medications", [])
        if not recognise(m["name"], kb.medicines).recognised
    ]
    return [f"{what}: {fhir.NOT_RECOGNISED}" for what in out]


def read_import(bundle: Any) -> fhir.ReadRecord:
    """The record fields of a Bundle, or ``InvalidInput`` (422) naming every problem."""
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if isinstance(entries, list) and len(entries) > MAX_ENTRIES:
        raise InvalidInput(
            f"bundle.entry: at most {MAX_ENTRIES} entries (has {len(entries)}).",
            field="bundle.entry",
        )
    try:
        return fhir.read_bundle(bundle, knowledge())
    except fhir.InvalidBundle as error:
        raise _invalid(error) from error


def import_bundle(
    db: Database,
    actor: Actor,
    bundle: Any,
    *,
    patient_id: int | None = None,
    expected_version: int | None = None,
    reason: str | None = None,
    clock: ClinicClock | None = None,
) -> ImportResult:
    """Register a new patient from a Bundle, or (``patient_id``) record its content as a new
    version of that patient's record, amending ``expected_version`` for ``reason``."""
    check(db, actor, "fhir.import", entity="patient", patient_id=patient_id)
    read = read_import(bundle)
    fields = dict(read.fields)
    detail = {"source": "fhir", "fhir_version": fhir.FHIR_VERSION, "skipped": len(read.skipped)}
    if patient_id is None:
        if fields.get("weight_kg") is None:
            raise InvalidInput(
                "bundle: no body weight Observation (LOINC 29463-7, in kg): the record needs "
                "the weight to dose by; add it to the Bundle or register the patient by hand.",
                field="bundle",
            )
        document = {k: v for k, v in fields.items() if v is not None}
        record = patients.create_patient(db, actor, document, clock=clock, detail=detail)
        created = True
    else:
        if expected_version is None:
            raise InvalidInput(
                "expected_version: give the version of the record the import amends.",
                field="expected_version",
            )
        record = patients.amend_patient(
            db,
            actor,
            patient_id,
            fields,
            reason=reason or "",
            expected_version=expected_version,
            clock=clock,
            detail=detail,
            merge=True,
        )
        created = False
    return ImportResult(
        record=record,
        created=created,
        skipped=read.skipped,
        not_recognised=_not_recognised(fields),
    )
