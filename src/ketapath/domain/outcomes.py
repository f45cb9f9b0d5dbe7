"""What happened after a course: the outcome definitions, pure and cited.

Every function here is pure (no database, no clock: ``today`` is an argument) and every result
carries the :class:`Definition` it used (the rule in words and its citations) or findings
that do. The numbers come from ``outcome_rules.yaml`` (:mod:`ketapath.knowledge.outcomes`);
each function takes ``rules`` so that a clinic's own file can be used.

- :func:`change_from_baseline`: absolute and percent change (no percent from a baseline of 0);
- :func:`responder`: at least 30% or 50% less pain than at baseline (IMMPACT); unknown when
  a score is missing, never counted as no response;
- :func:`relief_duration`: days from the last session until pain is back within the margin
  of baseline (an event), or censored at the last observed day;
- :func:`pain_auc`: the area under the daily pain curve over days 1-35 (Pickering et al.
  2020's endpoint), trapezoid rule, interpolated inside the window, never extrapolated;
- :func:`pgic_responder`: much or very much improved (Farrar 2001);
- :func:`opioid_change`: mg OME per day and percent; unknown when a total is incomplete;
- :func:`follow_up_schedule`, :func:`timepoint_status`: the follow-up timepoints;
- :func:`safety_checks_due`: the checks of repeated courses that are due or overdue;
- :func:`repeat_proposal`: repeat, change protocol, or stop, from the agreed indicators.

Arithmetic on scores is exact (fractions) until the result, so a fall of exactly 30% counts
as 30%, and no result is ever NaN or infinite.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction
from typing import Literal

from ketapath.domain.errors import InvalidInput
from ketapath.domain.findings import Citation, Finding, Measure, cite, finding
from ketapath.knowledge.base import Source
from ketapath.knowledge.outcomes import (
    OutcomeRules,
    SafetyCheck,
    Timepoint,
    outcome_rules,
)

NRS_MIN = 0
MAX_MAGNITUDE = 10**9  # no score, dose or duration here comes near it
NRS_MAX = 10
PGIC_LABELS: Mapping[int, str] = {
    1: "very much improved",
    2: "much improved",
    3: "minimally improved",
    4: "no change",
    5: "minimally worse",
    6: "much worse",
    7: "very much worse",
}

ResponderStatus = Literal["responder", "non-responder", "unknown"]
ReliefStatus = Literal["ended", "censored", "never began", "no data", "not assessable"]
AucStatus = Literal["complete", "incomplete"]
PgicStatus = Literal["improved", "not improved", "unknown"]
ChangeStatus = Literal["complete", "incomplete"]
TimepointStatus = Literal["done", "not yet due", "due", "overdue"]
Proposal = Literal["repeat", "change protocol", "stop", "not enough data"]
IndicatorStatus = Literal["met", "not met", "unknown"]


# ---------------------------------------------------------------------------- definitions


@dataclass(frozen=True)
class Definition:
    """The definition a result used: its name, the rule in words and the citations."""

    name: str
    rule: str
    citations: tuple[Citation, ...]

    @property
    def citation(self) -> str:
        """The short citations, joined."""
        return "; ".join(c.text for c in self.citations)


def _definition(name: str, rule: str, *sources: Source) -> Definition:
    seen: set[tuple[str, str]] = set()
    citations: list[Citation] = []
    for source in sources:
        for c in cite(source):
            if (c.ref, c.at) not in seen:
                seen.add((c.ref, c.at))
                citations.append(c)
    return Definition(name=name, rule=rule, citations=tuple(citations))


def _rules(rules: OutcomeRules | None) -> OutcomeRules:
    return rules if rules is not None else outcome_rules()


def _merged(*sources: Source) -> Source:
    """One source citing every cite of the given sources (for a finding), notes joined."""
    cites = tuple(c for s in sources for c in s.cite)
    note = " ".join(s.note.strip() for s in sources if s.note.strip())
    return Source(cite=cites, note=note)


# ---------------------------------------------------------------------------- input checks


def _score(value: object, field: str) -> int:
    """A pain score (NRS): a whole number 0-10."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field}: a pain score is a whole number from 0 to 10", field=field)
    if not NRS_MIN <= value <= NRS_MAX:
        raise InvalidInput(f"{field}: a pain score is 0 to 10, not {value}", field=field)
    return value


def _number(value: object, field: str, *, minimum: float | None = None) -> Fraction:
    """A finite number (int or float), exactly, as a fraction."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{field}: a number is needed", field=field)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput(f"{field}: {value} is not a number that can be used", field=field)
    exact = Fraction(value)
    if abs(exact) > MAX_MAGNITUDE:
        raise InvalidInput(f"{field}: {value} is out of range", field=field)
    if minimum is not None and exact < minimum:
        raise InvalidInput(f"{field}: must be at least {minimum:g}, not {value}", field=field)
    return exact


def _percent_threshold(value: object, field: str = "threshold") -> Fraction:
    exact = _number(value, field)
    if not 0 < exact <= 100:
        raise InvalidInput(f"{field}: a threshold is above 0% and at most 100%", field=field)
    return exact


def _finite_float(value: Fraction) -> float | None:
    """The fraction as a float, or None when no finite float can hold it."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _fmt(value: Fraction | float | int) -> str:
    """A number for a sentence: whole numbers bare, others to one decimal."""
    number = float(value)
    return f"{number:.0f}" if number == int(number) else f"{number:.1f}"


