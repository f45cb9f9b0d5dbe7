"""Protocol to course (preview), and the physician's signature on it (the order).

Signing rules, checked here whatever the interface:

- only a physician signs, overrides, confirms or cancels;
- consent must be recorded as given on the patient's current record;
- the patient's current record must have been screened (after the latest PHQ-9, GAD-7 and
  DASS-21 were recorded), and a patient screened "not eligible" cannot be signed for;
- soft-limit findings of the course, and the screen's relative contraindications and
  precautions, are signed only with the physician's written override reason;
- a course over a hard limit is never stored (the domain refuses to build it, and the
  service checks again before writing);
- the course is recomputed from the stored record at signing; if the preview the physician
  looked at (``course_digest``) differs, the signature is refused rather than applied to
  something else;
- every course is planned against the clinic's active drug library
  (``ketapath.services.library``); the signed order records its version and digest (a new
  library between preview and signature changes the course digest, so the signature is
  refused until the course is reviewed again).

A signed order is never changed; a cancellation is a new row that amends it. The facts the
physician saw (weight and its date, allergies, laterality, pregnancy, consent) are frozen into
the order. An order whose dosing facts changed after signing is stale: ``usable_order`` refuses
it until a physician signs a new course or confirms it with a reason (``confirm_order``, a new
row that amends it; the doses are checked again against the drug library at the new facts).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain.errors import DomainError, HardLimitExceeded
from ketapath.domain.findings import Finding
from ketapath.domain.orders import Course
from ketapath.domain.planning import DosingInputs, PlanOptions, course_to_dict, plan, status
from ketapath.domain.signing import consent_finding, dosing_facts, limits_now
from ketapath.knowledge.library import DrugLibrary
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound, OrderRefused
from ketapath.services.library import active_library
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.screening import latest_screening, questionnaires_changed
from ketapath.services.signing import (
    ConfirmRequest,
    FindingView,
    OrderCancelled,
    OrderChecks,
    OrderConsentNotGiven,
    OrderFacts,
    OrderStale,
    confirmation_facts,
    facts_of,
    order_checks,
)
from ketapath.services.unit import action, check
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import (
    CourseRecord,
    Order,
    OrderConfirmation,
    PatientVersion,
    utcnow,
)

# Severities of screening findings that need the physician's override reason. Screens stored
# before the one severity vocabulary used "relative" and "precaution" for the same thing.
SCREENING_GATING = ("soft", "relative", "precaution")
# The findings about the patient's earlier courses that signing adds (services.outcomes).
CUMULATIVE_CODES = ("outcomes:cumulative-dose", "outcomes:cumulative-dose-unknown")
MAX_LADDER_STEPS = 100


class PlanRequest(BaseModel):
    """A protocol and the choices that turn it into a course for this patient."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    protocol_id: str = Field(min_length=1, max_length=80, examples=["asra-initial"])
    setting: Literal["clinic", "ward", "icu"] | None = None
    weight_basis: Literal["actual", "ideal", "adjusted"] | None = None
    concentration_mg_per_ml: float | None = Field(default=None, gt=0)
    # The drug library's limits (knowledge) bound the doses; here only that they are positive
    # finite numbers, and no more steps than a course has sessions.
    ladder_steps_mg_per_kg_per_h: list[Annotated[float, Field(gt=0)]] | None = Field(
        default=None, max_length=MAX_LADDER_STEPS
    )
    ladder_ceiling_mg_per_kg_per_h: float | None = Field(default=None, gt=0)

    def options(self, *, override_by: str | None = None, reason: str | None = None) -> PlanOptions:
        steps = self.ladder_steps_mg_per_kg_per_h
        return PlanOptions(
            setting=self.setting,
            weight_basis=self.weight_basis,
            concentration_mg_per_ml=self.concentration_mg_per_ml,
            ladder_steps_mg_per_kg_per_h=tuple(steps) if steps is not None else None,
            ladder_ceiling_mg_per_kg_per_h=self.ladder_ceiling_mg_per_kg_per_h,
            override_by=override_by,
            override_reason=reason,
        )


