"""The opioid plan (PRODUCT step 6; FPM (ANZCA) 2016 proposal, section 6) as the clinic's records.

- ``opioid_summary``: the current record's opioids in oral morphine equivalents, by a named
  published table (clinicians).
- ``preview_opioid_plan`` / ``agree_opioid_plan``: conversion to one opioid species before
  admission and a taper plan with dated steps, computed from the stored record; agreeing is
  the physician's, and a taper faster than a published rate needs their written reason.
  An agreed plan is frozen; ``withdraw_opioid_plan`` adds a row that amends it.
- ``record_opioid_dose`` / ``amend_opioid_dose``: the daily opioid doses actually taken,
  recorded at each follow-up (physician, nurse) with their OME by the same table and, where a
  plan is agreed, the step the plan expected on that day. Corrections are amendments.

The arithmetic is ``ketapath.domain.opioids``; this module adds who may do it, the
transaction, the audit entry and what is kept.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.domain import opioids
from ketapath.domain.errors import DomainError
from ketapath.domain.patient import EARLIEST_DATE, ROUTE_LENGTH, Medication, check_day
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import Conflict, InvalidInput, NotFound, OrderRefused
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.people import username_of, usernames_of
from ketapath.services.permissions import Actor
from ketapath.services.signing import CitationView
from ketapath.services.unit import action
from ketapath.services.validation import REASON_LENGTH, validate
from ketapath.store.db import Database
from ketapath.store.models import OpioidDose, OpioidPlan, PatientVersion, utcnow

# A taper agreed now starts within this many days (a bound of the record: a later start is a
# typing error, and dates must stay inside the calendar for up to 1,000 steps of a year).
TAPER_START_HORIZON_DAYS = 366


class ConversionInput(BaseModel):
    """Convert the current opioids to one opioid species (FPM (ANZCA) 2016 proposal, section 6)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    opioid_id: str = Field(min_length=1, max_length=40, examples=["oxycodone"])
    route: str = Field(default="oral", min_length=1, max_length=40)
    reduce_percent: float = Field(
        ge=0,
        lt=100,
        description="The physician's reduction for incomplete cross-tolerance (no default).",
    )