# ---------------------------------------------------------------------------- change


@dataclass(frozen=True)
class Change:
    """A change from baseline: ``absolute`` = value - baseline (negative: lower than at
    baseline), ``percent`` = the same as a percentage of baseline, or None with
    ``percent_undefined`` saying why (a baseline of 0)."""

    baseline: float
    value: float
    absolute: float
    percent: float | None
    percent_undefined: str
    definition: Definition


def change_from_baseline(
    baseline: float, value: float, *, rules: OutcomeRules | None = None
) -> Change:
    """The absolute and percent change of a score from its baseline.

    Any finite numbers (a pain score, a BPI interference mean, a PSEQ total). The percent is
    undefined when the baseline is 0: it is then None, with the reason in words; nothing is
    ever divided by zero.
    """
    r = _rules(rules)
    base = _number(baseline, "baseline")
    later = _number(value, "value")
    absolute = later - base
    percent: float | None = None
    undefined = ""
    if base == 0:
        undefined = "the baseline is 0, so no percentage change can be taken"
    else:
        percent = _finite_float(absolute * 100 / abs(base))
        if percent is None:
            undefined = "the baseline is so close to 0 that the percentage is too large to express"
    return Change(
        baseline=float(base),
        value=float(later),
        absolute=float(absolute),
        percent=percent,
        percent_undefined=undefined,
        definition=change_definition(rules=r),
    )


# ---------------------------------------------------------------------------- responder


@dataclass(frozen=True)
class Response:
    """Responder status at a threshold (percent fall in pain from baseline)."""

    status: ResponderStatus
    threshold_percent: float
    reduction_percent: float | None
    reason: str
    definition: Definition


def responder(
    baseline: int | None,
    value: int | None,
    threshold: float,
    *,
    rules: OutcomeRules | None = None,
) -> Response:
    """Whether pain fell from ``baseline`` to ``value`` (NRS 0-10) by at least ``threshold``
    percent of the baseline (IMMPACT: 30 moderate, 50 substantial).

    Unknown, never non-responder, when either score is missing or the baseline is 0 (no
    percentage can be taken). A threshold other than the IMMPACT ones is allowed and is
    named as the clinic's in the definition.
    """
    r = _rules(rules)
    limit = _percent_threshold(threshold)
    published = limit in {Fraction(p) for p in r.responder.percents}
    rule = r.responder.rule + (
        "" if published else f" The threshold {_fmt(limit)}% is the clinic's, not IMMPACT's."
    )
    definition = _definition(f"responder at {_fmt(limit)}%", rule, r.responder.source)
    unknown_definition = _definition(
        definition.name, rule, r.responder.source, r.responder.unknown_source
    )
    if baseline is None or value is None:
        missing = "baseline" if baseline is None else "later"
        if baseline is None and value is None:
            missing = "baseline and later"
        return Response(
            "unknown",
            float(limit),
            None,
            f"the {missing} pain score is missing",
            unknown_definition,
        )
    base = _score(baseline, "baseline")
    later = _score(value, "value")
    if base == 0:
        return Response(
            "unknown",
            float(limit),
            None,
            "the baseline pain is 0, so no percentage fall can be taken",
            unknown_definition,
        )
    reduction = Fraction(base - later) * 100 / base
    met = reduction >= limit
    moved = f"{_fmt(reduction)}% fall" if reduction >= 0 else f"{_fmt(-reduction)}% rise"
    reason = (
        f"pain {base} to {later}: a {moved} from baseline, "
        f"{'at least' if met else 'less than'} the {_fmt(limit)}% threshold"
    )
    return Response(
        "responder" if met else "non-responder",
        float(limit),
        float(reduction),
        reason,
        definition,
    )


# ---------------------------------------------------------------------------- relief


@dataclass(frozen=True)
class ReliefDuration:
    """How long relief lasted after the last session.

    ``days``: ``ended`` - days from the last session to the first observed day back within
    the margin (the event); ``censored`` - days to the last observed day (relief continuing);
    ``never began`` - 0; ``no data`` and ``not assessable`` - None (unknown).
    ``last_in_relief`` is the last observed day still in relief before the event (with a gap
    in the diary, pain came back somewhere after it and no later than ``event_date``).
    """

    status: ReliefStatus
    days: int | None
    event: bool
    start: date
    follow_up_end: date
    event_date: date | None
    last_in_relief: date | None
    censored_at: date | None
    baseline: int
    margin_nrs: int
    onset_threshold_percent: int
    explanation: str
    definition: Definition


def relief_definition(
    margin: int | None = None, *, rules: OutcomeRules | None = None
) -> Definition:
    """The definition of the duration of relief (with ``margin`` NRS points, default the
    rules'), also for a course whose relief cannot be given."""
    r = _rules(rules)
    margin_nrs = r.relief.margin_nrs if margin is None else margin
    rule = (
        r.relief.rule
        if margin_nrs == r.relief.margin_nrs
        else r.relief.rule + f" The margin used here is {margin_nrs} point(s), the clinic's."
    )
    return _definition(
        "duration of relief",
        rule,
        r.relief.rule_source,
        r.relief.onset_source,
        r.relief.margin_source,
    )