class SignRequest(PlanRequest):
    override_reason: str | None = Field(
        default=None,
        max_length=REASON_LENGTH,
        description="The physician's reason for accepting soft-limit and screening findings.",
    )
    course_digest: str | None = Field(
        default=None, description="The digest of the preview that was reviewed."
    )
    patient_version: int | None = Field(
        default=None, ge=1, description="The record version that was reviewed."
    )


class ScreeningSummary(BaseModel):
    id: int
    decision: str
    gating_codes: list[str]
    # the findings behind the codes, in words (shown where the physician writes the reason)
    gating_findings: list[FindingView] = []
    # a PHQ-9, GAD-7 or DASS-21 was recorded or corrected after the screen: screen again
    questionnaires_changed: bool = False


class CoursePreview(BaseModel):
    patient_id: int
    patient_version: int
    protocol_id: str
    status: str  # "ready" | "needs_override"
    course: dict[str, Any]
    soft_codes: list[str]
    digest: str
    screening: ScreeningSummary | None
    facts: OrderFacts | None = Field(
        default=None, description="What the physician needs besides the dose, as signing saw it."
    )
    library_version: int = Field(description="The drug library version it was checked against.")
    library_digest: str = Field(description="SHA-256 of that drug library's content.")


class OrderView(OrderChecks):
    id: int
    patient_id: int
    status: str  # "signed" | "cancelled"
    protocol_id: str
    patient_version: int
    course: dict[str, Any]
    digest: str
    signed_by: str | None
    signed_at: datetime
    override_reason: str | None
    override_codes: dict[str, Any] | None
    screening_result_id: int | None
    cancelled_by: str | None = None
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    library_name: str | None = Field(
        default=None, description="The drug library the order was checked against."
    )
    library_version: int | None = Field(
        default=None, description="Its version (none for orders signed before libraries)."
    )
    library_digest: str | None = Field(default=None, description="SHA-256 of its content.")


def plain_course(course: Course) -> dict[str, Any]:
    """The course as JSON data (lists, not tuples): the same in memory as read back."""
    data: dict[str, Any] = json.loads(json.dumps(course_to_dict(course)))
    return data


def course_digest(course: Course) -> str:
    """SHA-256 of the course's content (what the pump will be told), override excluded."""
    data = plain_course(course)
    data.pop("override", None)
    data.pop("status", None)
    data.pop("notes", None)
    # The cumulative dose of the patient's earlier courses is information about other
    # courses, read from their charts (it grows while one of them runs), not this course.
    data["findings"] = [
        f for f in data.get("findings", []) if f.get("code") not in CUMULATIVE_CODES
    ]
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _dosing(version: PatientVersion, clock: ClinicClock | None) -> DosingInputs:
    patient = as_patient(version.document, (clock or clinic_clock()).today())
    return DosingInputs(
        patient.weight_kg,
        patient.height_cm,
        patient.sex,
        patient.age_on(),
        medicines=tuple(m.name for m in patient.medications),
    )


def _plan(
    request: PlanRequest, dosing: DosingInputs, options: PlanOptions, library: DrugLibrary
) -> Course:
    try:
        return plan(request.protocol_id, dosing, options, library=library)
    except HardLimitExceeded as error:
        raise OrderRefused(
            error.message,
            field="limits",
            details={"findings": [_finding(f) for f in error.findings]},
        ) from error
    except DomainError as error:
        raise InvalidInput(error.message, field=error.field or None) from error


def _with_cumulative(
    session: Session, patient_id: int, course: Course, clock: ClinicClock | None
) -> Course:
    """The course with what it adds to the dose the patient's earlier courses delivered
    (from their charts), for the signing physician: no drug-library limit is cumulative over
    courses, so this is a finding, never a refusal (``services.outcomes``)."""
    from ketapath.services.outcomes import earlier_courses_finding

    if course.dosing_weight_kg <= 0:
        return course
    planned = course.course_total_mg / course.dosing_weight_kg
    found = earlier_courses_finding(session, patient_id, planned, clock or clinic_clock())
    if found is None:
        return course
    return dataclasses.replace(course, findings=(*course.findings, found))


def _finding(finding: Finding) -> dict[str, Any]:
    return finding.to_dict()


def in_words(messages: Iterable[str]) -> str:
    """Findings' messages as one clause ("none" when there are none)."""
    clauses = [m.rstrip(". ") for m in messages]
    clauses = [c[0].lower() + c[1:] if c[1:2].islower() else c for c in clauses if c]
    return "; ".join(clauses) or "none"


