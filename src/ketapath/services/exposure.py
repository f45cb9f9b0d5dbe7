"""Predicted exposure: a simulation from numbers, and the exposure of an order or a plan preview.

- ``simulate``: covariates and doses as given (no record is read); physicians, nurses,
  pharmacists and researchers (it holds no patient data).
- ``order_exposure``: one session of a signed order's course, for the patient's current
  record; the clinical team (as it reads orders).
- ``plan_exposure`` / ``preview_exposure``: one session of a protocol preview, for the patient;
  the clinical team (as it previews courses).

Every one is audited (``exposure.simulate``, ``exposure.order``, ``exposure.plan``), as every
other action is. The numbers are bounded at the edge: covariates exactly as the PK engine
bounds them (``pk_input_bounds.yaml``: what a human body can be), doses by what an infusion
device delivers, the grid by ``ketapath.domain.exposure``'s computing bounds; the answers hold
finite numbers only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.orm import Session

from ketapath import pk
from ketapath.domain import exposure as domain
from ketapath.domain.errors import DomainError
from ketapath.knowledge.pk_models import load_pk_input_bounds
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput
from ketapath.services.orders import CoursePreview, PlanRequest, order_in, preview_in
from ketapath.services.patients import as_patient, load_patient
from ketapath.services.permissions import Actor
from ketapath.services.sessions import chart_in
from ketapath.services.signing import FindingView
from ketapath.services.unit import action, check
from ketapath.store.db import Database
from ketapath.store.models import PatientVersion

T = TypeVar("T")
BOUNDS = load_pk_input_bounds()
# A course has at most one session a day for a year; a larger number is no session of it.
MAX_SESSION_NUMBER = 366
MODEL_ID_PATTERN = r"^[a-z][a-z0-9-]*$"
TAIL_H = domain.TAIL_MIN / 60.0  # shown after a session's last dose
MODEL_DESCRIPTION = (
    "PK model id (see `ketapath pk-models`: domino, clements, hijazi, kamp, otto-fanta, "
    "perez-ruixo). Default: the clinic's rule (the first of perez-ruixo, otto-fanta, kamp "
    "whose study range of age and weight contains the patient)."
)


# -- requests -------------------------------------------------------------------------------
class Covariates(BaseModel):
    """The patient facts a PK model uses, bounded as the PK engine bounds them."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    weight_kg: float = Field(ge=BOUNDS.weight_kg.minimum, le=BOUNDS.weight_kg.maximum)
    age_years: float | None = Field(
        default=None, ge=BOUNDS.age_years.minimum, le=BOUNDS.age_years.maximum
    )
    sex: Literal["male", "female"] | None = None
    height_cm: float | None = Field(
        default=None, ge=BOUNDS.height_cm.minimum, le=BOUNDS.height_cm.maximum
    )

    def engine(self) -> pk.Covariates:
        return _engine(
            lambda: pk.Covariates(
                weight_kg=self.weight_kg,
                age_years=self.age_years,
                sex=self.sex,
                height_cm=self.height_cm,
            )
        )


class BolusInput(BaseModel):
    """A dose given at once."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    time_min: float = Field(ge=0, le=BOUNDS.max_time_min, description="Minutes from the start.")
    dose_mg: float = Field(ge=0, le=BOUNDS.max_bolus_mg)


class InfusionInput(BaseModel):
    """A constant rate from ``start_min`` to ``end_min``."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start_min: float = Field(ge=0, le=BOUNDS.max_time_min, description="Minutes from the start.")
    end_min: float = Field(ge=0, le=BOUNDS.max_time_min, description="After start_min.")
    rate_mg_per_h: float = Field(ge=0, le=BOUNDS.max_rate_mg_per_h)

    @model_validator(mode="after")
    def _ends_after_it_starts(self) -> InfusionInput:
        if self.end_min <= self.start_min:
            raise ValueError(
                f"end_min ({self.end_min:g} min) must be after start_min ({self.start_min:g} min)"
            )
        return self