def _in_window(daily: Mapping[date, int], first: date, last: date) -> list[tuple[date, int]]:
    observed = []
    for day, score in daily.items():
        if not isinstance(day, date):
            raise InvalidInput("diary: every day must be a date", field="daily")
        if first <= day <= last:
            observed.append((day, _score(score, f"diary {day.isoformat()}")))
    return sorted(observed)


def relief_duration(
    baseline: int,
    daily: Mapping[date, int],
    start: date,
    follow_up_end: date,
    margin: int | None = None,
    *,
    rules: OutcomeRules | None = None,
) -> ReliefDuration:
    """Days of relief after the last session (``start``), from the daily diary.

    Only diary days after ``start`` and up to ``follow_up_end`` count. Relief has begun when
    the first observed day shows pain at least the onset threshold (30%) below baseline and
    more than ``margin`` points below it; otherwise it never began (0 days). It ends on the
    first OBSERVED day on which pain is within ``margin`` of baseline or above it: a gap in
    the diary is not filled in, so the event day is the first day actually recorded back, and
    the last day recorded in relief is given beside it. If pain never comes back, the duration
    is censored at the last observed day. The duration never exceeds follow_up_end - start.
    """
    r = _rules(rules)
    base = _score(baseline, "baseline")
    margin_nrs = r.relief.margin_nrs if margin is None else margin
    if isinstance(margin_nrs, bool) or not isinstance(margin_nrs, int) or not 0 <= margin_nrs <= 5:
        raise InvalidInput("margin: a whole number of NRS points from 0 to 5", field="margin")
    if follow_up_end < start:
        raise InvalidInput(
            f"follow-up ends ({follow_up_end.isoformat()}) before the last session "
            f"({start.isoformat()})",
            field="follow_up_end",
        )
    onset = r.relief.onset_threshold_percent
    definition = relief_definition(margin_nrs, rules=r)
    observed = _in_window(daily, start + timedelta(days=1), follow_up_end)

    def result(
        status: ReliefStatus,
        days: int | None,
        explanation: str,
        *,
        event_date: date | None = None,
        last_in_relief: date | None = None,
        censored_at: date | None = None,
    ) -> ReliefDuration:
        return ReliefDuration(
            status=status,
            days=days,
            event=status == "ended",
            start=start,
            follow_up_end=follow_up_end,
            event_date=event_date,
            last_in_relief=last_in_relief,
            censored_at=censored_at,
            baseline=base,
            margin_nrs=margin_nrs,
            onset_threshold_percent=onset,
            explanation=explanation,
            definition=definition,
        )

    back_at = base - margin_nrs  # pain at or above this is within the margin of baseline
    if back_at <= 0:
        return result(
            "not assessable",
            None,
            f"a baseline of {base} is within {margin_nrs} point(s) of 0, so no relief "
            "beyond the margin can be shown",
        )
    if not observed:
        return result("no data", None, "no diary day after the last session")
    first_day, first_score = observed[0]
    began = Fraction(base - first_score) * 100 >= onset * base and first_score < back_at
    if not began:
        return result(
            "never began",
            0,
            f"relief never began: on the first diary day ({first_day.isoformat()}) pain was "
            f"{first_score}, not at least {onset}% below the baseline of {base} and more than "
            f"{margin_nrs} point(s) below it",
        )
    last_in_relief = first_day
    for day, score in observed[1:]:
        if score >= back_at:
            return result(
                "ended",
                (day - start).days,
                f"pain was back to {score} (within {margin_nrs} point(s) of the baseline of "
                f"{base}) on {day.isoformat()}, {(day - start).days} days after the last "
                f"session; the last diary day in relief was {last_in_relief.isoformat()}",
                event_date=day,
                last_in_relief=last_in_relief,
            )
        last_in_relief = day
    return result(
        "censored",
        (last_in_relief - start).days,
        f"relief continued to the last diary day ({last_in_relief.isoformat()}), "
        f"{(last_in_relief - start).days} days after the last session: censored there",
        last_in_relief=last_in_relief,
        censored_at=last_in_relief,
    )


# ---------------------------------------------------------------------------- pain AUC


@dataclass(frozen=True)
class PainAuc:
    """The area under the daily pain curve over the window (pain score-days).

    ``auc`` is None when incomplete (day 1 or the last day missing), with ``missing`` naming
    every missing day; when complete, ``interpolated`` names the days filled by a straight
    line. ``mean_daily_pain`` is the mean of the observed days in the window (None when none).
    """

    status: AucStatus
    auc: float | None
    window_days: int
    first_day: date
    last_day: date
    observed_days: int
    missing: tuple[date, ...]
    interpolated: tuple[date, ...]
    mean_daily_pain: float | None
    explanation: str
    definition: Definition
    findings: tuple[Finding, ...] = ()