class TaperInput(BaseModel):
    """A reduction plan. Without a conversion, the opioid and its start dose must be given
    (or the patient must take exactly one opioid, which is then used)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    step_percent: float = Field(gt=0, le=100)
    every_days: int = Field(ge=1, le=365)
    start_date: date = Field(
        description=(
            "The first step's day: not before 1900, and within a year of the clinic's today."
        )
    )
    basis: Literal["original", "current"] = "original"
    round_to: float | None = Field(default=None, gt=0)
    floor: float = Field(default=0.0, ge=0)
    opioid_id: str | None = Field(default=None, max_length=40)
    route: str | None = Field(default=None, max_length=40)
    start_daily_dose: float | None = Field(default=None, gt=0)
    unit: str | None = Field(default=None, max_length=20)


class PlanInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    table_id: str = Field(default=opioids.DEFAULT_TABLE, max_length=40)
    convert_to: ConversionInput | None = None
    taper: TaperInput | None = None
    notes: str = Field(
        default="",
        max_length=4000,
        description=(
            "The rest of the plan: who tells the GP, the relapse plan "
            "(FPM (ANZCA) 2016 proposal, section 6)."
        ),
    )


class AgreeInput(PlanInput):
    override_reason: str | None = Field(default=None, max_length=REASON_LENGTH)
    patient_version: int | None = Field(
        default=None, ge=1, description="The record version that was reviewed."
    )


class StoredView(BaseModel):
    """A view of clinical JSON this service stored: keys an older row may lack have defaults,
    and keys a newer version dropped are ignored, so every stored plan still reads."""

    model_config = ConfigDict(extra="ignore")


class MeasureView(StoredView):
    value: float
    limit: float
    unit: str
    limit_name: str
    sessions: list[int] = []


class OpioidFindingView(StoredView):
    """A finding of the opioid arithmetic: plain words first, then the rule and citations."""

    code: str
    severity: str = Field(description="hard, soft, warning or info")
    message: str
    rule: str = ""
    citation: str = Field(default="", description="The short citations, joined.")
    citations: list[CitationView] = []
    subject: str = ""
    measure: MeasureView | None = None

    @model_validator(mode="after")
    def _joined_citation(self) -> OpioidFindingView:
        if not self.citation:
            self.citation = "; ".join(c.text for c in self.citations)
        return self


class OpioidLineView(StoredView):
    """One opioid medicine of the patient, converted or not (its findings say why)."""

    medication: str
    index: int
    opioid_id: str
    route: str
    daily_dose: float | None
    unit: str | None
    daily_dose_basis: str = ""
    factor: float | None = None
    factor_unit: str | None = None
    dose_in_factor_unit: float | None = None
    ome_mg_per_day: float | None
    converted: bool
    findings: list[OpioidFindingView] = []
    product: str = ""
    atc: list[str] = []


class OmeView(StoredView):
    """Oral morphine equivalents by one named table. ``total_ome_mg_per_day`` is null when
    there is no total (nothing converted, or no opioid); ``total_status`` says which."""

    table_id: str
    table_name: str
    table_citations: list[CitationView] = []
    lines: list[OpioidLineView]
    total_ome_mg_per_day: float | None
    complete: bool
    total_status: Literal["no-opioids", "not-available", "complete", "incomplete"]
    findings: list[OpioidFindingView] = []
    unrecognised: list[str] = []
    not_opioids: list[str] = []
    not_converted: list[str] = []


class ConversionView(StoredView):
    """The total OME as a daily dose of one opioid, after the physician's reduction."""

    table_id: str
    table_name: str
    from_ome_mg_per_day: float
    reduce_percent: float
    reduced_ome_mg_per_day: float
    opioid_id: str
    route: str
    factor: float
    daily_dose: float
    unit: str
    findings: list[OpioidFindingView] = []


class TaperStepView(StoredView):
    step: int
    date: date
    daily_dose: float
    unit: str
    percent_of_start: float
    ome_mg_per_day: float | None = None


class OverrideView(StoredView):
    physician: str
    reason: str
    codes: list[str] = []


class TaperPlanView(StoredView):
    opioid_id: str
    route: str
    start_daily_dose: float
    unit: str
    step_percent: float
    basis: Literal["original", "current"]
    every_days: int
    round_to: float | None = None
    floor: float = 0.0
    steps: list[TaperStepView]
    findings: list[OpioidFindingView] = []
    table_id: str | None = None
    override: OverrideView | None = None
    notes: list[str] = []
    status: Literal["ready", "needs_override"]


class OpioidPlanContent(StoredView):
    """What a plan says: the OME it started from, the conversion, the taper, the rest."""

    table_id: str
    ome: OmeView
    conversion: ConversionView | None = None
    taper: TaperPlanView | None = None
    soft_codes: list[str] = []
    status: Literal["ready", "needs_override"]
    notes: str = ""


class OverrideCodes(StoredView):
    """The soft-limit finding codes the physician's override reason covered, by part."""

    taper: list[str] = []


class OmeSummary(BaseModel):
    patient_id: int
    patient_version: int
    ome: OmeView


class PlanPreview(BaseModel):
    patient_id: int
    patient_version: int
    status: Literal["ready", "needs_override"]
    soft_codes: list[str]
    plan: OpioidPlanContent


class PlanView(BaseModel):
    id: int
    patient_id: int
    patient_version: int
    status: Literal["agreed", "withdrawn"]
    request: PlanInput
    plan: OpioidPlanContent
    agreed_by: str | None
    agreed_at: datetime
    override_reason: str | None
    override_codes: OverrideCodes | None
    withdrawn_by: str | None = None
    withdrawn_at: datetime | None = None
    withdraw_reason: str | None = None


