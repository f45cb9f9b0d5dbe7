"""Patient record: create, amend (never overwrite), read, search, history.

The validated patient document is stored whole (JSON) in ``patient_versions``, with its
diagnoses and medicines also normalised into rows for queries. An amendment is a new version
that names the version it amends, who made it, when, and why.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ketapath.domain.patient import Patient
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.people import username_of
from ketapath.services.permissions import Actor
from ketapath.services.unit import action
from ketapath.services.validation import describe, is_record_id, validate
from ketapath.store.db import Database
from ketapath.store.models import Diagnosis, Medication, Order, PatientVersion, utcnow
from ketapath.store.models import Patient as PatientRow


def validate_document(
    document: Mapping[str, Any] | BaseModel, today: date | None = None
) -> dict[str, Any]:
    """The validated patient document (``ketapath.domain.patient.Patient``) as JSON data,
    its dates checked against ``today`` (the clinic's; default: from the process settings).

    An invalid field raises ``InvalidInput`` naming it (``patient.weight_kg``).
    """
    today = today or clinic_clock().today()
    patient = validate(Patient, document, prefix="patient", context={"today": today})
    return patient.model_dump(mode="json")


def as_patient(document: dict[str, Any], today: date | None = None) -> Patient:
    """The stored document as the clinical domain's ``Patient``, ages counted on ``today``
    (the clinic's; default: from the process settings).

    A version stored before a bound was introduced (a weight of 5e-324 kg, a name longer than
    its column) is refused naming the field, so that it is amended rather than computed with.
    """
    try:
        patient = Patient.model_validate(document)
    except ValidationError as error:
        problem = describe(error, "patient")
        raise InvalidInput(
            f"{problem.message}: the stored record does not pass the record's bounds; "
            "amend it before using it.",
            field=problem.field,
        ) from error
    return patient.as_of(today or clinic_clock().today())


class PatientRecord(BaseModel):
    """The current (or a past) version of a patient's record."""

    id: int
    pseudonym: str
    version: int
    document: dict[str, Any]
    recorded_at: datetime
    recorded_by: str | None
    reason: str | None
    amends_version: int | None = None


class PatientSummary(BaseModel):
    id: int
    name: str
    birth_date: date | None
    sex: str
    version: int
    updated_at: datetime


def _new_pseudonym() -> str:
    return "KP-" + secrets.token_hex(5).upper()


def _store_version(
    session: Session,
    actor: Actor,
    patient: PatientRow,
    document: dict[str, Any],
    *,
    version: int,
    amends: PatientVersion | None,
    reason: str | None,
) -> PatientVersion:
    document = {**document, "id": str(patient.id)}
    birth = document.get("birth_date")
    row = PatientVersion(
        patient_id=patient.id,
        version=version,
        document=document,
        full_name=document.get("name") or "",
        birth_date=date.fromisoformat(birth) if birth else None,
        sex=document["sex"],
        recorded_at=utcnow(),
        recorded_by_id=actor.user_id,
        amends_id=amends.id if amends else None,
        reason=reason,
    )
    session.add(row)
    session.flush()
    for position, code in enumerate(document["diagnoses"]):
        session.add(Diagnosis(patient_version_id=row.id, position=position, code=code["code"]))
    for position, medicine in enumerate(document["medications"]):
        session.add(
            Medication(
                patient_version_id=row.id,
                position=position,
                name=medicine["name"],
                dose=medicine.get("dose"),
                unit=medicine.get("unit") or None,
                frequency=medicine.get("frequency") or None,
                route=medicine.get("route") or None,
            )
        )
    return row


def _record(session: Session, patient: PatientRow, row: PatientVersion) -> PatientRecord:
    recorded_by = username_of(session, row.recorded_by_id)
    amends_version = (
        session.scalar(select(PatientVersion.version).where(PatientVersion.id == row.amends_id))
        if row.amends_id is not None
        else None
    )
    return PatientRecord(
        id=patient.id,
        pseudonym=patient.pseudonym,
        version=row.version,
        document=row.document,
        recorded_at=row.recorded_at,
        recorded_by=recorded_by,
        reason=row.reason,
        amends_version=amends_version,
    )


def latest_version(session: Session, patient_id: int) -> PatientVersion:
    row = session.scalar(
        select(PatientVersion)
        .where(PatientVersion.patient_id == patient_id)
        .order_by(PatientVersion.version.desc())
        .limit(1)
    )
    if row is None:
        raise NotFound(f"patient_id: no patient {patient_id}.", field="patient_id")
    return row


def load_patient(session: Session, patient_id: int) -> tuple[PatientRow, PatientVersion]:
    patient = session.get(PatientRow, patient_id)
    if patient is None:
        raise NotFound(f"patient_id: no patient {patient_id}.", field="patient_id")
    return patient, latest_version(session, patient_id)


def patient_order(session: Session, patient_id: int, order_id: int) -> Order:
    """The signed order ``order_id`` of the patient (a course, cancelled or not), in a
    transaction the caller holds: ``NotFound`` when there is no such signed order,
    ``InvalidInput`` when it is another patient's (both naming ``order_id``)."""
    order = session.get(Order, order_id)
    if order is None or order.status != "signed":
        raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
    if order.patient_id != patient_id:
        raise InvalidInput(
            f"order_id: order {order_id} is not a course of patient {patient_id}.",
            field="order_id",
        )
    return order


def create_patient(
    db: Database,
    actor: Actor,
    document: Mapping[str, Any] | BaseModel,
    *,
    clock: ClinicClock | None = None,
    detail: dict[str, Any] | None = None,
) -> PatientRecord:
    """Register a new patient (version 1 of the record); dates are checked against the
    clinic's today (``clock``). ``detail`` is added to the audit entry (where the record came
    from, e.g. a FHIR import)."""
    data = validate_document(document, (clock or clinic_clock()).today())
    with action(db, actor, "patient.create", entity="patient") as session:
        patient = PatientRow(
            pseudonym=_new_pseudonym(), created_at=utcnow(), created_by_id=actor.user_id
        )
        session.add(patient)
        session.flush()
        row = _store_version(session, actor, patient, data, version=1, amends=None, reason=None)
        audit.record(
            session,
            actor,
            "patient.create",
            entity="patient",
            entity_id=patient.id,
            patient_id=patient.id,
            detail={"version": 1, **(detail or {})},
        )
        return _record(session, patient, row)


def amend_patient(
    db: Database,
    actor: Actor,
    patient_id: int,
    document: Mapping[str, Any] | BaseModel,
    *,
    reason: str,
    expected_version: int,
    clock: ClinicClock | None = None,
    detail: dict[str, Any] | None = None,
    merge: bool = False,
) -> PatientRecord:
    """Record a new version of the patient's record; the old one stays in the history.

    ``expected_version`` is the version the user was looking at and amends (required on every
    interface): if someone else amended the record since, the amendment is refused
    (``Conflict``) instead of silently replacing theirs. There is no "last writer wins".
    With ``merge`` the ``document`` holds only the fields it changes (a FHIR import: the
    demographics, conditions and medicines) and the rest of the current version is kept;
    ``detail`` is added to the audit entry.
    """
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the record is amended.", field="reason")
    today = (clock or clinic_clock()).today()
    data = {} if merge else validate_document(document, today)
    with action(db, actor, "patient.amend", entity="patient", entity_id=patient_id) as session:
        patient, current = load_patient(session, patient_id)
        if expected_version != current.version:
            raise Conflict(
                f"expected_version: the record is at version {current.version}, not "
                f"{expected_version}; someone amended it meanwhile. Reload and try again.",
                field="expected_version",
            )
        if merge:
            changes = (
                document.model_dump(mode="json") if isinstance(document, BaseModel) else document
            )
            data = validate_document({**current.document, **changes}, today)
        row = _store_version(
            session,
            actor,
            patient,
            data,
            version=current.version + 1,
            amends=current,
            reason=reason.strip(),
        )
        audit.record(
            session,
            actor,
            "patient.amend",
            entity="patient",
            entity_id=patient.id,
            patient_id=patient.id,
            detail={"version": row.version, "reason": reason.strip(), **(detail or {})},
        )
        return _record(session, patient, row)


def get_patient(db: Database, actor: Actor, patient_id: int) -> PatientRecord:
    """The current version of the record (the read is audited)."""
    with action(db, actor, "patient.read", entity="patient", entity_id=patient_id) as session:
        patient, current = load_patient(session, patient_id)
        audit.record(
            session,
            actor,
            "patient.read",
            entity="patient",
            entity_id=patient.id,
            patient_id=patient.id,
            detail={"version": current.version},
        )
        return _record(session, patient, current)


def patient_history(db: Database, actor: Actor, patient_id: int) -> list[PatientRecord]:
    """Every version of the record, oldest first (the read is audited)."""
    with action(db, actor, "patient.read", entity="patient", entity_id=patient_id) as session:
        patient, _ = load_patient(session, patient_id)
        rows = session.scalars(
            select(PatientVersion)
            .where(PatientVersion.patient_id == patient_id)
            .order_by(PatientVersion.version)
        ).all()
        audit.record(
            session,
            actor,
            "patient.history",
            entity="patient",
            entity_id=patient.id,
            patient_id=patient.id,
        )
        return [_record(session, patient, row) for row in rows]


def latest_versions_query() -> Any:
    latest = (
        select(
            PatientVersion.patient_id.label("patient_id"),
            func.max(PatientVersion.version).label("version"),
        )
        .group_by(PatientVersion.patient_id)
        .subquery()
    )
    return select(PatientVersion).join(
        latest,
        (PatientVersion.patient_id == latest.c.patient_id)
        & (PatientVersion.version == latest.c.version),
    )


def search_patients(
    db: Database, actor: Actor, query: str = "", *, limit: int = 50
) -> list[PatientSummary]:
    """Patients whose current name contains ``query`` (or whose id or pseudonym is it)."""
    text = query.strip()
    with action(db, actor, "patient.list", entity="patient") as session:
        statement = latest_versions_query()
        if text:
            conditions = [
                func.lower(PatientVersion.full_name).contains(text.lower(), autoescape=True)
            ]
            if text.isdigit() and is_record_id(int(text)):
                conditions.append(PatientVersion.patient_id == int(text))
            pseudonym_ids = select(PatientRow.id).where(PatientRow.pseudonym == text.upper())
            conditions.append(PatientVersion.patient_id.in_(pseudonym_ids))
            statement = statement.where(or_(*conditions))
        rows = session.scalars(
            statement.order_by(PatientVersion.full_name, PatientVersion.patient_id).limit(limit)
        ).all()
        audit.record(
            session,
            actor,
            "patient.list",
            entity="patient",
            detail={"query": text, "count": len(rows)},
        )
        return [
            PatientSummary(
                id=row.patient_id,
                name=row.full_name,
                birth_date=row.birth_date,
                sex=row.sex,
                version=row.version,
                updated_at=row.recorded_at,
            )
            for row in rows
        ]
