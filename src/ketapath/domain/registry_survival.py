"""Relief-duration curves (Kaplan-Meier) and the regression of relief duration on dose and
infusion duration (Cox), computed by the lifelines library. Pure: numbers in, numbers out.

Nothing here returns NaN or infinity. lifelines gives ``inf`` for a median the curve never
reaches and NaN for an interval bound its formula cannot give (at a survival of 0 or 1); each
becomes None with the reason in words (:func:`finite`). The regression is fitted only with at
least ``min_events_per_variable`` events per covariate (Peduzzi et al. 1995); with fewer it
says the data are too few and gives no coefficient. lifelines (and pandas under it) are
imported inside the functions: they take about a second to import, and only these need them.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ketapath.domain.errors import InvalidInput
from ketapath.domain.findings import Finding, finding
from ketapath.domain.registry import (
    GroupBy,
    RegistryCourse,
    grouped,
)
from ketapath.knowledge.registry import Covariate, RegistryRules, registry_rules

COVARIATE_UNITS: dict[str, str] = {"dose_mg_per_kg": "mg/kg", "infusion_hours": "h"}
COVARIATE_NAMES: dict[str, str] = {
    "dose_mg_per_kg": "total dose per kg",
    "infusion_hours": "infusion hours",
}
NOT_REACHED = "not reached: more than half of the courses were still in relief at the last time"
BEYOND_DATA = "the data do not bound it (the band never crosses one half on this side)"
NO_BOUND = "the interval formula gives no bound here (survival of 0 or 1)"


def finite(value: Any) -> float | None:
    """A number as a finite float, or None (NaN, infinity, not a number)."""
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


# ---------------------------------------------------------------------------- Kaplan-Meier


@dataclass(frozen=True)
class CurvePoint:
    """The curve at ``days``: the proportion still in relief with its pointwise interval
    (None: no bound, see ``ReliefCurve.note``), at risk just before, ended and censored then."""

    days: float
    survival: float
    low: float | None
    high: float | None
    at_risk: int
    ended: int
    censored: int


@dataclass(frozen=True)
class Median:
    """The median relief in days with its interval; None with the reason when not estimable."""

    days: float | None
    low: float | None
    high: float | None
    reason: str


@dataclass(frozen=True)
class ReliefCurve:
    """A group's Kaplan-Meier curve of relief duration (courses in which relief began)."""

    group: str
    courses: int
    ended: int
    censored: int
    never_began: int
    no_data: int
    points: tuple[CurvePoint, ...]
    median: Median
    note: str


def kaplan_meier(
    durations: Sequence[float], ended: Sequence[bool], level: float = 0.95
) -> tuple[tuple[CurvePoint, ...], Median]:
    """The product-limit curve of ``durations`` (days; ``ended`` False: censored there) and
    its median, by lifelines' KaplanMeierFitter at the confidence ``level``."""
    from lifelines import KaplanMeierFitter
    from lifelines.utils import median_survival_times

    if len(durations) != len(ended) or not durations:
        raise InvalidInput("durations: one or more, each with its event flag", field="durations")
    if any(finite(d) is None or float(d) < 0 for d in durations):
        raise InvalidInput("durations: finite numbers of days, not negative", field="durations")
    fitter = KaplanMeierFitter(alpha=1 - level)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitter.fit([float(d) for d in durations], event_observed=[bool(e) for e in ended])
    table = fitter.event_table  # one row per distinct time (0 first), as the curve's index
    survival = fitter.survival_function_.iloc[:, 0].to_numpy()
    band = fitter.confidence_interval_survival_function_.to_numpy()
    points = tuple(
        CurvePoint(
            days=float(at),
            survival=float(s),
            low=finite(low),
            high=finite(high),
            at_risk=int(risk),
            ended=int(ended),
            censored=int(censored),
        )
        for at, s, (low, high), risk, ended, censored in zip(
            table.index.to_numpy(),
            survival,
            band,
            table["at_risk"].to_numpy(),
            table["observed"].to_numpy(),
            table["censored"].to_numpy(),
            strict=True,
        )
    )
    middle = finite(fitter.median_survival_time_)
    bounds = median_survival_times(fitter.confidence_interval_survival_function_)
    low, high = finite(bounds.iloc[0, 0]), finite(bounds.iloc[0, 1])
    reason = ""
    if middle is None:
        reason = NOT_REACHED
    elif low is None or high is None:
        reason = f"the interval's {'lower' if low is None else 'upper'} bound: {BEYOND_DATA}"
    return points, Median(middle, low, high, reason)


def relief_curves(
    courses: Sequence[RegistryCourse], by: GroupBy | None, rules: RegistryRules | None = None
) -> list[ReliefCurve]:
    """One curve per group of analysed courses (``by`` None: one curve of all), from the
    courses in which relief began; those in which it never began, or with no diary, are
    counted beside the curve."""
    r = rules or registry_rules()
    analysed = [c for c in courses if c.analysed]
    groups = [("all courses", analysed)] if by is None else grouped(analysed, by, r)
    curves = []
    for key, members in groups:
        began = [c for c in members if c.relief_event is not None and c.relief_days is not None]
        never = sum(1 for c in members if c.relief_status == "never began")
        no_data = len(members) - len(began) - never
        if not began:
            median = Median(None, None, None, "no course of the group has a relief duration")
            curves.append(ReliefCurve(key, len(members), 0, 0, never, no_data, (), median, ""))
            continue
        points, median = kaplan_meier(
            [float(c.relief_days or 0) for c in began],
            [bool(c.relief_event) for c in began],
            r.confidence_level,
        )
        ended = sum(1 for c in began if c.relief_event)
        note = NO_BOUND if any(p.low is None or p.high is None for p in points) else ""
        curves.append(
            ReliefCurve(
                key, len(members), ended, len(began) - ended, never, no_data, points, median, note
            )
        )
    return curves