class DoseMedicine(BaseModel):
    """One opioid as actually taken: a daily total, or a dose and how often."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=120)
    daily_dose: float | None = Field(default=None, ge=0)
    dose: float | None = Field(default=None, ge=0)
    unit: str = Field(min_length=1, max_length=20)
    frequency: str = Field(default="", max_length=40)
    route: str = Field(default="", max_length=ROUTE_LENGTH)


class DoseInput(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    taken_on: date = Field(
        description="The day: not in the future, not before 1900 nor before the birth date."
    )
    medications: list[DoseMedicine] = Field(
        max_length=30, description="Every opioid taken that day; an empty list means none."
    )
    table_id: str = Field(default=opioids.DEFAULT_TABLE, max_length=40)
    note: str = Field(default="", max_length=2000)


class DoseView(BaseModel):
    id: int
    patient_id: int
    taken_on: date
    medications: list[DoseMedicine]
    table_id: str
    ome_mg_per_day: float | None
    complete: bool
    result: OmeView
    planned: TaperStepView | None
    note: str | None
    recorded_by: str | None
    recorded_at: datetime
    amends_id: int | None
    reason: str | None
    amended: bool = False


def _plain(data: Any) -> Any:
    """Dataclass dicts as JSON data (dates as ISO text, tuples as lists)."""
    return json.loads(json.dumps(data, default=str))


def _invalid(error: DomainError, prefix: str = "") -> InvalidInput:
    field = error.field or None
    if prefix and field:
        field = f"{prefix}.{field}"
    message = error.message
    if field and not message.startswith(field):
        message = f"{field}: {message}"
    return InvalidInput(message, field=field)


def _ome(medications: list[Medication], table_id: str) -> opioids.OmeResult:
    try:
        return opioids.oral_morphine_equivalents(medications, table_id)
    except DomainError as error:
        raise _invalid(error) from error


def _record_ome(version: PatientVersion, table_id: str) -> opioids.OmeResult:
    return _ome(list(as_patient(version.document).medications), table_id)


def opioid_summary(
    db: Database, actor: Actor, patient_id: int, table_id: str = opioids.DEFAULT_TABLE
) -> OmeSummary:
    """The current record's opioids in oral morphine equivalents by the named table."""
    with action(db, actor, "opioid.read", entity="opioid", patient_id=patient_id) as session:
        _, version = load_patient(session, patient_id)
        result = _record_ome(version, table_id)
        audit.record(
            session,
            actor,
            "opioid.summary",
            entity="opioid",
            patient_id=patient_id,
            detail={"table_id": table_id, "version": version.version},
        )
        return OmeSummary(
            patient_id=patient_id,
            patient_version=version.version,
            ome=OmeView.model_validate(_plain(result.to_dict())),
        )


def _check_start(request: PlanInput, clock: ClinicClock | None) -> None:
    if request.taper is None:
        return
    start = request.taper.start_date
    latest = (clock or clinic_clock()).today() + timedelta(days=TAPER_START_HORIZON_DAYS)
    if not EARLIEST_DATE <= start <= latest:
        raise InvalidInput(
            f"taper.start_date: {start.isoformat()} is not a day a taper agreed now can start "
            f"(from {EARLIEST_DATE.isoformat()} to {latest.isoformat()}).",
            field="taper.start_date",
        )


def _compute(
    version: PatientVersion,
    request: PlanInput,
    *,
    override_by: str | None = None,
    override_reason: str | None = None,
) -> dict[str, Any]:
    ome = _record_ome(version, request.table_id)
    conversion = None
    if request.convert_to is not None:
        target = request.convert_to
        try:
            conversion = opioids.convert_medications(
                ome, target.opioid_id, target.route, target.reduce_percent
            )
        except DomainError as error:
            raise _invalid(error, "convert_to") from error
    taper = None
    if request.taper is not None:
        taper = _taper(
            request.taper, ome, conversion, request.table_id, override_by, override_reason
        )
    if conversion is None and taper is None:
        raise InvalidInput(
            "convert_to: a plan converts to one opioid, tapers, or both; give at least one.",
            field="convert_to",
        )
    soft = [f.code for f in taper.findings if f.severity == "soft"] if taper else []
    return {
        "table_id": ome.table_id,
        "ome": _plain(ome.to_dict()),
        "conversion": _plain(conversion.to_dict()) if conversion else None,
        "taper": _plain(taper.to_dict()) if taper else None,
        "soft_codes": soft,
        "status": taper.status if taper else "ready",
        "notes": request.notes.strip(),
    }


