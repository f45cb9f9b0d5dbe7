"""Predictions: one patient (``predict``) or many virtual patients (``predict_population``).

Results carry their units in their names (mg/L; ng/mL where the literature uses it) and the
warnings that apply (patient outside the model's range, SC route, extrapolated analgesia).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ketapath.pk.errors import PkInputError
from ketapath.pk.models import Parameters, PkModel, get_model
from ketapath.pk.patient import Covariates
from ketapath.pk.regimen import Regimen, check_horizon
from ketapath.pk.system import Propagator, build_system

FloatArray = NDArray[np.float64]

MINUTES_PER_DAY = 1440.0
# Computing bounds, not clinical ones: a year at one-minute resolution per patient, and the
# values of one output series of a population (30 million float64 = 240 MB).
MAX_OUTPUT_TIMES = 600_000
MAX_POPULATION_VALUES = 30_000_000
WEEKS_AFTER_COURSE = (1.0, 2.0, 4.0, 8.0, 12.0)


@dataclass(frozen=True)
class Summary:
    """Exposure metrics of one predicted profile (plasma unless stated)."""

    cmax_mg_per_l: float
    tmax_min: float
    auc_mg_min_per_l: float
    time_above_threshold_min: float | None
    threshold_mg_per_l: float | None
    effect_site_max_mg_per_l: float | None
    metabolite_max_mg_per_l: float | None
    analgesia_after_course: dict[str, float] | None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class Prediction:
    """Predicted concentrations for one patient on ``times_min``."""

    model: PkModel
    patient: Covariates
    regimen: Regimen
    times_min: FloatArray
    plasma_mg_per_l: FloatArray
    effect_site_mg_per_l: FloatArray
    norketamine_mg_per_l: FloatArray | None
    analgesia: FloatArray | None
    auc_mg_min_per_l: FloatArray
    warnings: tuple[str, ...] = field(default=())

    def summary(self, threshold_mg_per_l: float | None = None) -> Summary:
        """Cmax, time of Cmax, exact AUC over the grid span, time above a threshold, and
        predicted analgesia 1-12 weeks after the last dose (when the model has it)."""
        i = int(np.argmax(self.plasma_mg_per_l))
        above = None
        if threshold_mg_per_l is not None:
            above = _time_above(self.times_min, self.plasma_mg_per_l, threshold_mg_per_l)
        after = None
        if self.analgesia is not None:
            after = _analgesia_after(self.model, self.patient, self.regimen)
        return Summary(
            cmax_mg_per_l=float(self.plasma_mg_per_l[i]),
            tmax_min=float(self.times_min[i]),
            auc_mg_min_per_l=float(self.auc_mg_min_per_l[-1] - self.auc_mg_min_per_l[0]),
            time_above_threshold_min=above,
            threshold_mg_per_l=threshold_mg_per_l,
            effect_site_max_mg_per_l=float(np.max(self.effect_site_mg_per_l)),
            metabolite_max_mg_per_l=None
            if self.norketamine_mg_per_l is None
            else float(np.max(self.norketamine_mg_per_l)),
            analgesia_after_course=after,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``times_min``, ``plasma_mg_per_l``, ``effect_site_mg_per_l`` and, where
        the model has them, ``norketamine_mg_per_l`` and ``analgesia``."""
        data: dict[str, Any] = {
            "model": self.model.id,
            "analyte": self.model.analyte,
            "times_min": self.times_min.tolist(),
            "plasma_mg_per_l": self.plasma_mg_per_l.tolist(),
            "effect_site_mg_per_l": self.effect_site_mg_per_l.tolist(),
            "effect_site_note": self.model.entry.effect_site.note,
        }
        if self.norketamine_mg_per_l is not None:
            data["norketamine_mg_per_l"] = self.norketamine_mg_per_l.tolist()
            data["norketamine_note"] = (
                self.model.entry.metabolite.units_note if self.model.entry.metabolite else ""
            )
        if self.analgesia is not None and self.model.analgesia is not None:
            data["analgesia"] = self.analgesia.tolist()
            data["analgesia_note"] = (
                f"fraction of maximal pain relief in a responder, {self.model.analgesia.name}; "
                f"{self.model.analgesia.population}"
            )
        data["warnings"] = list(self.warnings)
        return data