def pain_auc(
    daily: Mapping[date, int],
    start: date,
    days: int | None = None,
    *,
    rules: OutcomeRules | None = None,
) -> PainAuc:
    """The area under the daily NRS curve from day 1 to day ``days`` (default 35) after
    ``start`` (the last session), trapezoid rule, one day between points.

    Missing days inside the window are interpolated linearly between the recorded days either
    side; when day 1 or the last day is missing the area is incomplete (None), never
    extrapolated and never counted as 0. A constant pain c over 35 days gives 34 x c.
    """
    r = _rules(rules)
    window = r.pain_auc.days if days is None else days
    if isinstance(window, bool) or not isinstance(window, int) or not 2 <= window <= 366:
        raise InvalidInput("days: the window is a whole number of days, 2 to 366", field="days")
    definition = pain_auc_definition(window, rules=r)
    first = start + timedelta(days=1)
    last = start + timedelta(days=window)
    observed = dict(_in_window(daily, first, last))
    all_days = [first + timedelta(days=k) for k in range(window)]
    missing = tuple(d for d in all_days if d not in observed)
    mean = float(Fraction(sum(observed.values()), len(observed))) if observed else None
    if first in observed and last in observed:
        values = _interpolated(all_days, observed)
        area = sum((values[k] + values[k + 1]) / 2 for k in range(window - 1))
        filled = f", {len(missing)} missing day(s) interpolated" if missing else ""
        return PainAuc(
            status="complete",
            auc=float(area),
            window_days=window,
            first_day=first,
            last_day=last,
            observed_days=len(observed),
            missing=missing,
            interpolated=missing,
            mean_daily_pain=mean,
            explanation=f"{_fmt(area)} pain score-days over days 1-{window}{filled}",
            definition=definition,
        )
    ends = [f"day {k}" for k, d in ((1, first), (window, last)) if d not in observed]
    explanation = (
        f"incomplete: {' and '.join(ends)} of the diary missing ({len(missing)} of {window} "
        "days missing); the area is not extrapolated"
    )
    return PainAuc(
        status="incomplete",
        auc=None,
        window_days=window,
        first_day=first,
        last_day=last,
        observed_days=len(observed),
        missing=missing,
        interpolated=(),
        mean_daily_pain=mean,
        explanation=explanation,
        definition=definition,
        findings=(
            finding(
                "outcomes:auc-incomplete",
                f"The {window}-day pain area cannot be given: {explanation}.",
            ),
        ),
    )


def pain_auc_definition(
    days: int | None = None, *, rules: OutcomeRules | None = None
) -> Definition:
    """The definition of the area under the daily pain curve (window ``days``, default the
    rules' 35), also for a course whose area cannot be given."""
    r = _rules(rules)
    window = r.pain_auc.days if days is None else days
    return _definition(
        f"area under the daily pain curve over {window} days",
        r.pain_auc.rule,
        r.pain_auc.days_source,
        r.pain_auc.rule_source,
    )


def change_definition(*, rules: OutcomeRules | None = None) -> Definition:
    """The definition of a change from baseline, also where no change can be given."""
    r = _rules(rules)
    return _definition("change from baseline", r.change.rule, r.change.source)


def _interpolated(days: Sequence[date], observed: Mapping[date, int]) -> list[Fraction]:
    """The value of every day, straight lines between observed days (ends observed)."""
    known = [k for k, d in enumerate(days) if d in observed]
    values: list[Fraction] = []
    for k, d in enumerate(days):
        if d in observed:
            values.append(Fraction(observed[d]))
            continue
        before = max(i for i in known if i < k)
        after = min(i for i in known if i > k)
        a, b = Fraction(observed[days[before]]), Fraction(observed[days[after]])
        values.append(a + (b - a) * (k - before) / (after - before))
    return values


# ---------------------------------------------------------------------------- PGIC


@dataclass(frozen=True)
class PgicResponse:
    """Whether the patient's global impression of change counts as improved."""

    status: PgicStatus
    category: int | None
    label: str
    definition: Definition


def pgic_responder(category: int | None, *, rules: OutcomeRules | None = None) -> PgicResponse:
    """Improved when the PGIC is much (2) or very much improved (1); unknown when missing."""
    r = _rules(rules)
    definition = _definition("PGIC improvement", r.pgic.rule, r.pgic.source)
    if category is None:
        return PgicResponse("unknown", None, "not answered", definition)
    if isinstance(category, bool) or not isinstance(category, int) or not 1 <= category <= 7:
        raise InvalidInput("pgic: a PGIC category is a whole number 1 to 7", field="pgic")
    status: PgicStatus = "improved" if category in r.pgic.responder_categories else "not improved"
    return PgicResponse(status, category, PGIC_LABELS[category], definition)


# ---------------------------------------------------------------------------- opioids


@dataclass(frozen=True)
class OpioidChange:
    """The change in the daily opioid dose (mg OME per day): None when unknown."""

    status: ChangeStatus
    baseline_ome_mg: float | None
    current_ome_mg: float | None
    change_mg: float | None
    percent: float | None
    reason: str
    definition: Definition