class RegimenInput(BaseModel):
    """Racemic ketamine doses: boluses and constant-rate infusions (overlapping ones add up)."""

    model_config = ConfigDict(extra="forbid")

    boluses: list[BolusInput] = Field(default=[], max_length=domain.MAX_DOSE_EVENTS)
    infusions: list[InfusionInput] = Field(default=[], max_length=domain.MAX_DOSE_EVENTS)
    route: Literal["iv", "sc"] = Field(
        default="iv", description="sc is predicted as iv, with a warning (no SC model)."
    )

    @model_validator(mode="after")
    def _some_dose(self) -> RegimenInput:
        if not self.boluses and not self.infusions:
            raise ValueError("give at least one bolus or infusion")
        return self

    def doses(self) -> domain.SessionDoses:
        return domain.SessionDoses(
            tuple(
                domain.InfusionSegment(i.start_min, i.end_min, i.rate_mg_per_h)
                for i in self.infusions
            ),
            tuple(domain.BolusDose(b.time_min, b.dose_mg) for b in self.boluses),
            self.route,
        )


class SimulateRequest(BaseModel):
    """A patient's covariates and doses; which model; the output grid."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    model: str | None = Field(
        default=None,
        max_length=40,
        pattern=MODEL_ID_PATTERN,
        description=MODEL_DESCRIPTION,
        examples=["perez-ruixo"],
    )
    patient: Covariates
    regimen: RegimenInput
    until_min: float | None = Field(
        default=None,
        gt=0,
        le=BOUNDS.max_time_min,
        description="End of the output grid, minutes (default: the last dose + 6 h).",
    )
    step_min: float | None = Field(
        default=None,
        gt=0,
        le=BOUNDS.max_time_min,
        description=(
            f"Output step, minutes (default: a round step giving at most "
            f"{domain.DEFAULT_POINTS} intervals); at most {domain.MAX_GRID_POINTS:,} output "
            "times. Every dose event is added to the grid."
        ),
    )


class ExposureOptions(BaseModel):
    """Which session of a course, and which model."""

    model_config = ConfigDict(extra="forbid")

    session: int = Field(
        default=1,
        ge=1,
        le=MAX_SESSION_NUMBER,
        description="The session of the course (from 1); predicted alone, from its start.",
    )
    model: str | None = Field(
        default=None, max_length=40, pattern=MODEL_ID_PATTERN, description=MODEL_DESCRIPTION
    )


class PlanExposureRequest(PlanRequest):
    """A protocol and its options (as for a plan preview), the session and the model."""

    session: int = Field(default=1, ge=1, le=MAX_SESSION_NUMBER)
    model: str | None = Field(
        default=None, max_length=40, pattern=MODEL_ID_PATTERN, description=MODEL_DESCRIPTION
    )

    def plan(self) -> PlanRequest:
        return PlanRequest.model_validate(self.model_dump(exclude={"session", "model"}))


# -- answers --------------------------------------------------------------------------------
class ModelView(BaseModel):
    """The model that made the prediction: its identity, source, population and limits."""

    id: str
    name: str
    analyte: str = Field(description="'racemic ketamine' or 'S-ketamine' (half of each dose).")
    metabolite: str | None = Field(description="The metabolite predicted, if any.")
    citation: str = Field(description="Short citations of the model's source.")
    reference: str = Field(description="The full references.")
    population: str = Field(description="Who the model was built from.")
    limitations: list[str]
    verification: str = Field(description="What was checked against which source, and what not.")
    chosen_by: Literal["request", "clinic rule"]
    choice_rule: str = Field(description="The clinic's rule choosing a model, in words.")


class Curves(BaseModel):
    """The predicted curves, one value per time (ng/mL; norketamine only where modelled)."""

    times_min: list[float] = Field(description="Minutes from the session (or regimen) start.")
    plasma_ng_per_ml: list[float]
    effect_site_ng_per_ml: list[float]
    norketamine_ng_per_ml: list[float] | None


class CurveSummary(BaseModel):
    """Peak, time of peak and AUC of one curve over the grid."""

    label: str = Field(examples=["S-ketamine, plasma"])
    peak_ng_per_ml: float
    peak_at_min: float
    auc_ng_h_per_ml: float
    auc_method: Literal["exact", "trapezoidal"] = Field(
        description="exact: integrated with the concentrations; trapezoidal: on the grid."
    )


class ExposureSummary(BaseModel):
    """Each curve's peak and AUC, and the dose the prediction was given."""

    plasma: CurveSummary
    effect_site: CurveSummary
    norketamine: CurveSummary | None
    total_dose_mg: float = Field(description="Racemic ketamine in the doses.")


