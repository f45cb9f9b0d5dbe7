"""What a nurse or physician charts during an infusion session: one typed model per kind.

Every chart entry has a ``kind`` (the discriminator), the clinical time it happened
(``occurred_at``, timezone-aware) and an optional note. Numbers are bounded at the edge by
``input_bounds.yaml`` (what a monitor can show) and by the scales' own ranges (RASS -5..+4,
pain 0..10, CADSS-6 0..24); whether a value is alarming is the rules' business
(``session_rules.yaml``), never the schema's.

The pump programme (``PumpProgramme``) is what check-in reads from the signed order and the
clinic's active drug library; ketapath fills it in, so a value sent with a check-in is
replaced. Rates are what the pump is set to (mL/h) or the dose rate (mg/h); either may be
given, and the chart snaps it to the signed order's step it names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from ketapath.knowledge.bounds import input_bounds
from ketapath.knowledge.sessions import REQUIRED_EFFECTS, SEVERITY_LEVELS

BOUNDS = input_bounds()
NOTE_LENGTH = 2000
# The largest dose rate any pump of the library could give is far below this; the bound only
# keeps absurd numbers (1e300) out of the arithmetic. Rates are checked against the order.
MAX_RATE_MG_PER_H = 100_000.0
MAX_RATE_ML_PER_H = 10_000.0
MAX_DOSE_MG = 100_000.0

Kind = Literal[
    "check_in",
    "start",
    "rate_change",
    "pause",
    "resume",
    "stop",
    "complete",
    "bolus",
    "vitals",
    "side_effect",
    "adjunct",
    "note",
    "acknowledge",
    "begin_observation",
    "discharge_assessment",
    "discharge",
    "cancel",
    "did_not_attend",
    "void",
]
KINDS: tuple[Kind, ...] = get_args(Kind)
EffectId = Literal[
    "dissociation",
    "amnesia",
    "hallucination",
    "nausea-vomiting",
    "visual-disturbance",
    "headache",
    "hypertension",
    "other",
]
assert tuple(EffectId.__args__) == REQUIRED_EFFECTS  # type: ignore[attr-defined]
EffectSeverity = Literal["mild", "moderate", "severe"]
assert tuple(EffectSeverity.__args__) == SEVERITY_LEVELS  # type: ignore[attr-defined]
Level = Literal["minimal", "moderate", "severe"]
Role = Literal["physician", "nurse", "pharmacist", "researcher", "admin"]

Note = Annotated[str, Field(max_length=NOTE_LENGTH)]


def _bounded(bound_id: str, description: str) -> object:
    bound = BOUNDS[bound_id]
    return Field(
        default=None,
        ge=int(bound.minimum),
        le=int(bound.maximum),
        description=f"{description} ({bound.unit}).",
    )


def chart_time(value: datetime, field: str = "occurred_at") -> datetime:
    """A chart time inside the years of ``input_bounds.yaml`` (``chart_year``)."""
    years = BOUNDS["chart_year"]
    if not years.minimum <= value.year <= years.maximum:
        raise ValueError(
            f"{field}: a chart time lies between {years.minimum:g} and {years.maximum:g}"
        )
    return value


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    occurred_at: AwareDatetime = Field(
        description="When it happened (clinical time, with its UTC offset)."
    )
    note: Note = ""

    @field_validator("occurred_at")
    @classmethod
    def _bounded_time(cls, value: datetime) -> datetime:
        return chart_time(value)


# ------------------------------------------------------------------ observations


class VitalSigns(BaseModel):
    """One set of observations; a value left out was not measured."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    heart_rate: int | None = _bounded("heart_rate_per_min", "Heart rate")  # type: ignore[assignment]
    systolic: int | None = _bounded("systolic_mmhg", "Systolic blood pressure")  # type: ignore[assignment]
    diastolic: int | None = _bounded("diastolic_mmhg", "Diastolic blood pressure")  # type: ignore[assignment]
    spo2: int | None = _bounded("spo2_percent", "Oxygen saturation")  # type: ignore[assignment]
    respiratory_rate: int | None = _bounded("respiratory_rate_per_min", "Respiratory rate")  # type: ignore[assignment]
    etco2: int | None = _bounded("etco2_mmhg", "End-tidal CO2")  # type: ignore[assignment]
    sedation: int | None = Field(
        default=None, ge=-5, le=4, description="Richmond Agitation-Sedation Scale, -5 to +4."
    )

    @model_validator(mode="after")
    def _consistent(self) -> VitalSigns:
        if all(v is None for v in self.values().values()):
            raise ValueError("a set of observations needs at least one value")
        if (
            self.systolic is not None
            and self.diastolic is not None
            and self.diastolic > self.systolic
        ):
            raise ValueError("diastolic is above systolic: check the reading")
        return self

    def values(self) -> dict[str, int | None]:
        """The readings by vital-sign id (the ids of ``session_rules.yaml``)."""
        return {
            "heart_rate": self.heart_rate,
            "systolic": self.systolic,
            "diastolic": self.diastolic,
            "spo2": self.spo2,
            "respiratory_rate": self.respiratory_rate,
            "etco2": self.etco2,
            "sedation": self.sedation,
        }