def opioid_change(
    baseline_ome: float | None,
    current_ome: float | None,
    complete_flags: tuple[bool, bool],
    *,
    rules: OutcomeRules | None = None,
) -> OpioidChange:
    """The change from the baseline daily OME to the current one, in mg and percent.

    ``complete_flags`` says whether each total (baseline, current) includes every opioid.
    When either is incomplete or missing the change is unknown (None), never 0. A baseline of
    0 mg has no percentage.
    """
    r = _rules(rules)
    definition = _definition("opioid dose change", r.opioid_change.rule, r.opioid_change.source)
    if len(complete_flags) != 2 or not all(isinstance(f, bool) for f in complete_flags):
        raise InvalidInput(
            "complete_flags: two yes/no values (baseline, current)", field="complete_flags"
        )
    base = None if baseline_ome is None else _number(baseline_ome, "baseline_ome", minimum=0)
    now = None if current_ome is None else _number(current_ome, "current_ome", minimum=0)
    problems = [
        f"the {name} total {'is missing' if total is None else 'is incomplete'}"
        for name, total, complete in (
            ("baseline", base, complete_flags[0]),
            ("current", now, complete_flags[1]),
        )
        if total is None or not complete
    ]
    if problems or base is None or now is None:
        return OpioidChange(
            "incomplete",
            None if base is None else float(base),
            None if now is None else float(now),
            None,
            None,
            "; ".join(problems) + ": the change is unknown (an opioid that could not be "
            "converted is never counted as 0)",
            definition,
        )
    change = now - base
    percent = None if base == 0 else _finite_float(change * 100 / base)
    reason = f"{_fmt(base)} to {_fmt(now)} mg OME per day"
    if base == 0:
        reason += "; the baseline is 0 mg, so no percentage change can be taken"
    elif percent is None:
        reason += "; the baseline is so close to 0 that the percentage is too large to express"
    return OpioidChange(
        "complete", float(base), float(now), float(change), percent, reason, definition
    )


# ---------------------------------------------------------------------------- follow-up


@dataclass(frozen=True)
class FollowUpTimepoint:
    """A follow-up of a course: its label, date, and the window in which it is due."""

    label: str
    offset_days: int
    due_on: date
    due_from: date
    due_until: date
    definition: Definition


def _label(offset_days: int) -> str:
    if offset_days % 7 == 0:
        weeks = offset_days // 7
        return f"{weeks} week{'s' if weeks != 1 else ''}"
    return f"{offset_days} day{'s' if offset_days != 1 else ''}"


def follow_up_schedule(
    last_session: date,
    offsets: Sequence[Timepoint] | Sequence[int] | None = None,
    *,
    rules: OutcomeRules | None = None,
) -> list[FollowUpTimepoint]:
    """The follow-up timepoints of a course, counted from its LAST session.

    ``offsets``: the protocol's own (timepoints or whole days), else the rules' defaults
    (1, 2, 4, 8, 12 weeks and 6 months). Each is due from ``due_from_days_before`` days
    before to ``due_until_days_after`` days after its date, and overdue after that.
    """
    r = _rules(rules)
    chosen: list[tuple[int, str]] = []
    for item in r.follow_up.timepoints if offsets is None else offsets:
        if isinstance(item, Timepoint):
            chosen.append((item.offset_days, item.label))
        elif isinstance(item, bool) or not isinstance(item, int) or not 1 <= item <= 3 * 366:
            raise InvalidInput("offsets: whole days from 1 to 1098", field="offsets")
        else:
            chosen.append((item, _label(item)))
    days = [d for d, _ in chosen]
    if len(days) != len(set(days)):
        raise InvalidInput("offsets: a timepoint is listed twice", field="offsets")
    definition = _definition(
        "follow-up schedule",
        "Follow-up timepoints in days after the last session of the course; each is due from "
        f"{r.follow_up.due_from_days_before} days before to {r.follow_up.due_until_days_after} "
        "days after its date, and overdue after that.",
        r.follow_up.timepoints_source,
        r.follow_up.window_source,
    )
    schedule = []
    for offset, label in sorted(chosen):
        due_on = last_session + timedelta(days=offset)
        schedule.append(
            FollowUpTimepoint(
                label=label,
                offset_days=offset,
                due_on=due_on,
                due_from=due_on - timedelta(days=r.follow_up.due_from_days_before),
                due_until=due_on + timedelta(days=r.follow_up.due_until_days_after),
                definition=definition,
            )
        )
    return schedule


def timepoint_status(timepoint: FollowUpTimepoint, today: date, done: bool) -> TimepointStatus:
    """'done' when recorded; else 'not yet due' before its window, 'due' inside it (both ends
    included), 'overdue' after it."""
    if done:
        return "done"
    if today < timepoint.due_from:
        return "not yet due"
    if today <= timepoint.due_until:
        return "due"
    return "overdue"


def follow_up_findings(
    schedule: Sequence[FollowUpTimepoint], today: date, done: Mapping[int, bool]
) -> list[Finding]:
    """Findings for the timepoints that are due (info) or overdue (warning); ``done`` maps a
    timepoint's offset in days to whether it was recorded."""
    found = []
    for tp in schedule:
        status = timepoint_status(tp, today, done.get(tp.offset_days, False))
        if status == "due":
            found.append(
                finding(
                    "outcomes:follow-up-due",
                    f"The {tp.label} follow-up is due ({tp.due_on.isoformat()}; window "
                    f"{tp.due_from.isoformat()} to {tp.due_until.isoformat()}).",
                    subject=tp.label,
                )
            )
        elif status == "overdue":
            found.append(
                finding(
                    "outcomes:follow-up-overdue",
                    f"The {tp.label} follow-up is overdue: it was due on "
                    f"{tp.due_on.isoformat()}, and its window ended on "
                    f"{tp.due_until.isoformat()}.",
                    subject=tp.label,
                )
            )
    return found