@dataclass(frozen=True)
class PopulationPrediction:
    """Predicted concentrations for P virtual patients: arrays are (P, T)."""

    model: PkModel
    times_min: FloatArray
    plasma_mg_per_l: FloatArray
    effect_site_mg_per_l: FloatArray | None
    norketamine_mg_per_l: FloatArray | None
    analgesia: FloatArray | None

    @property
    def n_patients(self) -> int:
        return int(self.plasma_mg_per_l.shape[0])

    def percentiles(self, q: Sequence[float] = (5, 50, 95), output: str = "plasma") -> FloatArray:
        """Percentiles over patients at each time: (len(q), T)."""
        values = {
            "plasma": self.plasma_mg_per_l,
            "effect_site": self.effect_site_mg_per_l,
            "norketamine": self.norketamine_mg_per_l,
            "analgesia": self.analgesia,
        }
        chosen = values.get(output)
        if chosen is None:
            raise PkInputError("output", f"{output!r} was not simulated")
        return np.asarray(np.percentile(chosen, list(q), axis=0), dtype=np.float64)


def check_times(times_min: Sequence[float] | FloatArray) -> FloatArray:
    """Validated output times: finite, not negative, strictly increasing."""
    times = np.asarray(times_min, dtype=np.float64).ravel()
    if times.size == 0:
        raise PkInputError("times_min", "at least one output time is needed")
    if not np.all(np.isfinite(times)):
        raise PkInputError("times_min", "every time must be a finite number of minutes")
    if np.any(times < 0):
        raise PkInputError("times_min", f"times must not be negative (got {times.min():g} min)")
    if np.any(np.diff(times) <= 0):
        raise PkInputError("times_min", "times must be strictly increasing")
    check_horizon("times_min", float(times[-1]))
    if times.size > MAX_OUTPUT_TIMES:
        raise PkInputError(
            "times_min",
            f"{times.size} output times is more than {MAX_OUTPUT_TIMES:,}; use a coarser grid",
        )
    return times


def run_engine(
    model: PkModel,
    params: Parameters,
    regimen: Regimen,
    times_min: FloatArray,
    outputs: tuple[str, ...],
    dose_scale: FloatArray | None = None,
) -> dict[str, FloatArray]:
    """Exact outputs (P, T) for ``params`` on ``times_min``; analgesia as fraction of max."""
    analgesia = model.analgesia
    ke0_a = 0.0
    if "analgesia_site" in outputs:
        if analgesia is None:
            raise PkInputError("outputs", "no analgesia model in the knowledge base")
        ke0_a = math.log(2.0) / (analgesia.half_life_days * MINUTES_PER_DAY)
    system = build_system(
        params,
        outputs=outputs,
        dose_fraction=model.dose_fraction,
        dose_scale=dose_scale,
        analgesia_ke0_per_min=ke0_a,
        analgesia_driver_fraction=model.analgesia_driver_fraction,
    )
    breakpoints, rates = regimen.rate_segments()
    bolus = regimen.bolus_mg_at(breakpoints)
    raw = Propagator(system).run(breakpoints, rates, bolus, times_min)
    result = {name: raw[:, :, i] for i, name in enumerate(outputs)}
    if "analgesia_site" in result and analgesia is not None:
        ce_ng_per_ml = np.maximum(result.pop("analgesia_site"), 0.0) * 1000.0
        h = analgesia.hill
        result["analgesia"] = ce_ng_per_ml**h / (analgesia.c50_ng_per_ml**h + ce_ng_per_ml**h)
    return result