def _screening_summary(session: Session, version: PatientVersion) -> ScreeningSummary | None:
    row = latest_screening(session, version.id)
    if row is None:
        return None
    findings = [f for f in row.result.get("findings", []) if f["severity"] in SCREENING_GATING]
    return ScreeningSummary(
        id=row.id,
        decision=row.decision,
        gating_codes=[str(f["code"]) for f in findings],
        gating_findings=[_finding_view(f) for f in findings],
        questionnaires_changed=questionnaires_changed(session, row),
    )


def _finding_view(stored: dict[str, Any]) -> FindingView:
    """A gating finding as stored with a screen: soft (screens stored before the one severity
    vocabulary said "relative" or "precaution" for it, and may lack the rule or citations)."""
    return FindingView.model_validate(
        {
            "rule": "",
            "citation": "",
            "citations": [],
            **{k: v for k, v in stored.items() if k in FindingView.model_fields},
            "severity": "soft",
        }
    )


def preview_course(
    db: Database,
    actor: Actor,
    patient_id: int,
    request: PlanRequest,
    *,
    clock: ClinicClock | None = None,
) -> CoursePreview:
    """The course the protocol gives for this patient, with its limit findings and the facts
    a signing physician needs (not stored)."""
    with action(db, actor, "plan.preview", entity="course", patient_id=patient_id) as session:
        preview, _ = preview_in(session, actor, patient_id, request, clock)
        return preview


def preview_in(
    session: Session,
    actor: Actor,
    patient_id: int,
    request: PlanRequest,
    clock: ClinicClock | None,
) -> tuple[CoursePreview, PatientVersion]:
    """The preview inside a transaction the caller holds (after its permission check), with
    the record version it was computed for; audited as ``plan.preview``."""
    _, version = load_patient(session, patient_id)
    library = active_library(session)
    course = _plan(request, _dosing(version, clock), request.options(), library)
    course = _with_cumulative(session, patient_id, course, clock)
    facts = _facts(version, course, clock)
    audit.record(
        session,
        actor,
        "plan.preview",
        entity="course",
        patient_id=patient_id,
        detail={"protocol_id": request.protocol_id, "status": status(course)},
    )
    preview = CoursePreview(
        patient_id=patient_id,
        patient_version=version.version,
        protocol_id=course.protocol_id,
        status=status(course),
        course=plain_course(course),
        soft_codes=[f.code for f in course.findings if f.severity == "soft"],
        digest=course_digest(course),
        screening=_screening_summary(session, version),
        library_version=library.version,
        library_digest=library.digest(),
        facts=facts,
    )
    return preview, version


def _facts(version: PatientVersion, course: Course, clock: ClinicClock | None) -> OrderFacts:
    today = (clock or clinic_clock()).today()
    return facts_of(as_patient(version.document), version.version, course.weight_basis, today)


def _refuse_without_consent(version: PatientVersion) -> None:
    refusal = consent_finding(as_patient(version.document).consent)
    if refusal is not None:
        raise OrderRefused(
            f"consent: {refusal.message}",
            field="consent",
            details={"findings": [FindingView.model_validate(refusal).model_dump(mode="json")]},
        )