# ---------------------------------------------------------------------------- safety


def safety_checks_due(
    cumulative_mg_per_kg: float | None,
    last_done: Mapping[str, date | None],
    today: date,
    courses_so_far: int,
    *,
    rules: OutcomeRules | None = None,
) -> list[Finding]:
    """Findings for the safety checks of repeated courses that are due or overdue.

    A check applies from its course (the second: repeated courses) or once the cumulative
    dose passes its threshold. It is then due when never done or when its interval has passed
    since ``last_done``, and overdue when its grace period has passed too (or when it was
    never done although a whole course has passed since it applied by course count). A
    cumulative dose of None is unknown, never 0: the dose thresholds are not applied, with a
    warning saying so.
    """
    r = _rules(rules)
    if isinstance(courses_so_far, bool) or not isinstance(courses_so_far, int):
        raise InvalidInput("courses_so_far: a whole number", field="courses_so_far")
    if not 0 <= courses_so_far <= 1000:
        raise InvalidInput("courses_so_far: 0 to 1000", field="courses_so_far")
    cumulative = (
        None
        if cumulative_mg_per_kg is None
        else _number(cumulative_mg_per_kg, "cumulative_mg_per_kg", minimum=0)
    )
    known_ids = {c.id for c in r.safety.checks}
    unknown = sorted(k for k in last_done if k not in known_ids)
    if unknown:
        raise InvalidInput(
            f"last_done: unknown check(s) {', '.join(unknown)}; the checks are "
            f"{', '.join(sorted(known_ids))}",
            field="last_done",
        )
    found: list[Finding] = []
    if cumulative is None and courses_so_far >= 1:
        found.append(
            finding(
                "outcomes:cumulative-dose-unknown",
                "The cumulative ketamine dose is not known: the checks triggered by dose "
                "cannot be judged, and are due from the second course whatever the dose.",
            )
        )
    for check in r.safety.checks:
        item = _check_finding(check, cumulative, last_done.get(check.id), today, courses_so_far, r)
        if item is not None:
            found.append(item)
    return found


def _check_finding(
    check: SafetyCheck,
    cumulative: Fraction | None,
    last: date | None,
    today: date,
    courses: int,
    r: OutcomeRules,
) -> Finding | None:
    by_course = courses >= check.from_course
    by_dose = (
        cumulative is not None
        and check.above_mg_per_kg is not None
        and cumulative > Fraction(check.above_mg_per_kg)
    )
    if not (by_course or by_dose):
        return None
    why = (
        f"this is course {courses}; it applies from course {check.from_course}"
        if by_course
        else f"cumulative dose {_fmt(cumulative or 0)} mg/kg, "
        f"above {_fmt(check.above_mg_per_kg or 0)} mg/kg"
    )
    source = _merged(check.source, check.numbers_source, r.safety.source)
    measure = (
        Measure(
            value=float(cumulative),
            limit=float(check.above_mg_per_kg),
            unit="mg/kg",
            limit_name="cumulative ketamine dose",
        )
        if cumulative is not None and check.above_mg_per_kg is not None
        else None
    )
    if last is None:
        overdue = courses > check.from_course
        text = f"{check.name}: never recorded since it applied ({why}). {check.what}"
        if overdue:
            text = (
                f"{check.name}: overdue, never recorded although it applied from course "
                f"{check.from_course} and this is course {courses}. {check.what}"
            )
    else:
        if last > today:
            raise InvalidInput(
                f"last_done: {check.id} is dated {last.isoformat()}, after today",
                field="last_done",
            )
        elapsed = (today - last).days
        if elapsed < check.interval_days:
            return None
        overdue = elapsed >= check.interval_days + check.grace_days
        state = "overdue" if overdue else "due"
        text = (
            f"{check.name}: {state}, last recorded {last.isoformat()} ({elapsed} days ago; "
            f"every {check.interval_days} days while courses repeat). {check.what}"
        )
    return finding(
        "outcomes:safety-check-overdue" if overdue else "outcomes:safety-check-due",
        text,
        source=source,
        subject=check.id,
        measure=measure,
    )


# ---------------------------------------------------------------------------- repeat


@dataclass(frozen=True)
class SuccessIndicators:
    """The indicators of success agreed at assessment; None: not agreed.

    Percentages are falls from baseline (pain NRS, BPI interference, daily OME);
    ``relief_days`` is the minimum duration of relief agreed.
    """

    pain_reduction_percent: float | None = None
    relief_days: int | None = None
    function_improvement_percent: float | None = None
    opioid_reduction_percent: float | None = None


@dataclass(frozen=True)
class CourseOutcome:
    """What happened after the course; None: not known (yet).

    ``relief_censored``: relief was still continuing at the last diary day, so a duration
    below the target is not yet a failure. ``tolerated``: False when the course was stopped
    or not tolerated because of side effects.
    """

    pain_reduction_percent: float | None = None
    relief_days: int | None = None
    relief_censored: bool = False
    function_improvement_percent: float | None = None
    opioid_reduction_percent: float | None = None
    tolerated: bool | None = None


