"""Schema of ``session_rules.yaml``: the rules an infusion session's chart runs live.

The file's ``entries`` are the side-effect vocabulary, each with the action the FPM (ANZCA) 2016
proposal (section 5) asks for: a troublesome side effect pauses the infusion for an hour, then
it recommences; a further side effect after recommencing calls the responsible physician;
dissociative or amnestic effects stop the infusion. Beside the entries the file holds what the
chart needs besides: when a side effect counts as troublesome, the length of the pause, the
vital-sign alert thresholds (clinic policy: no published pause thresholds exist), how often
observations are due, the observation period after the infusion, the discharge score (PADSS),
the sedation scale (RASS) and the short dissociation scale (CADSS-6, which has no cut-off and
is never given one here), and when a pregnancy test is needed at check-in.

Everything is validated on load (``ketapath knowledge check``); the numbers a clinic may change
are the thresholds, intervals and periods, each cited as clinic policy where no publication
sets it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    KnowledgeFile,
    Source,
    Strict,
    cites_in,
    read_yaml,
)

SideEffectAction = Literal["stop", "pause"]
EffectSeverity = Literal["mild", "moderate", "severe"]
SEVERITY_LEVELS: tuple[EffectSeverity, ...] = ("mild", "moderate", "severe")
VitalId = Literal[
    "heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "etco2", "sedation"
]
VITAL_IDS: tuple[VitalId, ...] = (
    "heart_rate",
    "systolic",
    "diastolic",
    "spo2",
    "respiratory_rate",
    "etco2",
    "sedation",
)
ChartState = Literal["checked_in", "running", "paused", "stopped", "completed", "observation"]
CHART_STATES: tuple[ChartState, ...] = (
    "checked_in",
    "running",
    "paused",
    "stopped",
    "completed",
    "observation",
)
# The side effects the chart offers (issue 10); 'amnesia' is the FPM proposal's "amnestic
# effects", which it names beside dissociation as a reason to stop.
REQUIRED_EFFECTS = (
    "dissociation",
    "amnesia",
    "hallucination",
    "nausea-vomiting",
    "visual-disturbance",
    "headache",
    "hypertension",
    "other",
)


class SideEffectRule(Entry):
    """A side effect the chart records, and what the rule asks when it is reported."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str = Field(min_length=3, max_length=80)
    action: SideEffectAction
    any_severity: bool = Field(
        default=False,
        description="The action applies whatever the severity (stop rules); otherwise only "
        "when the side effect is troublesome.",
    )
    asks: str = Field(min_length=10, description="What the rule asks the nurse, in words.")
    needs_description: bool = Field(
        default=False, description="The nurse must describe it ('other')."
    )


class TroublesomeRule(Strict):
    """When a reported side effect counts as troublesome (the trigger of the pause rule)."""

    severities: tuple[EffectSeverity, ...] = Field(min_length=1)
    rule: str = Field(min_length=10)
    source: Source


class PauseRule(Strict):
    """How long a pause for a troublesome side effect lasts before the infusion recommences."""

    minutes: int = Field(ge=1, le=24 * 60)
    rule: str = Field(min_length=10)
    source: Source


class RecurrenceRule(Strict):
    """What a further troublesome side effect after recommencing asks."""

    rule: str = Field(min_length=10)
    source: Source


class VitalAlert(Strict):
    """An alert threshold for one vital sign: below ``low`` or above ``high`` alerts."""

    id: VitalId
    name: str = Field(min_length=2, max_length=60)
    unit: str = Field(min_length=1, max_length=20)
    low: float | None = Field(default=None, allow_inf_nan=False)
    high: float | None = Field(default=None, allow_inf_nan=False)
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> VitalAlert:
        if self.low is None and self.high is None:
            raise ValueError("an alert needs a low or a high threshold")
        if self.low is not None and self.high is not None and self.low >= self.high:
            raise ValueError("low must be below high")
        return self

    def outside(self, value: float) -> Literal["low", "high"] | None:
        """'low' below the low threshold, 'high' above the high one, else None."""
        if self.low is not None and value < self.low:
            return "low"
        if self.high is not None and value > self.high:
            return "high"
        return None


