"""The typed views of a course's outcomes, follow-up, safety checks due and repeat decision,
as the API, the pages and the letters read them (``services.outcomes``).

Every result carries the definition it used (its rule in words and readable citations, the
bibliography ids behind them); a result that cannot be given says why in words and is None
or "unknown", never 0.

A view whose fields are those of a domain result (``ketapath.domain.outcomes``) reads it with
``View.model_validate(result)``, nested definitions and citations included; a view that adds
facts the result does not hold has an ``of``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ketapath.domain.outcomes import OpioidChange, PgicResponse, ReliefDuration
from ketapath.services.signing import CitationView, FindingView
from ketapath.services.validation import MAX_RECORD_ID, REASON_LENGTH

OutcomeStatus = Literal["complete", "incomplete", "no sessions"]
ReliefStatus = Literal["ended", "censored", "never began", "no data", "not assessable"]
Decision = Literal["repeat", "change protocol", "stop"]
TimepointState = Literal["done", "not yet due", "due", "overdue"]
CheckState = Literal["not due", "due", "overdue"]


class DefinitionView(BaseModel):
    """The definition a result used: its name, the rule in words, the citations."""

    model_config = ConfigDict(from_attributes=True)

    name: str
    rule: str
    citation: str = Field(description="The short citations, joined.")
    citations: list[CitationView]


class ChangeView(BaseModel):
    """A change from baseline: absolute (later minus baseline; negative: lower) and percent
    of baseline (None with the reason when the baseline is 0)."""

    model_config = ConfigDict(from_attributes=True)

    baseline: float
    value: float
    absolute: float
    percent: float | None
    percent_undefined: str


class ResponderView(BaseModel):
    """Responder status at a threshold (IMMPACT: 30% moderate, 50% substantial)."""

    model_config = ConfigDict(from_attributes=True)

    threshold_percent: float
    status: Literal["responder", "non-responder", "unknown"]
    reduction_percent: float | None = Field(description="The fall in pain, % of baseline.")
    reason: str
    definition: DefinitionView


class PainReading(BaseModel):
    """A pain score (NRS) of the course's assessments."""

    assessment_id: int
    label: Literal["baseline", "post-session", "follow-up"]
    timepoint_days: int | None
    administered_at: datetime
    value: int


class TimepointPain(BaseModel):
    """The pain at one follow-up timepoint against the baseline."""

    timepoint_days: int
    value: int
    administered_at: datetime
    change: ChangeView | None
    responder_30: Literal["responder", "non-responder", "unknown"]
    responder_50: Literal["responder", "non-responder", "unknown"]


class PainView(BaseModel):
    """The pain score at baseline and the one it is compared with (the latest follow-up, or
    else the latest after a session), and the change."""

    baseline: PainReading | None
    compared: PainReading | None
    change: ChangeView | None
    reason: str = Field(description="Why no change can be given, when none is.")
    by_timepoint: list[TimepointPain]
    definition: DefinitionView


class ReliefView(BaseModel):
    """How long relief lasted after the last session, from the diary (censored at the last
    diary day when pain never came back, never beyond the end of follow-up)."""

    status: ReliefStatus
    days: int | None = Field(description="None: unknown (no data, not assessable).")
    event: bool = Field(description="True: pain came back (relief ended).")
    censored: bool = Field(description="True: relief continued to the last diary day.")
    start: date | None = Field(description="The last session day (day 0).")
    follow_up_end: date | None
    event_date: date | None
    last_in_relief: date | None
    censored_at: date | None
    baseline: int | None
    margin_nrs: int
    onset_threshold_percent: int
    explanation: str
    definition: DefinitionView

    @classmethod
    def of(cls, relief: ReliefDuration) -> ReliefView:
        """The view of a domain ``ReliefDuration``, which says censoring by its status."""
        return cls.model_validate({**vars(relief), "censored": relief.status == "censored"})


class AucView(BaseModel):
    """The area under the daily pain curve over days 1-35 after the last session (pain
    score-days, trapezoid rule); None when day 1 or day 35 is missing."""

    model_config = ConfigDict(from_attributes=True)

    status: Literal["complete", "incomplete"]
    auc: float | None
    window_days: int
    first_day: date | None
    last_day: date | None
    observed_days: int
    missing: list[date]
    interpolated: list[date]
    mean_daily_pain: float | None
    explanation: str
    definition: DefinitionView