def sign_order(
    db: Database,
    actor: Actor,
    patient_id: int,
    request: SignRequest,
    *,
    clock: ClinicClock | None = None,
) -> OrderView:
    """Sign a course for the patient (physician), with an override reason where needed.

    Refused while consent is not recorded as given; the facts the physician needs are frozen
    into the order."""
    reason = (request.override_reason or "").strip() or None
    if reason is not None:
        check(db, actor, "order.override", entity="order", patient_id=patient_id)
    with action(db, actor, "order.sign", entity="order", patient_id=patient_id) as session:
        _, version = load_patient(session, patient_id)
        if request.patient_version is not None and request.patient_version != version.version:
            raise Conflict(
                f"patient_version: the record is now at version {version.version}, not "
                f"{request.patient_version}; review the course again before signing.",
                field="patient_version",
            )
        screening = _screening_summary(session, version)
        if screening is None:
            raise OrderRefused(
                "screening: the patient's current record has not been screened; run the "
                "eligibility and safety screen before signing.",
                field="screening",
            )
        if screening.decision == "not_eligible":
            raise OrderRefused(
                "screening: the screen of the current record says not eligible (an absolute "
                "contraindication); this course cannot be signed.",
                field="screening",
            )
        _refuse_without_consent(version)
        if screening.questionnaires_changed:
            raise OrderRefused(
                "screening: a PHQ-9, GAD-7 or DASS-21 was recorded or corrected after the "
                "screen of the current record; run the screen again before signing.",
                field="screening",
            )
        dosing = _dosing(version, clock)
        library = active_library(session)
        unsigned = _with_cumulative(
            session, patient_id, _plan(request, dosing, request.options(), library), clock
        )
        facts = _facts(version, unsigned, clock)
        digest = course_digest(unsigned)
        if request.course_digest is not None and request.course_digest != digest:
            raise Conflict(
                "course_digest: the course computed now differs from the one reviewed (the "
                "record or the rule base changed); review it again before signing.",
                field="course_digest",
            )
        soft_findings = [f for f in unsigned.findings if f.severity == "soft"]
        soft = [f.code for f in soft_findings]
        needs_reason = soft or screening.gating_codes
        if needs_reason and reason is None:
            # the findings in words; their codes go to programs in the details (soft_codes,
            # screening_codes)
            limits = in_words(f.message for f in soft_findings)
            screen = in_words(f.message for f in screening.gating_findings)
            raise OrderRefused(
                "override_reason: this course needs a physician's override with a written "
                f"reason. Soft limits: {limits}. Screening findings: {screen}.",
                field="override_reason",
                details={"soft_codes": soft, "screening_codes": screening.gating_codes},
            )
        course = (
            _with_cumulative(
                session,
                patient_id,
                _plan(
                    request,
                    dosing,
                    request.options(override_by=actor.username, reason=reason),
                    library,
                ),
                clock,
            )
            if soft and reason
            else unsigned
        )
        if any(f.severity == "hard" for f in course.findings) or status(course) != "ready":
            raise OrderRefused("limits: the course cannot be signed.", field="limits")
        record = CourseRecord(
            patient_id=patient_id,
            patient_version_id=version.id,
            protocol_id=course.protocol_id,
            options=request.model_dump(
                mode="json", exclude={"override_reason", "course_digest", "patient_version"}
            ),
            course=plain_course(course),
            digest=digest,
            created_at=utcnow(),
            created_by_id=actor.user_id,
        )
        session.add(record)
        session.flush()
        order = Order(
            patient_id=patient_id,
            course_id=record.id,
            screening_result_id=screening.id,
            status="signed",
            override_reason=reason if needs_reason else None,
            override_codes=(
                {"limits": soft, "screening": screening.gating_codes} if needs_reason else None
            ),
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
            facts=facts.model_dump(mode="json"),
        )
        session.add(order)
        session.flush()
        audit.record(
            session,
            actor,
            "order.sign",
            entity="order",
            entity_id=order.id,
            patient_id=patient_id,
            detail={
                "protocol_id": course.protocol_id,
                "digest": digest,
                "override_codes": order.override_codes,
                "patient_version": version.version,
                "library_version": library.version,
                "library_digest": library.digest(),
            },
        )
        return _view(session, order, clock)


def _view(session: Session, order: Order, clock: ClinicClock | None = None) -> OrderView:
    return _views(session, [order], clock)[0]