def _taper(
    given: TaperInput,
    ome: opioids.OmeResult,
    conversion: opioids.Conversion | None,
    table_id: str,
    override_by: str | None,
    override_reason: str | None,
) -> opioids.TaperPlan:
    opioid_id, route, start, unit = given.opioid_id, given.route, given.start_daily_dose, given.unit
    if opioid_id is None and conversion is not None:
        opioid_id, route = conversion.opioid_id, conversion.route
        start, unit = start or conversion.daily_dose, unit or conversion.unit
    elif opioid_id is None:
        converted = [line for line in ome.lines if line.converted]
        if len(converted) != 1 or len(ome.lines) != 1:
            raise InvalidInput(
                "taper.opioid_id: say which opioid to taper (and its start dose), or convert to "
                f"one opioid first; the record lists {len(ome.lines)} opioid(s).",
                field="taper.opioid_id",
            )
        line = converted[0]
        opioid_id, route = line.opioid_id, line.route
        start, unit = start or line.daily_dose, unit or line.unit
    if start is None or not unit:
        raise InvalidInput(
            "taper.start_daily_dose: give the start dose per day and its unit.",
            field="taper.start_daily_dose",
        )
    request = opioids.TaperRequest(
        opioid_id=opioid_id,
        route=route or "oral",
        start_daily_dose=start,
        unit=unit,
        step_percent=given.step_percent,
        every_days=given.every_days,
        start_date=given.start_date,
        round_to=given.round_to,
        floor=given.floor,
        basis=given.basis,
        override_by=override_by,
        override_reason=override_reason,
    )
    try:
        return opioids.taper_plan(request, table_id)
    except DomainError as error:
        raise _invalid(error, "taper") from error


def preview_opioid_plan(
    db: Database,
    actor: Actor,
    patient_id: int,
    request: PlanInput,
    *,
    clock: ClinicClock | None = None,
) -> PlanPreview:
    """The plan the inputs give for the current record (not stored)."""
    _check_start(request, clock)
    with action(db, actor, "opioid.read", entity="opioid_plan", patient_id=patient_id) as s:
        _, version = load_patient(s, patient_id)
        plan = _compute(version, request)
        audit.record(
            s,
            actor,
            "opioid.plan.preview",
            entity="opioid_plan",
            patient_id=patient_id,
            detail={"status": plan["status"]},
        )
        return PlanPreview(
            patient_id=patient_id,
            patient_version=version.version,
            status=plan["status"],
            soft_codes=plan["soft_codes"],
            plan=OpioidPlanContent.model_validate(plan),
        )


