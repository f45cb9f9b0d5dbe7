"""Published PK models as objects: parameters for patients, virtual patients, warnings.

The numbers come from ``knowledge/data/pk_models.yaml`` (with citations and validity ranges);
this module only turns them into per-patient volumes, clearances and rate constants.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cache, lru_cache

import numpy as np
from numpy.typing import NDArray

from ketapath.knowledge.pk_models import (
    AnalgesiaEntry,
    Disposition,
    PkModelEntry,
    load_pk_knowledge,
)
from ketapath.pk.errors import NoVariabilityError, PkInputError, UnknownModelError
from ketapath.pk.patient import Covariates

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class Parameters:
    """Per-patient parameters, vectorised: every array has the patients on axis 0.

    ``volumes_l`` (P, n) holds V1..Vn; ``clearances_l_per_min`` (P, n) holds CL, Q2..Qn.
    Metabolite arrays are (P, m) or None.
    """

    volumes_l: FloatArray
    clearances_l_per_min: FloatArray
    ke0_per_min: FloatArray
    metabolite_volumes_l: FloatArray | None = None
    metabolite_clearances_l_per_min: FloatArray | None = None
    metabolite_formation_fraction: float = 0.0
    hepatic_volume_l: FloatArray | None = None
    hepatic_flow_l_per_min: FloatArray | None = None
    hepatic_elimination_per_min: FloatArray | None = None
    hepatic_metabolism_per_min: FloatArray | None = None

    @property
    def n_patients(self) -> int:
        return int(self.volumes_l.shape[0])

    @property
    def total_clearance_l_per_min(self) -> FloatArray:
        """Clearance from plasma: central CL, plus hepatic flow x extraction where present."""
        cl = self.clearances_l_per_min[:, 0].copy()
        if self.hepatic_flow_l_per_min is not None:
            assert self.hepatic_volume_l is not None
            assert self.hepatic_elimination_per_min is not None
            assert self.hepatic_metabolism_per_min is not None
            intrinsic = self.hepatic_volume_l * (
                self.hepatic_elimination_per_min + self.hepatic_metabolism_per_min
            )
            flow = self.hepatic_flow_l_per_min
            cl = cl + flow * intrinsic / (flow + intrinsic)
        return cl


class PkModel:
    """One published model: ``model.parameters(patients)``, ``model.sample(patient, n)``."""

    def __init__(self, entry: PkModelEntry, analgesia: AnalgesiaEntry | None) -> None:
        self.entry = entry
        self.analgesia = analgesia

    # -- identity -----------------------------------------------------------------------
    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def analyte(self) -> str:
        return self.entry.analyte

    @property
    def has_metabolite(self) -> bool:
        return self.entry.metabolite is not None

    @property
    def metabolite_name(self) -> str | None:
        return None if self.entry.metabolite is None else self.entry.metabolite.name

    @property
    def dose_fraction(self) -> float:
        return self.entry.dose_fraction

    @property
    def analgesia_driver_fraction(self) -> float:
        """Share of this model's concentration that drives the (S-ketamine) analgesia model."""
        if self.analgesia is None:
            return 0.0
        return 1.0 if self.analyte == "S-ketamine" else self.analgesia.racemic_to_s_fraction

    @property
    def has_variability(self) -> bool:
        return bool(self.entry.variability)

    def __repr__(self) -> str:
        return f"PkModel({self.id!r}: {self.name})"

    # -- parameters ---------------------------------------------------------------------
    def parameters(self, patients: Sequence[Covariates] | Covariates) -> Parameters:
        """Typical (population) parameters for each patient."""
        group = _as_group(patients)
        return self._parameters(_weights(group), np.zeros((len(group), 0)), [], ages=_ages(group))

    def sample(
        self,
        patients: Sequence[Covariates] | Covariates,
        n: int | None = None,
        *,
        seed: int | None = None,
    ) -> Parameters:
        """Virtual patients drawn with the model's between-subject variability.

        With one patient and ``n``, draws ``n`` virtual copies of that patient; with a list of
        patients, draws one per patient.
        """
        if not self.entry.variability:
            raise NoVariabilityError(
                f"model {self.id!r} has no published between-subject variability in the "
                "knowledge base; simulate given patients' covariates instead, or use a model "
                "with variability (e.g. 'otto-fanta')"
            )
        group = _as_group(patients)
        if n is not None:
            if n < 1:
                raise PkInputError("n", f"must be at least 1, not {n}")
            if len(group) != 1:
                raise PkInputError("n", "give either one patient and n, or a list of patients")
            group = group * n
        rng = np.random.default_rng(seed)
        names: list[str] = []
        etas: list[FloatArray] = []
        for block in self.entry.variability:
            cov = np.array(block.covariance, dtype=np.float64)
            etas.append(rng.multivariate_normal(np.zeros(len(cov)), cov, size=len(group)))
            names.extend(block.parameters)
        return self._parameters(_weights(group), np.hstack(etas), names, ages=_ages(group))

    def _parameters(
        self,
        weights: FloatArray,
        etas: FloatArray,
        names: list[str],
        ke0: float | None = None,
        ages: FloatArray | None = None,
    ) -> Parameters:
        factor = {name: np.exp(etas[:, i]) for i, name in enumerate(names)}
        one = np.ones_like(weights)
        entry = self.entry
        if entry.micro is not None:
            m = entry.micro
            v1 = m.v1_l_per_kg * weights
            ks = [(m.k12_per_min, m.k21_per_min), (m.k13_per_min, m.k31_per_min)]
            volumes = [v1]
            clearances = [m.k10_per_min * v1]
            for k_out, k_back in ks:
                if k_out > 0:
                    volumes.append(k_out * v1 / k_back)
                    clearances.append(k_out * v1)
            vol = np.stack(volumes, axis=1)
            cl = np.stack(clearances, axis=1)
        else:
            assert entry.disposition is not None
            vol, cl = _scaled(entry.disposition, weights)
            vol[:, 0] *= factor.get("v1", one)
            if vol.shape[1] > 1:
                vol[:, 1] *= factor.get("v2", one)
            cl[:, 0] *= factor.get("cl", one)
        mvol = mcl = None
        fm = 0.0
        if entry.metabolite is not None:
            mvol, mcl = _scaled(entry.metabolite.disposition, weights)
            mvol[:, 0] *= factor.get("metabolite_v1", one)
            mcl[:, 0] *= factor.get("metabolite_cl", one)
            fm = entry.metabolite.formation_fraction
        ke0_all = np.full(len(weights), self.ke0_per_min if ke0 is None else ke0)
        hepatic: dict[str, FloatArray] = {}
        if entry.hepatic is not None:
            h = entry.hepatic
            age = np.zeros_like(weights) if ages is None else np.nan_to_num(ages, nan=0.0)
            # The decline is the study's (to its oldest subject); carried on past it, it would
            # reach a negative liver blood flow at ~129 years (Perez-Ruixo 2021), and growing
            # concentrations. Beyond the study's ages the flow of its oldest age is kept (the
            # prediction already warns that the patient is outside the study's range).
            oldest = entry.validity.age_years.maximum
            if oldest is not None:
                age = np.minimum(age, oldest)
            decline = h.flow_decline_l_per_h_per_year * np.maximum(
                0.0, age - h.flow_decline_after_age_years
            )
            hepatic = {
                "hepatic_volume_l": h.volume_l * factor.get("hepatic_volume", one),
                "hepatic_flow_l_per_min": (h.flow_l_per_h - decline)
                / 60.0
                * factor.get("hepatic_flow", one),
                "hepatic_elimination_per_min": h.elimination_per_h
                / 60.0
                * factor.get("hepatic_elimination", one),
                "hepatic_metabolism_per_min": np.full_like(weights, h.metabolism_per_h / 60.0),
            }
        return Parameters(vol, cl, ke0_all, mvol, mcl, fm, **hepatic)

    @property
    def ke0_per_min(self) -> float:
        """The effect-site constant: as stored, or computed from the stored time to peak."""
        site = self.entry.effect_site
        if site.ke0_per_min is not None:
            return site.ke0_per_min
        assert site.time_to_peak_min is not None
        return _ke0_for_time_to_peak(self.id, site.time_to_peak_min)

    def reference_patient(self) -> Covariates:
        ref = 70.0 if self.entry.disposition is None else self.entry.disposition.reference_weight_kg
        return Covariates(weight_kg=ref)

    # -- validity -----------------------------------------------------------------------
    def warnings(self, patient: Covariates, *, route: str = "iv") -> list[str]:
        """Plain-language warnings: patient outside the model's range, route without a model."""
        out: list[str] = []
        validity = self.entry.validity
        checks = [
            ("age", patient.age_years, validity.age_years, "years"),
            ("weight", patient.weight_kg, validity.weight_kg, "kg"),
        ]
        for label, value, rng, unit in checks:
            if value is None:
                if rng.minimum is not None or rng.maximum is not None:
                    out.append(
                        f"{label} not given: cannot check it against the {self.id} model's range"
                    )
                continue
            if rng.minimum is not None and value < rng.minimum:
                out.append(
                    f"{label} {value:g} {unit} is below the {self.id} model's range "
                    f"(minimum {rng.minimum:g} {unit}): prediction is an extrapolation. "
                    f"{validity.note}"
                )
            if rng.maximum is not None and value > rng.maximum:
                out.append(
                    f"{label} {value:g} {unit} is above the {self.id} model's range "
                    f"(maximum {rng.maximum:g} {unit}): prediction is an extrapolation. "
                    f"{validity.note}"
                )
        if route != "iv":
            out.append(
                f"route {route.upper()}: {self.entry.route_note} The prediction treats "
                "the doses as intravenous, which overstates early peaks."
            )
        return out


