"""The walk through a session's chart: each entry in order, checked and applied by the rules.

``Chart`` holds what the entries so far say (state, pump, prompts, observations) and applies
one entry at a time; an entry the rules refuse raises ``ChartRefused`` and changes nothing.
``ketapath.domain.sessions`` drives it (corrections first, then the walk, then the prompts
of the clock) and turns it into a ``SessionView``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from fractions import Fraction
from typing import Literal

from ketapath.domain.discharge import PadssScore, score_padss
from ketapath.domain.findings import Finding, finding
from ketapath.domain.session_dose import (
    Segment,
    after,
    exact,
    infusion_mg,
    minutes_between,
    running_minutes,
)
from ketapath.domain.session_events import (
    Acknowledge,
    Adjunct,
    Bolus,
    ChartEntry,
    CheckIn,
    Discharge,
    DischargeAssessment,
    Pause,
    PumpProgramme,
    RateChange,
    Resume,
    SideEffect,
    Start,
    Stop,
    Vitals,
    VitalSigns,
)
from ketapath.domain.session_view import (
    OBSERVATIONS,
    TRANSITIONS,
    Acknowledgement,
    AdjunctRecord,
    ChartRefused,
    CheckInRecord,
    DischargeReadiness,
    DischargeRecord,
    FindingData,
    IllegalTransition,
    NoteRecord,
    Prompt,
    Refusal,
    SideEffectRecord,
    State,
    VitalsPoint,
    illegal,
)
from ketapath.knowledge.base import Cite, Source
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.sessions import SessionRulesFile

# Prompts of the clock (not raised by an entry): they come and go with the time and the chart,
# and cannot be acknowledged.
CLOCK_PROMPTS = ("observation-due", "resume-due", "order-delivered", "step-due")
RATE_TOLERANCE_ML = Fraction(1, 10**9)
RATE_TOLERANCE_MG = Fraction(1, 10**6)
# The order-delivered prompt turns from info to warning after this many minutes at the running
# rate past the ordered amount (ketapath-session-rules).
OVER_ORDER_MINUTES = 5


@dataclass(frozen=True)
class PatientFacts:
    """What the rules need to know of the patient (the record's, read by the service)."""

    sex: str = "unknown"
    pregnancy: str = "unknown"


@dataclass(frozen=True)
class SessionContext:
    """What a replay needs besides the entries: the pump programme (from check-in), the
    patient's facts, the clinic's time zone (for the times in messages), the earliest time
    an entry may have (the start of the session's day), and the knowledge base.

    ``patient`` None: the patient's facts are not judged again. A stored chart is read that
    way: its check-in was judged against the record as it was then, and a later change to
    the record does not undo it.
    """

    programme: PumpProgramme | None = None
    patient: PatientFacts | None = None
    zone: tzinfo = UTC
    earliest: datetime | None = None
    kb: Knowledge | None = None
    # the clinic's rules when they differ from the knowledge base's (its own vital-sign
    # thresholds: services.sessions.session_rules)
    clinic_rules: SessionRulesFile | None = None

    @property
    def rules(self) -> SessionRulesFile:
        return self.clinic_rules or (self.kb or knowledge()).session_rules


@dataclass(frozen=True)
class Step:
    """One of the order's rate steps, exact: mL/h as written, mg/h = mL/h x mg/mL."""

    number: int
    ml: Fraction
    mg: Fraction
    start_min: Fraction
    end_min: Fraction
    note: str


def order_steps(programme: PumpProgramme) -> list[Step]:
    concentration = exact(programme.concentration_mg_per_ml)
    steps, clock = [], Fraction(0)
    for step in programme.steps:
        ml = exact(step.rate_ml_per_h)
        duration = exact(step.duration_min)
        steps.append(Step(step.number, ml, ml * concentration, clock, clock + duration, step.note))
        clock += duration
    return steps


@dataclass(frozen=True)
class Effective:
    """An entry as it stands after its corrections (``entry`` None: voided)."""

    seq: int
    entry: ChartEntry | None
    recorded_by: str
    by_role: str
    corrected: bool


@dataclass
class _Pause:
    at: datetime
    seq: int
    side_effect: bool
    hour_from: datetime
    rate: Step


@dataclass
class Chart:
    """The chart so far; ``apply`` one entry at a time."""

    context: SessionContext
    appending: int | None = None
    state: State = "scheduled"
    state_since: datetime | None = None
    last_change_at: datetime | None = None
    checked_in_at: datetime | None = None
    check_in: CheckInRecord | None = None
    high_risk: bool = False
    steps: list[Step] = field(default_factory=list)
    segments: list[Segment] = field(default_factory=list)
    running: Step | None = None
    pause: _Pause | None = None
    pauses: list[tuple[datetime, datetime | None]] = field(default_factory=list)
    resumed_after_side_effect: bool = False
    boluses: list[tuple[int, datetime, Fraction]] = field(default_factory=list)
    prompts: dict[str, Prompt] = field(default_factory=dict)
    vitals: list[VitalsPoint] = field(default_factory=list)
    side_effects: list[SideEffectRecord] = field(default_factory=list)
    adjuncts: list[AdjunctRecord] = field(default_factory=list)
    adjunct_totals: dict[tuple[str, str], Fraction] = field(default_factory=dict)
    notes: list[NoteRecord] = field(default_factory=list)
    assessment: tuple[datetime, DischargeAssessment] | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    discharged: DischargeRecord | None = None
    cancelled_reason: str | None = None
    refusals: list[Refusal] = field(default_factory=list)
    last_seq: int = 0

    @property
    def rules(self) -> SessionRulesFile:
        return self.context.rules

    # ------------------------------------------------------------------ helpers

    def hm(self, at: datetime) -> str:
        """A time as the clinic reads it ('10:42')."""
        return f"{at.astimezone(self.context.zone):%H:%M}"

    def refuse(self, message: str, field_name: str = "", kind: str = "") -> ChartRefused:
        return ChartRefused(message, field=field_name, kind=kind)

    def raise_prompt(
        self,
        prompt_id: str,
        found: Finding,
        at: datetime,
        seq: int | None,
        resolved_by: Literal["anyone", "physician", "none"],
    ) -> None:
        self.prompts[prompt_id] = Prompt.of(prompt_id, found, at, seq, resolved_by)

    def resolve(self, codes: tuple[str, ...], at: datetime, seq: int, resolution: str) -> None:
        for pid, prompt in list(self.prompts.items()):
            if prompt.code in codes and prompt.status != "resolved":
                self.prompts[pid] = prompt.model_copy(
                    update={
                        "status": "resolved",
                        "resolved_at": at,
                        "resolved_by_seq": seq,
                        "resolution": resolution,
                    }
                )

    def unresolved(self, *codes: str) -> Prompt | None:
        return next(
            (p for p in self.prompts.values() if p.code in codes and p.status != "resolved"),
            None,
        )

    def complete_set(self) -> tuple[str, ...]:
        required = tuple(self.rules.monitoring.complete_set)
        if self.high_risk and self.rules.monitoring.etco2_when_high_respiratory_risk:
            required += ("etco2",)
        return required

    # ------------------------------------------------------------------ applying one entry

    def apply(self, item: Effective) -> None:
        """Check ``item`` against the state and the rules, then apply it; refused entries
        are listed in ``refusals`` and change nothing."""
        self.last_seq = max(self.last_seq, item.seq)
        if item.entry is None:
            return
        entry = item.entry
        try:
            self._check_allowed(entry)
            self._check_time(entry)
            self._dispatch(item, entry)
        except ChartRefused as refused:
            self.refusals.append(
                Refusal(
                    seq=item.seq,
                    kind=entry.kind,
                    message=refused.message,
                    field=refused.field,
                    illegal=isinstance(refused, IllegalTransition),
                )
            )

    def _check_allowed(self, entry: ChartEntry) -> None:
        kind = entry.kind
        if kind == "void":
            raise self.refuse(
                "A void is only a correction of an observation entered in error.", "kind", kind
            )
        moves = TRANSITIONS.get(kind)
        if moves is not None and self.state in moves:
            return
        if kind in OBSERVATIONS and self.state in OBSERVATIONS[kind]:
            return
        raise illegal(kind, self.state)

    def _check_time(self, entry: ChartEntry) -> None:
        at = entry.occurred_at
        earliest = self.context.earliest
        if earliest is not None and at < earliest:
            raise self.refuse(
                f"occurred_at: {self.hm(at)} is before the day of the session.",
                "occurred_at",
                entry.kind,
            )
        if entry.kind in TRANSITIONS or entry.kind == "bolus":
            if self.last_change_at is not None and at < self.last_change_at:
                raise self.refuse(
                    f"occurred_at: {self.hm(at)} is before the last change of the session "
                    f"({self.hm(self.last_change_at)}); chart changes in the order they "
                    "happened, or correct the earlier entry.",
                    "occurred_at",
                    entry.kind,
                )
        elif entry.kind != "note" and self.checked_in_at is not None and at < self.checked_in_at:
            raise self.refuse(
                f"occurred_at: {self.hm(at)} is before check-in ({self.hm(self.checked_in_at)}).",
                "occurred_at",
                entry.kind,
            )

    def _move(self, entry: ChartEntry) -> None:
        self.state = TRANSITIONS[entry.kind][self.state]
        self.state_since = entry.occurred_at
        self.last_change_at = entry.occurred_at

    def _dispatch(self, item: Effective, entry: ChartEntry) -> None:
        handler = getattr(self, f"_on_{entry.kind}")
        handler(item, entry)

    # ------------------------------------------------------------------ check-in

    def _on_check_in(self, item: Effective, entry: CheckIn) -> None:
        if not entry.consent_confirmed:
            raise self.refuse(
                "consent_confirmed: confirm the patient's consent before check-in.",
                "consent_confirmed",
                "check_in",
            )
        if not entry.allergies_confirmed:
            raise self.refuse(
                "allergies_confirmed: confirm the patient's allergies before check-in.",
                "allergies_confirmed",
                "check_in",
            )
        self._check_pregnancy(entry)
        missing = [
            v for v in self.rules.monitoring.complete_set if entry.baseline.values()[v] is None
        ]
        if missing:
            raise self.refuse(
                f"baseline: a complete set of observations is needed at check-in (missing "
                f"{', '.join(_vital_name(self.rules, v) for v in missing)}).",
                "baseline",
                "check_in",
            )
        programme = self.context.programme
        if programme is None:
            raise self.refuse(
                "programme: there is no pump programme for this session (no signed order).",
                "programme",
                "check_in",
            )
        self.steps = order_steps(programme)
        self._move(entry)
        self.checked_in_at = entry.occurred_at
        self.high_risk = entry.high_respiratory_risk
        self.check_in = CheckInRecord(
            seq=item.seq,
            at=entry.occurred_at,
            by=item.recorded_by,
            consent_confirmed=entry.consent_confirmed,
            fasting_confirmed=entry.fasting_confirmed,
            escort_present=entry.escort_present,
            allergies_confirmed=entry.allergies_confirmed,
            pregnancy_test=entry.pregnancy_test,
            high_respiratory_risk=entry.high_respiratory_risk,
            baseline=entry.baseline,
            baseline_pain_nrs=entry.baseline_pain_nrs,
        )
        if not entry.fasting_confirmed:
            self.raise_prompt(
                f"fasting-{item.seq}",
                finding(
                    "session:fasting-not-confirmed",
                    "Fasting was not confirmed at check-in: weigh the aspiration risk before "
                    "starting.",
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )
        if not entry.escort_present:
            self.raise_prompt(
                f"escort-{item.seq}",
                finding(
                    "session:no-escort",
                    "No escort at check-in: the patient needs one to go home (arrange one "
                    "before discharge).",
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )

    def _check_pregnancy(self, entry: CheckIn) -> None:
        facts = self.context.patient
        needed = facts is not None and facts.sex == "female" and facts.pregnancy != "not_applicable"
        if needed and entry.pregnancy_test == "not_applicable":
            raise self.refuse(
                "pregnancy_test: record the result (negative or positive); the record does not "
                "say that pregnancy is not applicable for this patient.",
                "pregnancy_test",
                "check_in",
            )
        if entry.pregnancy_test == "positive":
            raise self.refuse(
                "pregnancy_test: a positive pregnancy test: the infusion is not given today; "
                "the responsible physician reviews the order (pregnancy is a relative "
                "contraindication).",
                "pregnancy_test",
                "check_in",
            )

    # ------------------------------------------------------------------ the pump

    def _step_for(self, entry: Start | RateChange | Resume, default: Step) -> Step:
        if entry.rate_ml_per_h is None and entry.rate_mg_per_h is None:
            return self._in_pump_range(entry.kind, default)
        if entry.rate_ml_per_h is not None:
            wanted, unit, tolerance = exact(entry.rate_ml_per_h), "mL/h", RATE_TOLERANCE_ML
            matches = [s for s in self.steps if abs(s.ml - wanted) <= tolerance]
        else:
            assert entry.rate_mg_per_h is not None
            wanted, unit, tolerance = exact(entry.rate_mg_per_h), "mg/h", RATE_TOLERANCE_MG
            matches = [s for s in self.steps if abs(s.mg - wanted) <= tolerance]
        if not matches:
            rates = "; ".join(_rate_text(s) for s in self.steps)
            raise self.refuse(
                f"rate: {float(wanted):g} {unit} is not a rate of the signed order (its rates: "
                f"{rates}); another rate needs a new order signed by a physician.",
                "rate_ml_per_h" if unit == "mL/h" else "rate_mg_per_h",
                entry.kind,
            )
        current = self.running.number if self.running else 0
        step = next((s for s in matches if s.number >= current), matches[0])
        return self._in_pump_range(entry.kind, step)

    def _in_pump_range(self, kind: str, step: Step) -> Step:
        programme = self.context.programme
        assert programme is not None
        low, high = exact(programme.pump_min_ml_per_h), exact(programme.pump_max_ml_per_h)
        if not low <= step.ml <= high:
            raise self.refuse(
                f"rate: {float(step.ml):g} mL/h is outside the pump's range "
                f"({programme.pump_min_ml_per_h:g}-{programme.pump_max_ml_per_h:g} mL/h).",
                "rate_ml_per_h",
                kind,
            )
        return step

    def _hold_for_stop(self, kind: str) -> None:
        stop = self.unresolved("session:stop-infusion")
        if stop is not None:
            raise self.refuse(
                f"{stop.message} The infusion cannot {'start' if kind == 'start' else kind} "
                f"until it is stopped, unless a physician acknowledges prompt {stop.id} with a "
                "direction.",
                "kind",
                kind,
            )

    def _hold_increase(self, kind: str, new: Step, old: Step) -> None:
        if new.mg <= old.mg:
            return
        held = self.unresolved(
            "session:stop-infusion", "session:pause-for-side-effect", "session:call-physician"
        )
        if held is not None:
            raise self.refuse(
                f"rate: a higher rate is held while prompt {held.id} is open ({held.message}); "
                "resolve it first.",
                "rate_ml_per_h",
                kind,
            )

    def _open_segment(self, item: Effective, at: datetime, step: Step) -> None:
        self.segments.append(Segment(at, None, step.ml, step.mg, item.seq))
        self.running = step

    def _close_segment(self, at: datetime) -> None:
        if self.segments and self.segments[-1].end is None:
            last = self.segments[-1]
            self.segments[-1] = Segment(
                last.start, at, last.rate_ml_per_h, last.rate_mg_per_h, last.seq
            )

    def _on_start(self, item: Effective, entry: Start) -> None:
        self._hold_for_stop("start")
        step = self._step_for(entry, self.steps[0])
        self._move(entry)
        self.started_at = entry.occurred_at
        self._open_segment(item, entry.occurred_at, step)

    def _on_rate_change(self, item: Effective, entry: RateChange) -> None:
        assert self.running is not None
        step = self._step_for(entry, self.running)
        if step.mg == self.running.mg:
            raise self.refuse(
                f"rate: the pump already runs at {_rate_text(step)}.",
                "rate_ml_per_h",
                "rate_change",
            )
        self._hold_increase("rate_change", step, self.running)
        self._move(entry)
        self._close_segment(entry.occurred_at)
        self._open_segment(item, entry.occurred_at, step)
        self.resolve(("session:step-due",), entry.occurred_at, item.seq, "rate changed")

    def _on_pause(self, item: Effective, entry: Pause) -> None:
        assert self.running is not None
        prompted = self.unresolved("session:pause-for-side-effect") is not None
        side_effect = entry.reason == "side_effect" or prompted
        self._move(entry)
        self._close_segment(entry.occurred_at)
        self.pause = _Pause(
            entry.occurred_at, item.seq, side_effect, entry.occurred_at, self.running
        )
        self.pauses.append((entry.occurred_at, None))
        self.running = None
        self.resolve(
            ("session:pause-for-side-effect",),
            entry.occurred_at,
            item.seq,
            "the infusion was paused",
        )

    def _end_pause(self, at: datetime) -> None:
        if self.pauses and self.pauses[-1][1] is None:
            self.pauses[-1] = (self.pauses[-1][0], at)

    def _on_resume(self, item: Effective, entry: Resume) -> None:
        assert self.pause is not None
        self._hold_for_stop("resume")
        pause = self.pause
        hour = after(pause.hour_from, self.rules.pause.minutes)
        if pause.side_effect and entry.occurred_at < hour and item.by_role != "physician":
            raise self.refuse(
                f"The pause for a side effect lasts {self.rules.pause.minutes} minutes: resume "
                f"from {self.hm(hour)}, or a physician resumes earlier.",
                "occurred_at",
                "resume",
            )
        step = self._step_for(entry, pause.rate)
        self._hold_increase("resume", step, pause.rate)
        self._move(entry)
        self._end_pause(entry.occurred_at)
        self._open_segment(item, entry.occurred_at, step)
        if pause.side_effect:
            self.resumed_after_side_effect = True
        self.pause = None

    def _end_infusion(self, item: Effective, at: datetime, how: str) -> None:
        self._close_segment(at)
        self._end_pause(at)
        self.running = None
        self.pause = None
        self.ended_at = at
        self.resolve(("session:pause-for-side-effect", "session:stop-infusion"), at, item.seq, how)

    def _on_stop(self, item: Effective, entry: Stop) -> None:
        self._move(entry)
        self._end_infusion(item, entry.occurred_at, "the infusion was stopped")

    def _on_complete(self, item: Effective, entry: ChartEntry) -> None:
        self._move(entry)
        self._end_infusion(item, entry.occurred_at, "the infusion was completed")

    def _on_bolus(self, item: Effective, entry: Bolus) -> None:
        self._hold_for_stop("bolus")
        programme = self.context.programme
        assert programme is not None
        ordered = exact(programme.bolus_mg)
        if ordered <= 0:
            raise self.refuse("dose_mg: the signed order has no bolus.", "dose_mg", "bolus")
        given = sum((mg for _, _, mg in self.boluses), Fraction(0))
        dose = exact(entry.dose_mg)
        if given + dose > ordered + RATE_TOLERANCE_ML:
            left = max(Fraction(0), ordered - given)
            raise self.refuse(
                f"dose_mg: {entry.dose_mg:g} mg would give more than the order's bolus of "
                f"{programme.bolus_mg:g} mg ({float(left):g} mg left to give).",
                "dose_mg",
                "bolus",
            )
        self.boluses.append((item.seq, entry.occurred_at, dose))
        self.last_change_at = entry.occurred_at

    def _on_begin_observation(self, item: Effective, entry: ChartEntry) -> None:
        self._move(entry)

    def _on_cancel(self, item: Effective, entry: ChartEntry) -> None:
        self._move(entry)
        self.cancelled_reason = getattr(entry, "reason", "")

    def _on_did_not_attend(self, item: Effective, entry: ChartEntry) -> None:
        self._move(entry)

    # ------------------------------------------------------------------ observations

    def _on_vitals(self, item: Effective, entry: Vitals) -> None:
        values = entry.values()
        complete = all(values[v] is not None for v in self.complete_set())
        self.vitals.append(
            VitalsPoint(
                **{k: v for k, v in values.items()},
                seq=item.seq,
                at=entry.occurred_at,
                recorded_by=item.recorded_by,
                corrected=item.corrected,
                complete=complete,
            )
        )
        for alert in self.rules.vital_alerts:
            value = values.get(alert.id)
            if value is None:
                continue
            side = alert.outside(value)
            if side is None:
                self._resolve_alerts(alert.id, entry.occurred_at, item.seq)
                continue
            limit = alert.low if side == "low" else alert.high
            words = "below" if side == "low" else "above"
            self.raise_prompt(
                f"vital-{alert.id.replace('_', '-')}-{item.seq}",
                finding(
                    "session:vital-alert",
                    f"{alert.name} {value:g} {alert.unit} at {self.hm(entry.occurred_at)} is "
                    f"{words} the alert threshold of {limit:g} {alert.unit}.",
                    source=alert.source,
                    subject=alert.id,
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )
        self._check_etco2(item, entry, values)

    def _resolve_alerts(self, vital: str, at: datetime, seq: int) -> None:
        for pid, prompt in list(self.prompts.items()):
            if (
                prompt.code == "session:vital-alert"
                and pid.startswith(f"vital-{vital.replace('_', '-')}-")
                and prompt.status != "resolved"
            ):
                self.prompts[pid] = prompt.model_copy(
                    update={
                        "status": "resolved",
                        "resolved_at": at,
                        "resolved_by_seq": seq,
                        "resolution": "a later reading is inside the thresholds",
                    }
                )

    def _check_etco2(self, item: Effective, entry: Vitals, values: dict[str, int | None]) -> None:
        if not (self.high_risk and self.rules.monitoring.etco2_when_high_respiratory_risk):
            return
        if values["etco2"] is not None:
            self.resolve(
                ("session:etco2-missing",), entry.occurred_at, item.seq, "EtCO2 was recorded"
            )
            return
        self.raise_prompt(
            f"etco2-{item.seq}",
            finding(
                "session:etco2-missing",
                f"No end-tidal CO2 in the observations at {self.hm(entry.occurred_at)}: the "
                "patient was flagged at high respiratory risk.",
            ),
            entry.occurred_at,
            item.seq,
            "anyone",
        )

    def _on_side_effect(self, item: Effective, entry: SideEffect) -> None:
        rule = self.rules.effect(entry.effect)
        troublesome = (
            entry.troublesome
            if entry.troublesome is not None
            else entry.severity in self.rules.troublesome.severities
        )
        action = rule.action if (rule.any_severity or troublesome) else "none"
        self.side_effects.append(
            SideEffectRecord(
                seq=item.seq,
                at=entry.occurred_at,
                effect=entry.effect,
                name=rule.name,
                severity=entry.severity,
                troublesome=troublesome,
                action=action,
                description=entry.description,
                cadss6_total=entry.cadss6_total,
                recorded_by=item.recorded_by,
                corrected=item.corrected,
            )
        )
        when = self.hm(entry.occurred_at)
        infusing = self.state in ("checked_in", "running", "paused")
        if rule.action == "stop" and infusing:
            verb = (
                "do not start the infusion" if self.state == "checked_in" else "stop the infusion"
            )
            self.raise_prompt(
                f"stop-{item.seq}",
                finding(
                    "session:stop-infusion",
                    f"{rule.name} reported at {when}: {verb}.",
                    source=rule.source,
                    subject=entry.effect,
                ),
                entry.occurred_at,
                item.seq,
                "physician",
            )
        elif action == "pause" and self.state in ("running", "paused"):
            self._troublesome(item, entry, rule.name, rule.source)

    def _troublesome(self, item: Effective, entry: SideEffect, name: str, source: Source) -> None:
        when = self.hm(entry.occurred_at)
        if self.resumed_after_side_effect:
            self.raise_prompt(
                f"call-{item.seq}",
                finding(
                    "session:call-physician",
                    f"{name} at {when}, after the infusion recommenced from a pause for a side "
                    "effect: contact the responsible physician for direction.",
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )
        elif self.state == "running":
            self.raise_prompt(
                f"pause-{item.seq}",
                finding(
                    "session:pause-for-side-effect",
                    f"{name} at {when} is troublesome: pause the infusion for "
                    f"{self.rules.pause.minutes} minutes, then recommence.",
                    source=source,
                    subject=entry.effect,
                ),
                entry.occurred_at,
                item.seq,
                "physician",
            )
        elif self.pause is not None and not self.pause.side_effect:
            # already paused for another reason: the pause now counts as one for the side
            # effect, and its hour runs from the report
            self.pause.side_effect = True
            self.pause.hour_from = entry.occurred_at

    def _on_adjunct(self, item: Effective, entry: Adjunct) -> None:
        programme = self.context.programme
        assert programme is not None
        drug, route = entry.drug.strip().lower(), entry.route
        dose_mg = exact(entry.dose) / (1000 if entry.unit == "mcg" else 1)
        total = self.adjunct_totals.get((drug, route), Fraction(0)) + dose_mg
        limit = next(
            (a for a in programme.adjunct_limits if a.drug == drug and a.route == route), None
        )
        source = _library_source(programme, drug, route)
        hard, soft = [], []
        if limit is not None:
            if limit.dose_unit == "mg":
                if dose_mg > exact(limit.dose_hard):
                    hard.append(f"the dose is above the hard limit of {limit.dose_hard:g} mg")
                elif limit.dose_soft is not None and dose_mg > exact(limit.dose_soft):
                    soft.append(f"the dose is above the soft limit of {limit.dose_soft:g} mg")
            if total > exact(limit.session_hard):
                hard.append(
                    f"the session total {float(total):g} mg is above the hard limit of "
                    f"{limit.session_hard:g} mg"
                )
            elif limit.session_soft is not None and total > exact(limit.session_soft):
                soft.append(
                    f"the session total {float(total):g} mg is above the soft limit of "
                    f"{limit.session_soft:g} mg"
                )
        if hard and item.by_role != "physician":
            raise self.refuse(
                f"dose: {entry.drug} {entry.dose:g} {entry.unit} {entry.route}: "
                f"{'; '.join(hard)} (drug library). Check the dose and its unit; a physician "
                "may record a dose that was really given.",
                "dose",
                "adjunct",
            )
        self.adjunct_totals[(drug, route)] = total
        self.adjuncts.append(
            AdjunctRecord(
                seq=item.seq,
                at=entry.occurred_at,
                drug=drug,
                dose=entry.dose,
                unit=entry.unit,
                route=route,
                dose_mg=float(dose_mg),
                recorded_by=item.recorded_by,
                corrected=item.corrected,
            )
        )
        if hard or soft:
            self.raise_prompt(
                f"adjunct-{item.seq}",
                finding(
                    "session:adjunct-limit",
                    f"{drug} {entry.dose:g} {entry.unit} {route}: {'; '.join(hard + soft)}.",
                    severity="soft" if hard else "warning",
                    source=source,
                    subject=drug,
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )
        ordered = any(a.drug == drug and a.route == route for a in programme.adjuncts)
        if limit is None or not ordered:
            why = (
                "the drug library has no limit for it"
                if limit is None
                else "it is not among the signed order's adjuncts"
            )
            self.raise_prompt(
                f"adjunct-order-{item.seq}",
                finding(
                    "session:adjunct-not-ordered",
                    f"{drug} {entry.dose:g} {entry.unit} {route}: {why}.",
                    subject=drug,
                ),
                entry.occurred_at,
                item.seq,
                "anyone",
            )

    def _on_note(self, item: Effective, entry: ChartEntry) -> None:
        self.notes.append(
            NoteRecord(
                seq=item.seq,
                at=entry.occurred_at,
                kind=entry.kind,
                text=entry.note,
                recorded_by=item.recorded_by,
            )
        )

    def _on_acknowledge(self, item: Effective, entry: Acknowledge) -> None:
        pid = entry.prompt_id
        if pid.startswith(CLOCK_PROMPTS):
            raise self.refuse(
                f"prompt_id: {pid} follows the clock and the chart; it closes by itself when "
                "what it asks is charted.",
                "prompt_id",
                "acknowledge",
            )
        prompt = self.prompts.get(pid)
        if prompt is None:
            if self.appending == item.seq:
                raise self.refuse(
                    f"prompt_id: no prompt {pid} in this chart.", "prompt_id", "acknowledge"
                )
            return  # a correction removed the prompt it answered: nothing to do
        if prompt.status == "resolved":
            if self.appending == item.seq:
                raise self.refuse(
                    f"prompt_id: {pid} is already resolved ({prompt.resolution}).",
                    "prompt_id",
                    "acknowledge",
                )
            return
        if any(
            a.by == item.recorded_by and a.role == item.by_role for a in prompt.acknowledgements
        ):
            if self.appending == item.seq:
                raise self.refuse(
                    f"prompt_id: you have already acknowledged {pid}.", "prompt_id", "acknowledge"
                )
            return
        if entry.occurred_at < prompt.raised_at:
            raise self.refuse(
                f"occurred_at: {self.hm(entry.occurred_at)} is before the prompt was raised "
                f"({self.hm(prompt.raised_at)}).",
                "occurred_at",
                "acknowledge",
            )
        if prompt.code == "session:call-physician" and len(entry.note.strip()) < 3:
            raise self.refuse(
                "note: record the responsible physician's direction with the acknowledgement.",
                "note",
                "acknowledge",
            )
        self._acknowledge(item, entry, prompt)

    def _acknowledge(self, item: Effective, entry: Acknowledge, prompt: Prompt) -> None:
        acks = [
            *prompt.acknowledgements,
            Acknowledgement(
                seq=item.seq,
                by=item.recorded_by,
                role=item.by_role,
                at=entry.occurred_at,
                note=entry.note,
            ),
        ]
        update: dict[str, object] = {"acknowledgements": acks, "status": "acknowledged"}
        closes = prompt.resolved_by == "anyone" or (
            prompt.resolved_by == "physician" and item.by_role == "physician"
        )
        if closes:
            who = "a physician's direction" if item.by_role == "physician" else "acknowledged"
            update |= {
                "status": "resolved",
                "resolved_at": entry.occurred_at,
                "resolved_by_seq": item.seq,
                "resolution": f"{who}: {entry.note}".rstrip(": "),
            }
        self.prompts[prompt.id] = prompt.model_copy(update=update)

    def _on_discharge_assessment(self, item: Effective, entry: DischargeAssessment) -> None:
        if self.ended_at is not None and entry.occurred_at < self.ended_at:
            raise self.refuse(
                f"occurred_at: the discharge assessment at {self.hm(entry.occurred_at)} is before "
                f"the infusion ended ({self.hm(self.ended_at)}).",
                "occurred_at",
                "discharge_assessment",
            )
        if self.assessment is None or entry.occurred_at >= self.assessment[0]:
            self.assessment = (entry.occurred_at, entry)

    def _on_discharge(self, item: Effective, entry: Discharge) -> None:
        readiness = self.readiness(entry.occurred_at)
        problems = list(readiness.blockers)
        if not entry.escort_present:
            problems.append(
                FindingData.of(
                    finding("session:discharge-escort", "No escort is recorded at discharge.")
                )
            )
        if not entry.emergency_plan_given:
            problems.append(
                FindingData.of(
                    finding(
                        "session:discharge-emergency-plan",
                        "The after-hours emergency plan is not recorded as given.",
                    )
                )
            )
        reason = (entry.override_reason or "").strip()
        if problems and (item.by_role != "physician" or not reason):
            words = " ".join(p.message for p in problems)
            raise self.refuse(
                f"Cannot discharge yet: {words} A physician may discharge with a written reason "
                "(override_reason).",
                "override_reason",
                "discharge",
            )
        self._move(entry)
        self.discharged = DischargeRecord(
            seq=item.seq,
            at=entry.occurred_at,
            by=item.recorded_by,
            role=item.by_role,
            escort_present=entry.escort_present,
            escort_name=entry.escort_name,
            emergency_plan_given=entry.emergency_plan_given,
            override_reason=reason or None,
            overridden=problems,
        )

    # ------------------------------------------------------------------ discharge readiness

    def observation_min(self) -> int:
        programme = self.context.programme
        if programme is not None and programme.observation_min:
            return programme.observation_min
        return self.rules.observation_period.default_min

    def post_infusion_vitals(self) -> VitalSigns | None:
        if self.ended_at is None:
            return None
        after_end = [v for v in self.vitals if v.complete and v.at >= self.ended_at]
        if not after_end:
            return None
        latest = max(after_end, key=lambda v: (v.at, v.seq))
        return VitalSigns(**{k: getattr(latest, k) for k in VitalSigns.model_fields})

    def padss(self) -> PadssScore | None:
        if self.ended_at is None:
            return None
        baseline = self.check_in.baseline if self.check_in else None
        assessment = self.assessment[1] if self.assessment else None
        return score_padss(baseline, self.post_infusion_vitals(), assessment, self.rules.padss)

    def readiness(self, at: datetime) -> DischargeReadiness:
        minutes = self.observation_min()
        ends = after(self.ended_at, minutes) if self.ended_at is not None else None
        padss = self.padss()
        blockers: list[Finding] = []
        if ends is None:
            blockers.append(
                finding(
                    "session:discharge-observation-period",
                    "The infusion has not ended.",
                    source=self.rules.observation_period.source,
                )
            )
        elif at < ends:
            blockers.append(
                finding(
                    "session:discharge-observation-period",
                    f"Observation until {self.hm(ends)} ({minutes} minutes after the infusion "
                    "ended).",
                    source=self.rules.observation_period.source,
                )
            )
        if padss is not None and padss.total is None:
            blockers.append(
                finding(
                    "session:discharge-score",
                    f"{padss.name} cannot be scored yet: {', '.join(padss.missing)} not charted "
                    "after the infusion.",
                )
            )
        elif padss is not None and not padss.met:
            blockers.append(
                finding(
                    "session:discharge-score",
                    f"{padss.name} {padss.total} of {padss.maximum} (fit for discharge from "
                    f"{padss.threshold}).",
                )
            )
        unanswered = [p.id for p in self.prompts.values() if p.status == "open"]
        if unanswered:
            blockers.append(
                finding(
                    "session:discharge-open-prompts",
                    f"Prompts not yet answered: {', '.join(unanswered)}.",
                )
            )
        return DischargeReadiness(
            ready=self.state == "observation" and not blockers,
            observation_min=minutes,
            infusion_ended_at=self.ended_at,
            observation_ends_at=ends,
            padss=padss,
            blockers=[FindingData.of(b) for b in blockers],
            confirm_at_discharge=["an escort present", "the after-hours emergency plan given"],
        )

    # ------------------------------------------------------------------ the clock's prompts

    def clock_prompts(self, now: datetime) -> list[Prompt]:
        out: list[Prompt] = []
        due = self.next_observation_due()
        if due is not None and now >= due:
            overdue = now >= after(due, self.rules.observation_intervals.overdue_after_min)
            out.append(
                Prompt.of(
                    "observation-due",
                    finding(
                        "session:observation-due",
                        (
                            f"Observations overdue since {self.hm(due)}."
                            if overdue
                            else f"Observations due at {self.hm(due)}."
                        ),
                        severity="warning" if overdue else "info",
                        source=self.rules.observation_intervals.source,
                    ),
                    due,
                    None,
                    "none",
                )
            )
        if self.state == "paused" and self.pause is not None and self.pause.side_effect:
            hour = after(self.pause.hour_from, self.rules.pause.minutes)
            if now >= hour:
                out.append(
                    Prompt.of(
                        f"resume-due-{self.pause.seq}",
                        finding(
                            "session:resume-due",
                            f"The {self.rules.pause.minutes}-minute pause for a side effect "
                            f"ended at {self.hm(hour)}: recommence the infusion if the side "
                            "effect has settled.",
                        ),
                        hour,
                        None,
                        "none",
                    )
                )
        if self.state == "running":
            out += self._order_prompts(now)
        return out

    def _order_prompts(self, now: datetime) -> list[Prompt]:
        programme = self.context.programme
        if programme is None or self.running is None:
            return []
        out: list[Prompt] = []
        # the infusion against the order's infusion (a bolus not given is not the pump's)
        delivered = infusion_mg(self.segments, now)
        ordered = exact(programme.total_mg) - exact(programme.bolus_mg)
        if ordered > 0 and delivered >= ordered:
            over = delivered - ordered
            much = over > self.running.mg * Fraction(OVER_ORDER_MINUTES, 60)
            text = (
                f"{float(delivered):.1f} mg infused, {float(over):.1f} mg more than the "
                f"ordered {float(ordered):g} mg: complete the infusion."
                if much
                else f"The ordered infusion of {float(ordered):g} mg has been delivered: "
                "complete the infusion."
            )
            out.append(
                Prompt.of(
                    "order-delivered",
                    finding(
                        "session:order-delivered", text, severity="warning" if much else "info"
                    ),
                    now,
                    None,
                    "none",
                )
            )
            return out
        ran = running_minutes(self.segments, now)
        planned = next((s for s in self.steps if s.end_min > ran), None)
        if planned is not None and planned.number > self.running.number:
            note = f" ({planned.note})" if planned.note else ""
            out.append(
                Prompt.of(
                    f"step-due-{planned.number}",
                    finding(
                        "session:step-due",
                        f"Step {planned.number} of the order is due by the running time "
                        f"({float(ran):.0f} min): {_rate_text(planned)}{note}.",
                    ),
                    now,
                    None,
                    "none",
                )
            )
        return out

    def last_observation_at(self) -> datetime | None:
        times = [v.at for v in self.vitals if v.complete]
        if self.checked_in_at is not None:
            times.append(self.checked_in_at)
        return max(times) if times else None

    def next_observation_due(self) -> datetime | None:
        minutes = self.rules.observation_intervals.minutes
        if self.state not in minutes:
            return None
        last = self.last_observation_at()
        if last is None:
            return None
        return after(last, minutes[self.state])

    def paused_minutes(self, now: datetime) -> Fraction:
        return sum(
            (minutes_between(start, end or max(start, now)) for start, end in self.pauses),
            Fraction(0),
        )


def _vital_name(rules: SessionRulesFile, vital: str) -> str:
    alert = rules.alert(vital)
    return alert.name if alert is not None else vital


def _rate_text(step: Step) -> str:
    return f"{float(step.ml):g} mL/h ({float(step.mg):g} mg/h)"


def _library_source(programme: PumpProgramme, drug: str, route: str) -> Source:
    ref = "ketapath-drug-library" if not programme.library_version else "clinic-drug-library"
    where = f"adjunct limits, {drug} ({route})"
    if programme.library_name:
        where += f", {programme.library_name} version {programme.library_version}"
    return Source(cite=(Cite(ref=ref, at=where[:200]),))