def _views(
    session: Session, orders: list[Order], clock: ClinicClock | None = None
) -> list[OrderView]:
    """The views of signed orders, with a fixed number of queries however many there are."""
    if not orders:
        return []
    ids = [order.id for order in orders]
    records = {
        r.id: r
        for r in session.scalars(
            select(CourseRecord).where(CourseRecord.id.in_([o.course_id for o in orders]))
        )
    }
    versions = dict(
        session.execute(
            select(PatientVersion.id, PatientVersion.version).where(
                PatientVersion.id.in_([r.patient_version_id for r in records.values()])
            )
        ).all()
    )
    cancellations = {
        c.amends_id: c for c in session.scalars(select(Order).where(Order.amends_id.in_(ids)))
    }
    people = usernames_of(
        session,
        [o.recorded_by_id for o in orders] + [c.recorded_by_id for c in cancellations.values()],
    )
    checks = order_checks(session, orders, records, cancellations, clock or clinic_clock())
    out = []
    for order in orders:
        record = records[order.course_id]
        cancellation = cancellations.get(order.id)
        out.append(
            OrderView(
                id=order.id,
                patient_id=order.patient_id,
                status="cancelled" if cancellation is not None else "signed",
                protocol_id=record.protocol_id,
                patient_version=versions.get(record.patient_version_id, 0),
                course=record.course,
                digest=record.digest,
                signed_by=people.get(order.recorded_by_id),
                signed_at=order.recorded_at,
                override_reason=order.override_reason,
                override_codes=order.override_codes,
                screening_result_id=order.screening_result_id,
                cancelled_by=people.get(cancellation.recorded_by_id) if cancellation else None,
                cancelled_at=cancellation.recorded_at if cancellation else None,
                cancel_reason=cancellation.reason if cancellation else None,
                **dict(checks[order.id]),
                **_library_of(record.course),
            )
        )
    return out


def _library_of(course: dict[str, Any]) -> dict[str, Any]:
    """The drug library a stored course records (none before libraries were versioned)."""
    stamp = course.get("library")
    if not isinstance(stamp, dict):
        return {}
    return {
        "library_name": stamp.get("name"),
        "library_version": stamp.get("version"),
        "library_digest": stamp.get("digest"),
    }