def agree_opioid_plan(
    db: Database,
    actor: Actor,
    patient_id: int,
    request: AgreeInput,
    *,
    clock: ClinicClock | None = None,
) -> PlanView:
    """Agree the plan (physician); a taper faster than a published rate needs a reason."""
    reason = (request.override_reason or "").strip() or None
    _check_start(request, clock)
    with action(db, actor, "opioid.plan", entity="opioid_plan", patient_id=patient_id) as s:
        _, version = load_patient(s, patient_id)
        if request.patient_version is not None and request.patient_version != version.version:
            raise Conflict(
                f"patient_version: the record is now at version {version.version}, not "
                f"{request.patient_version}; review the plan again before agreeing it.",
                field="patient_version",
            )
        unsigned = _compute(version, request)
        soft = unsigned["soft_codes"]
        if soft and reason is None:
            raise OrderRefused(
                "override_reason: this taper is faster than a published rate "
                f"({', '.join(soft)}); agreeing it needs the physician's written reason.",
                field="override_reason",
                details={"soft_codes": soft},
            )
        plan = (
            _compute(version, request, override_by=actor.username, override_reason=reason)
            if soft
            else unsigned
        )
        if plan["status"] != "ready":
            raise OrderRefused("taper: the plan cannot be agreed.", field="taper")
        row = OpioidPlan(
            patient_id=patient_id,
            patient_version_id=version.id,
            status="agreed",
            request=request.model_dump(mode="json", exclude={"override_reason", "patient_version"}),
            plan=plan,
            override_reason=reason if soft else None,
            override_codes={"taper": soft} if soft else None,
            recorded_at=utcnow(),
            recorded_by_id=actor.user_id,
        )
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "opioid.plan.agree",
            entity="opioid_plan",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"override_codes": row.override_codes},
        )
        return _plan_view(s, row)


def _plan_view(session: Session, row: OpioidPlan) -> PlanView:
    version = session.scalar(
        select(PatientVersion.version).where(PatientVersion.id == row.patient_version_id)
    )
    withdrawal = session.scalar(select(OpioidPlan).where(OpioidPlan.amends_id == row.id))
    return PlanView(
        id=row.id,
        patient_id=row.patient_id,
        patient_version=version or 0,
        status="withdrawn" if withdrawal is not None else "agreed",
        request=PlanInput.model_validate(row.request),
        plan=OpioidPlanContent.model_validate(row.plan),
        agreed_by=username_of(session, row.recorded_by_id),
        agreed_at=row.recorded_at,
        override_reason=row.override_reason,
        override_codes=(
            OverrideCodes.model_validate(row.override_codes) if row.override_codes else None
        ),
        withdrawn_by=username_of(session, withdrawal.recorded_by_id) if withdrawal else None,
        withdrawn_at=withdrawal.recorded_at if withdrawal else None,
        withdraw_reason=withdrawal.reason if withdrawal else None,
    )


def _agreed_plans(session: Session, patient_id: int) -> list[OpioidPlan]:
    return list(
        session.scalars(
            select(OpioidPlan)
            .where(OpioidPlan.patient_id == patient_id, OpioidPlan.status == "agreed")
            .order_by(OpioidPlan.id.desc())
        ).all()
    )


def _current_plan(session: Session, patient_id: int) -> OpioidPlan | None:
    """The newest agreed plan that is not withdrawn."""
    withdrawn = set(
        session.scalars(
            select(OpioidPlan.amends_id).where(
                OpioidPlan.patient_id == patient_id, OpioidPlan.status == "withdrawn"
            )
        ).all()
    )
    for row in _agreed_plans(session, patient_id):
        if row.id not in withdrawn:
            return row
    return None


def current_plan_in(session: Session, patient_id: int) -> PlanView | None:
    """The agreed plan in force (the newest not withdrawn), inside a transaction the caller
    holds (after its permission check; the caller audits)."""
    row = _current_plan(session, patient_id)
    return _plan_view(session, row) if row is not None else None


