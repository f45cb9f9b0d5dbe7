"""The state machine of an infusion session and what a replay of its chart shows.

States and the entries that move between them::

    scheduled --check_in--> checked_in --start--> running <--pause/resume--> paused
    running --stop--> stopped        paused --stop--> stopped       running --complete--> completed
    stopped | completed --begin_observation--> observation --discharge--> discharged
    scheduled | checked_in --cancel--> cancelled       scheduled --did_not_attend--> did_not_attend

Observations (vitals, side effects, adjuncts, acknowledgements) are charted from check-in until
discharge and change no state; a bolus is given after check-in or while the pump runs; a note
may be written at any time; the discharge assessment after the infusion has ended. Any other
entry is refused with a message that names the state and what is allowed in it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ketapath.domain.discharge import PadssScore
from ketapath.domain.errors import DomainError
from ketapath.domain.findings import Finding
from ketapath.domain.session_events import Kind, PumpProgramme, VitalSigns

State = Literal[
    "scheduled",
    "checked_in",
    "running",
    "paused",
    "stopped",
    "completed",
    "observation",
    "discharged",
    "cancelled",
    "did_not_attend",
]
STATES: tuple[State, ...] = (
    "scheduled",
    "checked_in",
    "running",
    "paused",
    "stopped",
    "completed",
    "observation",
    "discharged",
    "cancelled",
    "did_not_attend",
)
TERMINAL: frozenset[State] = frozenset({"discharged", "cancelled", "did_not_attend"})
# From check-in until discharge: the states in which observations are charted.
ACTIVE: frozenset[State] = frozenset(
    {"checked_in", "running", "paused", "stopped", "completed", "observation"}
)
# A state change: kind -> {from: to}.
TRANSITIONS: dict[str, dict[State, State]] = {
    "check_in": {"scheduled": "checked_in"},
    "start": {"checked_in": "running"},
    "rate_change": {"running": "running"},
    "pause": {"running": "paused"},
    "resume": {"paused": "running"},
    "stop": {"running": "stopped", "paused": "stopped"},
    "complete": {"running": "completed"},
    "begin_observation": {"stopped": "observation", "completed": "observation"},
    "discharge": {"observation": "discharged"},
    "cancel": {"scheduled": "cancelled", "checked_in": "cancelled"},
    "did_not_attend": {"scheduled": "did_not_attend"},
}
# Entries that change no state, and the states they may be charted in.
OBSERVATIONS: dict[str, frozenset[State]] = {
    "bolus": frozenset({"checked_in", "running"}),
    "vitals": ACTIVE,
    "side_effect": ACTIVE,
    "adjunct": ACTIVE,
    "acknowledge": ACTIVE,
    "discharge_assessment": frozenset({"stopped", "completed", "observation"}),
    "note": frozenset(STATES),
}
# Entries that change the state or the dose, or close a prompt: with two people charting,
# these are refused unless the writer has seen the latest entry (``expected_seq``).
STRICT_KINDS: frozenset[str] = frozenset({*TRANSITIONS, "bolus", "acknowledge"})
# Entries that may be voided (entered in error) by a correction.
VOIDABLE: frozenset[str] = frozenset(
    {"vitals", "side_effect", "adjunct", "note", "discharge_assessment"}
)

STATE_WORDS: dict[State, str] = {
    "scheduled": "scheduled (not checked in)",
    "checked_in": "checked in (the pump has not started)",
    "running": "running",
    "paused": "paused",
    "stopped": "stopped (the infusion ended early)",
    "completed": "completed (the infusion ended as ordered)",
    "observation": "in observation after the infusion",
    "discharged": "discharged",
    "cancelled": "cancelled",
    "did_not_attend": "closed: the patient did not attend",
}
KIND_WORDS: dict[str, str] = {
    "check_in": "check in",
    "start": "start the infusion",
    "rate_change": "change the rate",
    "pause": "pause the infusion",
    "resume": "resume the infusion",
    "stop": "stop the infusion",
    "complete": "complete the infusion",
    "bolus": "give a bolus",
    "vitals": "chart observations",
    "side_effect": "chart a side effect",
    "adjunct": "chart an adjunct medicine",
    "note": "write a note",
    "acknowledge": "acknowledge a prompt",
    "begin_observation": "begin the observation period",
    "discharge_assessment": "chart the discharge assessment",
    "discharge": "discharge the patient",
    "cancel": "cancel the session",
    "did_not_attend": "record that the patient did not attend",
    "void": "void an entry",
}


class ChartRefused(DomainError):
    """A chart entry the rules refuse; nothing is recorded. ``kind`` is the entry's."""

    def __init__(self, message: str, *, field: str = "", kind: str = "") -> None:
        super().__init__(message, field=field)
        self.kind = kind