def _scaled(disposition: Disposition, weights: FloatArray) -> tuple[FloatArray, FloatArray]:
    ratio = weights / disposition.reference_weight_kg
    vol = np.stack([v.value * ratio**v.weight_exponent for v in disposition.volumes_l], axis=1)
    cl = np.stack(
        [c.value / 60.0 * ratio**c.weight_exponent for c in disposition.clearances_l_per_h],
        axis=1,
    )
    return vol, cl


def _weights(group: list[Covariates]) -> FloatArray:
    return np.array([p.weight_kg for p in group], dtype=np.float64)


def _ages(group: list[Covariates]) -> FloatArray:
    """Ages in years, NaN where unknown."""
    return np.array(
        [np.nan if p.age_years is None else p.age_years for p in group], dtype=np.float64
    )


def _as_group(patients: Sequence[Covariates] | Covariates) -> list[Covariates]:
    group = [patients] if isinstance(patients, Covariates) else list(patients)
    if not group:
        raise PkInputError("patients", "at least one patient is needed")
    return group


@cache
def _ke0_for_time_to_peak(model_id: str, time_to_peak_min: float) -> float:
    """ke0 for which the effect site peaks ``time_to_peak_min`` after a bolus (70 kg patient).

    At the peak dCe/dt = ke0 (Cp - Ce) = 0, so we solve Cp(t) = Ce(t; ke0) exactly.
    """
    from ketapath.pk.system import bolus_response  # local: system imports this module

    model = get_model(model_id)
    base = model._parameters(
        np.array([model.reference_patient().weight_kg]), np.zeros((1, 0)), [], ke0=1.0
    )

    def gap(log_ke0: float) -> float:
        params = replace(base, ke0_per_min=np.array([math.exp(log_ke0)]))
        cp, ce = bolus_response(params, time_to_peak_min)
        return cp - ce

    return math.exp(bisect_root(gap, math.log(1e-4), math.log(1e3), xtol=1e-14))