class ObservationIntervals(Strict):
    """Minutes from the last complete set of observations to the next, per chart state."""

    minutes: dict[ChartState, int]
    overdue_after_min: int = Field(
        ge=0, le=60, description="Minutes after the due time when observations are overdue."
    )
    source: Source

    @model_validator(mode="after")
    def _every_state(self) -> ObservationIntervals:
        missing = [s for s in CHART_STATES if s not in self.minutes]
        if missing:
            raise ValueError(f"no interval for {', '.join(missing)}")
        if any(not 1 <= m <= 24 * 60 for m in self.minutes.values()):
            raise ValueError("intervals are 1 to 1440 minutes")
        return self


class MonitoringRule(Strict):
    """What a complete set of observations holds (an observation resets the due time)."""

    complete_set: tuple[VitalId, ...] = Field(min_length=1)
    etco2_when_high_respiratory_risk: bool
    source: Source


class ObservationPeriod(Strict):
    """How long a patient is observed after the infusion ends, when the protocol gives none."""

    default_min: int = Field(ge=0, le=24 * 60)
    rule: str = Field(min_length=10)
    source: Source


class PadssLevel(Strict):
    points: int = Field(ge=0, le=2)
    meaning: str = Field(min_length=3)


class PadssItem(Strict):
    """One item of the discharge score and how the chart scores it."""

    id: (
        Literal["vital_signs", "activity_mental_status", "pain_nausea_vomiting", "bleeding"]
        | (Literal["intake_output"])
    )
    name: str = Field(min_length=3)
    levels: tuple[PadssLevel, ...] = Field(min_length=3, max_length=3)
    from_chart: str = Field(min_length=10, description="How the chart gives this item.")


class VitalSignItemRule(Strict):
    """How several vital signs combine into PADSS's one vital-sign item (not published)."""

    vitals: tuple[VitalId, ...] = Field(min_length=1)
    two_points_within_percent: float = Field(gt=0, le=100)
    one_point_within_percent: float = Field(gt=0, le=100)
    rule: str = Field(min_length=10)
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> VitalSignItemRule:
        if self.two_points_within_percent >= self.one_point_within_percent:
            raise ValueError("the 2-point band must be narrower than the 1-point band")
        return self


class Padss(Strict):
    """The Post-Anaesthetic Discharge Scoring System, as the chart scores it."""

    name: str
    threshold: int = Field(ge=1)
    items: tuple[PadssItem, ...] = Field(min_length=1)
    vital_sign_item: VitalSignItemRule
    source: Source

    @model_validator(mode="after")
    def _threshold(self) -> Padss:
        if self.threshold > self.maximum:
            raise ValueError("the threshold is above the highest possible score")
        ids = [i.id for i in self.items]
        if len(ids) != len(set(ids)):
            raise ValueError("items listed twice")
        return self

    @property
    def maximum(self) -> int:
        return sum(max(level.points for level in item.levels) for item in self.items)


class SedationLevel(Strict):
    score: int = Field(ge=-5, le=4)
    label: str = Field(min_length=3, max_length=40)


class SedationScale(Strict):
    """The sedation scale the chart records (RASS, +4 combative to -5 unarousable)."""

    id: Literal["rass"]
    name: str
    levels: tuple[SedationLevel, ...] = Field(min_length=10, max_length=10)
    source: Source

    @model_validator(mode="after")
    def _complete(self) -> SedationScale:
        if sorted(level.score for level in self.levels) != list(range(-5, 5)):
            raise ValueError("RASS has the levels -5 to +4, once each")
        return self

    def label(self, score: int) -> str:
        return next(level.label for level in self.levels if level.score == score)


