"""As-given exposure against opentiva: a session log with rate changes and pauses, turned into
infusion segments, predicts the same plasma concentrations as opentiva's exact superposition
of the same infusions (to 1e-9 relative), for the models opentiva has."""

from __future__ import annotations

import numpy as np
import pytest
from tests.integration.test_pk_oracle import OPENTIVA_MODELS, _opentiva_plasma

from ketapath import pk
from ketapath.domain.exposure import InfusionSegment, as_given_exposure


def _log(rng: np.random.Generator) -> list[InfusionSegment]:
    """A session as a pump log gives it: contiguous segments on whole seconds, some paused."""
    segments = []
    t = 0
    for index in range(int(rng.integers(2, 7))):
        length = int(rng.integers(5, 90)) * 60 + int(rng.integers(0, 60))
        paused = index > 0 and rng.random() < 0.3
        rate = 0.0 if paused else float(rng.uniform(5, 60))
        segments.append(InfusionSegment(t / 60, (t + length) / 60, rate))
        t += length
    return segments


@pytest.mark.parametrize("model_id", OPENTIVA_MODELS)
def test_as_given_plasma_matches_opentiva_on_logs_with_pauses(model_id: str) -> None:
    rng = np.random.default_rng(20 + OPENTIVA_MODELS.index(model_id))
    worst = 0.0
    for _ in range(6):
        patient = pk.Covariates(
            weight_kg=float(rng.uniform(45, 140)),
            age_years=float(rng.uniform(18, 85)),
            sex="female" if rng.random() < 0.5 else "male",
            height_cm=float(rng.uniform(150, 195)),
        )
        log = _log(rng)
        ours = as_given_exposure(patient, log, model_id=model_id, step_min=1.0)
        # opentiva is given the delivered segments only (a pause gives nothing)
        delivered = pk.Regimen.from_infusion_record(
            [(s.start_min, s.end_min, s.rate_mg_per_h) for s in log if s.rate_mg_per_h > 0]
        )
        whole_seconds = np.round(ours.times_min * 60) == ours.times_min * 60
        times = ours.times_min[whole_seconds]
        ref = _opentiva_plasma(model_id, patient, delivered, times) * 1000.0
        values = ours.plasma.concentrations_ng_per_ml[whole_seconds]
        mask = ref > 1e-9
        assert mask.sum() > 10
        worst = max(worst, float(np.max(np.abs(values[mask] - ref[mask]) / ref[mask])))
    assert worst < 1e-9