class PgicView(BaseModel):
    """The patient's global impression of change at the latest follow-up that asked it."""

    status: Literal["improved", "not improved", "unknown"]
    category: int | None
    label: str
    timepoint_days: int | None
    definition: DefinitionView

    @classmethod
    def of(cls, pgic: PgicResponse, timepoint_days: int | None) -> PgicView:
        """The view of a domain ``PgicResponse`` at the follow-up ``timepoint_days``."""
        return cls.model_validate({**vars(pgic), "timepoint_days": timepoint_days})


class ScoreChangeView(BaseModel):
    """A score's change from the course's baseline to its latest follow-up (function: BPI-SF
    interference; sleep: BPI-SF interference with sleep); lower is better for both."""

    name: str
    measure: str = Field(description="What is compared, in words.")
    status: Literal["complete", "not enough data"]
    baseline: float | None
    baseline_at: datetime | None
    value: float | None
    value_at: datetime | None
    timepoint_days: int | None
    change: ChangeView | None
    improvement_percent: float | None = Field(
        description="The fall as a percentage of baseline (positive: better); None: unknown."
    )
    reason: str
    definition: DefinitionView


class SleepView(ScoreChangeView):
    """Sleep: the BPI-SF item, and the diary's mean sleep quality (0 worst - 10 best) over
    the 35-day window, for information (the diary has no baseline)."""

    diary_mean_sleep_quality: float | None
    diary_sleep_days: int


class OpioidView(BaseModel):
    """The daily opioid dose before and after the course in mg oral morphine equivalent."""

    status: Literal["complete", "incomplete"]
    baseline_ome_mg: float | None
    current_ome_mg: float | None
    change_mg: float | None
    percent: float | None
    reason: str
    baseline_source: str = Field(description="Where the baseline total comes from.")
    current_source: str = Field(description="Where the current total comes from.")
    definition: DefinitionView

    @classmethod
    def of(cls, change: OpioidChange, baseline_source: str, current_source: str) -> OpioidView:
        """The view of a domain ``OpioidChange`` and where its two totals come from."""
        return cls.model_validate(
            {**vars(change), "baseline_source": baseline_source, "current_source": current_source}
        )


class GivenSessionView(BaseModel):
    """A session of the course that was given (its pump was started), with the dose the
    chart delivered."""

    session_id: int
    number: int
    day: date
    state: str
    delivered_mg: float
    delivered_mg_exact: str
    stop_reason: str | None


class DiaryPoint(BaseModel):
    day: date
    pain_nrs: int
    sleep_quality: int | None


class CourseOutcomeView(BaseModel):
    """What happened after a course, each result with its definition's rule and citation.

    ``status``: ``complete`` when every result could be given, ``incomplete`` otherwise
    (``missing`` says what is lacking), ``no sessions`` when no session was given."""

    order_id: int
    patient_id: int
    protocol_id: str
    protocol_name: str
    status: OutcomeStatus
    today: date
    in_progress: bool = Field(description="Sessions of the course are still to come.")
    sessions: list[GivenSessionView]
    sessions_to_come: int
    last_session_day: date | None
    follow_up_end: date | None = Field(
        description="The end of follow-up so far: today, or the last timepoint's date."
    )
    delivered_mg: float
    delivered_mg_per_kg: float | None
    dosing_weight_kg: float | None
    pain: PainView
    responder_30: ResponderView
    responder_50: ResponderView
    relief: ReliefView
    pain_auc: AucView
    pgic: PgicView
    function: ScoreChangeView
    sleep: SleepView
    opioids: OpioidView
    tolerated: bool | None
    tolerance: str = Field(description="Why the course counts as tolerated or not.")
    diary: list[DiaryPoint]
    missing: list[str] = Field(description="What is not known yet, in words.")
    findings: list[FindingView]


# ------------------------------------------------------------------ follow-up


class TimepointView(BaseModel):
    """One follow-up timepoint of a course and whether it is done, due or overdue."""

    label: str
    offset_days: int
    due_on: date
    due_from: date
    due_until: date
    status: TimepointState
    recorded: list[str] = Field(description="Instruments recorded at this timepoint.")
    missing: list[str] = Field(description="Instruments of the follow-up not recorded.")


class CourseFollowUps(BaseModel):
    """A course's follow-up schedule, counted from its last session given."""

    order_id: int
    patient_id: int
    protocol_id: str
    today: date
    last_session_day: date | None
    in_progress: bool
    schedule_from: Literal["protocol", "outcome rules"]
    instruments: list[str] = Field(description="What each follow-up repeats or asks.")
    timepoints: list[TimepointView]
    findings: list[FindingView]
    definition: DefinitionView


