"""The registry: one row per course, from its charts, diary and assessments, and the rates
computed over many rows. Pure: no database, no clock.

A course (a signed order) is summarised from what was recorded, with the definitions used
everywhere else, so that the registry and the patient's own page can never disagree:

- its sessions' delivered doses, running times, adjuncts and side effects come from replaying
  each chart (``ketapath.domain.sessions.replay``), summarised by :func:`session_facts`;
- its outcomes (responder at 30% and 50% at the first follow-up, duration of relief, the
  35-day pain area) are ``ketapath.domain.outcomes``' functions, called by
  :func:`course_outcomes`.

Over many courses, :func:`band_of` puts a number in a band of ``registry_rules.yaml``,
:func:`wilson_interval` gives a rate's 95% interval and :func:`rates_by` the responder rates of
each group. Unknown is never zero: a dose per kg without a weight, a cumulative dose after a
course of unknown dose and a responder status without scores are unknown, counted apart.
Survival curves and the regression are in :mod:`ketapath.domain.registry_survival`.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from statistics import NormalDist
from typing import Literal

from ketapath.domain.errors import InvalidInput
from ketapath.domain.outcomes import pain_auc, relief_duration, responder
from ketapath.domain.session_events import ChartEvent, Stop
from ketapath.domain.session_view import SessionView
from ketapath.domain.sessions import delivered_fraction, effective_log
from ketapath.knowledge.outcomes import OutcomeRules, outcome_rules
from ketapath.knowledge.registry import Bands, RegistryRules, registry_rules

CourseStatus = Literal["complete", "in progress", "not given"]
GroupBy = Literal["protocol", "indication", "dose_band", "duration_band", "adjuncts", "exposure"]
GROUP_BYS: tuple[GroupBy, ...] = (
    "protocol",
    "indication",
    "dose_band",
    "duration_band",
    "adjuncts",
    "exposure",
)
GROUP_LABELS: Mapping[str, str] = {
    "protocol": "Protocol",
    "indication": "Indication",
    "dose_band": "Total dose per kg",
    "duration_band": "Infusion hours",
    "adjuncts": "Adjuncts given",
    "exposure": "Predicted exposure",
}
NOT_RECOGNISED = "not recognised: check by hand"
UNKNOWN_BAND = "unknown"
NO_ADJUNCT = "none"
NOT_COMPUTED = "not computed"
# The infusion has ended (or never will) in these states: its dose is final.
FINAL_STATES = frozenset(
    {"stopped", "completed", "observation", "discharged", "cancelled", "did_not_attend"}
)
SIDE_EFFECT_STOPS = frozenset({"dissociation", "amnesia", "side_effect"})


# ---------------------------------------------------------------------------- one session


@dataclass(frozen=True)
class SessionFacts:
    """What the registry needs of one session, from its replayed chart."""

    scheduled_on: date
    final: bool
    given: bool
    delivered_mg: Fraction
    running_minutes: float
    ended_on: date | None
    adjuncts: frozenset[str]
    side_effects: int
    troublesome_side_effects: int
    stopped_for_side_effect: bool
    refusals: int


def session_facts(
    scheduled_on: date,
    events: Sequence[ChartEvent],
    view: SessionView,
    ended_on: date | None,
) -> SessionFacts:
    """A session's facts from its chart (``events``) replayed (``view``); ``ended_on`` is the
    clinic date on which the infusion ended, if it did (the caller knows the clinic's zone)."""
    stops = [
        e.entry
        for e in effective_log(events)[0]
        if e.entry is not None and isinstance(e.entry, Stop)
    ]
    return SessionFacts(
        scheduled_on=scheduled_on,
        final=view.state in FINAL_STATES,
        given=view.dose.started_at is not None,
        delivered_mg=delivered_fraction(view),
        running_minutes=view.dose.running_minutes,
        ended_on=ended_on,
        adjuncts=frozenset(a.drug for a in view.adjuncts),
        side_effects=len(view.side_effects),
        troublesome_side_effects=sum(1 for s in view.side_effects if s.troublesome),
        stopped_for_side_effect=any(s.reason in SIDE_EFFECT_STOPS for s in stops),
        refusals=len(view.refusals),
    )


# ---------------------------------------------------------------------------- one course


@dataclass(frozen=True)
class CourseDelivery:
    """A course's sessions summed: the dose, the running time, the adjuncts, the events."""

    status: CourseStatus
    sessions_planned: int
    sessions_given: int
    first_session_on: date | None
    last_session_on: date | None
    delivered_mg: float
    delivered_mg_per_kg: float | None
    infusion_hours: float
    adjuncts: str
    side_effects: int
    troublesome_side_effects: int
    stopped_for_side_effect: int
    chart_refusals: int


def course_delivery(sessions: Sequence[SessionFacts], weight_kg: float | None) -> CourseDelivery:
    """The sessions of one course summed. ``weight_kg``: the actual body weight the course was
    signed at (None: unknown, so the dose per kg is unknown, never computed from a guess).

    The course is ``complete`` when every session's infusion has ended or will not happen and
    at least one was given, ``not given`` when none was, ``in progress`` otherwise. The last
    session day is the day the last given infusion ended (its scheduled day if it has no end).
    """
    given = [s for s in sessions if s.given]
    delivered = sum((s.delivered_mg for s in sessions), Fraction(0))
    status: CourseStatus
    if not all(s.final for s in sessions) or not sessions:
        status = "in progress"
    else:
        status = "complete" if given else "not given"
    last = max((s.ended_on or s.scheduled_on for s in given), default=None)
    per_kg = None
    if weight_kg is not None and math.isfinite(weight_kg) and weight_kg > 0:
        per_kg = float(delivered / Fraction(weight_kg))
    return CourseDelivery(
        status=status,
        sessions_planned=len(sessions),
        sessions_given=len(given),
        first_session_on=min((s.scheduled_on for s in sessions), default=None),
        last_session_on=last,
        delivered_mg=float(delivered),
        delivered_mg_per_kg=per_kg,
        infusion_hours=sum(s.running_minutes for s in sessions) / 60,
        adjuncts=adjunct_key(a for s in given for a in s.adjuncts),
        side_effects=sum(s.side_effects for s in sessions),
        troublesome_side_effects=sum(s.troublesome_side_effects for s in sessions),
        stopped_for_side_effect=sum(1 for s in sessions if s.stopped_for_side_effect),
        chart_refusals=sum(s.refusals for s in sessions),
    )


def adjunct_key(drugs: Iterable[str]) -> str:
    """The adjuncts given as one group name ('clonidine + midazolam'; 'none')."""
    names = sorted({d.strip().lower() for d in drugs if d.strip()})
    return " + ".join(names) if names else NO_ADJUNCT


@dataclass(frozen=True)
class CourseOutcomes:
    """The outcomes of a course, by outcome_rules.yaml's definitions (unknown: None)."""

    baseline_nrs: int | None
    follow_up_days: int | None
    follow_up_nrs: int | None
    responder_30: str
    responder_50: str
    relief_status: str
    relief_days: int | None
    relief_event: bool | None
    auc_status: str
    auc: float | None


def course_outcomes(
    baseline_nrs: int | None,
    follow_ups: Mapping[int, int],
    diary: Mapping[date, int],
    last_session_on: date | None,
    *,
    rules: RegistryRules | None = None,
    outcomes: OutcomeRules | None = None,
) -> CourseOutcomes:
    """Responder status at the first follow-up (``follow_ups``: NRS by days after the last
    session), duration of relief and the 35-day pain area from the daily ``diary``, each by
    ``ketapath.domain.outcomes``. Without a session given, every outcome is unknown."""
    r = rules or registry_rules()
    o = outcomes or outcome_rules()
    first = min(follow_ups) if follow_ups else None
    value = follow_ups[first] if first is not None else None
    moderate, substantial = o.responder.percents
    at_30 = responder(baseline_nrs, value, moderate, rules=o).status
    at_50 = responder(baseline_nrs, value, substantial, rules=o).status
    if last_session_on is None:
        return CourseOutcomes(
            baseline_nrs,
            first,
            value,
            "unknown",
            "unknown",
            "no data",
            None,
            None,
            "incomplete",
            None,
        )
    relief_status, relief_days, relief_event = "no data", None, None
    if baseline_nrs is not None:
        end = last_session_on + timedelta(days=r.relief.follow_up_days)
        relief = relief_duration(baseline_nrs, diary, last_session_on, end, rules=o)
        relief_status, relief_days = relief.status, relief.days
        relief_event = relief.event if relief.status in ("ended", "censored") else None
    area = pain_auc(diary, last_session_on, rules=o)
    return CourseOutcomes(
        baseline_nrs=baseline_nrs,
        follow_up_days=first,
        follow_up_nrs=value,
        responder_30=at_30,
        responder_50=at_50,
        relief_status=relief_status,
        relief_days=relief_days,
        relief_event=relief_event,
        auc_status=area.status,
        auc=area.auc,
    )


# ---------------------------------------------------------------------------- bands


# Labels by the bands' identity (hashing a pydantic model field by field on every course was a
# tenth of a second at registry size); the entry keeps the bands alive, so an id is not reused.
_LABELS: dict[int, tuple[Bands, tuple[str, ...]]] = {}


def band_labels(bands: Bands) -> tuple[str, ...]:
    """Every band's label, lowest first: 'under 1 mg/kg', '1-2 mg/kg', ..., '20 mg/kg or more'.

    A band includes its lower edge and not its upper one."""
    known = _LABELS.get(id(bands))
    if known is not None and known[0] is bands:
        return known[1]
    edges, unit = bands.edges, bands.unit
    labels = [f"under {edges[0]:g} {unit}"]
    labels += [f"{low:g}-{high:g} {unit}" for low, high in itertools.pairwise(edges)]
    labels.append(f"{edges[-1]:g} {unit} or more")
    _LABELS[id(bands)] = (bands, tuple(labels))
    return tuple(labels)


def band_index(value: float, edges: Sequence[float]) -> int:
    """The band ``value`` falls in: 0 below the first edge, len(edges) from the last."""
    if not math.isfinite(value):
        raise InvalidInput("value: a band needs a finite number", field="value")
    index = 0
    for edge in edges:
        if value >= edge:
            index += 1
    return index


def band_of(value: float | None, bands: Bands) -> str:
    """The label of the band ``value`` falls in; ``unknown`` for no value (never band 0)."""
    if value is None or not math.isfinite(value):
        return UNKNOWN_BAND
    edges = bands.edges
    return band_labels(bands)[sum(1 for edge in edges if value >= edge)]


def band_order(bands: Bands) -> tuple[str, ...]:
    """The labels in their display order, unknown last."""
    return (*band_labels(bands), UNKNOWN_BAND)


# ---------------------------------------------------------------------------- rates


@dataclass(frozen=True)
class Rate:
    """``events`` of ``n`` courses, as a proportion with its interval (None when n is 0);
    ``unknown`` courses are neither events nor in ``n``."""

    n: int
    events: int
    unknown: int
    proportion: float | None
    low: float | None
    high: float | None


def wilson_interval(events: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson's score interval for the proportion ``events / n`` (Wilson 1927, p. 210):

        (p + z^2/2n -+ z sqrt(p(1-p)/n + z^2/4n^2)) / (1 + z^2/n),

    z the standard normal quantile of the level. Needs 0 <= events <= n and n >= 1. (SciPy's
    ``binomtest(events, n).proportion_ci(method='wilson')`` gives the same interval and is
    the tests' check; it is not called here because it also computes an exact p value, which
    took 10 ms a rate at registry size.)"""
    if isinstance(events, bool) or isinstance(n, bool) or not 0 <= events <= n or n < 1:
        raise InvalidInput("a rate needs 0 <= events <= n and n >= 1", field="n")
    if not 0 < level < 1:
        raise InvalidInput("level: a confidence level is between 0 and 1", field="level")
    z = NormalDist().inv_cdf(1 - (1 - level) / 2)
    p = events / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    scale = 1 + z * z / n
    # at 0 or n events a bound is exactly 0 or 1 (rounding would leave 3e-17)
    low = 0.0 if events == 0 else max(0.0, (centre - half) / scale)
    high = 1.0 if events == n else min(1.0, (centre + half) / scale)
    return low, high


def rate(statuses: Iterable[bool | None], level: float = 0.95) -> Rate:
    """The rate of True among known statuses (None: unknown, left out)."""
    known = [s for s in statuses]
    unknown = sum(1 for s in known if s is None)
    counted = [s for s in known if s is not None]
    n, events = len(counted), sum(1 for s in counted if s)
    if n == 0:
        return Rate(0, 0, unknown, None, None, None)
    low, high = wilson_interval(events, n, level)
    return Rate(n, events, unknown, events / n, low, high)


# ---------------------------------------------------------------------------- the rows


@dataclass(frozen=True)
class RegistryCourse:
    """One course as the registry analyses it (a row of the summary table)."""

    order_id: int
    patient_id: int
    protocol_id: str
    indication: str | None
    first_session_on: date | None
    last_session_on: date | None
    status: str
    weight_kg: float | None
    delivered_mg: float
    dose_mg_per_kg: float | None
    infusion_hours: float
    adjuncts: str
    sessions_planned: int = 0
    sessions_given: int = 0
    diagnoses: str = ""
    icd10cm: str = ""
    side_effects: int = 0
    troublesome_side_effects: int = 0
    stopped_for_side_effect: int = 0
    safety_abnormal: int = 0
    baseline_nrs: int | None = None
    follow_up_days: int | None = None
    follow_up_nrs: int | None = None
    responder_30: str = "unknown"
    responder_50: str = "unknown"
    relief_status: str = "no data"
    relief_days: int | None = None
    relief_event: bool | None = None
    auc_status: str = "incomplete"
    auc: float | None = None
    exposure_auc: float | None = None
    exposure_status: str = NOT_COMPUTED
    cumulative_mg_per_kg: float | None = None
    exposure_peak: float | None = None
    exposure_minutes_above: float | None = None

    @property
    def analysed(self) -> bool:
        """Whether the course enters the outcome analyses (complete: all sessions done)."""
        return self.status == "complete"


CourseDose = tuple[int, int, date | None, str, float | None]
"""A course for the cumulative dose: order id, patient id, first session day, status, and its
delivered dose per kg (None: unknown)."""


def cumulative_doses(courses: Iterable[CourseDose]) -> dict[int, float | None]:
    """Each course's cumulative dose per kg at its end: the patient's delivered dose over this
    course and every earlier one (by first session day). Unknown (None) from the first course
    of unknown dose on, never counted as 0; a course never given adds nothing."""
    by_patient: dict[int, list[CourseDose]] = {}
    for item in courses:
        by_patient.setdefault(item[1], []).append(item)
    out: dict[int, float | None] = {}
    for rows in by_patient.values():
        total: float | None = 0.0
        for order_id, _, _, status, dose in sorted(rows, key=lambda c: (c[2] or date.max, c[0])):
            if status != "not given":
                total = None if total is None or dose is None else total + dose
            out[order_id] = total
    return out


def group_key(course: RegistryCourse, by: GroupBy, rules: RegistryRules | None = None) -> str:
    """The group a course falls in for ``by``."""
    r = rules or registry_rules()
    if by == "protocol":
        return course.protocol_id
    if by == "indication":
        return course.indication or NOT_RECOGNISED
    if by == "dose_band":
        return band_of(course.dose_mg_per_kg, r.bands.dose_mg_per_kg)
    if by == "duration_band":
        return band_of(course.infusion_hours, r.bands.infusion_hours)
    if by == "adjuncts":
        return course.adjuncts
    if course.exposure_auc is None:
        return NOT_COMPUTED  # no stored summary with current inputs: never a band of 0
    return band_of(course.exposure_auc, r.bands.exposure_auc_mg_h_per_l)


def group_order(by: GroupBy, keys: Iterable[str], rules: RegistryRules | None = None) -> list[str]:
    """The groups in display order: bands low to high (unknown last), others by name."""
    r = rules or registry_rules()
    present = set(keys)
    if by in ("dose_band", "duration_band", "exposure"):
        bands = {
            "dose_band": r.bands.dose_mg_per_kg,
            "duration_band": r.bands.infusion_hours,
            "exposure": r.bands.exposure_auc_mg_h_per_l,
        }[by]
        labels = [*band_order(bands), NOT_COMPUTED]
        return [label for label in labels if label in present]
    return sorted(present, key=lambda k: (k in (NOT_RECOGNISED, NO_ADJUNCT, NOT_COMPUTED), k))


def grouped(
    courses: Iterable[RegistryCourse], by: GroupBy, rules: RegistryRules | None = None
) -> list[tuple[str, list[RegistryCourse]]]:
    """The courses by group, in display order."""
    groups: dict[str, list[RegistryCourse]] = {}
    for course in courses:
        groups.setdefault(group_key(course, by, rules), []).append(course)
    return [(key, groups[key]) for key in group_order(by, groups, rules)]


def responder_status(value: str) -> bool | None:
    """A stored responder status as True / False / None (unknown)."""
    return {"responder": True, "non-responder": False}.get(value)


@dataclass(frozen=True)
class ResponderRow:
    """A group's responder rates at both thresholds."""

    group: str
    courses: int
    at_30: Rate
    at_50: Rate


def responder_table(
    courses: Iterable[RegistryCourse], by: GroupBy, rules: RegistryRules | None = None
) -> list[ResponderRow]:
    """Responder rates at 30% and 50% with Wilson intervals, per group of analysed courses."""
    r = rules or registry_rules()
    analysed = [c for c in courses if c.analysed]
    rows = []
    for key, members in grouped(analysed, by, r):
        rows.append(
            ResponderRow(
                group=key,
                courses=len(members),
                at_30=rate((responder_status(c.responder_30) for c in members), r.confidence_level),
                at_50=rate((responder_status(c.responder_50) for c in members), r.confidence_level),
            )
        )
    return rows


AdverseKind = Literal["any", "troublesome", "stopped", "safety"]
ADVERSE_KINDS: Mapping[AdverseKind, str] = {
    "any": "any side effect",
    "troublesome": "a troublesome side effect",
    "stopped": "an infusion stopped for a side effect",
    "safety": "an abnormal safety follow-up result",
}
_ADVERSE: Mapping[AdverseKind, Callable[[RegistryCourse], bool]] = {
    "any": lambda c: c.side_effects > 0,
    "troublesome": lambda c: c.troublesome_side_effects > 0,
    "stopped": lambda c: c.stopped_for_side_effect > 0,
    "safety": lambda c: c.safety_abnormal > 0,
}


@dataclass(frozen=True)
class AdverseRow:
    """A cumulative-dose band: its courses and the rate of each kind of adverse event."""

    band: str
    courses: int
    rates: Mapping[str, Rate]


def adverse_events_by_cumulative_dose(
    courses: Iterable[RegistryCourse], rules: RegistryRules | None = None
) -> list[AdverseRow]:
    """Rates of each kind of adverse event among the courses given, by the patient's cumulative
    dose per kg at the end of the course (``cumulative_doses``)."""
    r = rules or registry_rules()
    bands = r.bands.cumulative_dose_mg_per_kg
    given = [c for c in courses if c.status != "not given"]
    groups: dict[str, list[RegistryCourse]] = {}
    for course in given:
        groups.setdefault(band_of(course.cumulative_mg_per_kg, bands), []).append(course)
    rows = []
    for label in band_order(bands):
        members = groups.get(label)
        if not members:
            continue
        rows.append(
            AdverseRow(
                band=label,
                courses=len(members),
                rates={
                    kind: rate((test(c) for c in members), r.confidence_level)
                    for kind, test in _ADVERSE.items()
                },
            )
        )
    return rows
