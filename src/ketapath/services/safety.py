"""Safety follow-up results of repeated courses: liver enzymes, urinary symptoms, cognition,
misuse screen (``knowledge/data/safety_checks.yaml``).

A result is recorded with the values the check records (validated: unknown fields and values
out of bounds are refused, naming the field); whether it is abnormal is computed from the
check's rules (``ketapath.domain.safety``), never typed, and each abnormal result comes back
with its findings in words, with their rules and citations. A correction is a new row that
amends the current one (with who, when and why); lists show the current version of each.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from ketapath.domain import safety as rules
from ketapath.domain.patient import check_day
from ketapath.knowledge.safety import SafetyCheck, safety_checks
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound
from ketapath.services.patients import load_patient
from ketapath.services.people import usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.signing import FindingView
from ketapath.services.unit import action
from ketapath.services.validation import REASON_LENGTH
from ketapath.store.db import Database
from ketapath.store.models import SafetyResult, utcnow

# More values than any check has fields cannot be one result.
MAX_VALUES = 40
SafetyValue = bool | int | float | str | None


class SafetyResultInput(BaseModel):
    """A safety check's result as the clinician enters it."""

    model_config = ConfigDict(allow_inf_nan=False, extra="forbid")

    check_id: str = Field(min_length=1, max_length=40, examples=["liver-enzymes"])
    observed_on: date = Field(
        description="The day of the test or of the questions (not in the future, not before "
        "the patient's birth)."
    )
    values: dict[str, SafetyValue] = Field(
        max_length=MAX_VALUES,
        examples=[{"alt_u_per_l": 62, "alt_uln_u_per_l": 40}],
        description="Field id to value, as the check records them (GET /safety-checks).",
    )
    note: str | None = Field(default=None, max_length=REASON_LENGTH)


class SafetyResultView(BaseModel):
    """A stored result, with whether it is abnormal and why (its findings)."""

    id: int
    patient_id: int
    check_id: str
    check_name: str
    observed_on: date
    values: dict[str, Any]
    abnormal: bool
    findings: list[FindingView]
    note: str | None
    recorded_at: datetime
    recorded_by: str | None
    amends_id: int | None
    reason: str | None


def safety_catalogue() -> tuple[SafetyCheck, ...]:
    """The safety checks, what each records and its rules with sources (reference data)."""
    return tuple(safety_checks().entries)


def _check(check_id: str) -> SafetyCheck:
    try:
        return safety_checks().check(check_id.strip())
    except KeyError as error:
        ids = ", ".join(e.id for e in safety_checks().entries)
        raise InvalidInput(
            f"check_id: no safety check {check_id!r}; the checks are {ids}.", field="check_id"
        ) from error


def _judged(check: SafetyCheck, values: dict[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    try:
        read = rules.read_values(check, values)
    except rules.SafetyValueError as error:
        field = f"values.{error.field}"
        raise InvalidInput(f"{field}: {error}", field=field) from error
    return read, rules.judge(check, read)


def _view(row: SafetyResult, names: dict[int | None, str]) -> SafetyResultView:
    check = safety_checks().check(row.check_id)
    return SafetyResultView(
        id=row.id,
        patient_id=row.patient_id,
        check_id=row.check_id,
        check_name=check.name,
        observed_on=row.observed_on,
        values=row.values,
        abnormal=row.abnormal,
        findings=[FindingView.model_validate(f) for f in rules.judge(check, row.values)],
        note=row.note,
        recorded_at=row.recorded_at,
        recorded_by=names.get(row.recorded_by_id),
        amends_id=row.amends_id,
        reason=row.reason,
    )


def _new_row(
    session: Session,
    actor: Actor,
    patient_id: int,
    data: SafetyResultInput,
    clock: ClinicClock,
    *,
    amends: SafetyResult | None = None,
    reason: str | None = None,
) -> SafetyResult:
    check = _check(data.check_id)
    if amends is not None and check.id != amends.check_id:
        raise InvalidInput(
            "check_id: an amendment keeps the check; record a new result.", field="check_id"
        )
    _, version = load_patient(session, patient_id)
    try:
        check_day(data.observed_on, clock.today(), "observed_on", birth=version.birth_date)
    except ValueError as error:
        raise InvalidInput(f"{error}.", field="observed_on") from error
    values, findings = _judged(check, data.values)
    note = (data.note or "").strip() or None
    return SafetyResult(
        patient_id=patient_id,
        check_id=check.id,
        observed_on=data.observed_on,
        values=values,
        abnormal=rules.is_abnormal(findings),
        note=note,
        recorded_at=utcnow(),
        recorded_by_id=actor.user_id,
        amends_id=amends.id if amends else None,
        reason=reason,
    )


def record_safety_result(
    db: Database,
    actor: Actor,
    patient_id: int,
    data: SafetyResultInput,
    *,
    clock: ClinicClock | None = None,
) -> SafetyResultView:
    """Record a safety check's result for a patient, judged by the check's rules."""
    with action(db, actor, "safety.record", entity="safety_result", patient_id=patient_id) as s:
        row = _new_row(s, actor, patient_id, data, clock or clinic_clock())
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "safety.record",
            entity="safety_result",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"check_id": row.check_id, "abnormal": row.abnormal},
        )
        return _view(row, usernames_of(s, [row.recorded_by_id]))


def amend_safety_result(
    db: Database,
    actor: Actor,
    result_id: int,
    data: SafetyResultInput,
    *,
    reason: str,
    clock: ClinicClock | None = None,
) -> SafetyResultView:
    """Correct a result: a new row amending the current one (judged again); the old stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the result is amended.", field="reason")
    if len(reason) > REASON_LENGTH:
        raise InvalidInput(f"reason: at most {REASON_LENGTH:,} characters.", field="reason")
    with action(db, actor, "safety.record", entity="safety_result", entity_id=result_id) as s:
        current = s.get(SafetyResult, result_id)
        if current is None:
            raise NotFound(f"result_id: no safety result {result_id}.", field="result_id")
        newer = s.scalar(select(SafetyResult.id).where(SafetyResult.amends_id == current.id))
        if newer is not None:
            raise Conflict(
                f"result_id: result {result_id} was already amended by {newer}; amend the "
                "current version.",
                field="result_id",
            )
        row = _new_row(
            s,
            actor,
            current.patient_id,
            data,
            clock or clinic_clock(),
            amends=current,
            reason=reason.strip(),
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "safety.amend",
            entity="safety_result",
            entity_id=row.id,
            patient_id=current.patient_id,
            detail={"amends_id": current.id, "abnormal": row.abnormal, "reason": reason.strip()},
        )
        return _view(row, usernames_of(s, [row.recorded_by_id]))


def list_safety_results(db: Database, actor: Actor, patient_id: int) -> list[SafetyResultView]:
    """The current version of each of the patient's safety results, latest observed first."""
    with action(db, actor, "safety.read", entity="safety_result", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        newer = aliased(SafetyResult)
        rows = list(
            s.scalars(
                select(SafetyResult)
                .where(SafetyResult.patient_id == patient_id)
                .where(~select(newer.id).where(newer.amends_id == SafetyResult.id).exists())
                .order_by(SafetyResult.observed_on.desc(), SafetyResult.id.desc())
            )
        )
        audit.record(
            s,
            actor,
            "safety.list",
            entity="safety_result",
            patient_id=patient_id,
            detail={"count": len(rows)},
        )
        names = usernames_of(s, [row.recorded_by_id for row in rows])
        return [_view(row, names) for row in rows]