class IllegalTransition(ChartRefused):
    """An entry that the session's state does not allow (the message names both)."""


def kinds_allowed_in(state: State) -> list[Kind]:
    """Every kind of entry the state machine allows in ``state`` (before any prompt)."""
    allowed: list[Kind] = [k for k, moves in TRANSITIONS.items() if state in moves]  # type: ignore[misc]
    allowed += [k for k, states in OBSERVATIONS.items() if state in states]  # type: ignore[misc]
    return allowed


def illegal(kind: str, state: State) -> IllegalTransition:
    """The refusal of ``kind`` in ``state``: what the session is, and what it allows."""
    allowed = ", ".join(KIND_WORDS[k] for k in kinds_allowed_in(state)) or "nothing"
    return IllegalTransition(
        f"Cannot {KIND_WORDS.get(kind, kind)}: the session is {STATE_WORDS[state]}. "
        f"Allowed now: {allowed}.",
        field="kind",
        kind=kind,
    )


# ------------------------------------------------------------------ what a replay shows


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


class CitationData(_View):
    ref: str
    at: str
    text: str


class Acknowledgement(_View):
    seq: int
    by: str
    role: str
    at: datetime
    note: str


class Prompt(_View):
    """What a rule asks, raised by a chart entry or by the clock, and who answered it.

    ``status``: open (nobody has answered), acknowledged (seen; the action is still due),
    resolved (done, by the action the rule asks, a later reading, or a physician's
    direction). ``resolved_by``: what closes it besides the action (anyone's
    acknowledgement, or a physician's); ``none`` for prompts of the clock.
    """

    id: str
    code: str
    severity: Literal["hard", "soft", "warning", "info"]
    message: str
    rule: str
    citation: str
    citations: list[CitationData]
    raised_at: datetime
    raised_by_seq: int | None
    status: Literal["open", "acknowledged", "resolved"]
    acknowledgements: list[Acknowledgement] = []
    resolved_at: datetime | None = None
    resolved_by_seq: int | None = None
    resolution: str = ""
    resolved_by: Literal["anyone", "physician", "none"]

    @classmethod
    def of(
        cls,
        prompt_id: str,
        finding: Finding,
        at: datetime,
        seq: int | None,
        resolved_by: Literal["anyone", "physician", "none"],
    ) -> Prompt:
        return cls(
            id=prompt_id,
            code=finding.code,
            severity=finding.severity,
            message=finding.message,
            rule=finding.rule,
            citation=finding.citation,
            citations=[CitationData(ref=c.ref, at=c.at, text=c.text) for c in finding.citations],
            raised_at=at,
            raised_by_seq=seq,
            status="open",
            resolved_by=resolved_by,
        )


class BlockedAction(_View):
    """An entry the state allows but a rule holds back now, and who may still make it."""

    kind: Kind
    reason: str
    physician_may: bool


class RateSegment(_View):
    """The pump running at one rate (``end`` None: still running)."""

    start: datetime
    end: datetime | None
    rate_ml_per_h: float
    rate_mg_per_h: float
    step: int | None
    seq: int


class BolusGiven(_View):
    """A bolus as charted (after corrections)."""

    at: datetime
    mg: float
    seq: int


class RatePoint(_View):
    """The rate from ``at`` on (0 while paused or stopped): the series a plot draws."""

    at: datetime
    rate_mg_per_h: float
    rate_ml_per_h: float