def list_opioid_plans(db: Database, actor: Actor, patient_id: int) -> list[PlanView]:
    """The patient's agreed plans (with their withdrawal, if any), newest first."""
    with action(db, actor, "opioid.read", entity="opioid_plan", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        rows = _agreed_plans(s, patient_id)
        audit.record(
            s,
            actor,
            "opioid.plan.list",
            entity="opioid_plan",
            patient_id=patient_id,
            detail={"count": len(rows)},
        )
        return [_plan_view(s, row) for row in rows]


def withdraw_opioid_plan(db: Database, actor: Actor, plan_id: int, *, reason: str) -> PlanView:
    """Withdraw an agreed plan (physician): a new row amends it; the plan stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the plan is withdrawn.", field="reason")
    with action(db, actor, "opioid.plan", entity="opioid_plan", entity_id=plan_id) as s:
        row = s.get(OpioidPlan, plan_id)
        if row is None or row.status != "agreed":
            raise NotFound(f"plan_id: no agreed opioid plan {plan_id}.", field="plan_id")
        if s.scalar(select(OpioidPlan.id).where(OpioidPlan.amends_id == row.id)) is not None:
            raise Conflict(f"plan_id: plan {plan_id} is already withdrawn.", field="plan_id")
        s.add(
            OpioidPlan(
                patient_id=row.patient_id,
                patient_version_id=row.patient_version_id,
                status="withdrawn",
                request={},
                plan={},
                recorded_at=utcnow(),
                recorded_by_id=actor.user_id,
                amends_id=row.id,
                reason=reason.strip(),
            )
        )
        s.flush()
        audit.record(
            s,
            actor,
            "opioid.plan.withdraw",
            entity="opioid_plan",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail={"reason": reason.strip()},
        )
        return _plan_view(s, row)


def planned_step(plan: dict[str, Any], day: date) -> TaperStepView | None:
    """The taper step in force on ``day`` (the last step dated on or before it), from a
    stored plan."""
    taper = plan.get("taper") or {}
    current = None
    for step in taper.get("steps") or []:
        if date.fromisoformat(str(step["date"])) <= day:
            current = step
    return TaperStepView.model_validate(current) if current is not None else None


def _dose_medications(data: DoseInput) -> list[Medication]:
    return [
        validate(Medication, given.model_dump(exclude_none=True), prefix=f"medications[{index}]")
        for index, given in enumerate(data.medications)
    ]


def _dose_row(
    actor: Actor, patient_id: int, data: DoseInput, *, amends: OpioidDose | None, reason: str | None
) -> OpioidDose:
    result = _ome(_dose_medications(data), data.table_id)
    return OpioidDose(
        patient_id=patient_id,
        taken_on=data.taken_on,
        medications={"medications": [m.model_dump(mode="json") for m in data.medications]},
        result=_plain(result.to_dict()),
        table_id=result.table_id,
        ome_mg_per_day=_recorded_ome(result),
        complete=result.complete,
        note=data.note.strip() or None,
        recorded_at=utcnow(),
        recorded_by_id=actor.user_id,
        amends_id=amends.id if amends else None,
        reason=reason,
    )


def _recorded_ome(result: opioids.OmeResult) -> float | None:
    """The day's OME as recorded: the total when complete; 0 when the record lists no opioid
    (a follow-up that records none taken is a measured zero, not an unknown); else None."""
    if result.total_status == "no-opioids":
        return 0.0
    return result.total_ome_mg_per_day if result.complete else None


def _dose_view(session: Session, row: OpioidDose) -> DoseView:
    return _dose_views(session, row.patient_id, [row])[0]


def _dose_views(session: Session, patient_id: int, rows: list[OpioidDose]) -> list[DoseView]:
    """The views of one patient's dose records, with a fixed number of queries."""
    plan = _current_plan(session, patient_id)
    ids = [row.id for row in rows]
    amended = set(
        session.scalars(select(OpioidDose.amends_id).where(OpioidDose.amends_id.in_(ids)))
    )
    names = usernames_of(session, [row.recorded_by_id for row in rows])
    return [
        DoseView(
            id=row.id,
            patient_id=row.patient_id,
            taken_on=row.taken_on,
            medications=[
                DoseMedicine.model_validate(m) for m in row.medications.get("medications", [])
            ],
            table_id=row.table_id,
            ome_mg_per_day=row.ome_mg_per_day,
            complete=row.complete,
            result=OmeView.model_validate(row.result),
            planned=planned_step(plan.plan, row.taken_on) if plan else None,
            note=row.note,
            recorded_by=names.get(row.recorded_by_id),
            recorded_at=row.recorded_at,
            amends_id=row.amends_id,
            reason=row.reason,
            amended=row.id in amended,
        )
        for row in rows
    ]


def _check_day(data: DoseInput, clock: ClinicClock | None, birth: date | None) -> None:
    """The day a dose was taken: not in the future (the clinic's today), not before 1900 nor
    before the patient's birth date."""
    try:
        check_day(data.taken_on, (clock or clinic_clock()).today(), "taken_on", birth=birth)
    except ValueError as error:
        raise InvalidInput(f"{error}.", field="taken_on") from error


def record_opioid_dose(
    db: Database,
    actor: Actor,
    patient_id: int,
    data: DoseInput,
    *,
    clock: ClinicClock | None = None,
) -> DoseView:
    """Record the opioids the patient actually took per day, at a follow-up."""
    _check_day(data, clock, None)
    with action(db, actor, "opioid.record", entity="opioid_dose", patient_id=patient_id) as s:
        _, version = load_patient(s, patient_id)
        _check_day(data, clock, version.birth_date)
        row = _dose_row(actor, patient_id, data, amends=None, reason=None)
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "opioid.dose.record",
            entity="opioid_dose",
            entity_id=row.id,
            patient_id=patient_id,
            detail={"taken_on": row.taken_on.isoformat(), "ome_mg_per_day": row.ome_mg_per_day},
        )
        return _dose_view(s, row)