def _signed_order(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None or order.status != "signed":
        raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
    return order


def order_in(session: Session, order_id: int, clock: ClinicClock | None = None) -> OrderView:
    """A signed order's view inside a transaction the caller holds (after its permission
    check); ``NotFound`` naming ``order_id`` when there is no such signed order."""
    return _view(session, _signed_order(session, order_id), clock)


def get_order(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> OrderView:
    """A signed order, with whether it may be used now (stale, consent, cancelled)."""
    with action(db, actor, "order.read", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        audit.record(
            session,
            actor,
            "order.read",
            entity="order",
            entity_id=order.id,
            patient_id=order.patient_id,
        )
        return _view(session, order, clock)


def list_orders(
    db: Database, actor: Actor, patient_id: int, *, clock: ClinicClock | None = None
) -> list[OrderView]:
    """The patient's signed orders (with their cancellation, if any), newest first."""
    with action(db, actor, "order.read", entity="order", patient_id=patient_id) as session:
        load_patient(session, patient_id)
        orders = session.scalars(
            select(Order)
            .where(Order.patient_id == patient_id, Order.status == "signed")
            .order_by(Order.id.desc())
        ).all()
        audit.record(
            session,
            actor,
            "order.list",
            entity="order",
            patient_id=patient_id,
            detail={"count": len(orders)},
        )
        return _views(session, list(orders), clock)


def cancel_order(db: Database, actor: Actor, order_id: int, *, reason: str) -> OrderView:
    """Cancel a signed order (physician): a new row amends it; the signed order stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the order is cancelled.", field="reason")
    with action(db, actor, "order.cancel", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        if session.scalar(select(Order.id).where(Order.amends_id == order.id)) is not None:
            raise Conflict(f"order_id: order {order_id} is already cancelled.", field="order_id")
        session.add(
            Order(
                patient_id=order.patient_id,
                course_id=order.course_id,
                status="cancelled",
                recorded_at=utcnow(),
                recorded_by_id=actor.user_id,
                amends_id=order.id,
                reason=reason.strip(),
            )
        )
        session.flush()
        audit.record(
            session,
            actor,
            "order.cancel",
            entity="order",
            entity_id=order.id,
            patient_id=order.patient_id,
            detail={"reason": reason.strip()},
        )
        return _view(session, order)


def confirm_order(
    db: Database,
    actor: Actor,
    order_id: int,
    request: ConfirmRequest,
    *,
    clock: ClinicClock | None = None,
) -> OrderView:
    """Confirm a stale order at the record's current facts (physician), with a reason.

    A new row amends the order (who, when, why, at which record version); the order stays as
    signed. The order's doses are checked again against the drug library at the record's
    current dosing weight: over a hard limit the confirmation is refused (sign a new course);
    over a soft limit the reason is the override and the codes are kept with it.
    """
    reason = request.reason.strip()
    if not reason:
        raise InvalidInput("reason: say why the order may be used as signed.", field="reason")
    with action(db, actor, "order.confirm", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        view = _view(session, order, clock)
        if view.status == "cancelled":
            raise Conflict(f"order_id: order {order_id} is cancelled.", field="order_id")
        if request.patient_version != view.current_version:
            raise Conflict(
                f"patient_version: the record is now at version {view.current_version}, not "
                f"{request.patient_version}; review the order again before confirming it.",
                field="patient_version",
            )
        if not view.stale:
            raise Conflict(
                f"order_id: the dosing facts of order {order_id} have not changed since it was "
                "signed (or last confirmed); there is nothing to confirm.",
                field="order_id",
            )
        _, current = load_patient(session, order.patient_id)
        findings = _limits_now(session, order, current)
        assert view.facts is not None  # every view has its facts (frozen, or read back)
        patient = as_patient(current.document)
        confirmed = dosing_facts(
            patient.weight_kg, patient.height_cm, patient.sex, view.facts.weight_basis
        )
        row = OrderConfirmation(
            order_id=order.id,
            patient_id=order.patient_id,
            patient_version_id=current.id,
            facts=confirmation_facts(confirmed, view.stale_changes, [f.code for f in findings]),
            reason=reason,
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor,
            "order.confirm",
            entity="order",
            entity_id=order.id,
            patient_id=order.patient_id,
            detail={
                "patient_version": current.version,
                "changes": view.stale_message,
                "limit_codes": [f.code for f in findings],
                "reason": reason,
            },
        )
        return _view(session, order, clock)


def _limits_now(session: Session, order: Order, current: PatientVersion) -> list[Finding]:
    """The drug-library findings of a signed course at the record's current facts; refused
    (``OrderRefused``) over a hard limit."""
    record = session.get(CourseRecord, order.course_id)
    assert record is not None
    patient = as_patient(current.document)
    try:
        findings = limits_now(
            record.course,
            patient.weight_kg,
            patient.height_cm,
            patient.sex,
            active_library(session),
        )
    except DomainError as error:
        raise InvalidInput(error.message, field=error.field or None) from error
    hard = [f for f in findings if f.severity == "hard"]
    if hard:
        raise OrderRefused(
            f"limits: at the record's current facts the doses of order {order.id} pass a hard "
            "limit, which no confirmation can pass; cancel it and sign a new course: "
            + "; ".join(f.message for f in hard),
            field="limits",
            details={"findings": [_finding(f) for f in hard]},
        )
    return findings


def refuse_unusable(view: OrderView) -> OrderView:
    """The order if it may be used now to program a pump; otherwise a typed refusal.

    Raises ``OrderCancelled`` (cancelled), ``OrderConsentNotGiven`` (the record no longer says
    consent was given) or ``OrderStale`` (the dosing facts changed after signing and no
    physician has confirmed it since): each an ``OrderNotUsable`` naming what to do.
    """
    order_id = view.id
    if view.state == "cancelled":
        raise OrderCancelled(
            f"order_id: order {order_id} was cancelled by {view.cancelled_by}: "
            f"{view.cancel_reason}",
            field="order_id",
        )
    if view.state == "no_consent":
        raise OrderConsentNotGiven(
            f"consent: order {order_id} cannot be used: the record says consent is "
            f"'{_consent_now(view)}'; record the patient's consent as given first.",
            field="consent",
        )
    if view.state == "stale":
        raise OrderStale(
            f"order_id: order {order_id} cannot be used: its dosing facts changed after "
            f"signing ({view.stale_message}); sign a new course from the current record, or "
            "a physician confirms this order with a reason.",
            field="order_id",
            details={"changes": [c.model_dump(mode="json") for c in view.stale_changes]},
        )
    return view


def usable_order(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> OrderView:
    """The order, if it may be used now to program a pump; otherwise a typed refusal
    (``refuse_unusable``)."""
    return refuse_unusable(get_order(db, actor, order_id, clock=clock))


def _consent_now(view: OrderView) -> str:
    refusal = next((f for f in view.findings if f.code == "order:consent-not-given"), None)
    return refusal.subject if refusal else "not given"