class ExposureView(BaseModel):
    """A prediction: the curves, their summary, the model, and the warnings that apply."""

    model: ModelView
    curves: Curves
    summary: ExposureSummary
    findings: list[FindingView] = Field(
        description="Warnings for this patient: outside the model's study range, route."
    )


class CovariatesView(BaseModel):
    """The patient facts the prediction used."""

    # CovariatesView.model_validate(covariates) reads the pk engine's Covariates
    model_config = ConfigDict(from_attributes=True)

    weight_kg: float
    age_years: float | None
    sex: Literal["male", "female"] | None
    height_cm: float | None


class SessionExposureView(ExposureView):
    """One session of a course, for the patient's record."""

    patient_id: int
    patient_version: int = Field(description="The record version whose facts were used.")
    covariates: CovariatesView
    protocol_id: str
    session: int
    sessions: int = Field(description="How many sessions the course has.")
    session_day: int = Field(description="The day of the course the session falls on (from 1).")
    basis: str = Field(description="What is predicted, in words.")


class OrderExposureView(SessionExposureView):
    """One session of a signed order's course."""

    order_id: int
    order_state: str = Field(description="usable, stale, no_consent or cancelled.")


class PlanExposureView(SessionExposureView):
    """One session of a protocol preview (not stored)."""

    course_digest: str = Field(description="The digest of the previewed course.")
    course_status: str = Field(description="ready or needs_override.")


class CurveDifferenceView(BaseModel):
    """As given minus as ordered, for one curve: peak and AUC (ratios when defined)."""

    model_config = ConfigDict(from_attributes=True)

    label: str
    peak_difference_ng_per_ml: float
    peak_ratio: float | None
    auc_difference_ng_h_per_ml: float
    auc_ratio: float | None


class SessionComparisonView(BaseModel):
    """A session's exposure as ordered and as given (from its chart), one model, one grid."""

    session_id: int
    order_id: int
    patient_id: int
    patient_version: int = Field(description="The record version whose facts were used.")
    covariates: CovariatesView
    session: int = Field(description="The session's number in its course.")
    given_from: datetime | None = Field(
        description="The first dose charted: time 0 of the as-given curves (none: none given)."
    )
    charted_until: datetime = Field(
        description="The chart as read (a running pump counts to here)."
    )
    planned: ExposureView
    given: ExposureView
    differences: list[CurveDifferenceView]
    basis: str = Field(description="What is predicted, in words.")


# -- use cases ------------------------------------------------------------------------------
def simulate(db: Database, actor: Actor, request: SimulateRequest) -> ExposureView:
    """Predict the exposure of the doses for the covariates given (no record is read)."""
    check(db, actor, "exposure.simulate", entity="exposure")
    patient = request.patient.engine()
    doses = request.regimen.doses()
    predicted = _engine(
        lambda: domain.predict_exposure(
            patient,
            doses,
            model_id=request.model,
            until_min=request.until_min,
            step_min=request.step_min,
        )
    )
    view = exposure_view(predicted)
    with action(db, actor, "exposure.simulate", entity="exposure") as session:
        audit.record(
            session,
            actor,
            "exposure.simulate",
            entity="exposure",
            detail={
                "model": predicted.model.id,
                "boluses": len(doses.boluses),
                "infusions": len(doses.infusions),
                "total_mg": doses.total_mg,
                "times": len(predicted.times_min),
            },
        )
    return view


def order_exposure(
    db: Database,
    actor: Actor,
    order_id: int,
    options: ExposureOptions | None = None,
    *,
    clock: ClinicClock | None = None,
) -> OrderExposureView:
    """One session of a signed order's course, predicted for the patient's current record."""
    options = options or ExposureOptions()
    with action(db, actor, "exposure.read", entity="order", entity_id=order_id) as session:
        order = order_in(session, order_id, clock)
        _, version = load_patient(session, order.patient_id)
        parts = _session_exposure(version, order.course, options, clock)
        audit.record(
            session,
            actor,
            "exposure.order",
            entity="order",
            entity_id=order.id,
            patient_id=order.patient_id,
            detail=_detail(parts),
        )
        return OrderExposureView(
            **parts, order_id=order.id, order_state=order.state, protocol_id=order.protocol_id
        )


