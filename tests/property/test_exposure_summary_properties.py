"""Exposure summaries (ketapath.domain.exposure_summary over ketapath.pk.summary) for any
patient within the engine's bounds, any model and any session log with pauses and boluses:
the AUC is the per-minute path's exact AUC; the peak is a point of the curve that no grid
point exceeds; time above lies in the window and falls as the threshold rises; everything
scales with the dose (the models are linear), and time above a doubled threshold for doubled
doses is unchanged; a batch equals its patients one by one; every number is finite and never
negative."""

from __future__ import annotations

import itertools
import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from tests.property.test_exposure_properties import MODELS, SETTINGS, patients, session_logs

from ketapath import pk
from ketapath.domain.exposure import BolusDose, InfusionSegment, SessionDoses
from ketapath.domain.exposure_summary import (
    ExposureSummary,
    summarise_doses,
    summarise_many,
)
from ketapath.knowledge.exposure import load_exposure_thresholds

THRESHOLDS = load_exposure_thresholds()


def _curve(
    patient: pk.Covariates, doses: SessionDoses, model_id: str, times: np.ndarray
) -> pk.Prediction:
    return pk.predict(model_id, patient, doses.regimen(), times, analgesia=False)


def _numbers(summary: ExposureSummary) -> list[float]:
    out = [summary.window_min, summary.total_mg]
    for analyte in (summary.ketamine, summary.norketamine):
        if analyte is None:
            continue
        out += [
            analyte.auc_mg_h_per_l,
            analyte.auc_inf_mg_h_per_l,
            analyte.peak_mg_per_l,
            analyte.peak_at_min,
            *(minutes for _, minutes in analyte.time_above_min),
        ]
    return out


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS)
def test_the_summary_is_the_per_minute_curve_without_its_grid(
    patient: pk.Covariates, log: SessionDoses, model_id: str
) -> None:
    summary = summarise_doses(patient, log, THRESHOLDS, model_id=model_id)
    assert all(math.isfinite(v) and v >= 0 for v in _numbers(summary))
    window = summary.window_min
    events = [t for t in log.event_times_min() if 0 <= t <= window]
    grid = np.union1d(np.arange(0.0, window, 1.0), [*events, window])
    found = _curve(patient, log, model_id, grid)
    k = summary.ketamine
    # the per-minute path's AUC is exact too (a state of its linear system)
    exact_auc = float(found.auc_mg_min_per_l[-1]) / 60
    assert math.isclose(k.auc_mg_h_per_l, exact_auc, rel_tol=1e-8, abs_tol=1e-15)
    assert k.auc_inf_mg_h_per_l >= k.auc_mg_h_per_l * (1 - 1e-12)
    # the peak is on the curve, and no grid point is above it
    assert k.peak_mg_per_l >= float(found.plasma_mg_per_l.max()) * (1 - 1e-9) - 1e-15
    at = _curve(patient, log, model_id, np.array([k.peak_at_min]))
    assert math.isclose(float(at.plasma_mg_per_l[0]), k.peak_mg_per_l, rel_tol=1e-8, abs_tol=1e-15)
    if summary.norketamine is not None:
        assert found.norketamine_mg_per_l is not None
        n = summary.norketamine
        assert n.peak_mg_per_l >= float(found.norketamine_mg_per_l.max()) * (1 - 1e-9) - 1e-15
    for analyte in (k, summary.norketamine):
        if analyte is None:
            continue
        ordered = sorted(analyte.time_above_min, key=lambda item: item[0].applied_mg_per_l)
        minutes = [m for _, m in ordered]
        assert all(0 <= m <= window * (1 + 1e-12) for m in minutes)
        assert all(a >= b - 1e-9 for a, b in itertools.pairwise(minutes))
        above_peak = [m for t, m in ordered if t.applied_mg_per_l > analyte.peak_mg_per_l]
        assert all(m == 0 for m in above_peak)


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS, scale=st.floats(0.05, 20))
def test_everything_scales_with_the_dose(
    patient: pk.Covariates, log: SessionDoses, model_id: str, scale: float
) -> None:
    scaled = SessionDoses(
        tuple(
            InfusionSegment(s.start_min, s.end_min, s.rate_mg_per_h * scale) for s in log.infusions
        ),
        tuple(BolusDose(b.time_min, b.dose_mg * scale) for b in log.boluses),
    )
    base = summarise_doses(patient, log, THRESHOLDS, model_id=model_id)
    more = summarise_doses(patient, scaled, THRESHOLDS, model_id=model_id)
    for a, b in ((base.ketamine, more.ketamine), (base.norketamine, more.norketamine)):
        if a is None or b is None:
            assert a is b
            continue
        for x, y in (
            (a.auc_mg_h_per_l, b.auc_mg_h_per_l),
            (a.auc_inf_mg_h_per_l, b.auc_inf_mg_h_per_l),
            (a.peak_mg_per_l, b.peak_mg_per_l),
        ):
            assert math.isclose(y, x * scale, rel_tol=1e-9, abs_tol=1e-15)


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS)
def test_time_above_a_doubled_threshold_for_doubled_doses_is_unchanged(
    patient: pk.Covariates, log: SessionDoses, model_id: str
) -> None:
    model = pk.get_model(model_id)
    from ketapath.pk.summary import Schedule, summarise

    def schedule(factor: float) -> Schedule:
        return Schedule.from_events(
            1,
            end_min=[log.end_min + 360],
            infusion_patient=[0] * len(log.infusions),
            infusion_start_min=[s.start_min for s in log.infusions],
            infusion_end_min=[s.end_min for s in log.infusions],
            infusion_rate_mg_per_h=[s.rate_mg_per_h * factor for s in log.infusions],
            bolus_patient=[0] * len(log.boluses),
            bolus_time_min=[b.time_min for b in log.boluses],
            bolus_mg=[b.dose_mg * factor for b in log.boluses],
        )

    params = model.parameters(patient)
    once = summarise(model, params, schedule(1.0), plasma_thresholds_mg_per_l=[0.01, 0.1])
    twice = summarise(model, params, schedule(2.0), plasma_thresholds_mg_per_l=[0.02, 0.2])
    np.testing.assert_allclose(
        twice.plasma.time_above_min, once.plasma.time_above_min, rtol=1e-7, atol=1e-6
    )


@SETTINGS
@given(
    people=st.lists(patients(), min_size=2, max_size=5),
    logs=st.lists(session_logs(), min_size=5, max_size=5),
    model_id=MODELS,
)
def test_a_batch_equals_its_patients_one_by_one(
    people: list[pk.Covariates], logs: list[SessionDoses], model_id: str
) -> None:
    logs = logs[: len(people)]
    batch = summarise_many(people, logs, THRESHOLDS, model_ids=[model_id] * len(people))
    for person, log, together in zip(people, logs, batch, strict=True):
        alone = summarise_doses(person, log, THRESHOLDS, model_id=model_id)
        np.testing.assert_allclose(_numbers(together), _numbers(alone), rtol=1e-9, atol=1e-9)