# ---------------------------------------------------------------------------- regression


RegressionStatus = Literal["fitted", "too few data", "not fitted"]


@dataclass(frozen=True)
class Coefficient:
    """One covariate's effect: the log hazard ratio per unit and the hazard ratio, each with
    its interval, and the p value; None with ``note`` where the fit gives no finite number."""

    covariate: str
    name: str
    unit: str
    coef: float | None
    hazard_ratio: float | None
    low: float | None
    high: float | None
    p: float | None
    note: str


@dataclass(frozen=True)
class Regression:
    """The regression of relief duration, or why there is none."""

    status: RegressionStatus
    model: str
    courses: int
    events: int
    censored: int
    covariates: tuple[str, ...]
    min_events: int
    coefficients: tuple[Coefficient, ...]
    message: str
    findings: tuple[Finding, ...]


def relief_regression(
    courses: Sequence[RegistryCourse], rules: RegistryRules | None = None
) -> Regression:
    """Cox regression of relief duration on the covariates of ``registry_rules.yaml``, among
    analysed courses in which relief began and whose covariates are known."""
    r = rules or registry_rules()
    covariates = r.regression.covariates
    usable = [
        c
        for c in courses
        if c.analysed
        and c.relief_event is not None
        and c.relief_days is not None
        and all(_value(c, name) is not None for name in covariates)
    ]
    events = sum(1 for c in usable if c.relief_event)
    needed = r.regression.min_events_per_variable * len(covariates)

    def result(
        status: RegressionStatus,
        message: str,
        found: tuple[Finding, ...],
        coefficients: tuple[Coefficient, ...] = (),
    ) -> Regression:
        return Regression(
            status,
            "Cox proportional hazards",
            len(usable),
            events,
            len(usable) - events,
            tuple(covariates),
            needed,
            coefficients,
            message,
            found,
        )

    if events < needed:
        message = (
            f"Too few data: the regression needs at least {needed} courses whose relief ended "
            f"({r.regression.min_events_per_variable} per covariate, Peduzzi et al. 1995) and "
            f"these courses have {events}. No coefficient is shown."
        )
        return result("too few data", message, (finding("registry:too-few-events", message),))
    try:
        fitted = _fit_cox(usable, covariates, r.confidence_level)
    except _FitFailed as failure:
        message = f"The regression could not be fitted: {failure}."
        return result("not fitted", message, (finding("registry:fit-failed", message),))
    coefficients, notes = fitted
    message = (
        f"Fitted on {len(usable)} courses with {events} ends of relief "
        f"({events / len(covariates):.0f} per covariate)."
    )
    found: tuple[Finding, ...] = ()
    if notes:
        message += " " + " ".join(notes)
        found = (finding("registry:not-estimable", " ".join(notes)),)
    return result("fitted", message, found, coefficients)


class _FitFailed(Exception):
    """The regression could not be fitted (the reason in words)."""


def _value(course: RegistryCourse, covariate: Covariate) -> float | None:
    value = course.dose_mg_per_kg if covariate == "dose_mg_per_kg" else course.infusion_hours
    return finite(value)


def _fit_cox(
    courses: Sequence[RegistryCourse], covariates: Sequence[Covariate], level: float
) -> tuple[tuple[Coefficient, ...], list[str]]:
    import numpy as np
    import pandas as pd
    from lifelines import CoxPHFitter
    from lifelines.exceptions import ConvergenceError

    columns: dict[str, list[Any]] = {
        name: [_value(c, name) for c in courses] for name in covariates
    }
    columns["days"] = [float(c.relief_days or 0) for c in courses]
    columns["ended"] = [bool(c.relief_event) for c in courses]
    frame = pd.DataFrame(columns)
    constant = [name for name in covariates if frame[name].nunique() < 2]
    if constant:
        raise _FitFailed(
            f"{', '.join(COVARIATE_NAMES[n] for n in constant)} does not vary among the courses"
        )
    notes: list[str] = []
    fitter = CoxPHFitter(alpha=1 - level)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fitter.fit(frame, duration_col="days", event_col="ended")
        except (ConvergenceError, np.linalg.LinAlgError, ValueError, ZeroDivisionError) as error:
            raise _FitFailed(str(error).strip().splitlines()[0] or type(error).__name__) from error
    for warning in caught:
        if "ConvergenceWarning" in type(warning.message).__name__:
            notes.append(f"lifelines warned: {str(warning.message).strip().splitlines()[0]}")
    summary = fitter.summary
    percent = f"{level * 100:g}%"
    coefficients = []
    for name in covariates:
        row = summary.loc[name]
        values = {
            "coef": finite(row["coef"]),
            "hr": finite(row["exp(coef)"]),
            "low": finite(row[f"exp(coef) lower {percent}"]),
            "high": finite(row[f"exp(coef) upper {percent}"]),
            "p": finite(row["p"]),
        }
        missing = [k for k, v in values.items() if v is None]
        note = (
            f"not a finite number in the fit: {', '.join(missing)} (shown as none)"
            if missing
            else ""
        )
        if note:
            notes.append(f"{COVARIATE_NAMES[name]}: {note}.")
        coefficients.append(
            Coefficient(
                covariate=name,
                name=COVARIATE_NAMES[name],
                unit=COVARIATE_UNITS[name],
                coef=values["coef"],
                hazard_ratio=values["hr"],
                low=values["low"],
                high=values["high"],
                p=values["p"],
                note=note,
            )
        )
    return tuple(coefficients), notes
