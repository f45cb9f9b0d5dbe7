"""The signing checks of an order, as the services and interfaces see them: the facts the
physician saw (frozen at signing), whether the order is still usable (cancelled, consent, stale
dosing facts), and the physician's confirmations of a stale order.

The clinical rules are in ``ketapath.domain.signing`` (which facts are dosing facts, what
changed, the weight's age, consent); this module reads them off the stored rows, a fixed
number of queries for any number of orders, and gives them typed shapes for the API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain.findings import Finding
from ketapath.domain.patient import Patient
from ketapath.domain.signing import (
    FactValue,
    changed_facts,
    changes_text,
    consent_finding,
    dosing_facts,
    stale_finding,
    weight_age_days,
    weight_findings,
)
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import ServiceError
from ketapath.services.patients import as_patient, latest_versions_query
from ketapath.services.people import usernames_of
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.models import CourseRecord, Order, OrderConfirmation, PatientVersion

OrderState = Literal["usable", "stale", "no_consent", "cancelled"]


class CitationView(BaseModel):
    """A short citation and the bibliography entry behind it (GET /references/{ref})."""

    model_config = ConfigDict(from_attributes=True)

    ref: str
    at: str
    text: str


class FindingView(BaseModel):
    """A finding: plain words first, then the rule and its citations; the code for programs."""

    # FindingView.model_validate(finding) reads a domain Finding (its citation property too)
    model_config = ConfigDict(from_attributes=True)

    code: str
    severity: Literal["hard", "soft", "warning", "info"]
    message: str
    rule: str
    citation: str
    citations: list[CitationView]
    subject: str = ""


class AllergyView(BaseModel):
    substance: str
    reaction: str = ""


class OrderFacts(BaseModel):
    """What the signing physician saw, frozen into the order (or, before it is signed, what
    the preview shows). ``dosing_facts`` are those the course's dose depends on
    (``ketapath.domain.signing``); ``findings`` the warnings about them on that day."""

    patient_version: int
    on: date = Field(description="The clinic's date the facts were read (the day of signing).")
    weight_kg: float
    weight_measured_on: date | None
    weight_age_days: int | None = Field(description="Days from the weighing to ``on``.")
    height_cm: float | None
    sex: str
    age_years: float
    pregnancy: str
    allergies: list[AllergyView]
    laterality: str
    consent: str
    weight_basis: str
    dosing_facts: dict[str, float | str | None]
    findings: list[FindingView]


class FactChangeView(BaseModel):
    """One dosing fact that changed after signing: 'signed at 68 kg; the record now says 90 kg'.

    ``signed`` is the value signed, or the value last confirmed when ``since`` is 'confirmed'.
    """

    # FactChangeView.model_validate(change) reads a domain FactChange (its text property too)
    model_config = ConfigDict(from_attributes=True)

    fact: str
    label: str
    unit: str
    signed: float | str | None
    now: float | str | None
    since: Literal["signed", "confirmed"] = "signed"
    text: str


class ConfirmationView(BaseModel):
    """A physician's confirmation of a stale order at a record version (who, when, why)."""

    id: int
    patient_version: int
    confirmed_by: str | None
    confirmed_at: datetime
    reason: str
    changes: list[FactChangeView]
    dosing_facts: dict[str, float | str | None]
    limit_codes: list[str]


class OrderChecks(BaseModel):
    """Whether a signed order may be used now, and why not (the fields of every order view)."""

    facts: OrderFacts | None = Field(
        default=None, description="What the physician saw at signing, frozen into the order."
    )
    state: OrderState = "usable"
    usable: bool = True
    stale: bool = Field(
        default=False,
        description="The dosing facts changed after signing (or after the last confirmation).",
    )
    stale_changes: list[FactChangeView] = []
    stale_message: str = Field(default="", examples=["signed at 68 kg; the record now says 90 kg"])
    current_version: int = Field(default=0, description="The record's version now.")
    confirmations: list[ConfirmationView] = []
    findings: list[FindingView] = Field(
        default=[], description="What stands between the order and its use now, and warnings."
    )


class ConfirmRequest(BaseModel):
    """A physician's confirmation that a stale order may be used at the record's facts."""

    reason: str = Field(min_length=1, max_length=REASON_LENGTH)
    patient_version: int = Field(
        ge=1, description="The record version whose facts the physician looked at."
    )


class OrderNotUsable(ServiceError):
    """An order that may not be used now (``usable_order``); the subclass says why."""

    status_code = 409


class OrderCancelled(OrderNotUsable):
    """The order was cancelled."""


class OrderConsentNotGiven(OrderNotUsable):
    """The record no longer says that consent was given."""


class OrderStale(OrderNotUsable):
    """The dosing facts changed after signing and no physician has confirmed the order."""


def read_facts(document: dict[str, Any], version: int, weight_basis: str, on: date) -> OrderFacts:
    """The facts of a record version that a signing physician needs, read on day ``on``."""
    patient = as_patient(document)
    return facts_of(patient, version, weight_basis, on)


def facts_of(patient: Patient, version: int, weight_basis: str, on: date) -> OrderFacts:
    """The facts of a patient (at record ``version``) that a signing physician needs."""
    findings = weight_findings(patient.weight_measured_on, on)
    refused = consent_finding(patient.consent)
    return OrderFacts(
        patient_version=version,
        on=on,
        weight_kg=patient.weight_kg,
        weight_measured_on=patient.weight_measured_on,
        weight_age_days=weight_age_days(patient.weight_measured_on, on),
        height_cm=patient.height_cm,
        sex=patient.sex,
        age_years=patient.age_on(on),
        pregnancy=patient.pregnancy,
        allergies=[
            AllergyView(substance=a.substance, reaction=a.reaction) for a in patient.allergies
        ],
        laterality=patient.laterality,
        consent=patient.consent,
        weight_basis=weight_basis,
        dosing_facts=dosing_facts(patient.weight_kg, patient.height_cm, patient.sex, weight_basis),
        findings=[FindingView.model_validate(f) for f in ([refused] if refused else []) + findings],
    )


