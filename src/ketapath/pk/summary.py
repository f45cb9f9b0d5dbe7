"""Exposure summaries without a time grid: AUC, peak and time above thresholds, exactly.

A summary (how much, how high, how long above a concentration) does not need the
concentration at every minute. Between two dose events the infusion rate u is constant and
the state moves by the linear system dx/dt = K x + b u, whose solution has a closed form:

- **Modes.** K is diagonalised once per patient, K = V diag(lambda) V^-1 (real, negative,
  distinct eigenvalues for these compartmental models; the basis is checked, see
  :func:`modes`). In modal coordinates z = V^-1 x every mode moves alone:
  z(tau) = z_ss + (z0 - z_ss) exp(lambda tau), with z_ss = -beta u / lambda, beta = V^-1 b.
- **A segment's curve.** Each output (plasma, norketamine) is then, on a segment of width w,
  f(tau) = kappa + sum_k alpha_k exp(lambda_k tau) with kappa = C V z_ss and
  alpha_k = (C V)_k (z0 - z_ss)_k: a constant plus a few decaying exponentials.
- **AUC** of a segment in closed form: kappa w + sum_k alpha_k expm1(lambda_k w) / lambda_k
  (the integral of the exponentials), and after the last segment, with no further dose,
  sum_k alpha_k / -lambda_k (the AUC to infinity).
- **Which segments need more than their ends.** Each exponential is monotone, so the sum
  of the terms' smallest (largest) values at the two ends bounds f below (above) on the
  segment. A segment is examined only when its upper bound exceeds the best value already
  found at any segment's end (it might hold a higher peak) or its bounds straddle a
  threshold; every other segment is wholly above or below each threshold.
- **Critical points** of an examined segment, the roots of
  f'(tau) = sum_k alpha_k lambda_k exp(lambda_k tau), are isolated exactly: Laguerre's rule
  of signs (a sum of exponentials has at most as many real roots as its coefficients,
  ordered by exponent, have sign changes) settles most segments at once; otherwise
  Rolle's theorem, generalised ((d/dtau - lambda_j) g removes term j, and between two of its
  roots g is zero at most once), gives a short ladder of simpler sums whose roots cut the
  segment into pieces holding at most one root each (:func:`_critical_points`).
- **Peak**: the largest of the values at the segments' ends and at the critical points.
- **Time above** a concentration: the critical points cut a segment into monotone pieces;
  a piece whose ends straddle the threshold holds exactly one crossing.
- Every bracketed root is found by Halley's method kept inside its bracket (bisection when a
  step would leave it), to 1e-9 min.

Everything is vectorised over patients (and over segments in the root finding); patients of
one batch share a model, and each has its own covariates and its own dose events. No
concentration is computed on a grid. ``docs/pk.md`` ("Exposure summaries") has the maths.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ketapath.pk.errors import PkError, PkInputError
from ketapath.pk.models import Parameters, PkModel, get_model
from ketapath.pk.system import build_system

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

# A modal basis is trusted when it reproduces K to this (relative) and is this well
# conditioned; the typical parameters of every model over the whole input range of
# pk_input_bounds.yaml are far inside (tests/unit/test_pk_summary.py).
MAX_RECONSTRUCTION_ERROR = 1e-10
MAX_CONDITION = 1e8
# Patients summarised at once (bounds the memory: ~100 MB a chunk for a 10-day course).
CHUNK = 2048
# Newton iterations of a root (each at least halves its bracket), and the root's precision
# in minutes (60 ns: far below anything a summary reports).
MAX_NEWTON = 100
TIME_TOLERANCE = 1e-9
LAST_STEP = 1e-4
LONG_BRACKET = 60.0
# A segment whose upper bound is within this share of the best value found cannot hold a
# higher peak worth finding (rounding of the bound itself is ~1e-15).
PEAK_TOLERANCE = 1e-12
# Coefficients smaller than this share of the largest do not count as a sign change.
SIGN_TOLERANCE = 1e-12
EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Schedule:
    """Piecewise-constant dosing of P patients on their own time axes (minutes).

    ``breakpoints_min`` (P, S) ascending per patient, the first 0; the rate
    ``rates_mg_per_min`` (P, S) holds on [t_j, t_j+1) and the last one up to ``end_min``
    (P,), the end of the summary window; ``bolus_mg`` (P, S) is given at t_j. Patients with
    fewer events are padded with zero-width segments (their last time repeated).
    """

    breakpoints_min: FloatArray
    rates_mg_per_min: FloatArray
    bolus_mg: FloatArray
    end_min: FloatArray

    @property
    def n_patients(self) -> int:
        return int(self.breakpoints_min.shape[0])

    def rows(self, lo: int, hi: int) -> Schedule:
        """Patients ``lo`` to ``hi`` (excluded), without the padding none of them needs (the
        columns after a patient's last event repeat its last time, with nothing given)."""
        times = self.breakpoints_min[lo:hi]
        distinct = np.sum(times[:, 1:] > times[:, :-1], axis=1) + 1
        size = int(np.max(distinct, initial=1))
        return Schedule(
            times[:, :size],
            self.rates_mg_per_min[lo:hi, :size],
            self.bolus_mg[lo:hi, :size],
            self.end_min[lo:hi],
        )

    @property
    def widths_min(self) -> FloatArray:
        """Width of every segment (P, S); the last runs to ``end_min``."""
        nxt = np.concatenate([self.breakpoints_min[:, 1:], self.end_min[:, None]], axis=1)
        widths: FloatArray = np.maximum(nxt - self.breakpoints_min, 0.0)
        return widths

    @classmethod
    def from_events(
        cls,
        n_patients: int,
        *,
        end_min: ArrayLike,
        infusion_patient: ArrayLike = (),
        infusion_start_min: ArrayLike = (),
        infusion_end_min: ArrayLike = (),
        infusion_rate_mg_per_h: ArrayLike = (),
        bolus_patient: ArrayLike = (),
        bolus_time_min: ArrayLike = (),
        bolus_mg: ArrayLike = (),
    ) -> Schedule:
        """The schedule of flat event tables (one row per infusion segment or bolus, with the
        index of its patient), built without a Python loop over patients or events.

        Overlapping infusions add up. ``end_min`` (P,) closes each patient's window; it must
        not come before the patient's last dose event.
        """
        if n_patients < 1:
            raise PkInputError("patients", "at least one patient is needed")
        ends = _float_array(end_min, "end_min")
        if ends.shape != (n_patients,):
            raise PkInputError("end_min", f"one window end per patient ({n_patients})")
        i_who = _index_array(infusion_patient, n_patients, "infusion_patient")
        i_start = _float_array(infusion_start_min, "infusion_start_min")
        i_end = _float_array(infusion_end_min, "infusion_end_min")
        i_rate = _float_array(infusion_rate_mg_per_h, "infusion_rate_mg_per_h") / 60.0
        b_who = _index_array(bolus_patient, n_patients, "bolus_patient")
        b_time = _float_array(bolus_time_min, "bolus_time_min")
        b_mg = _float_array(bolus_mg, "bolus_mg")
        if not (len(i_who) == len(i_start) == len(i_end) == len(i_rate)):
            raise PkInputError("infusions", "the infusion columns differ in length")
        if not (len(b_who) == len(b_time) == len(b_mg)):
            raise PkInputError("boluses", "the bolus columns differ in length")
        if np.any(i_start < 0) or np.any(b_time < 0):
            raise PkInputError("times", "dose times must not be negative")
        if np.any(i_end < i_start):
            raise PkInputError("infusion_end_min", "an infusion ends before it starts")
        if np.any(i_rate < 0) or np.any(b_mg < 0):
            raise PkInputError("doses", "rates and bolus doses must not be negative")
        last = np.zeros(n_patients)
        np.maximum.at(last, i_who, i_end)
        np.maximum.at(last, b_who, b_time)
        if np.any(ends < last):
            raise PkInputError("end_min", "a window ends before the patient's last dose event")

        owners = np.concatenate([np.arange(n_patients), i_who, i_who, b_who])
        times = np.concatenate([np.zeros(n_patients), i_start, i_end, b_time])
        order = np.lexsort((times, owners))
        s_owner, s_time = owners[order], times[order]
        new = np.ones(len(order), dtype=bool)
        new[1:] = (np.diff(s_owner) != 0) | (np.diff(s_time) != 0)
        unique_id = np.cumsum(new) - 1
        inverse = np.empty(len(order), dtype=np.int64)
        inverse[order] = unique_id
        u_owner = s_owner[new]
        u_time = s_time[new]
        counts = np.bincount(u_owner, minlength=n_patients)
        first = np.concatenate([[0], np.cumsum(counts)[:-1]])
        position = np.arange(len(u_owner)) - first[u_owner]
        size = int(counts.max())
        breakpoints = np.repeat(u_time[first + counts - 1][:, None], size, axis=1)
        breakpoints[u_owner, position] = u_time

        def slot(offset: int, count: int) -> IntArray:
            ids = inverse[offset : offset + count]
            out: IntArray = ids - first[u_owner[ids]]
            return out

        n_inf = len(i_who)
        start_slot = slot(n_patients, n_inf)
        end_slot = slot(n_patients + n_inf, n_inf)
        bolus_slot = slot(n_patients + 2 * n_inf, len(b_who))
        deltas = np.zeros((n_patients, size + 1))
        np.add.at(deltas, (i_who, start_slot), i_rate)
        np.add.at(deltas, (i_who, end_slot), -i_rate)
        rates = np.cumsum(deltas[:, :size], axis=1)
        # what remains of adding and taking away the same rates is rounding, not a dose
        scale = np.max(np.abs(i_rate), initial=0.0)
        rates[np.abs(rates) <= 1e-12 * scale] = 0.0
        boluses = np.zeros((n_patients, size))
        np.add.at(boluses, (b_who, bolus_slot), b_mg)
        return cls(breakpoints, rates, boluses, ends)


@dataclass(frozen=True)
class OutputSummary:
    """One output's summary per patient over the window (mg/L, minutes)."""

    auc_mg_min_per_l: FloatArray  # (P,) from 0 to the window's end
    auc_inf_mg_min_per_l: FloatArray  # (P,) from 0 to infinity, no dose after the window
    peak_mg_per_l: FloatArray  # (P,)
    peak_at_min: FloatArray  # (P,)
    thresholds_mg_per_l: FloatArray  # (H,)
    time_above_min: FloatArray  # (P, H)


@dataclass(frozen=True)
class ExposureSummaries:
    """Plasma (the model's analyte) and, where the model has it, its metabolite."""

    model: PkModel
    plasma: OutputSummary
    metabolite: OutputSummary | None
    window_min: FloatArray  # (P,)


@dataclass(frozen=True)
class Modes:
    """The modal form of a batch's system: ascending eigenvalues (P, n), the input in modal
    coordinates (P, n) and the outputs' rows in modal coordinates (P, o, n)."""

    rates: FloatArray
    input: FloatArray
    outputs: FloatArray


def modes(params: Parameters, model: PkModel, outputs: tuple[str, ...]) -> Modes:
    """Diagonalise each patient's system (plasma and metabolite only, no AUC state).

    Raises ``PkError`` when a patient's eigenbasis is not trustworthy (complex or repeated
    eigenvalues, an ill-conditioned basis): no model of the knowledge base comes near it
    within the engine's input bounds (tested), so it would mean a new model needs another
    method, not a silently wrong number.
    """
    system = build_system(params, outputs=outputs, dose_fraction=model.dose_fraction)
    k = system.k
    values, vectors = np.linalg.eig(k)
    if np.iscomplexobj(values):
        if np.max(np.abs(values.imag)) > 1e-12 * np.max(np.abs(values.real)):
            raise PkError(f"model {model.id!r}: complex eigenvalues; summaries need real modes")
        values, vectors = values.real, vectors.real
    order = np.argsort(values, axis=1)
    lam = np.take_along_axis(values, order, axis=1)
    vec = np.take_along_axis(vectors, order[:, None, :], axis=2)
    try:
        inv = np.linalg.inv(vec)
    except np.linalg.LinAlgError as error:
        raise PkError(f"model {model.id!r}: singular eigenbasis") from error
    rebuilt = np.einsum("pij,pj,pjk->pik", vec, lam, inv)
    scale = np.max(np.abs(k), axis=(1, 2))
    residual = np.max(np.abs(rebuilt - k), axis=(1, 2)) / scale
    condition = np.max(np.abs(vec), axis=(1, 2)) * np.max(np.abs(inv), axis=(1, 2))
    if np.any(lam >= 0) or np.any(residual > MAX_RECONSTRUCTION_ERROR):
        raise PkError(f"model {model.id!r}: the modal form does not reproduce the system")
    if np.any(condition > MAX_CONDITION):
        raise PkError(f"model {model.id!r}: ill-conditioned eigenbasis (nearly repeated modes)")
    beta = np.einsum("pij,pj->pi", inv, system.b)
    rows = np.einsum("poi,pij->poj", system.c, vec)
    return Modes(lam, beta, rows)


def summarise(
    model: PkModel | str,
    params: Parameters,
    schedule: Schedule,
    *,
    plasma_thresholds_mg_per_l: Sequence[float] = (),
    metabolite_thresholds_mg_per_l: Sequence[float] = (),
    metabolite: bool = True,
) -> ExposureSummaries:
    """AUC, AUC to infinity, peak and its time, and time above each threshold, for every
    patient of ``params`` on its row of ``schedule`` (see the module docstring)."""
    model = get_model(model) if isinstance(model, str) else model
    if params.n_patients != schedule.n_patients:
        raise PkInputError("schedule", "one schedule row per patient")
    with_metabolite = metabolite and model.has_metabolite
    outputs = ("plasma", "metabolite") if with_metabolite else ("plasma",)
    thresholds = [_thresholds(plasma_thresholds_mg_per_l, "plasma_thresholds_mg_per_l")]
    if with_metabolite:
        thresholds.append(
            _thresholds(metabolite_thresholds_mg_per_l, "metabolite_thresholds_mg_per_l")
        )
    m = modes(params, model, outputs)
    parts: list[list[OutputSummary]] = []
    # patients in chunks: the memory stays bounded however large the registry
    for lo in range(0, params.n_patients, CHUNK):
        hi = min(lo + CHUNK, params.n_patients)
        part_modes = Modes(m.rates[lo:hi], m.input[lo:hi], m.outputs[lo:hi])
        part = schedule.rows(lo, hi)
        curves = _segment_curves(part_modes, part)
        parts.append(
            [_summarise_output(curves, o, part, thresholds[o]) for o in range(len(outputs))]
        )
    results = [_joined([chunk[o] for chunk in parts]) for o in range(len(outputs))]
    return ExposureSummaries(
        model=model,
        plasma=results[0],
        metabolite=results[1] if with_metabolite else None,
        window_min=schedule.end_min.copy(),
    )


def _joined(parts: list[OutputSummary]) -> OutputSummary:
    if len(parts) == 1:
        return parts[0]
    return OutputSummary(
        auc_mg_min_per_l=np.concatenate([x.auc_mg_min_per_l for x in parts]),
        auc_inf_mg_min_per_l=np.concatenate([x.auc_inf_mg_min_per_l for x in parts]),
        peak_mg_per_l=np.concatenate([x.peak_mg_per_l for x in parts]),
        peak_at_min=np.concatenate([x.peak_at_min for x in parts]),
        thresholds_mg_per_l=parts[0].thresholds_mg_per_l,
        time_above_min=np.concatenate([x.time_above_min for x in parts]),
    )


# -- the segments' closed forms -------------------------------------------------------------
@dataclass(frozen=True)
class _Curves:
    """Every segment's curve per output: f = kappa + sum alpha exp(lambda tau)."""

    rates: FloatArray  # (P, n)
    alpha: FloatArray  # (P, S, o, n)
    kappa: FloatArray  # (P, S, o)
    widths: FloatArray  # (P, S)
    auc: FloatArray  # (P, o)
    auc_inf: FloatArray  # (P, o)


def _segment_curves(m: Modes, schedule: Schedule) -> _Curves:
    lam, beta, rows = m.rates, m.input, m.outputs
    p, n = lam.shape
    o = rows.shape[1]
    widths = schedule.widths_min
    s = widths.shape[1]
    alpha = np.empty((p, s, o, n))
    kappa = np.empty((p, s, o))
    auc = np.zeros((p, o))
    z = np.zeros((p, n))
    for j in range(s):
        bolus = schedule.bolus_mg[:, j]
        if np.any(bolus):
            z = z + beta * bolus[:, None]
        rate = schedule.rates_mg_per_min[:, j]
        steady = -beta * (rate[:, None] / lam)
        delta = z - steady
        alpha[:, j] = rows * delta[:, None, :]
        kappa[:, j] = np.einsum("pon,pn->po", rows, steady)
        lw = lam * widths[:, j, None]
        decay = np.exp(lw)
        auc += kappa[:, j] * widths[:, j, None] + np.einsum(
            "pon,pn->po", alpha[:, j], np.expm1(lw) / lam
        )
        z = steady + delta * decay
    auc_inf = auc + np.einsum("pon,pn->po", rows, -z / lam)
    return _Curves(lam, alpha, kappa, widths, auc, auc_inf)


def _summarise_output(
    curves: _Curves, output: int, schedule: Schedule, thresholds: FloatArray
) -> OutputSummary:
    p, s = curves.widths.shape
    # modes that do not reach this output (the metabolite's, in plasma) are left out
    alpha = curves.alpha[:, :, output, :]
    size = np.max(np.abs(alpha), axis=(0, 1))
    used = size > SIGN_TOLERANCE * np.max(size, initial=0.0)
    if not np.any(used):
        used[:] = True
    n = int(used.sum())
    coef = alpha[:, :, used].reshape(p * s, n)
    const = curves.kappa[:, :, output].reshape(p * s)
    width = curves.widths.reshape(p * s)
    lam = np.repeat(curves.rates[:, used], s, axis=0)
    owner = np.repeat(np.arange(p), s)
    start = schedule.breakpoints_min.reshape(p * s)
    at_end = coef * np.exp(lam * width[:, None])
    v0 = const + coef.sum(axis=1)
    v1 = const + at_end.sum(axis=1)
    live = width > 0
    # the best value at a segment's end (the first segment's start when nothing has width)
    ends = np.stack([np.where(live, v0, -np.inf), np.where(live, v1, -np.inf)], axis=1)
    ends = ends.reshape(p, 2 * s)
    ends[:, 0] = np.maximum(ends[:, 0], v0[::s])
    best = np.argmax(ends, axis=1)
    peak = ends[np.arange(p), best]
    first = np.arange(p) * s + best // 2
    peak_at = start[first] + np.where(best % 2 == 1, width[first], 0.0)
    # bounds of f on each segment: each exponential is monotone, its extremes at the ends
    lower = const + np.minimum(coef, at_end).sum(axis=1)
    upper = const + np.maximum(coef, at_end).sum(axis=1)
    h = len(thresholds)
    straddle = (lower[:, None] < thresholds[None, :]) & (thresholds[None, :] < upper[:, None])
    higher = upper > peak[owner] + PEAK_TOLERANCE * np.abs(peak[owner])
    time_above = np.zeros((p, h))
    whole = live[:, None] & ~straddle & (lower[:, None] >= thresholds[None, :])
    for k in range(h):
        time_above[:, k] = np.bincount(owner, weights=width * whole[:, k], minlength=p)
    idx = np.flatnonzero(live & (higher | straddle.any(axis=1)))
    if idx.size == 0:
        return _output(curves, output, peak, peak_at, thresholds, time_above)
    # the examined segments cut into monotone pieces at their critical points (NaN: none)
    c_coef, c_lam, c_width = coef[idx], lam[idx], width[idx]
    cuts = np.sort(_critical_points(c_coef, c_lam, c_width), axis=1)
    m = cuts.shape[1]
    times = np.concatenate([np.zeros((idx.size, 1)), cuts, c_width[:, None]], axis=1)
    times = np.where(np.isnan(times), c_width[:, None], times)
    values = np.empty((idx.size, m + 2))
    values[:, 0], values[:, -1] = v0[idx], v1[idx]
    if m:
        inner = np.exp(c_lam[:, None, :] * times[:, 1:-1, None])
        values[:, 1:-1] = const[idx, None] + np.einsum("rn,rmn->rm", c_coef, inner)
        rise = values[:, 1:-1] > peak[owner[idx], None]
        if np.any(rise):
            row, col = np.nonzero(rise)
            _raise(
                peak,
                peak_at,
                owner[idx[row]],
                values[row, col + 1],
                start[idx[row]] + times[row, col + 1],
            )
    a_t, b_t = times[:, :-1], times[:, 1:]
    a_v, b_v = values[:, :-1], values[:, 1:]
    for k in range(h):
        theta = thresholds[k]
        use = straddle[idx, k][:, None] & (b_t > a_t)
        full = use & (a_v >= theta) & (b_v >= theta)
        cross = use & ~full & ~((a_v <= theta) & (b_v <= theta))
        above = np.where(full, b_t - a_t, 0.0)
        if np.any(cross):
            row, col = np.nonzero(cross)
            root = _solve(
                c_coef[row],
                c_lam[row],
                const[idx[row]] - theta,
                a_t[row, col],
                b_t[row, col],
                a_v[row, col] - theta,
                b_v[row, col] - theta,
            )
            rising = b_v[row, col] > a_v[row, col]
            above[row, col] = np.where(rising, b_t[row, col] - root, root - a_t[row, col])
        time_above[:, k] += np.bincount(owner[idx], weights=above.sum(axis=1), minlength=p)
    return _output(curves, output, peak, peak_at, thresholds, time_above)


def _output(
    curves: _Curves,
    output: int,
    peak: FloatArray,
    peak_at: FloatArray,
    thresholds: FloatArray,
    time_above: FloatArray,
) -> OutputSummary:
    return OutputSummary(
        auc_mg_min_per_l=curves.auc[:, output].copy(),
        auc_inf_mg_min_per_l=curves.auc_inf[:, output].copy(),
        peak_mg_per_l=peak,
        peak_at_min=peak_at,
        thresholds_mg_per_l=thresholds.copy(),
        time_above_min=time_above,
    )


def _raise(
    peak: FloatArray, peak_at: FloatArray, who: IntArray, values: FloatArray, at: FloatArray
) -> None:
    """Raise each patient's peak to the highest of ``values`` above it (earliest on ties)."""
    better = values > peak[who]
    if not np.any(better):
        return
    who, values, at = who[better], values[better], at[better]
    order = np.lexsort((at, -values, who))
    who, values, at = who[order], values[order], at[order]
    first = np.ones(who.size, dtype=bool)
    first[1:] = who[1:] != who[:-1]
    peak[who[first]] = values[first]
    peak_at[who[first]] = at[first]


# -- roots of sums of exponentials ----------------------------------------------------------
def _critical_points(coef: FloatArray, lam: FloatArray, width: FloatArray) -> FloatArray:
    """Every root of f' = sum coef lam exp(lam tau) inside (0, width), one row per segment,
    padded with NaN.

    Laguerre's rule of signs: a sum of exponentials has at most as many real roots as its
    coefficients, ordered by exponent, have sign changes. With at most one, or two and a
    sign change between the ends (an odd number of roots, at most two), the interval holds at
    most one root, bracketed by the ends. Otherwise, Rolle's theorem generalised: for any
    term j of g, g and exp(-lam_j tau) g have the same roots, and the latter's derivative is
    exp(-lam_j tau) (d/dtau - lam_j) g, where (d/dtau - lam_j) g has lost term j and
    multiplied term k by lam_k - lam_j; between two consecutive roots of it, g is zero at most
    once. So a ladder g_0 = f', g_1, ... is built, each rung removing the term that leaves
    the fewest sign changes, until a rung has at most one root in the interval; its root (if
    any) cuts (0, width) into pieces for the rung below, where a piece whose ends differ in
    sign holds exactly one root, found by safeguarded Halley iteration (:func:`_solve`), and
    so down to f'.
    """
    rows, n = coef.shape
    rung = coef * lam
    decay = np.exp(lam * width[:, None])
    signs = _signs(rung)
    changes = _sign_changes(signs)
    top = np.zeros(rows, dtype=np.int64)  # the rung with at most one root in (0, width)
    ladder = [rung]
    climbing = np.flatnonzero(~_one_root_at_most(rung, decay, changes))
    # removing term j multiplies term k by lam_k - lam_j: of the sign of k - j (ascending)
    flip = np.sign(np.arange(n)[None, :] - np.arange(n)[:, None]).astype(np.int8)
    while climbing.size and len(ladder) < n:
        current, s_cur = ladder[-1][climbing], signs[climbing]
        counts = _sign_changes(s_cur[:, None, :] * flip[None, :, :])
        counts = np.where(s_cur != 0, counts, n + 1)
        choice = np.argmin(counts, axis=1)
        lam_c = lam[climbing]
        chosen = current * (lam_c - np.take_along_axis(lam_c, choice[:, None], axis=1))
        chosen[np.arange(climbing.size), choice] = 0.0
        nxt = np.zeros_like(rung)
        nxt[climbing] = chosen
        ladder.append(nxt)
        signs = signs.copy()
        signs[climbing] = s_cur * flip[choice]
        top[climbing] = len(ladder) - 1
        left = counts[np.arange(climbing.size), choice]
        climbing = climbing[~_one_root_at_most(chosen, decay[climbing], left)]
    cuts = np.full((rows, 0), np.nan)
    for level in range(len(ladder) - 1, -1, -1):
        on = np.flatnonzero(top >= level)
        found = _roots_between(ladder[level][on], lam[on], width[on], decay[on], cuts[on])
        cuts = np.full((rows, found.shape[1]), np.nan)
        cuts[on] = found
    return cuts


def _one_root_at_most(g: FloatArray, decay: FloatArray, changes: IntArray) -> NDArray[np.bool_]:
    """Rows whose sum has at most one root in (0, width): at most one sign change in its
    coefficients, or two and a sign change between the ends (an odd number of roots, at most
    two)."""
    ends = g.sum(axis=1) * np.einsum("rn,rn->r", g, decay)
    out: NDArray[np.bool_] = (changes <= 1) | ((changes == 2) & (ends < 0))
    return out


def _roots_between(
    g: FloatArray,
    lam: FloatArray,
    width: FloatArray,
    decay: FloatArray,
    cuts: FloatArray,
) -> FloatArray:
    """The roots of g on (0, width), one row each, given the roots of the next rung of the
    ladder (``cuts``, NaN where none), which separate them: one per piece whose ends differ
    in sign. Padded with NaN like ``cuts``, one column more."""
    r, m = cuts.shape
    inner = np.sort(np.where(np.isfinite(cuts), cuts, width[:, None]), axis=1)
    values = np.empty((r, m + 2))
    size = np.empty((r, m + 2))  # the sum of the terms' sizes: the rounding of a value
    values[:, 0] = g.sum(axis=1)
    size[:, 0] = np.abs(g).sum(axis=1)
    values[:, -1] = np.einsum("rn,rn->r", g, decay)
    size[:, -1] = np.einsum("rn,rn->r", np.abs(g), decay)
    if m:
        inside = np.exp(lam[:, None, :] * inner[:, :, None])
        values[:, 1:-1] = np.einsum("rn,rmn->rm", g, inside)
        size[:, 1:-1] = np.einsum("rn,rmn->rm", np.abs(g), inside)
    # a value within its rounding is zero: a root at an end, not a sign change (a metabolite
    # starting from nothing has a slope of exactly 0, which rounding gives either sign)
    values[np.abs(values) <= 8 * EPS * size] = 0.0
    bounds = np.concatenate([np.zeros((r, 1)), inner, width[:, None]], axis=1)
    lo_v, hi_v = values[:, :-1], values[:, 1:]
    change = (lo_v * hi_v < 0) & (bounds[:, 1:] > bounds[:, :-1])
    out = np.full((r, m + 1), np.nan)
    row, col = np.nonzero(change)
    if row.size:
        out[row, col] = _solve(
            g[row],
            lam[row],
            np.zeros(row.size),
            bounds[row, col],
            bounds[row, col + 1],
            lo_v[row, col],
            hi_v[row, col],
        )
    return out


def _signs(coef: FloatArray) -> NDArray[np.int8]:
    """Signs of the coefficients along the last axis, negligible ones counted as 0."""
    scale = np.max(np.abs(coef), axis=-1, keepdims=True)
    out: NDArray[np.int8] = np.sign(coef).astype(np.int8)
    out[np.abs(coef) <= SIGN_TOLERANCE * scale] = 0
    return out


def _sign_changes(signs: NDArray[np.int8]) -> IntArray:
    """Sign changes along the last axis (the terms ordered by exponent), zeros skipped: by
    Laguerre's rule, an upper bound on the real roots of the sum."""
    out = np.zeros(signs.shape[:-1], dtype=np.int64)
    last = np.zeros(signs.shape[:-1], dtype=np.int8)
    for k in range(signs.shape[-1]):
        sk = signs[..., k]
        out += (sk * last) < 0
        last = np.where(sk != 0, sk, last)
    return out


def _solve(
    coef: FloatArray,
    lam: FloatArray,
    const: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
    f_lo: FloatArray,
    f_hi: FloatArray,
) -> FloatArray:
    """The root of f = const + sum coef exp(lam tau) in each bracket [lo, hi] (``f_lo`` and
    ``f_hi`` of opposite signs), by Halley's method kept inside the bracket, to 1e-9 min or
    the last bits of f.

    The iteration starts at an end where f and f'' have the same sign (Fourier's condition:
    from there Newton's iterates approach the root from one side), else at the
    false-position point; a step that would leave the bracket is a bisection, and so is one
    that is not below half the step before it (from the fourth on: a long flat tail).
    """
    lo, hi = lo.copy(), hi.copy()
    slope_coef = coef * lam
    bend = slope_coef * lam
    c_lo = np.einsum("rn,rn->r", bend, np.exp(lam * lo[:, None]))
    c_hi = np.einsum("rn,rn->r", bend, np.exp(lam * hi[:, None]))
    with np.errstate(divide="ignore", invalid="ignore"):
        x = lo + (hi - lo) * f_lo / (f_lo - f_hi)
    x = np.where(np.isfinite(x) & (x > lo) & (x < hi), x, lo + (hi - lo) / 2)
    # in a long bracket the root is most often early (a crossing or a metabolite's peak soon
    # after a dose event): its start is then the geometric middle of 1 min and the width
    far = np.where(hi - lo > LONG_BRACKET, lo + np.sqrt(hi - lo), np.where(f_hi * c_hi > 0, hi, x))
    x = np.where(f_lo * c_lo > 0, lo, far)
    sign_lo = np.sign(f_lo)
    active = np.arange(x.size)
    before = hi - lo  # the last step's size
    for count in range(MAX_NEWTON):
        if active.size == 0:
            break
        xa = x[active]
        e = np.exp(lam[active] * xa[:, None])
        terms = coef[active] * e
        f = const[active] + terms.sum(axis=1)
        d = np.einsum("rn,rn->r", slope_coef[active], e)
        c = np.einsum("rn,rn->r", bend[active], e)
        # f is zero to within the rounding of its own terms: as close as arithmetic gets
        noise = 8 * EPS * (np.abs(const[active]) + np.abs(terms).sum(axis=1))
        f = np.where(np.abs(f) <= noise, 0.0, f)
        same = np.sign(f) == sign_lo[active]
        a = np.where(same, xa, lo[active])
        b = np.where(same, hi[active], xa)
        lo[active], hi[active] = a, b
        with np.errstate(divide="ignore", invalid="ignore"):
            step = 2 * f * d / (2 * d * d - f * c)  # Halley: cubic convergence
        newton = xa - step
        inside = np.isfinite(newton) & (newton > a) & (newton < b)
        # a step this small leaves an error of the order of its cube
        close = inside & (np.abs(step) <= LAST_STEP)
        # steps that stop shrinking fast (a long flat tail) give way to a bisection
        slow = (count >= 3) & (np.abs(step) > 0.5 * before[active])
        bisect = ~inside | (slow & ~close)
        new = np.where(bisect, a + (b - a) / 2, newton)
        before[active] = np.abs(new - xa)
        tol = TIME_TOLERANCE + 4 * EPS * np.abs(new)
        finished = close | (np.abs(new - xa) <= tol) | (b - a <= tol) | (f == 0)
        x[active] = np.where(f == 0, xa, new)
        active = active[~finished]
    return x


def _thresholds(values: Sequence[float], name: str) -> FloatArray:
    out = np.asarray(list(values), dtype=np.float64).ravel()
    if not np.all(np.isfinite(out)) or np.any(out <= 0):
        raise PkInputError(name, "every threshold must be a finite concentration above 0")
    return out


def _float_array(values: ArrayLike, name: str) -> FloatArray:
    out = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(out)):
        raise PkInputError(name, "must be finite numbers")
    return out


def _index_array(values: ArrayLike, n: int, name: str) -> IntArray:
    out = np.asarray(values, dtype=np.int64).ravel()
    if out.size and (out.min() < 0 or out.max() >= n):
        raise PkInputError(name, f"patient indexes must be from 0 to {n - 1}")
    return out
