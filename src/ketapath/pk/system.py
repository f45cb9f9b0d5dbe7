"""The linear system dx/dt = K x + b u(t) and its exact solution.

State, per patient (amounts in mg, concentrations in mg/L, time in minutes)::

    parent A1..An | effect site Ce | metabolite M1..Mm | analgesia Ca | AUC of plasma

Between rate changes u is constant, so the state moves exactly by the matrix exponential of
the augmented matrix [[K, b], [0, 0]] (Van Loan): x(t + dt) = Phi(dt) x + Gamma(dt) u. Output
times on an even grid use a table of C Phi(h)^k, so a 10-day course at 1-minute resolution
costs one small matrix product per point, vectorised over patients; rate-change points are
always exact breakpoints. Nothing is integrated with a fixed-step ODE scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ketapath.pk.models import Parameters

FloatArray = NDArray[np.float64]

OUTPUTS = ("plasma", "effect_site", "metabolite", "analgesia_site", "auc")

# Memory budget (number of float64) for the per-grid-step output table.
_TABLE_BUDGET = 4_000_000


@dataclass(frozen=True)
class LinearSystem:
    """K (P, n, n), input vectors b (P, n), output matrix C (P, o, n) for ``outputs``."""

    k: FloatArray
    b: FloatArray
    c: FloatArray
    outputs: tuple[str, ...]


def build_system(
    params: Parameters,
    *,
    outputs: tuple[str, ...],
    dose_fraction: float = 1.0,
    dose_scale: FloatArray | None = None,
    analgesia_ke0_per_min: float = 0.0,
    analgesia_driver_fraction: float = 0.0,
) -> LinearSystem:
    """Assemble the compartmental matrices for the requested outputs only.

    ``dose_scale`` (P,) multiplies every dose of each patient (e.g. weight for mg/kg doses).
    """
    for name in outputs:
        if name not in OUTPUTS:
            raise ValueError(f"unknown output {name!r}")
    if "metabolite" in outputs and params.metabolite_volumes_l is None:
        raise ValueError("this model has no metabolite")
    vol = params.volumes_l
    cl = params.clearances_l_per_min
    p, n_par = vol.shape
    hepatic = params.hepatic_flow_l_per_min is not None
    liver = n_par
    if hepatic:
        n_par += 1  # the hepato-portal compartment follows the parent's own compartments
    n_met = (
        0
        if params.metabolite_volumes_l is None or "metabolite" not in outputs
        else (params.metabolite_volumes_l.shape[1])
    )
    layout: dict[str, int] = {}
    size = n_par
    for name, width in (
        ("effect_site", 1),
        ("metabolite", n_met),
        ("analgesia_site", 1),
        ("auc", 1),
    ):
        if name in outputs:
            layout[name] = size
            size += width
    k = np.zeros((p, size, size))
    v1 = vol[:, 0]
    k[:, 0, 0] = -cl[:, 0] / v1
    for i in range(1, vol.shape[1]):
        q = cl[:, i]
        k[:, 0, 0] -= q / v1
        k[:, 0, i] = q / vol[:, i]
        k[:, i, 0] = q / v1
        k[:, i, i] = -q / vol[:, i]
    if hepatic:
        assert params.hepatic_flow_l_per_min is not None
        assert params.hepatic_volume_l is not None
        assert params.hepatic_elimination_per_min is not None
        assert params.hepatic_metabolism_per_min is not None
        qh = params.hepatic_flow_l_per_min
        vh = params.hepatic_volume_l
        k[:, 0, 0] -= qh / v1
        k[:, 0, liver] = qh / vh
        k[:, liver, 0] = qh / v1
        k[:, liver, liver] = -(
            qh / vh + params.hepatic_elimination_per_min + params.hepatic_metabolism_per_min
        )
    if "effect_site" in layout:
        e = layout["effect_site"]
        ke0 = params.ke0_per_min
        k[:, e, 0] = ke0 / v1
        k[:, e, e] = -ke0
    if "metabolite" in layout:
        assert params.metabolite_volumes_l is not None
        assert params.metabolite_clearances_l_per_min is not None
        m0 = layout["metabolite"]
        mvol = params.metabolite_volumes_l
        mcl = params.metabolite_clearances_l_per_min
        if hepatic:
            assert params.hepatic_metabolism_per_min is not None
            k[:, m0, liver] = params.hepatic_metabolism_per_min
        else:
            k[:, m0, 0] = params.metabolite_formation_fraction * cl[:, 0] / v1
        k[:, m0, m0] = -mcl[:, 0] / mvol[:, 0]
        for i in range(1, n_met):
            q = mcl[:, i]
            k[:, m0, m0] -= q / mvol[:, 0]
            k[:, m0, m0 + i] = q / mvol[:, i]
            k[:, m0 + i, m0] = q / mvol[:, 0]
            k[:, m0 + i, m0 + i] = -q / mvol[:, i]
    if "analgesia_site" in layout:
        a = layout["analgesia_site"]
        k[:, a, 0] = analgesia_ke0_per_min * analgesia_driver_fraction / v1
        k[:, a, a] = -analgesia_ke0_per_min
    if "auc" in layout:
        k[:, layout["auc"], 0] = 1.0 / v1
    b = np.zeros((p, size))
    b[:, 0] = dose_fraction if dose_scale is None else dose_fraction * dose_scale
    c = np.zeros((p, len(outputs), size))
    for row, name in enumerate(outputs):
        if name == "plasma":
            c[:, row, 0] = 1.0 / v1
        elif name == "metabolite":
            assert params.metabolite_volumes_l is not None
            c[:, row, layout[name]] = 1.0 / params.metabolite_volumes_l[:, 0]
        else:
            c[:, row, layout[name]] = 1.0
    return LinearSystem(k, b, c, outputs)


class Propagator:
    """Exact propagation of one LinearSystem for many patients at once."""

    def __init__(self, system: LinearSystem) -> None:
        self.system = system
        p, n, _ = system.k.shape
        aug = np.zeros((p, n + 1, n + 1))
        aug[:, :n, :n] = system.k
        aug[:, :n, n] = system.b
        self._aug = aug
        self._n = n
        self._steps: dict[float, tuple[FloatArray, FloatArray]] = {}
        self._tables: dict[float, tuple[FloatArray, FloatArray]] = {}

    def step(self, dt: float) -> tuple[FloatArray, FloatArray]:
        """(Phi (P, n, n), Gamma (P, n)) for a step of ``dt`` minutes at unit rate."""
        cached = self._steps.get(dt)
        if cached is None:
            e = expm_batch(self._aug * dt)
            cached = (
                np.ascontiguousarray(e[:, : self._n, : self._n]),
                np.ascontiguousarray(e[:, : self._n, self._n]),
            )
            self._steps[dt] = cached
        return cached

    def advance(self, x: FloatArray, dt: float, rate: float) -> FloatArray:
        if dt <= 0.0:
            return x
        phi, gamma = self.step(dt)
        moved: FloatArray = np.einsum("pij,pj->pi", phi, x) + gamma * rate
        return moved

    def run(
        self,
        breakpoints: FloatArray,
        rates_per_min: FloatArray,
        bolus_mg: FloatArray,
        times: FloatArray,
    ) -> FloatArray:
        """Outputs (P, T, o) at sorted ``times`` for a piecewise-constant regimen."""
        c = self.system.c
        p, o, n = c.shape
        out = np.empty((p, len(times), o))
        x = np.zeros((p, n))
        first = 0
        b = self.system.b
        for j, t_a in enumerate(breakpoints):
            t_b = breakpoints[j + 1] if j + 1 < len(breakpoints) else math.inf
            rate = float(rates_per_min[j])
            if bolus_mg[j] > 0:
                x = x + b * bolus_mg[j]
            last = len(times) if math.isinf(t_b) else int(np.searchsorted(times, t_b, "left"))
            x_at, t_at = x, float(t_a)
            if last > first:
                x_at, t_at = self._fill(out, x, float(t_a), rate, times, first, last)
            if not math.isinf(t_b):
                x = self.advance(x_at, float(t_b) - t_at, rate)
            first = last
            if first >= len(times):
                break  # every output time is done; later doses cannot change them
        return out

    def _fill(
        self,
        out: FloatArray,
        x: FloatArray,
        t_a: float,
        rate: float,
        times: FloatArray,
        first: int,
        last: int,
    ) -> tuple[FloatArray, float]:
        ts = times[first:last]
        c = self.system.c
        if len(ts) >= 3:
            # An even grid (to 1e-9 of its span) is filled from the power table.
            h = float(ts[-1] - ts[0]) / (len(ts) - 1)
            ideal = ts[0] + h * np.arange(len(ts))
            if h > 0 and float(np.max(np.abs(ts - ideal))) <= 1e-9 * max(1.0, abs(ts[-1])):
                return self._fill_grid(out, x, t_a, rate, float(ts[0]), h, first, last)
        t_prev = t_a
        for i, t in enumerate(ts):
            x = self.advance(x, float(t) - t_prev, rate)
            t_prev = float(t)
            out[:, first + i, :] = np.einsum("pon,pn->po", c, x)
        return x, t_prev

    def _fill_grid(
        self,
        out: FloatArray,
        x: FloatArray,
        t_a: float,
        rate: float,
        t0: float,
        h: float,
        first: int,
        last: int,
    ) -> tuple[FloatArray, float]:
        """Outputs on the even grid t0 + k h (k < last - first), in chunks of L points.

        The state at every chunk start is propagated first (one exact step per chunk); then
        each patient's outputs for all full chunks come from one matrix product,
        states (chunks, n) x table (n, L o), written straight into ``out`` (P, T, o).
        """
        x = self.advance(x, t0 - t_a, rate)
        table, gains = self._table(h)
        p, n, width = table.shape
        o = out.shape[2]
        length = width // o
        total = last - first
        n_full, rest = divmod(total, length)
        n_chunks = n_full + (1 if rest else 0)
        states = np.empty((p, n_chunks, n))
        states[:, 0, :] = x
        for c in range(1, n_chunks):
            x = self.advance(x, length * h, rate)
            states[:, c, :] = x
        if n_full:
            view = out[:, first : first + n_full * length, :].reshape(p, n_full, width)
            np.matmul(states[:, :n_full, :], table, out=view)
            if rate != 0.0:
                view += (gains * rate)[:, None, :]
        if rest:
            start = first + n_full * length
            tail = out[:, start : start + rest, :].reshape(p, 1, rest * o)
            np.matmul(states[:, n_full:, :], table[:, :, : rest * o], out=tail)
            if rate != 0.0:
                tail += (gains[:, : rest * o] * rate)[:, None, :]
        return states[:, -1, :], t0 + (n_chunks - 1) * length * h

    def _table(self, h: float) -> tuple[FloatArray, FloatArray]:
        """(C Phi(h)^k)^T as (P, n, L o) and C Gamma(k h) as (P, L o), k-major, k < L.

        Built by doubling: rows k in [2^j, 2^(j+1)) are rows [0, 2^j) times Phi(h)^(2^j).
        """
        cached = self._tables.get(h)
        if cached is not None:
            return cached
        c = self.system.c
        p, o, n = c.shape
        length = int(max(16, min(2048, _TABLE_BUDGET // max(1, 4 * p * o * n))))
        phi, gamma = self.step(h)
        rows = np.empty((p, length, o, n))
        rows[:, 0] = c
        power = phi
        filled = 1
        while filled < length:
            take = min(filled, length - filled)
            rows[:, filled : filled + take] = np.matmul(rows[:, :take], power[:, None])
            filled += take
            if filled < length:
                power = np.matmul(power, power)
        # C Gamma(k h) = sum_{j<k} C Phi(h)^j Gamma(h)
        steps = np.einsum("pkon,pn->pko", rows, gamma)
        gains = np.zeros((p, length, o))
        np.cumsum(steps[:, :-1], axis=1, out=gains[:, 1:])
        table = np.ascontiguousarray(rows.transpose(0, 3, 1, 2)).reshape(p, n, length * o)
        result = (table, gains.reshape(p, length * o))
        self._tables[h] = result
        return result


def expm_batch(a: FloatArray) -> FloatArray:
    """Matrix exponential of every matrix in ``a`` (P, n, n), vectorised over P.

    Scaling and squaring with a degree-18 Taylor polynomial at norm <= 1/4 (truncation error
    below 1e-25 relative), which is exact to rounding for these small compartmental matrices;
    scipy.linalg.expm gives the same result (tested) but loops over P in Python.
    """
    norm = float(np.max(np.sum(np.abs(a), axis=2))) if a.size else 0.0
    squarings = max(0, math.ceil(math.log2(norm / 0.25))) if norm > 0.25 else 0
    b = a / (2.0**squarings)
    n = a.shape[-1]
    eye = np.broadcast_to(np.eye(n), a.shape)
    result = eye + b / 18.0
    for k in range(17, 0, -1):
        result = eye + np.matmul(b, result) / k
    for _ in range(squarings):
        result = np.matmul(result, result)
    return np.asarray(result, dtype=np.float64)


def bolus_response(params: Parameters, t_min: float) -> tuple[float, float]:
    """Plasma and effect-site concentration ``t_min`` after a 1 mg bolus (first patient)."""
    system = build_system(params, outputs=("plasma", "effect_site"))
    prop = Propagator(system)
    x0 = np.zeros((params.n_patients, system.k.shape[1]))
    x0[:, 0] = 1.0  # 1 mg in the central compartment
    x = prop.advance(x0, t_min, 0.0)
    y = np.einsum("pon,pn->po", system.c, x)
    return float(y[0, 0]), float(y[0, 1])