def amend_opioid_dose(
    db: Database,
    actor: Actor,
    dose_id: int,
    data: DoseInput,
    *,
    reason: str,
    clock: ClinicClock | None = None,
) -> DoseView:
    """Correct a recorded dose: a new row amends it; the first one stays."""
    if not reason or not reason.strip():
        raise InvalidInput("reason: say why the record is corrected.", field="reason")
    _check_day(data, clock, None)
    with action(db, actor, "opioid.record", entity="opioid_dose", entity_id=dose_id) as s:
        old = s.get(OpioidDose, dose_id)
        if old is None:
            raise NotFound(f"dose_id: no opioid dose record {dose_id}.", field="dose_id")
        if s.scalar(select(OpioidDose.id).where(OpioidDose.amends_id == old.id)) is not None:
            raise Conflict(
                f"dose_id: record {dose_id} was already corrected; correct the newest version.",
                field="dose_id",
            )
        _, version = load_patient(s, old.patient_id)
        _check_day(data, clock, version.birth_date)
        row = _dose_row(actor, old.patient_id, data, amends=old, reason=reason.strip())
        s.add(row)
        s.flush()
        audit.record(
            s,
            actor,
            "opioid.dose.amend",
            entity="opioid_dose",
            entity_id=row.id,
            patient_id=old.patient_id,
            detail={"amends": old.id, "reason": reason.strip()},
        )
        return _dose_view(s, row)


def list_opioid_doses(db: Database, actor: Actor, patient_id: int) -> list[DoseView]:
    """The recorded daily doses in force (corrected ones replaced by their correction),
    oldest day first, each with the plan's step for that day."""
    with action(db, actor, "opioid.read", entity="opioid_dose", patient_id=patient_id) as s:
        load_patient(s, patient_id)
        views = doses_in(s, patient_id)
        audit.record(
            s,
            actor,
            "opioid.dose.list",
            entity="opioid_dose",
            patient_id=patient_id,
            detail={"count": len(views)},
        )
        return views


def doses_in(session: Session, patient_id: int) -> list[DoseView]:
    """The recorded daily doses in force, oldest day first, inside a transaction the caller
    holds (after its permission check; the caller audits)."""
    rows = session.scalars(
        select(OpioidDose).where(OpioidDose.patient_id == patient_id).order_by(OpioidDose.id)
    ).all()
    replaced = {row.amends_id for row in rows if row.amends_id is not None}
    current = [row for row in rows if row.id not in replaced]
    current.sort(key=lambda row: (row.taken_on, row.id))
    return _dose_views(session, patient_id, current)
