"""Exposure summaries (ketapath.pk.summary: closed forms, no grid) against an independent ODE
solution (LSODA at rtol 1e-13, written from the models' parameters apart from ketapath's
linear system; tests/integration/test_pk_oracle.py) sampled every 0.005 min: AUC to 1e-7
relative (the trapezoidal rule on that grid), peak to 1e-7 relative, time above to 0.001 min,
for every model with a metabolite and two without, on sessions with rate changes and pauses."""

from __future__ import annotations

import numpy as np
import pytest
from tests.integration.test_pk_oracle import _ode_solution

from ketapath import pk
from ketapath.pk.summary import Schedule, summarise


def _time_above(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    a, b = values[:-1] - threshold, values[1:] - threshold
    dt = np.diff(times)
    full = (a >= 0) & (b >= 0)
    part = ~full & ((a > 0) | (b > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(part, np.maximum(a, b) / np.abs(b - a), 0.0)
    return float(np.sum(dt * full) + np.sum(dt * share))


@pytest.mark.parametrize("model_id", ["domino", "kamp", "otto-fanta", "perez-ruixo"])
def test_summaries_match_an_independent_ode_solution(model_id: str) -> None:
    rng = np.random.default_rng(len(model_id))
    model = pk.get_model(model_id)
    for _ in range(2):
        patient = pk.Covariates(
            weight_kg=float(rng.uniform(45, 130)),
            age_years=float(rng.uniform(20, 80)),
            sex="female",
            height_cm=170.0,
        )
        rows, t = [], float(rng.uniform(0, 30))
        for _ in range(4):
            length = float(rng.uniform(15, 120))
            rate = 0.0 if rng.random() < 0.3 else float(rng.uniform(5, 50))
            if rate > 0:
                rows.append((t, t + length, rate))
            t += length
        rows.append((t, t + 30.0, 40.0))
        end = t + 30.0 + 360.0
        schedule = Schedule.from_events(
            1,
            end_min=[end],
            infusion_patient=[0] * len(rows),
            infusion_start_min=[r[0] for r in rows],
            infusion_end_min=[r[1] for r in rows],
            infusion_rate_mg_per_h=[r[2] for r in rows],
        )
        # every dose event on the grid: a peak at the end of an infusion is a kink
        events = [x for r in rows for x in r[:2]]
        times = np.union1d(np.arange(0.0, end, 0.005), [*events, end])
        cp, _, cm = _ode_solution(model_id, patient, pk.Regimen.from_infusion_record(rows), times)
        plasma_levels = [0.25 * cp.max(), 0.75 * cp.max()]
        result = summarise(
            model,
            model.parameters(patient),
            schedule,
            plasma_thresholds_mg_per_l=plasma_levels,
            metabolite_thresholds_mg_per_l=[] if cm is None else [0.5 * cm.max()],
        )
        curves = [(result.plasma, cp, plasma_levels)]
        if cm is not None:
            assert result.metabolite is not None
            curves.append((result.metabolite, cm, [0.5 * cm.max()]))
        for summary, reference, levels in curves:
            auc = float(np.trapezoid(reference, times))
            assert summary.auc_mg_min_per_l[0] == pytest.approx(auc, rel=1e-7)
            assert summary.peak_mg_per_l[0] == pytest.approx(reference.max(), rel=1e-7)
            assert summary.peak_at_min[0] == pytest.approx(times[np.argmax(reference)], abs=0.01)
            for k, level in enumerate(levels):
                assert summary.time_above_min[0, k] == pytest.approx(
                    _time_above(times, reference, level), abs=1e-3
                )