@dataclass(frozen=True)
class IndicatorResult:
    """One agreed indicator against what happened."""

    name: str
    target: float
    achieved: float | None
    status: IndicatorStatus
    sentence: str


@dataclass(frozen=True)
class RepeatProposal:
    """ketapath's proposal after a course, with its reasoning; the physician decides."""

    proposal: Proposal
    next_protocol: str | None
    reasons: tuple[str, ...]
    indicators: tuple[IndicatorResult, ...]
    findings: tuple[Finding, ...]
    definition: Definition


_INDICATORS: tuple[tuple[str, str, str], ...] = (
    ("pain_reduction_percent", "pain reduction", "%"),
    ("relief_days", "duration of relief", " days"),
    ("function_improvement_percent", "improvement in function (BPI interference)", "%"),
    ("opioid_reduction_percent", "opioid dose reduction", "%"),
)


def _compare(
    field: str, name: str, unit: str, target: float, outcome: CourseOutcome
) -> IndicatorResult:
    achieved = getattr(outcome, field)
    if achieved is None:
        return IndicatorResult(
            name,
            target,
            None,
            "unknown",
            f"The {name} has no result yet (target {_fmt(target)}{unit}).",
        )
    value = _number(achieved, field)
    goal = _number(target, field)
    if value >= goal:
        return IndicatorResult(
            name,
            target,
            float(value),
            "met",
            f"The {name} target of {_fmt(goal)}{unit} was met ({_fmt(value)}{unit}).",
        )
    if field == "relief_days" and outcome.relief_censored:
        return IndicatorResult(
            name,
            target,
            float(value),
            "unknown",
            f"Relief was still continuing at the last diary day ({_fmt(value)} days so far); "
            f"the {_fmt(goal)}-day target cannot be judged yet.",
        )
    return IndicatorResult(
        name,
        target,
        float(value),
        "not met",
        f"The {name} target of {_fmt(goal)}{unit} was not met ({_fmt(value)}{unit}).",
    )


def repeat_proposal(
    indicators: SuccessIndicators,
    outcomes: CourseOutcome,
    ladder_next_protocol: str | None,
    *,
    rules: OutcomeRules | None = None,
) -> RepeatProposal:
    """Repeat, change protocol, or stop: the agreed indicators compared with the outcomes.

    In order: not tolerated - stop; no indicator agreed, or an agreed indicator (or
    tolerance) without a result - not enough data; every indicator met - repeat; an indicator
    missed on a dose ladder with a next step - change protocol to that step; some met - change
    protocol; none met - stop.
    """
    r = _rules(rules)
    definition = _definition("repeat proposal", r.repeat.rule, r.repeat.source)
    results = tuple(
        _compare(field, name, unit, getattr(indicators, field), outcomes)
        for field, name, unit in _INDICATORS
        if getattr(indicators, field) is not None
    )
    reasons = [i.sentence for i in results]
    findings: list[Finding] = []
    next_protocol: str | None = None

    def missing(message: str) -> Finding:
        return finding("outcomes:indicators-missing", message)

    if outcomes.tolerated is False:
        proposal: Proposal = "stop"
        reasons.insert(0, "The course was not tolerated (stopped or limited by side effects).")
    elif not results:
        proposal = "not enough data"
        reasons.insert(0, "No indicator of success was agreed at assessment; agree them first.")
        findings.append(missing("No indicator of success was agreed at assessment."))
    elif outcomes.tolerated is None or any(i.status == "unknown" for i in results):
        proposal = "not enough data"
        if outcomes.tolerated is None:
            reasons.append("Whether the course was tolerated is not recorded.")
        unknown = [i.name for i in results if i.status == "unknown"]
        if outcomes.tolerated is None:
            unknown.append("tolerance")
        findings.append(missing(f"No result yet for: {', '.join(unknown)}."))
    elif all(i.status == "met" for i in results):
        proposal = "repeat"
        reasons.append("Every agreed indicator was met and the course was tolerated: repeat.")
    elif ladder_next_protocol:
        proposal = "change protocol"
        next_protocol = ladder_next_protocol
        reasons.append(
            "The response is short of the agreed goal and the course was tolerated: the "
            f"dose ladder's next step ({ladder_next_protocol})."
        )
    elif any(i.status == "met" for i in results):
        proposal = "change protocol"
        reasons.append("Some agreed indicators were met but not all: consider another protocol.")
    else:
        proposal = "stop"
        reasons.append("No agreed indicator was met and there is no next step: stop.")
    findings.insert(
        0,
        finding(
            "outcomes:repeat-proposal",
            f"Proposal: {proposal}"
            + (f" ({next_protocol})" if next_protocol else "")
            + ". "
            + " ".join(reasons),
        ),
    )
    return RepeatProposal(
        proposal=proposal,
        next_protocol=next_protocol,
        reasons=tuple(reasons),
        indicators=results,
        findings=tuple(findings),
        definition=definition,
    )


# ---------------------------------------------------------------------------- cumulative dose