class FollowUpItem(BaseModel):
    """A follow-up the clinic should do: due today (inside its window) or overdue."""

    patient_id: int
    patient_name: str
    order_id: int
    protocol_id: str
    last_session_day: date
    label: str
    offset_days: int
    due_on: date
    due_from: date
    due_until: date
    status: Literal["due", "overdue"]
    days_overdue: int = Field(description="Days since the window ended (0 while due).")


class FollowUpList(BaseModel):
    today: date
    status: Literal["due", "overdue", "all"]
    items: list[FollowUpItem]


# ------------------------------------------------------------------ safety checks due


class CourseDoseView(BaseModel):
    """What one course delivered (from its charts), in mg and in mg/kg of its dosing weight."""

    order_id: int
    protocol_id: str
    first_day: date | None
    last_day: date | None
    sessions_given: int
    sessions_to_come: int
    delivered_mg: float
    dosing_weight_kg: float | None
    delivered_mg_per_kg: float | None


class CheckDueView(BaseModel):
    """A safety check of repeated courses: whether it is due, and its last result."""

    check_id: str
    name: str
    status: CheckState
    last_done: date | None
    last_result_id: int | None
    last_abnormal: bool | None
    message: str


class SafetyDueView(BaseModel):
    """The safety checks due for a patient, by the number of courses and the cumulative dose
    delivered over all of them (never 0 when unknown)."""

    patient_id: int
    today: date
    courses: int = Field(description="Courses given or under way (not cancelled).")
    course_doses: list[CourseDoseView]
    cumulative_mg: float
    cumulative_mg_per_kg: float | None
    checks: list[CheckDueView]
    findings: list[FindingView]
    rule: str
    citation: str


# ------------------------------------------------------------------ repeat decision


class IndicatorResultView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    target: float
    achieved: float | None
    status: Literal["met", "not met", "unknown"]
    sentence: str


class RepeatProposalView(BaseModel):
    """ketapath's proposal after a course (repeat, change protocol, stop, or not enough
    data) with its reasoning; the physician decides."""

    order_id: int
    patient_id: int
    protocol_id: str
    proposal: Literal["repeat", "change protocol", "stop", "not enough data"]
    next_protocol_id: str | None
    next_step_mg_per_kg_per_h: float | None = Field(
        description="The dose ladder's next rung, when the course is on a ladder."
    )
    reasons: list[str]
    indicators_id: int | None
    indicators: list[IndicatorResultView]
    goals_to_judge: list[str] = Field(
        description="Goals agreed in words (function, sleep, other): the physician judges them."
    )
    outcome: dict[str, Any] = Field(description="The outcome figures the proposal compared.")
    cumulative_mg_per_kg: float | None
    courses: int
    findings: list[FindingView]
    definition: DefinitionView


class RepeatDecisionInput(BaseModel):
    """The physician's decision after a course, with the reason (always written)."""

    model_config = ConfigDict(extra="forbid")

    decision: Decision
    next_protocol_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=80,
        description="The protocol of the next course: required to change protocol; a repeat "
        "keeps the course's own when left out; none after stop.",
        examples=["dose-ladder"],
    )
    reason: str = Field(min_length=1, max_length=REASON_LENGTH)
    amends_id: int | None = Field(
        default=None,
        ge=1,
        le=MAX_RECORD_ID,
        description="The decision this one corrects (the current one of the course).",
    )

    @field_validator("reason")
    @classmethod
    def _written(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("write the reason for the decision")
        return value.strip()

    @field_validator("next_protocol_id")
    @classmethod
    def _protocol(cls, value: str | None) -> str | None:
        return (value or "").strip() or None


class RepeatDecisionView(BaseModel):
    id: int
    order_id: int
    patient_id: int
    proposal: str
    decision: Decision
    next_protocol_id: str | None
    reason: str
    agrees_with_proposal: bool
    decided_at: datetime
    decided_by: str | None
    amends_id: int | None
    amended: bool = Field(description="A later decision corrects this one.")
    basis: dict[str, Any] = Field(description="The proposal and outcome it was decided on.")


class RepeatDecisionPage(BaseModel):
    """The course's repeat proposal, its current decision (None: not decided) and every
    decision recorded, oldest first."""

    proposal: RepeatProposalView
    current: RepeatDecisionView | None
    history: list[RepeatDecisionView]


class CourseOverview(BaseModel):
    """A course as the patient page shows it: outcome, follow-up, repeat decision."""

    outcome: CourseOutcomeView
    follow_ups: CourseFollowUps
    decision: RepeatDecisionPage
