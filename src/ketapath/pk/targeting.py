"""Targeting: the bolus and rate scheme that reaches and holds a target concentration.

The scheme changes rate every ``interval_min``. At each change it takes the highest rate (at
most ``max_rate_mg_per_h``) for which the target site would never exceed the target if the
pump were stopped at the end of the interval (the Shafer-Gregg principle, applied to plasma
or to the effect site). The opening bolus is the largest (at most ``max_bolus_mg``) whose
peak does not exceed the target. All predictions are exact (matrix exponentials), so the
target is reached from below and held; limits make it slower, never higher.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ketapath.knowledge.pk_models import load_pk_input_bounds
from ketapath.pk.errors import PkInputError
from ketapath.pk.models import PkModel, get_model
from ketapath.pk.patient import Covariates
from ketapath.pk.regimen import Bolus, Infusion, Regimen, check_horizon
from ketapath.pk.simulate import Prediction, predict
from ketapath.pk.system import Propagator, build_system

# A computing bound, not a clinical one: rate changes in one scheme (a change every minute
# for a week).
MAX_RATE_CHANGES = 10_080
# The look-ahead grid has ~20 x interval x ke0 points (_responses): a day between changes keeps
# it near 150,000 for the fastest model.
MAX_INTERVAL_MIN = 1440.0
MIN_INTERVAL_MIN = 0.1  # 6 s between rate changes; below it the look-ahead step underflows

FloatArray = NDArray[np.float64]
Site = Literal["plasma", "effect_site"]


@dataclass(frozen=True)
class TargetScheme:
    """A bolus and rate steps for one patient, with its exact predicted profile."""

    model: PkModel
    patient: Covariates
    site: Site
    target_ng_per_ml: float
    regimen: Regimen
    time_to_target_min: float | None
    limited_by: tuple[str, ...]
    prediction: Prediction

    @property
    def bolus_mg(self) -> float:
        return sum(b.dose_mg for b in self.regimen.boluses)

    @property
    def steps(self) -> tuple[Infusion, ...]:
        return self.regimen.infusions

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.id,
            "site": self.site,
            "target_ng_per_ml": self.target_ng_per_ml,
            "bolus_mg": self.bolus_mg,
            "steps": [
                {"start_min": s.start_min, "end_min": s.end_min, "rate_mg_per_h": s.rate_mg_per_h}
                for s in self.steps
            ],
            "time_to_target_min": self.time_to_target_min,
            "limited_by": list(self.limited_by),
            "total_mg": self.regimen.total_mg,
        }


def target_concentration(
    model: PkModel | str,
    patient: Covariates,
    *,
    target_ng_per_ml: float,
    duration_min: float,
    max_rate_mg_per_h: float,
    max_bolus_mg: float = 0.0,
    site: Site = "plasma",
    interval_min: float = 5.0,
    rate_step_mg_per_h: float | None = None,
    bolus_step_mg: float | None = None,
) -> TargetScheme:
    """Reach and hold ``target_ng_per_ml`` at ``site`` for ``duration_min`` within the limits.

    The concentration is the model's analyte (racemic ketamine, or S-ketamine for S-models).

    ``rate_step_mg_per_h`` and ``bolus_step_mg`` are what the pump can be set to (its rate
    resolution in mL/h times the bag concentration, and its bolus resolution): each rate and
    the bolus are rounded down to them as they are chosen, so the scheme is one the pump can
    run and the prediction is of what it will deliver, still never above the target.
    """
    model = get_model(model) if isinstance(model, str) else model
    _check("target_ng_per_ml", target_ng_per_ml, positive=True)
    _check("duration_min", duration_min, positive=True)
    _check("max_rate_mg_per_h", max_rate_mg_per_h, positive=False)
    _check("max_bolus_mg", max_bolus_mg, positive=False)
    _check("interval_min", interval_min, positive=True)
    check_horizon("duration_min", duration_min)
    bounds = load_pk_input_bounds()
    if max_rate_mg_per_h > bounds.max_rate_mg_per_h:
        raise PkInputError(
            "max_rate_mg_per_h",
            f"{max_rate_mg_per_h:g} mg/h is more than an infusion device delivers "
            f"({bounds.max_rate_mg_per_h:g} mg/h)",
        )
    if max_bolus_mg > bounds.max_bolus_mg:
        raise PkInputError(
            "max_bolus_mg",
            f"{max_bolus_mg:g} mg is more than an infusion device delivers "
            f"({bounds.max_bolus_mg:g} mg)",
        )
    if interval_min < MIN_INTERVAL_MIN:
        raise PkInputError(
            "interval_min", f"must be at least {MIN_INTERVAL_MIN:g} min, not {interval_min:g}"
        )
    if interval_min > min(duration_min, MAX_INTERVAL_MIN):
        raise PkInputError(
            "interval_min",
            f"must be at most the duration ({duration_min:g} min) and at most "
            f"{MAX_INTERVAL_MIN:g} min, not {interval_min:g} min",
        )
    if duration_min / interval_min > MAX_RATE_CHANGES:
        raise PkInputError(
            "interval_min",
            f"{interval_min:g} min over {duration_min:g} min is more than {MAX_RATE_CHANGES:,} "
            "rate changes; give a longer interval",
        )
    for field, step in (
        ("rate_step_mg_per_h", rate_step_mg_per_h),
        ("bolus_step_mg", bolus_step_mg),
    ):
        if step is not None:
            _check(field, step, positive=True)
    if site not in ("plasma", "effect_site"):
        raise PkInputError("site", f"must be 'plasma' or 'effect_site', not {site!r}")
    target = target_ng_per_ml / 1000.0
    system = build_system(
        model.parameters(patient), outputs=(site,), dose_fraction=model.dose_fraction
    )
    prop = Propagator(system)
    n_intervals = math.ceil(duration_min / interval_min - 1e-9)
    horizon, free, unit, bolus_unit = _responses(prop, interval_min, model.ke0_per_min)
    limited: list[str] = []
    x = np.zeros(system.k.shape[1])
    bolus = 0.0
    if max_bolus_mg > 0:
        bolus = _largest(target, np.zeros_like(bolus_unit), bolus_unit)
        if bolus > max_bolus_mg:
            bolus = max_bolus_mg
            limited.append("max_bolus_mg")
        bolus = _round_down(bolus, bolus_step_mg)
        x = x + system.b[0] * bolus
    phi, gamma = prop.step(interval_min)
    max_rate = max_rate_mg_per_h / 60.0
    rates: list[float] = []
    end = round(interval_min / (horizon[1] - horizon[0]))
    reached = False
    for _ in range(n_intervals):
        predicted = free @ x
        reached = reached or bool(predicted[0] >= target * (1 - 1e-3))
        if reached:
            # Holding: keep the site at the target at each rate change (exact for plasma; for
            # the effect site it avoids the on-off cycling of a pure peak rule).
            rate = _largest(target, predicted[end : end + 1], unit[end : end + 1])
        else:
            rate = _largest(target, predicted, unit)
        if rate > max_rate:
            rate = max_rate
            if "max_rate_mg_per_h" not in limited:
                limited.append("max_rate_mg_per_h")
        if rate_step_mg_per_h is not None:
            rate = _round_down(rate * 60.0, rate_step_mg_per_h) / 60.0
        rates.append(rate)
        x = phi[0] @ x + gamma[0] * rate
    regimen = Regimen(
        boluses=(Bolus(0.0, bolus),) if bolus > 0 else (),
        infusions=_merge(rates, interval_min, duration_min),
    )
    times = np.linspace(0.0, duration_min, int(min(20001, max(201, duration_min * 10 + 1))))
    prediction = predict(model, patient, regimen, times, analgesia=False)
    values = prediction.plasma_mg_per_l if site == "plasma" else prediction.effect_site_mg_per_l
    hits = np.nonzero(values >= target * (1 - 1e-3))[0]
    return TargetScheme(
        model=model,
        patient=patient,
        site=site,
        target_ng_per_ml=target_ng_per_ml,
        regimen=regimen,
        time_to_target_min=float(times[hits[0]]) if hits.size else None,
        limited_by=tuple(limited),
        prediction=prediction,
    )


def _responses(
    prop: Propagator, interval: float, ke0: float
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """On a fine look-ahead grid: free response rows, unit-rate response, unit-bolus response.

    free (K, n): site concentration from a state; unit (K,): from 1 mg/min over the interval
    then nothing; bolus (K,): from a 1 mg bolus at time 0. The interval is a whole number of
    grid steps so the end of the infusion is on the grid.
    """
    per_interval = max(20, math.ceil(20.0 * interval * ke0))
    delta = interval / per_interval
    horizon = interval + max(10.0, 10.0 * math.log(2) / ke0)
    count = math.ceil(horizon / delta) + 1
    c = prop.system.c[0, 0]
    phi_d, gamma_d = prop.step(delta)
    _, gamma_i = prop.step(interval)
    free = np.empty((count, len(c)))
    row = c.copy()
    for k in range(count):
        free[k] = row
        row = row @ phi_d[0]
    unit = np.empty(count)
    # C Gamma(k delta) = sum_{j<k} C Phi(delta)^j Gamma(delta), up to the end of the interval
    during = np.concatenate([[0.0], np.cumsum(free[:per_interval] @ gamma_d[0])])
    unit[: per_interval + 1] = during
    unit[per_interval + 1 :] = free[1 : count - per_interval] @ gamma_i[0]
    bolus = free @ prop.system.b[0]
    taus = np.arange(count, dtype=np.float64) * delta
    return taus, free, unit, np.asarray(bolus, dtype=np.float64)


def _largest(target: float, free: FloatArray, unit: FloatArray) -> float:
    """Largest amount a >= 0 with free + a * unit <= target everywhere (0 if already above)."""
    mask = unit > 1e-300
    if not np.any(mask):
        return 0.0
    room = (target - free[mask]) / unit[mask]
    return float(max(0.0, np.min(room)))


def _round_down(amount: float, step: float | None) -> float:
    """``amount`` rounded down to a whole number of ``step`` (unchanged without a step)."""
    if step is None:
        return amount
    return math.floor(amount / step) * step


def _merge(rates: list[float], interval: float, duration: float) -> tuple[Infusion, ...]:
    steps: list[Infusion] = []
    start = 0.0
    for i, rate in enumerate(rates):
        end = min(duration, (i + 1) * interval)
        if rate <= 0:
            start = end
            continue
        rate_h = rate * 60.0
        if (
            steps
            and steps[-1].end_min == start
            and math.isclose(steps[-1].rate_mg_per_h, rate_h, rel_tol=1e-9)
        ):
            steps[-1] = Infusion(steps[-1].start_min, end, rate_h)
        else:
            steps.append(Infusion(start, end, rate_h))
        start = end
    return tuple(steps)


def _check(field: str, value: float, *, positive: bool) -> None:
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise PkInputError(
            field,
            f"must be a finite number {'above' if positive else 'of at least'} zero, not {value}",
        )