def cumulative_mg_per_kg(doses: Sequence[tuple[Fraction | float, float | None]]) -> Fraction | None:
    """The cumulative ketamine dose in mg/kg of several sessions: each session's delivered mg
    divided by the weight it was dosed on (kg), summed exactly.

    ``doses`` holds (delivered mg, dosing weight kg) per session; no sessions is a measured
    0. A session whose weight is not known (None) makes the whole sum unknown (None), never
    a smaller number. A negative dose or a weight that is not positive is refused.
    """
    total = Fraction(0)
    for index, (mg, weight_kg) in enumerate(doses):
        exact_mg = mg if isinstance(mg, Fraction) else _number(mg, f"doses[{index}].mg")
        if exact_mg < 0:
            raise InvalidInput(
                f"doses[{index}].mg: a delivered dose is not negative", field="doses"
            )
        if weight_kg is None:
            return None
        weight = _number(weight_kg, f"doses[{index}].weight_kg")
        if weight <= 0:
            raise InvalidInput(f"doses[{index}].weight_kg: a weight is above 0 kg", field="doses")
        total += exact_mg / weight
    return total


def cumulative_dose_finding(
    earlier_mg_per_kg: float | None,
    earlier_courses: int,
    planned_mg_per_kg: float,
    *,
    rules: OutcomeRules | None = None,
) -> Finding | None:
    """What a repeat course adds to the patient's cumulative dose, for the signing physician.

    ``earlier_mg_per_kg``: delivered over the patient's earlier courses (from the charts;
    None: not known); ``planned_mg_per_kg``: this course as ordered. None when there is no
    earlier course. No publication read sets a cumulative limit, so nothing is refused: the
    finding is information, and a warning when the total would pass the dose at which a
    safety check of repeated courses applies (``outcome_rules.yaml``), naming the checks.
    An unknown earlier dose is never read as 0 (``outcomes:cumulative-dose-unknown``).
    """
    r = _rules(rules)
    if isinstance(earlier_courses, bool) or not isinstance(earlier_courses, int):
        raise InvalidInput("earlier_courses: a whole number", field="earlier_courses")
    if not 0 <= earlier_courses <= 1000:
        raise InvalidInput("earlier_courses: 0 to 1000", field="earlier_courses")
    planned = _number(planned_mg_per_kg, "planned_mg_per_kg", minimum=0)
    if earlier_courses == 0:
        return None
    if earlier_mg_per_kg is None:
        return finding(
            "outcomes:cumulative-dose-unknown",
            f"The dose delivered over the patient's {earlier_courses} earlier course(s) is not "
            "known, so the cumulative dose after this course cannot be given; check the "
            "earlier charts by hand.",
        )
    earlier = _number(earlier_mg_per_kg, "earlier_mg_per_kg", minimum=0)
    total = earlier + planned
    crossed = [
        c
        for c in r.safety.checks
        if c.above_mg_per_kg is not None and total > Fraction(c.above_mg_per_kg)
    ]
    text = (
        f"Earlier courses ({earlier_courses}) delivered {_fmt(earlier)} mg/kg (from their "
        f"charts); with this course as ordered ({_fmt(planned)} mg/kg) the cumulative dose "
        f"would be {_fmt(total)} mg/kg."
    )
    by_dose: dict[float, list[str]] = {}
    for c in crossed:
        by_dose.setdefault(c.above_mg_per_kg or 0.0, []).append(c.name.lower())
    if by_dose:
        clauses = [
            f"{_fmt(dose)} mg/kg, from which {' and '.join(names)} "
            f"{'is' if len(names) == 1 else 'are'} checked"
            for dose, names in sorted(by_dose.items())
        ]
        text += " That is above " + "; and above ".join(clauses) + " (clinic policy)."
    limit = min((c.above_mg_per_kg or 0 for c in crossed), default=None)
    return finding(
        "outcomes:cumulative-dose",
        text,
        severity="warning" if crossed else "info",
        subject="cumulative dose",
        measure=Measure(
            value=float(total),
            limit=float(limit) if limit is not None else 0.0,
            unit="mg/kg",
            limit_name="cumulative ketamine dose (safety checks)",
        )
        if limit is not None
        else None,
    )


# ---------------------------------------------------------------------------- dose ladder


def ladder_next_step(
    steps_mg_per_kg_per_h: Sequence[float],
    ceiling_mg_per_kg_per_h: float,
    highest_given_mg_per_kg_per_h: float | None,
) -> float | None:
    """The dose ladder's next rung after a course: the lowest step above the highest rate
    given and not above the ceiling (Clark 2020, point 3: a higher step only while tolerated
    and short of the goal; whether that holds is the repeat proposal's business).

    None when no step is left (the ceiling was reached) or when nothing was given (no rate
    to climb from: unknown, never the first rung by default).
    """
    if highest_given_mg_per_kg_per_h is None:
        return None
    given = _number(highest_given_mg_per_kg_per_h, "highest_given", minimum=0)
    ceiling = _number(ceiling_mg_per_kg_per_h, "ceiling", minimum=0)
    higher = [
        float(s) for s in steps_mg_per_kg_per_h if given < _number(s, "steps", minimum=0) <= ceiling
    ]
    return min(higher, default=None)