class Vitals(_Entry, VitalSigns):
    """A set of observations (heart rate, blood pressure, SpO2, RR, sedation, EtCO2)."""

    kind: Literal["vitals"] = "vitals"


class SideEffect(_Entry):
    """A side effect the patient reports or the nurse sees."""

    kind: Literal["side_effect"] = "side_effect"
    effect: EffectId
    severity: EffectSeverity
    troublesome: bool | None = Field(
        default=None,
        description="Whether it is troublesome (the pause rule's trigger); left out, a "
        "moderate or severe side effect counts as troublesome.",
    )
    description: str = Field(default="", max_length=500)
    cadss6_total: int | None = Field(
        default=None,
        ge=0,
        le=24,
        description="CADSS-6 total (0-24), with a dissociation report only; no cut-off.",
    )

    @model_validator(mode="after")
    def _described(self) -> SideEffect:
        if self.effect == "other" and not self.description.strip():
            raise ValueError("describe the side effect (effect 'other')")
        if self.cadss6_total is not None and self.effect != "dissociation":
            raise ValueError("a CADSS-6 total goes with a dissociation report")
        return self


class Adjunct(_Entry):
    """An adjunct medicine given (checked against the order and the drug library)."""

    kind: Literal["adjunct"] = "adjunct"
    drug: str = Field(min_length=2, max_length=60, pattern=r"^[A-Za-z][A-Za-z0-9 -]*$")
    dose: float = Field(gt=0, le=MAX_DOSE_MG)
    unit: Literal["mg", "mcg"]
    route: str = Field(min_length=2, max_length=20, pattern=r"^[a-z][a-z0-9-]*$")


class NoteEntry(_Entry):
    """A free-text note."""

    kind: Literal["note"] = "note"
    note: Note = Field(min_length=1)


class Acknowledge(_Entry):
    """Who saw a prompt and what they did: a physician's direction, a nurse's call."""

    kind: Literal["acknowledge"] = "acknowledge"
    prompt_id: str = Field(min_length=1, max_length=80, pattern=r"^[a-z0-9-]+$")


class DischargeAssessment(_Entry):
    """The items of the discharge score the chart cannot read from observations."""

    kind: Literal["discharge_assessment"] = "discharge_assessment"
    oriented: bool = Field(description="Oriented to person, place and time.")
    steady_gait: bool
    pain_nausea_vomiting: Level
    bleeding: Level = Field(description="Bleeding at the cannula site.")
    oral_fluids: bool
    voided: bool


# ------------------------------------------------------------------ the pump and the state