class DissociationScale(Strict):
    """A short dissociation scale whose total the chart records, without a cut-off."""

    id: Literal["cadss-6"]
    name: str
    items_of_full_scale: tuple[int, ...] = Field(min_length=1)
    item_minimum: int = Field(ge=0)
    item_maximum: int = Field(ge=1)
    cut_off: None = Field(
        default=None, description="None: no published cut-off, so the chart never applies one."
    )
    note: str = Field(min_length=10)
    source: Source

    @property
    def total_maximum(self) -> int:
        return self.item_maximum * len(self.items_of_full_scale)


class PregnancyTestRule(Strict):
    """When check-in needs a pregnancy test result, and what a positive result does."""

    rule: str = Field(min_length=10)
    source: Source


class SessionRulesFile(KnowledgeFile[SideEffectRule]):
    """session_rules.yaml: the side-effect vocabulary (entries) and the chart's other rules."""

    troublesome: TroublesomeRule
    pause: PauseRule
    recurrence: RecurrenceRule
    vital_alerts: tuple[VitalAlert, ...] = Field(min_length=1)
    observation_intervals: ObservationIntervals
    monitoring: MonitoringRule
    observation_period: ObservationPeriod
    padss: Padss
    sedation_scale: SedationScale
    dissociation_scale: DissociationScale
    pregnancy_test: PregnancyTestRule

    @model_validator(mode="after")
    def _complete(self) -> SessionRulesFile:
        ids = {e.id for e in self.entries}
        missing = [e for e in REQUIRED_EFFECTS if e not in ids]
        if missing:
            raise ValueError(f"the side-effect vocabulary lacks {', '.join(missing)}")
        alerts = [a.id for a in self.vital_alerts]
        if len(alerts) != len(set(alerts)):
            raise ValueError("a vital sign has two alert entries")
        return self

    def effect(self, effect_id: str) -> SideEffectRule:
        for entry in self.entries:
            if entry.id == effect_id:
                return entry
        raise KeyError(effect_id)

    def alert(self, vital: str) -> VitalAlert | None:
        return next((a for a in self.vital_alerts if a.id == vital), None)


class ClinicVitalThresholds(Strict):
    """A clinic's own vital-sign alert thresholds (``KETAPATH_VITAL_THRESHOLDS_FILE``).

    The packaged thresholds are clinic policy (no published pause thresholds exist), so a
    clinic may set its own: each entry replaces the packaged one of that vital sign, which
    otherwise stays; every entry cites bibliography entries (the clinic's own policy:
    ``ketapath-clinic-policy``)."""

    kind: Literal["vital_thresholds"]
    version: int = Field(ge=0)
    description: str = Field(default="", max_length=2000)
    vital_alerts: tuple[VitalAlert, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> ClinicVitalThresholds:
        ids = [a.id for a in self.vital_alerts]
        if len(ids) != len(set(ids)):
            raise ValueError("a vital sign has two alert entries")
        return self


def with_clinic_thresholds(
    rules: SessionRulesFile, thresholds: ClinicVitalThresholds
) -> SessionRulesFile:
    """The session rules with the clinic's thresholds in place of the packaged ones (by vital
    sign; the vital signs the clinic does not set keep the packaged thresholds)."""
    own = {a.id: a for a in thresholds.vital_alerts}
    merged = tuple(own.pop(a.id, a) for a in rules.vital_alerts) + tuple(own.values())
    return rules.model_copy(update={"vital_alerts": merged})


def load_clinic_thresholds(path: Path) -> ClinicVitalThresholds:
    """A clinic's vital-sign thresholds file, validated (``KnowledgeError`` naming the file and
    what is wrong: not YAML, a field out of the schema, a low not below its high, a citation
    not in the bibliography)."""
    from ketapath.knowledge.bibliography import bibliography

    data = read_yaml(path)
    try:
        thresholds = ClinicVitalThresholds.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors()
        )
        raise KnowledgeError(f"{path}: {problems}") from exc
    bibliography().check(cites_in(thresholds), str(path))
    return thresholds