def plan_exposure(
    db: Database,
    actor: Actor,
    patient_id: int,
    request: PlanExposureRequest,
    *,
    clock: ClinicClock | None = None,
) -> PlanExposureView:
    """One session of the course a protocol gives for this patient (not stored)."""
    check(db, actor, "exposure.read", entity="course", patient_id=patient_id)
    options = ExposureOptions(session=request.session, model=request.model)
    with action(db, actor, "plan.preview", entity="course", patient_id=patient_id) as session:
        preview, version = preview_in(session, actor, patient_id, request.plan(), clock)
        return _plan_view(session, actor, preview, version, options, clock)


def preview_exposure(
    db: Database,
    actor: Actor,
    preview: CoursePreview,
    options: ExposureOptions | None = None,
    *,
    clock: ClinicClock | None = None,
) -> PlanExposureView:
    """One session of a preview already computed (the protocol chooser page), for the
    patient's current record."""
    options = options or ExposureOptions()
    patient_id = preview.patient_id
    with action(db, actor, "exposure.read", entity="course", patient_id=patient_id) as session:
        _, version = load_patient(session, patient_id)
        return _plan_view(session, actor, preview, version, options, clock)


def _plan_view(
    session: Session,
    actor: Actor,
    preview: CoursePreview,
    version: PatientVersion,
    options: ExposureOptions,
    clock: ClinicClock | None,
) -> PlanExposureView:
    parts = _session_exposure(version, preview.course, options, clock)
    audit.record(
        session,
        actor,
        "exposure.plan",
        entity="course",
        patient_id=preview.patient_id,
        detail={**_detail(parts), "protocol_id": preview.protocol_id},
    )
    return PlanExposureView(
        **parts,
        protocol_id=preview.protocol_id,
        course_digest=preview.digest,
        course_status=preview.status,
    )


def model_options() -> list[tuple[str, str]]:
    """Every PK model as (id, name), for a chooser."""
    return [(model_id, pk.get_model(model_id).name) for model_id in pk.model_ids()]


def warm_up() -> None:
    """Load the PK models and run each default one once, so that the first page showing an
    exposure does not pay for it (numpy's first calls, each model's effect-site constant)."""
    patient = pk.Covariates(weight_kg=70.0, age_years=40.0, sex="female", height_cm=170.0)
    doses = domain.SessionDoses(
        (domain.InfusionSegment(0.0, 60.0, 20.0),), (domain.BolusDose(0.0, 5.0),)
    )
    for model_id in pk.model_ids():
        exposure_view(domain.predict_exposure(patient, doses, model_id=model_id))


# -- helpers --------------------------------------------------------------------------------
def exposure_view(exposure: domain.Exposure) -> ExposureView:
    """The domain's prediction as the API's answer."""
    card = exposure.model
    norketamine = exposure.norketamine
    return ExposureView(
        model=ModelView(
            id=card.id,
            name=card.name,
            analyte=card.analyte,
            metabolite=card.metabolite,
            citation=card.citation,
            reference=card.reference,
            population=card.population,
            limitations=list(card.limitations),
            verification=card.verification,
            chosen_by=card.chosen_by,
            choice_rule=card.choice_rule,
        ),
        curves=Curves(
            times_min=exposure.times_min.tolist(),
            plasma_ng_per_ml=exposure.plasma.concentrations_ng_per_ml.tolist(),
            effect_site_ng_per_ml=exposure.effect_site.concentrations_ng_per_ml.tolist(),
            norketamine_ng_per_ml=(
                None if norketamine is None else norketamine.concentrations_ng_per_ml.tolist()
            ),
        ),
        summary=ExposureSummary(
            plasma=_summary(exposure.plasma),
            effect_site=_summary(exposure.effect_site),
            norketamine=None if norketamine is None else _summary(norketamine),
            total_dose_mg=exposure.doses.total_mg,
        ),
        findings=[FindingView.model_validate(f) for f in exposure.findings],
    )


def _summary(curve: domain.Curve) -> CurveSummary:
    return CurveSummary(
        label=curve.label,
        peak_ng_per_ml=curve.peak_ng_per_ml,
        peak_at_min=curve.peak_at_min,
        auc_ng_h_per_ml=curve.auc_ng_h_per_ml,
        auc_method="exact" if curve.auc_exact else "trapezoidal",
    )