class _Rate(BaseModel):
    """A rate as the pump is set (mL/h) or as a dose rate (mg/h): at most one of them."""

    rate_ml_per_h: float | None = Field(default=None, gt=0, le=MAX_RATE_ML_PER_H)
    rate_mg_per_h: float | None = Field(default=None, gt=0, le=MAX_RATE_MG_PER_H)

    @model_validator(mode="after")
    def _one_unit(self) -> _Rate:
        if self.rate_ml_per_h is not None and self.rate_mg_per_h is not None:
            raise ValueError("give the rate in mL/h or in mg/h, not both")
        return self


class ProgrammeStep(BaseModel):
    """One rate step of the signed order, as the pump is set."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    number: int = Field(ge=1, le=1000)
    rate_ml_per_h: float = Field(gt=0, le=MAX_RATE_ML_PER_H)
    rate_mg_per_h: float = Field(gt=0, le=MAX_RATE_MG_PER_H)
    duration_min: float = Field(gt=0, le=60 * 24 * 60)
    volume_ml: float = Field(ge=0, le=1e7)
    note: str = Field(default="", max_length=500)


class ProgrammeAdjunct(BaseModel):
    """An adjunct the signed order lists."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    drug: str = Field(max_length=60)
    route: str = Field(max_length=20)
    dose: float = Field(ge=0, le=MAX_DOSE_MG)
    unit: str = Field(max_length=20)
    timing: str = Field(default="", max_length=500)


class AdjunctLimitSnapshot(BaseModel):
    """The drug library's limits for one adjunct (mg), as they were at check-in."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    drug: str = Field(max_length=60)
    route: str = Field(max_length=20)
    dose_unit: Literal["mg", "mg/day"] = "mg"
    dose_soft: float | None = Field(default=None, gt=0, le=MAX_DOSE_MG)
    dose_hard: float = Field(gt=0, le=MAX_DOSE_MG)
    session_soft: float | None = Field(default=None, gt=0, le=MAX_DOSE_MG)
    session_hard: float = Field(gt=0, le=MAX_DOSE_MG)


class PumpProgramme(BaseModel):
    """What the pump is told, read from the signed order and the clinic's drug library."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    protocol_id: str = Field(default="", max_length=80)
    session_number: int = Field(default=1, ge=1, le=1000)
    route: Literal["iv", "sc"] = "iv"
    setting: Literal["clinic", "ward", "icu"] = "clinic"
    concentration_mg_per_ml: float = Field(gt=0, le=1000)
    pump_id: str = Field(default="", max_length=60)
    pump_name: str = Field(default="", max_length=120)
    pump_min_ml_per_h: float = Field(default=0.1, gt=0, le=MAX_RATE_ML_PER_H)
    pump_max_ml_per_h: float = Field(default=999.0, gt=0, le=MAX_RATE_ML_PER_H)
    bolus_mg: float = Field(default=0.0, ge=0, le=MAX_DOSE_MG)
    bolus_ml: float = Field(default=0.0, ge=0, le=1e7)
    steps: list[ProgrammeStep] = Field(min_length=1, max_length=100)
    total_mg: float = Field(ge=0, le=1e7)
    volume_to_be_infused_ml: float = Field(ge=0, le=1e7)
    observation_min: int | None = Field(
        default=None, ge=0, le=24 * 60, description="The protocol's own observation period."
    )
    condition: str = Field(default="", max_length=500)
    adjuncts: list[ProgrammeAdjunct] = Field(default=[], max_length=20)
    adjunct_limits: list[AdjunctLimitSnapshot] = Field(default=[], max_length=50)
    library_name: str = Field(default="", max_length=200)
    library_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    library_digest: str = Field(default="", max_length=64)

    @model_validator(mode="after")
    def _range(self) -> PumpProgramme:
        if self.pump_min_ml_per_h >= self.pump_max_ml_per_h:
            raise ValueError("the pump's minimum rate must be below its maximum")
        return self


