"""Predicted exposure (ketapath.domain.exposure) for any patient and any session log: as given
equal to the plan gives identical curves; how a log is cut into segments does not matter;
concentrations are finite and never negative; AUC and peaks scale with the dose (every model
is linear); a pause never raises the exposure."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketapath import pk
from ketapath.domain.exposure import (
    BolusDose,
    InfusionSegment,
    SessionDoses,
    as_given_exposure,
    compare_exposure,
    predict_exposure,
)

MODELS = st.sampled_from(["domino", "clements", "hijazi", "kamp", "otto-fanta", "perez-ruixo"])
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def patients(draw: st.DrawFn) -> pk.Covariates:
    return pk.Covariates(
        weight_kg=draw(st.floats(0.2, 700)),
        age_years=draw(st.one_of(st.none(), st.floats(0, 130))),
        sex=draw(st.sampled_from([None, "male", "female"])),
        height_cm=draw(st.one_of(st.none(), st.floats(20, 280))),
    )


@st.composite
def session_logs(draw: st.DrawFn) -> SessionDoses:
    """Contiguous rate segments (pauses at 0 mg/h among them) and a few boluses."""
    segments = []
    t = draw(st.floats(0, 120))
    for _ in range(draw(st.integers(1, 6))):
        length = draw(st.floats(1, 300))
        rate = draw(st.one_of(st.just(0.0), st.floats(0.5, 400)))
        segments.append(InfusionSegment(t, t + length, rate))
        t += length
    boluses = tuple(
        BolusDose(draw(st.floats(0, t)), draw(st.floats(0.5, 100)))
        for _ in range(draw(st.integers(0, 3)))
    )
    return SessionDoses(tuple(segments), boluses)


def _curves(exposure: object) -> list[np.ndarray]:
    return [c.concentrations_ng_per_ml for c in exposure.curves]  # type: ignore[attr-defined]


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS)
def test_as_given_equal_to_the_plan_gives_identical_curves(
    patient: pk.Covariates, log: SessionDoses, model_id: str
) -> None:
    planned = predict_exposure(patient, log, model_id=model_id)
    logged = as_given_exposure(patient, log.infusions, log.boluses, model_id=model_id)
    for a, b in zip(_curves(planned), _curves(logged), strict=True):
        np.testing.assert_array_equal(a, b)
    compared = compare_exposure(patient, log, log, model_id=model_id)
    for difference in compared.differences:
        assert difference.peak_difference_ng_per_ml == 0
        assert difference.auc_difference_ng_h_per_ml == 0


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS)
def test_concentrations_are_finite_and_never_negative(
    patient: pk.Covariates, log: SessionDoses, model_id: str
) -> None:
    found = predict_exposure(patient, log, model_id=model_id)
    assert len(found.curves) in (2, 3)
    for curve in found.curves:
        values = curve.concentrations_ng_per_ml
        assert values.shape == found.times_min.shape
        assert np.all(np.isfinite(values)) and np.all(values >= 0)
        assert math.isfinite(curve.auc_ng_h_per_ml) and curve.auc_ng_h_per_ml >= 0
        assert curve.peak_ng_per_ml == float(np.max(values))


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS, scale=st.floats(0.05, 20))
def test_auc_and_peaks_scale_with_the_dose(
    patient: pk.Covariates, log: SessionDoses, model_id: str, scale: float
) -> None:
    scaled = SessionDoses(
        tuple(
            InfusionSegment(s.start_min, s.end_min, s.rate_mg_per_h * scale) for s in log.infusions
        ),
        tuple(BolusDose(b.time_min, b.dose_mg * scale) for b in log.boluses),
    )
    base = predict_exposure(patient, log, model_id=model_id)
    more = predict_exposure(patient, scaled, model_id=model_id)
    for a, b in zip(base.curves, more.curves, strict=True):
        assert math.isclose(
            b.auc_ng_h_per_ml, a.auc_ng_h_per_ml * scale, rel_tol=1e-9, abs_tol=1e-12
        )
        assert math.isclose(b.peak_ng_per_ml, a.peak_ng_per_ml * scale, rel_tol=1e-9, abs_tol=1e-12)


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS, data=st.data())
def test_cutting_a_segment_in_two_at_the_same_rate_changes_nothing(
    patient: pk.Covariates, log: SessionDoses, model_id: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(log.infusions) - 1))
    segment = log.infusions[index]
    cut = data.draw(st.floats(segment.start_min, segment.end_min))
    pieces = (
        InfusionSegment(segment.start_min, cut, segment.rate_mg_per_h),
        InfusionSegment(cut, segment.end_min, segment.rate_mg_per_h),
    )
    infusions = log.infusions[:index] + pieces + log.infusions[index + 1 :]
    whole = predict_exposure(patient, log, model_id=model_id)
    split = as_given_exposure(
        patient, infusions, log.boluses, model_id=model_id, until_min=float(whole.times_min[-1])
    )
    # the cut is a new point of the grid: compare on the whole log's grid
    keep = np.isin(split.times_min, whole.times_min)
    for a, b in zip(_curves(whole), _curves(split), strict=True):
        np.testing.assert_allclose(b[keep], a, rtol=1e-9, atol=1e-9 * max(1.0, float(a.max())))


@SETTINGS
@given(patient=patients(), log=session_logs(), model_id=MODELS, data=st.data())
def test_a_pause_never_raises_the_exposure(
    patient: pk.Covariates, log: SessionDoses, model_id: str, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(log.infusions) - 1))
    paused = tuple(
        InfusionSegment(s.start_min, s.end_min, 0.0) if i == index else s
        for i, s in enumerate(log.infusions)
    )
    compared = compare_exposure(patient, log, SessionDoses(paused, log.boluses), model_id=model_id)
    for difference in compared.differences:
        scale = 1e-9 * max(1.0, abs(difference.auc_difference_ng_h_per_ml))
        assert difference.auc_difference_ng_h_per_ml <= scale + 1e-9
        assert difference.peak_difference_ng_per_ml <= 1e-9 * max(
            1.0, next(c for c in compared.planned.curves if c.key == difference.key).peak_ng_per_ml
        )


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=600),
            st.integers(min_value=0, max_value=600),
            st.floats(min_value=0, max_value=500, allow_nan=False),
        ),
        max_size=8,
    ),
    st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=600),
            st.floats(min_value=0, max_value=100, allow_nan=False),
        ),
        max_size=4,
    ),
)
def test_the_doses_given_keep_every_milligram_of_the_log(
    segments: list[tuple[int, int, float]], boluses: list[tuple[int, float]]
) -> None:
    """Turning a chart's delivery log into minutes loses and adds nothing."""
    from datetime import UTC, datetime, timedelta

    from ketapath.domain.exposure import DeliveryLog, doses_given

    t0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    spans = [(min(a, b), max(a, b), rate) for a, b, rate in segments]
    log = DeliveryLog(
        segments=tuple(
            (t0 + timedelta(minutes=a), t0 + timedelta(minutes=b), rate) for a, b, rate in spans
        ),
        boluses=tuple((t0 + timedelta(minutes=m), mg) for m, mg in boluses),
        at=t0 + timedelta(minutes=600),
    )
    doses, origin = doses_given(log)
    expected = sum(rate * (b - a) / 60 for a, b, rate in spans) + sum(mg for _, mg in boluses)
    assert math.isclose(doses.total_mg, expected, rel_tol=1e-12, abs_tol=1e-9)
    assert all(s.start_min >= 0 for s in doses.infusions)
    assert all(b.time_min >= 0 for b in doses.boluses)
    assert (origin is None) == (not spans and not boluses)