def confirmation_facts(
    now: dict[str, FactValue], changes: Sequence[FactChangeView], limit_codes: Sequence[str]
) -> dict[str, Any]:
    """What an ``order_confirmations`` row keeps besides who, when, why and the version: the
    dosing facts confirmed, what had changed, and the drug-library codes accepted."""
    return {
        "dosing_facts": dict(now),
        "changes": [c.model_dump(mode="json") for c in changes],
        "limit_codes": list(limit_codes),
    }


def order_checks(
    session: Session,
    orders: Sequence[Order],
    records: dict[int, CourseRecord],
    cancelled: Iterable[int | None],
    clock: ClinicClock,
) -> dict[int, OrderChecks]:
    """The checks of signed orders, in a fixed number of queries however many there are."""
    if not orders:
        return {}
    today = clock.today()
    cancelled_ids = set(cancelled)
    current = _current_versions(session, {o.patient_id for o in orders})
    # each patient's record read once, however many of their orders are shown
    now = {patient_id: as_patient(row.document) for patient_id, row in current.items()}
    confirmations = _confirmations(session, [o.id for o in orders])
    legacy = _legacy_facts(session, [o for o in orders if o.facts is None], records, clock)
    out = {}
    for order in orders:
        if order.facts is not None:
            facts = OrderFacts.model_validate(order.facts)
        else:
            facts = legacy[order.id]
        out[order.id] = _checks(
            facts,
            confirmations.get(order.id, []),
            now[order.patient_id],
            current[order.patient_id].version,
            order.id in cancelled_ids,
            today,
        )
    return out


def _checks(
    facts: OrderFacts,
    confirmations: list[ConfirmationView],
    patient: Patient,
    current_version: int,
    cancelled: bool,
    today: date,
) -> OrderChecks:
    now = dosing_facts(patient.weight_kg, patient.height_cm, patient.sex, facts.weight_basis)
    if confirmations:
        changes = changed_facts(confirmations[-1].dosing_facts, now, since="confirmed")
    else:
        changes = changed_facts(facts.dosing_facts, now)
    findings: list[Finding] = []
    refused = consent_finding(patient.consent)
    if refused is not None:
        findings.append(refused)
    if changes:
        findings.append(stale_finding(changes))
    else:
        findings += weight_findings(patient.weight_measured_on, today)
    state: OrderState = "usable"
    if cancelled:
        state = "cancelled"
    elif refused is not None:
        state = "no_consent"
    elif changes:
        state = "stale"
    return OrderChecks(
        facts=facts,
        state=state,
        usable=state == "usable",
        stale=bool(changes),
        stale_changes=[FactChangeView.model_validate(c) for c in changes],
        stale_message=changes_text(changes),
        current_version=current_version,
        confirmations=confirmations,
        findings=[FindingView.model_validate(f) for f in findings],
    )


def _current_versions(session: Session, patient_ids: set[int]) -> dict[int, PatientVersion]:
    rows = session.scalars(
        latest_versions_query().where(PatientVersion.patient_id.in_(patient_ids))
    ).all()
    return {row.patient_id: row for row in rows}


def _confirmations(session: Session, order_ids: list[int]) -> dict[int, list[ConfirmationView]]:
    rows = session.scalars(
        select(OrderConfirmation)
        .where(OrderConfirmation.order_id.in_(order_ids))
        .order_by(OrderConfirmation.id)
    ).all()
    if not rows:
        return {}
    versions = dict(
        session.execute(
            select(PatientVersion.id, PatientVersion.version).where(
                PatientVersion.id.in_({r.patient_version_id for r in rows})
            )
        ).all()
    )
    names = usernames_of(session, [r.recorded_by_id for r in rows])
    out: dict[int, list[ConfirmationView]] = {}
    for row in rows:
        out.setdefault(row.order_id, []).append(
            ConfirmationView(
                id=row.id,
                patient_version=versions.get(row.patient_version_id, 0),
                confirmed_by=names.get(row.recorded_by_id),
                confirmed_at=row.recorded_at,
                reason=row.reason,
                changes=[FactChangeView.model_validate(c) for c in row.facts.get("changes", [])],
                dosing_facts=row.facts.get("dosing_facts", {}),
                limit_codes=list(row.facts.get("limit_codes", [])),
            )
        )
    return out


def _legacy_facts(
    session: Session, orders: list[Order], records: dict[int, CourseRecord], clock: ClinicClock
) -> dict[int, OrderFacts]:
    """Orders signed before their facts were frozen: the facts of the record version they
    were computed from (stored, never changed), read on the clinic's day of signing."""
    if not orders:
        return {}
    version_ids = {records[o.course_id].patient_version_id for o in orders}
    versions = {
        row.id: row
        for row in session.scalars(select(PatientVersion).where(PatientVersion.id.in_(version_ids)))
    }
    out = {}
    for order in orders:
        record = records[order.course_id]
        version = versions[record.patient_version_id]
        basis = str(record.course.get("weight_basis", "actual"))
        on = clock.date_of(order.recorded_at)
        out[order.id] = read_facts(version.document, version.version, basis, on)
    return out