class CheckIn(_Entry):
    """Check-in: the confirmations, the baseline and the pump programme."""

    kind: Literal["check_in"] = "check_in"
    consent_confirmed: bool
    fasting_confirmed: bool
    escort_present: bool
    allergies_confirmed: bool
    pregnancy_test: Literal["negative", "positive", "not_applicable"]
    high_respiratory_risk: bool = Field(
        default=False, description="End-tidal CO2 is then part of every set of observations."
    )
    baseline: VitalSigns
    baseline_pain_nrs: int = Field(ge=0, le=10, description="Pain now, 0-10.")
    programme: PumpProgramme | None = Field(
        default=None,
        description="Filled in by ketapath from the signed order and the drug library; a "
        "value sent is replaced.",
    )


class Start(_Entry, _Rate):
    """The pump starts (at the order's first step unless another of its rates is given)."""

    kind: Literal["start"] = "start"


class RateChange(_Entry, _Rate):
    """The pump is set to another of the signed order's rates."""

    kind: Literal["rate_change"] = "rate_change"

    @model_validator(mode="after")
    def _given(self) -> RateChange:
        if self.rate_ml_per_h is None and self.rate_mg_per_h is None:
            raise ValueError("give the new rate (rate_ml_per_h or rate_mg_per_h)")
        return self


class Pause(_Entry):
    kind: Literal["pause"] = "pause"
    reason: Literal["side_effect", "patient_request", "clinical", "equipment", "other"]


class Resume(_Entry, _Rate):
    """The pump runs again (at the rate before the pause unless another order rate is given)."""

    kind: Literal["resume"] = "resume"


class Stop(_Entry):
    """The infusion ends early."""

    kind: Literal["stop"] = "stop"
    reason: Literal[
        "dissociation",
        "amnesia",
        "side_effect",
        "physician",
        "patient_request",
        "equipment",
        "other",
    ]


class Complete(_Entry):
    """The infusion ends as ordered."""

    kind: Literal["complete"] = "complete"


class Bolus(_Entry):
    """A bolus from the order (at most the order's bolus, in total)."""

    kind: Literal["bolus"] = "bolus"
    dose_mg: float = Field(gt=0, le=MAX_DOSE_MG)


class BeginObservation(_Entry):
    """The observation period after the infusion begins (the pump is off)."""

    kind: Literal["begin_observation"] = "begin_observation"


class Discharge(_Entry):
    """The patient goes home: escort, after-hours plan, and a physician's override if needed."""

    kind: Literal["discharge"] = "discharge"
    escort_present: bool
    escort_name: str = Field(default="", max_length=200)
    emergency_plan_given: bool
    override_reason: str | None = Field(
        default=None,
        max_length=NOTE_LENGTH,
        description="A physician's reason to discharge although criteria are not met.",
    )


class Cancel(_Entry):
    kind: Literal["cancel"] = "cancel"
    reason: str = Field(min_length=1, max_length=NOTE_LENGTH)


class DidNotAttend(_Entry):
    kind: Literal["did_not_attend"] = "did_not_attend"


class Void(_Entry):
    """An observation entered in error (only as a correction of it)."""

    kind: Literal["void"] = "void"


ChartEntry = Annotated[
    CheckIn
    | Start
    | RateChange
    | Pause
    | Resume
    | Stop
    | Complete
    | Bolus
    | Vitals
    | SideEffect
    | Adjunct
    | NoteEntry
    | Acknowledge
    | BeginObservation
    | DischargeAssessment
    | Discharge
    | Cancel
    | DidNotAttend
    | Void,
    Field(discriminator="kind"),
]
"""Any chart entry, by its ``kind``."""


class ChartEvent(BaseModel):
    """A chart entry as stored: its place in the session's log, who recorded it, and the
    entry it corrects (``amends_seq``, with a reason), if any."""

    model_config = ConfigDict(frozen=True)

    seq: int = Field(ge=1)
    entry: ChartEntry
    recorded_by: str = ""
    by_role: Role = "nurse"
    recorded_at: datetime | None = None
    amends_seq: int | None = Field(default=None, ge=1)
    reason: str = ""

    @property
    def kind(self) -> Kind:
        return self.entry.kind