class DeliveredDose(_View):
    """The dose given, from the chart (never typed): rate x time plus boluses."""

    delivered_mg: float = Field(description="Infusion plus boluses, the nearest float.")
    delivered_mg_exact: str = Field(description="The same, exact to 1e-9 mg (decimal text).")
    infusion_mg: float
    bolus_mg: float
    infused_ml: float
    ordered_mg: float | None
    remaining_mg: float | None
    delivered_percent: float | None
    running_minutes: float
    paused_minutes: float
    started_at: datetime | None
    ended_at: datetime | None


class VitalsPoint(VitalSigns):
    """A set of observations as charted (after corrections)."""

    seq: int
    at: datetime
    recorded_by: str
    corrected: bool
    complete: bool


class SideEffectRecord(_View):
    seq: int
    at: datetime
    effect: str
    name: str
    severity: str
    troublesome: bool
    action: str
    description: str
    cadss6_total: int | None
    recorded_by: str
    corrected: bool


class AdjunctRecord(_View):
    seq: int
    at: datetime
    drug: str
    dose: float
    unit: str
    route: str
    dose_mg: float
    recorded_by: str
    corrected: bool


class NoteRecord(_View):
    seq: int
    at: datetime
    kind: str
    text: str
    recorded_by: str


class CheckInRecord(_View):
    seq: int
    at: datetime
    by: str
    consent_confirmed: bool
    fasting_confirmed: bool
    escort_present: bool
    allergies_confirmed: bool
    pregnancy_test: str
    high_respiratory_risk: bool
    baseline: VitalSigns
    baseline_pain_nrs: int


class FindingData(_View):
    """A finding without a prompt's life (a discharge criterion not met)."""

    code: str
    severity: Literal["hard", "soft", "warning", "info"]
    message: str
    rule: str
    citation: str
    citations: list[CitationData]

    @classmethod
    def of(cls, finding: Finding) -> FindingData:
        return cls(
            code=finding.code,
            severity=finding.severity,
            message=finding.message,
            rule=finding.rule,
            citation=finding.citation,
            citations=[CitationData(ref=c.ref, at=c.at, text=c.text) for c in finding.citations],
        )


class DischargeReadiness(_View):
    """Whether the chart meets the discharge criteria now; what is missing if not."""

    ready: bool
    observation_min: int
    infusion_ended_at: datetime | None
    observation_ends_at: datetime | None
    padss: PadssScore | None
    blockers: list[FindingData]
    confirm_at_discharge: list[str] = Field(
        description="What the discharge entry itself records (escort, emergency plan)."
    )


class DischargeRecord(_View):
    seq: int
    at: datetime
    by: str
    role: str
    escort_present: bool
    escort_name: str
    emergency_plan_given: bool
    override_reason: str | None
    overridden: list[FindingData]


class Refusal(_View):
    """An entry of a replayed log that the rules refuse (it changes nothing)."""

    seq: int
    kind: str
    message: str
    field: str
    illegal: bool = Field(
        default=False, description="The state did not allow the entry (a transition refused)."
    )


class SessionView(_View):
    """Everything the chart shows, replayed from the log at ``at``."""

    at: datetime
    state: State
    state_since: datetime | None
    last_seq: int
    allowed_actions: list[Kind]
    blocked_actions: list[BlockedAction]
    programme: PumpProgramme | None
    running_rate_ml_per_h: float | None
    running_rate_mg_per_h: float | None
    running_step: int | None
    dose: DeliveredDose
    segments: list[RateSegment]
    boluses: list[BolusGiven] = Field(default=[], description="Every bolus given, in order.")
    rate_series: list[RatePoint]
    prompts: list[Prompt]
    open_prompts: list[str] = Field(description="Ids of the prompts nobody has answered.")
    next_observation_due: datetime | None
    vitals: list[VitalsPoint]
    side_effects: list[SideEffectRecord]
    adjuncts: list[AdjunctRecord]
    notes: list[NoteRecord]
    check_in: CheckInRecord | None
    discharge: DischargeReadiness
    discharged: DischargeRecord | None
    cancelled_reason: str | None
    refusals: list[Refusal]
    delivered_mg_fraction: str = Field(
        description="The delivered dose (mg) as an exact fraction, 'numerator/denominator'."
    )