def bisect_root(f: Callable[[float], float], lo: float, hi: float, *, xtol: float) -> float:
    """A root of ``f`` in ``[lo, hi]`` (``f(lo)`` and ``f(hi)`` of opposite signs) to ``xtol``.

    Bisection: ~60 evaluations for this problem, a few milliseconds. It replaces
    ``scipy.optimize.brentq``, whose import (~0.4 s) every ``simulate`` with such a model paid;
    tests/unit/test_pk_models.py checks that both give the same ke0.
    """
    f_lo = f(lo)
    if f_lo == 0:
        return lo
    if f_lo * f(hi) > 0:
        raise ValueError("f(lo) and f(hi) must have opposite signs")
    while hi - lo > xtol:
        mid = lo + (hi - lo) / 2
        if mid in (lo, hi):  # no float between them: as close as the arithmetic gets
            break
        f_mid = f(mid)
        if f_mid == 0:
            return mid
        if (f_mid < 0) == (f_lo < 0):
            lo, f_lo = mid, f_mid
        else:
            hi = mid
    return lo + (hi - lo) / 2


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, PkModel]:
    models, analgesia = load_pk_knowledge()
    pd_model = analgesia[0] if analgesia else None
    return {m.id: PkModel(m, pd_model) for m in models}


def model_ids() -> list[str]:
    """Ids of every model in the knowledge base."""
    return list(_catalogue())


def get_model(model_id: str) -> PkModel:
    """The model with this id, or UnknownModelError listing the known ones."""
    catalogue = _catalogue()
    try:
        return catalogue[model_id]
    except KeyError:
        raise UnknownModelError(model_id, list(catalogue)) from None