def _session_exposure(
    version: PatientVersion,
    course: dict[str, Any],
    options: ExposureOptions,
    clock: ClinicClock | None,
) -> dict[str, Any]:
    """The fields of a ``SessionExposureView`` for one session of ``course``."""
    patient = _covariates(version, clock)
    doses = _engine(lambda: domain.session_doses(course, options.session))
    predicted = _engine(lambda: domain.predict_exposure(patient, doses, model_id=options.model))
    sessions = course.get("sessions") or []
    day = int(sessions[options.session - 1].get("day", 0)) + 1
    return {
        **exposure_view(predicted).model_dump(),
        "patient_id": version.patient_id,
        "patient_version": version.version,
        "covariates": CovariatesView.model_validate(patient),
        "session": options.session,
        "sessions": len(sessions),
        "session_day": day,
        "basis": (
            f"Session {options.session} of {len(sessions)} (day {day}) as ordered, alone from "
            f"its start and {TAIL_H:g} h after its last dose, for the record's "
            f"facts (version {version.version}); what remains of earlier sessions is not added."
        ),
    }


def _covariates(version: PatientVersion, clock: ClinicClock | None) -> pk.Covariates:
    """The PK covariates of a stored record (its age on the clinic's today)."""
    record = as_patient(version.document, (clock or clinic_clock()).today())
    return _engine(
        lambda: pk.Covariates(
            weight_kg=record.weight_kg,
            age_years=record.age_on(),
            sex=record.sex,
            height_cm=record.height_cm,
        )
    )


def _detail(parts: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": parts["model"]["id"],
        "session": parts["session"],
        "patient_version": parts["patient_version"],
    }


def _engine(compute: Callable[[], T]) -> T:
    """Run a computation, turning an input the domain or the engine refuses into 422."""
    try:
        return compute()
    except DomainError as error:
        raise InvalidInput(error.message, field=error.field or None) from error
    except pk.PkInputError as error:
        raise InvalidInput(str(error), field=error.field) from error


def session_exposure(
    db: Database,
    actor: Actor,
    session_id: int,
    model: str | None = None,
    *,
    clock: ClinicClock | None = None,
) -> SessionComparisonView:
    """A session's predicted exposure as ordered and as given (the rate segments and boluses
    of its chart, never typed doses), with one model on one grid, for the patient's current
    record."""
    clock = clock or clinic_clock()
    options = ExposureOptions(model=model)
    with action(db, actor, "exposure.read", entity="session", entity_id=session_id) as session:
        row, view = chart_in(session, session_id, clock)
        order = order_in(session, row.order_id, clock)
        _, version = load_patient(session, row.patient_id)
        patient = _covariates(version, clock)
        route: domain.Route = "sc" if order.course.get("route") == "sc" else "iv"
        planned = _engine(lambda: domain.session_doses(order.course, row.session_number))
        log = domain.DeliveryLog(
            segments=tuple((s.start, s.end, s.rate_mg_per_h) for s in view.segments),
            boluses=tuple((b.at, b.mg) for b in view.boluses),
            at=view.at,
        )
        given, origin = domain.doses_given(log, route)
        compared = _engine(
            lambda: domain.compare_exposure(patient, planned, given, model_id=options.model)
        )
        audit.record(
            session,
            actor,
            "exposure.session",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail={"model": compared.planned.model.id, "patient_version": version.version},
        )
        return SessionComparisonView(
            session_id=row.id,
            order_id=row.order_id,
            patient_id=row.patient_id,
            patient_version=version.version,
            covariates=CovariatesView.model_validate(patient),
            session=row.session_number,
            given_from=origin,
            charted_until=view.at,
            planned=exposure_view(compared.planned),
            given=exposure_view(compared.given),
            differences=[CurveDifferenceView.model_validate(d) for d in compared.differences],
            basis=(
                f"Session {row.session_number} as ordered (from its start) against what its "
                "chart says was given (from the first dose charted: pump rates between the "
                "pump entries, pauses giving nothing, and boluses; a running pump counts to "
                f"now), each with {TAIL_H:g} h after its last dose, for the record's facts "
                f"(version {version.version})."
            ),
        )