def predict(
    model: PkModel | str,
    patient: Covariates | Any,
    regimen: Regimen,
    times_min: Sequence[float] | FloatArray,
    *,
    analgesia: bool = True,
) -> Prediction:
    """Exact prediction for one patient with the model's typical parameters."""
    model = get_model(model) if isinstance(model, str) else model
    cov = patient if isinstance(patient, Covariates) else Covariates.from_patient(patient)
    times = check_times(times_min)
    outputs = ["plasma", "effect_site", "auc"]
    if model.has_metabolite:
        outputs.append("metabolite")
    if analgesia and model.analgesia is not None:
        outputs.append("analgesia_site")
    res = run_engine(model, model.parameters(cov), regimen, times, tuple(outputs))
    warnings = model.warnings(cov, route=regimen.route)
    if "analgesia" in res and model.analgesia is not None:
        warnings.append(f"analgesia: {model.analgesia.name}, built in {model.analgesia.population}")
    return Prediction(
        model=model,
        patient=cov,
        regimen=regimen,
        times_min=times,
        plasma_mg_per_l=res["plasma"][0],
        effect_site_mg_per_l=res["effect_site"][0],
        norketamine_mg_per_l=res["metabolite"][0] if "metabolite" in res else None,
        analgesia=res["analgesia"][0] if "analgesia" in res else None,
        auc_mg_min_per_l=res["auc"][0],
        warnings=tuple(warnings),
    )


def predict_population(
    model: PkModel | str,
    patients: Covariates | Sequence[Covariates],
    regimen: Regimen,
    times_min: Sequence[float] | FloatArray,
    *,
    n: int | None = None,
    seed: int | None = None,
    variability: bool = True,
    effect_site: bool = True,
    norketamine: bool = True,
    analgesia: bool = False,
    per_kg: bool = False,
) -> PopulationPrediction:
    """Predictions for many patients at once (vectorised).

    With ``variability`` the patients are virtual patients drawn from the model's
    between-subject variability (one patient and ``n``, or one draw per given patient);
    without it, each given patient gets the typical parameters. With ``per_kg`` the
    regimen's doses are per kg (mg/kg, mg/kg/h) and each patient gets them times their weight.
    """
    model = get_model(model) if isinstance(model, str) else model
    times = check_times(times_min)
    group = [patients] if isinstance(patients, Covariates) else list(patients)
    if n is not None and n < 1:
        raise PkInputError("n", f"must be at least 1, not {n}")
    size = len(group) * (n or 1)
    if size * times.size > MAX_POPULATION_VALUES:
        raise PkInputError(
            "n",
            f"{size:,} patients x {times.size:,} times is more than "
            f"{MAX_POPULATION_VALUES:,} values per output; use fewer patients or a coarser grid",
        )
    if n is not None:
        group = group * n
    params = model.sample(patients, n, seed=seed) if variability else model.parameters(group)
    scale = np.array([p.weight_kg for p in group], dtype=np.float64) if per_kg else None
    outputs = ["plasma"]
    if effect_site:
        outputs.append("effect_site")
    if norketamine and model.has_metabolite:
        outputs.append("metabolite")
    if analgesia and model.analgesia is not None:
        outputs.append("analgesia_site")
    res = run_engine(model, params, regimen, times, tuple(outputs), dose_scale=scale)
    return PopulationPrediction(
        model=model,
        times_min=times,
        plasma_mg_per_l=res["plasma"],
        effect_site_mg_per_l=res.get("effect_site"),
        norketamine_mg_per_l=res.get("metabolite"),
        analgesia=res.get("analgesia"),
    )


def _time_above(times: FloatArray, values: FloatArray, threshold: float) -> float:
    """Minutes above ``threshold``, with crossings interpolated linearly between grid points."""
    total = 0.0
    for i in range(len(times) - 1):
        a, b = values[i] - threshold, values[i + 1] - threshold
        dt = times[i + 1] - times[i]
        if a >= 0 and b >= 0:
            total += dt
        elif a > 0 or b > 0:
            total += dt * max(a, b) / abs(b - a)
    return float(total)


def _analgesia_after(model: PkModel, patient: Covariates, regimen: Regimen) -> dict[str, float]:
    end = regimen.end_min
    times = np.array([end + w * 7 * MINUTES_PER_DAY for w in WEEKS_AFTER_COURSE])
    res = run_engine(model, model.parameters(patient), regimen, times, ("analgesia_site",))
    return {
        f"week_{w:g}": float(v)
        for w, v in zip(WEEKS_AFTER_COURSE, res["analgesia"][0], strict=True)
    }
