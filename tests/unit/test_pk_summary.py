"""Exposure summaries without a time grid (ketapath.pk.summary) against the per-minute path
(exact matrix-exponential propagation on a fine grid) and against physics: the schedule of
flat event tables, AUC to infinity = dose / clearance, peaks found where they are (inside a
segment too), time above with crossings inside segments and bolus jumps, the modal basis
trustworthy for every model over the whole input range, and a batch equal to its patients
one by one.

Tolerances (stated in docs/pk.md): AUC to 1e-9 relative of the per-minute path's exact AUC
state; the peak at least the highest grid value and, evaluated where the summary puts it,
equal to the summary to 1e-9; time above within the grid's linear interpolation error."""

from __future__ import annotations

import numpy as np
import pytest

from ketapath import pk
from ketapath.pk.errors import PkInputError
from ketapath.pk.simulate import run_engine
from ketapath.pk.summary import Schedule, modes, summarise

MODELS = ["domino", "clements", "hijazi", "kamp", "otto-fanta", "perez-ruixo"]
PATIENT = pk.Covariates(weight_kg=72, age_years=45, sex="female", height_cm=168)


def _schedule(rows: list[tuple[float, float, float]], boluses=(), end: float | None = None):
    last = max([r[1] for r in rows] + [b[0] for b in boluses] + [0.0])
    return Schedule.from_events(
        1,
        end_min=[last + 360 if end is None else end],
        infusion_patient=[0] * len(rows),
        infusion_start_min=[r[0] for r in rows],
        infusion_end_min=[r[1] for r in rows],
        infusion_rate_mg_per_h=[r[2] for r in rows],
        bolus_patient=[0] * len(boluses),
        bolus_time_min=[b[0] for b in boluses],
        bolus_mg=[b[1] for b in boluses],
    )


def _grid(model_id: str, rows, boluses, end: float, step: float = 0.01):
    model = pk.get_model(model_id)
    events = [t for r in rows for t in r[:2]] + [b[0] for b in boluses]
    times = np.union1d(np.arange(0.0, end, step), [*events, end])
    regimen = pk.Regimen.from_infusion_record(rows, boluses=boluses)
    outputs = ("plasma", "auc", *(("metabolite",) if model.has_metabolite else ()))
    return times, run_engine(model, model.parameters(PATIENT), regimen, times, outputs)


def _time_above(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    a, b = values[:-1] - threshold, values[1:] - threshold
    dt = np.diff(times)
    full = (a >= 0) & (b >= 0)
    part = ~full & ((a > 0) | (b > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(part, np.maximum(a, b) / np.abs(b - a), 0.0)
    return float(np.sum(dt * full) + np.sum(dt * share))


ROWS = [(10.0, 70.0, 30.0), (70.0, 100.0, 0.0), (100.0, 220.0, 18.0), (400.0, 430.0, 60.0)]


@pytest.mark.parametrize("model_id", MODELS)
def test_the_summary_equals_the_per_minute_path(model_id: str) -> None:
    model = pk.get_model(model_id)
    schedule = _schedule(ROWS)
    end = float(schedule.end_min[0])
    times, grid = _grid(model_id, ROWS, (), end)
    plasma = grid["plasma"][0]
    thresholds = [0.2 * plasma.max(), 0.5 * plasma.max(), 0.9 * plasma.max()]
    result = summarise(
        model,
        model.parameters(PATIENT),
        schedule,
        plasma_thresholds_mg_per_l=thresholds,
        metabolite_thresholds_mg_per_l=[0.01, 0.03],
    )
    s = result.plasma
    assert s.auc_mg_min_per_l[0] == pytest.approx(grid["auc"][0][-1], rel=1e-9)
    assert s.peak_mg_per_l[0] >= plasma.max() * (1 - 1e-12)
    assert s.peak_mg_per_l[0] == pytest.approx(plasma.max(), rel=1e-6)
    at = run_engine(
        model,
        model.parameters(PATIENT),
        pk.Regimen.from_infusion_record(ROWS),
        np.array([s.peak_at_min[0]]),
        ("plasma",),
    )["plasma"][0, 0]
    assert at == pytest.approx(s.peak_mg_per_l[0], rel=1e-9)
    for k, threshold in enumerate(thresholds):
        assert s.time_above_min[0, k] == pytest.approx(
            _time_above(times, plasma, threshold), abs=1e-3
        )
    if model.has_metabolite:
        assert result.metabolite is not None
        metabolite = grid["metabolite"][0]
        m = result.metabolite
        auc = float(np.trapezoid(metabolite, times))
        assert m.auc_mg_min_per_l[0] == pytest.approx(auc, rel=1e-7)
        assert m.peak_mg_per_l[0] >= metabolite.max() * (1 - 1e-12)
        assert m.peak_mg_per_l[0] == pytest.approx(metabolite.max(), rel=1e-7)
        for k, threshold in enumerate([0.01, 0.03]):
            assert m.time_above_min[0, k] == pytest.approx(
                _time_above(times, metabolite, threshold), abs=1e-3
            )
    else:
        assert result.metabolite is None


@pytest.mark.parametrize("model_id", MODELS)
def test_the_auc_to_infinity_is_the_dose_over_the_clearance(model_id: str) -> None:
    model = pk.get_model(model_id)
    boluses = ((5.0, 12.0), (300.0, 4.0))
    result = summarise(model, model.parameters(PATIENT), _schedule(ROWS, boluses))
    dose = sum((r[1] - r[0]) * r[2] / 60 for r in ROWS) + 16.0
    clearance = model.parameters(PATIENT).total_clearance_l_per_min[0]
    assert result.plasma.auc_inf_mg_min_per_l[0] == pytest.approx(
        dose * model.dose_fraction / clearance, rel=1e-9
    )


def test_a_bolus_jump_counts_from_the_bolus_and_its_peak_is_the_bolus() -> None:
    model = pk.get_model("domino")
    result = summarise(
        model,
        model.parameters(PATIENT),
        _schedule([], ((30.0, 20.0),)),
        plasma_thresholds_mg_per_l=[0.5],
    )
    v1 = model.parameters(PATIENT).volumes_l[0, 0]
    assert result.plasma.peak_mg_per_l[0] == pytest.approx(20.0 / v1, rel=1e-12)
    assert result.plasma.peak_at_min[0] == 30.0
    times, grid = _grid("domino", [], ((30.0, 20.0),), 390.0, step=0.001)
    # the grid's interpolation cannot see the jump at 30 min; from the jump on it agrees
    after = times >= 30.0
    expected = _time_above(times[after], grid["plasma"][0][after], 0.5)
    assert result.plasma.time_above_min[0, 0] == pytest.approx(expected, abs=1e-5)


def test_a_metabolite_peaks_inside_a_segment_after_the_infusion_stops() -> None:
    model = pk.get_model("perez-ruixo")
    rows = [(0.0, 240.0, 25.0)]
    result = summarise(model, model.parameters(PATIENT), _schedule(rows))
    assert result.metabolite is not None
    times, grid = _grid("perez-ruixo", rows, (), 600.0, step=0.001)
    metabolite = grid["metabolite"][0]
    assert 240.0 < result.metabolite.peak_at_min[0] < 600.0
    assert result.metabolite.peak_at_min[0] == pytest.approx(times[np.argmax(metabolite)], abs=2e-3)
    assert result.plasma.peak_at_min[0] == 240.0  # plasma rises for as long as it runs


def test_thresholds_above_the_peak_give_no_time_and_below_the_whole_window_span() -> None:
    model = pk.get_model("kamp")
    result = summarise(
        model, model.parameters(PATIENT), _schedule(ROWS), plasma_thresholds_mg_per_l=[10.0]
    )
    assert result.plasma.time_above_min[0, 0] == 0.0
    low = summarise(
        model, model.parameters(PATIENT), _schedule(ROWS), plasma_thresholds_mg_per_l=[1e-9]
    )
    assert low.plasma.time_above_min[0, 0] == pytest.approx(430.0 + 360.0 - 10.0, abs=1e-6)


def test_a_batch_equals_its_patients_one_by_one() -> None:
    rng = np.random.default_rng(5)
    people = [
        pk.Covariates(weight_kg=float(w), age_years=float(a))
        for w, a in zip(rng.uniform(45, 140, 7), rng.uniform(20, 85, 7), strict=True)
    ]
    plans = [
        [(float(s), float(s + d), float(r)) for s, d, r in rng.uniform(0, 300, (3, 3)) + 1]
        for _ in people
    ]
    model = pk.get_model("otto-fanta")
    rows = [(i, *r) for i, plan in enumerate(plans) for r in plan]
    ends = [max(r[1] for r in plan) + 360 for plan in plans]
    batch = summarise(
        model,
        model.parameters(people),
        Schedule.from_events(
            len(people),
            end_min=ends,
            infusion_patient=[r[0] for r in rows],
            infusion_start_min=[r[1] for r in rows],
            infusion_end_min=[r[2] for r in rows],
            infusion_rate_mg_per_h=[r[3] for r in rows],
        ),
        plasma_thresholds_mg_per_l=[0.01, 0.05],
        metabolite_thresholds_mg_per_l=[0.02],
    )
    for i, (person, plan) in enumerate(zip(people, plans, strict=True)):
        one = summarise(
            model,
            model.parameters(person),
            _schedule(plan, end=ends[i]),
            plasma_thresholds_mg_per_l=[0.01, 0.05],
            metabolite_thresholds_mg_per_l=[0.02],
        )
        assert one.metabolite is not None and batch.metabolite is not None
        for a, b in ((one.plasma, batch.plasma), (one.metabolite, batch.metabolite)):
            assert a.auc_mg_min_per_l[0] == pytest.approx(b.auc_mg_min_per_l[i], rel=1e-12)
            assert a.peak_mg_per_l[0] == pytest.approx(b.peak_mg_per_l[i], rel=1e-12)
            np.testing.assert_allclose(a.time_above_min[0], b.time_above_min[i], atol=1e-8)


def test_overlapping_infusions_add_up_and_padding_gives_nothing() -> None:
    schedule = Schedule.from_events(
        2,
        end_min=[500.0, 50.0],
        infusion_patient=[0, 0, 1],
        infusion_start_min=[0.0, 30.0, 10.0],
        infusion_end_min=[60.0, 90.0, 20.0],
        infusion_rate_mg_per_h=[60.0, 30.0, 6.0],
        bolus_patient=[1],
        bolus_time_min=[15.0],
        bolus_mg=[2.0],
    )
    np.testing.assert_array_equal(schedule.breakpoints_min[0], [0, 30, 60, 90])
    np.testing.assert_allclose(schedule.rates_mg_per_min[0], [1.0, 1.5, 0.5, 0.0])
    np.testing.assert_array_equal(schedule.breakpoints_min[1], [0, 10, 15, 20])
    np.testing.assert_allclose(schedule.rates_mg_per_min[1], [0.0, 0.1, 0.1, 0.0])
    np.testing.assert_array_equal(schedule.bolus_mg[1], [0, 0, 2.0, 0])
    np.testing.assert_array_equal(schedule.widths_min[1], [10, 5, 5, 30])


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"end_min": [10.0]}, "end_min"),
        ({"infusion_start_min": [-1.0]}, "times"),
        ({"infusion_end_min": [5.0], "infusion_start_min": [6.0]}, "infusion_end_min"),
        ({"infusion_rate_mg_per_h": [float("nan")]}, "infusion_rate_mg_per_h"),
        ({"infusion_patient": [3]}, "infusion_patient"),
    ],
)
def test_a_schedule_refuses_what_no_log_can_be(changes: dict[str, object], field: str) -> None:
    arguments: dict[str, object] = {
        "end_min": [400.0],
        "infusion_patient": [0],
        "infusion_start_min": [0.0],
        "infusion_end_min": [60.0],
        "infusion_rate_mg_per_h": [20.0],
    }
    with pytest.raises(PkInputError) as refused:
        Schedule.from_events(1, **{**arguments, **changes})  # type: ignore[arg-type]
    assert refused.value.field == field


@pytest.mark.parametrize("model_id", MODELS)
def test_the_modal_basis_is_trustworthy_over_the_whole_input_range(model_id: str) -> None:
    model = pk.get_model(model_id)
    people = [
        pk.Covariates(weight_kg=float(w), age_years=float(a))
        for w in np.geomspace(0.2, 700, 60)
        for a in (0.0, 30.0, 61.0, 90.0, 130.0)
    ]
    outputs = ("plasma", "metabolite") if model.has_metabolite else ("plasma",)
    m = modes(model.parameters(people), model, outputs)  # raises PkError if not
    assert np.all(m.rates < 0) and np.all(np.diff(m.rates, axis=1) > 0)


def test_a_threshold_must_be_a_concentration() -> None:
    model = pk.get_model("kamp")
    for bad in (0.0, -1.0, float("inf")):
        with pytest.raises(PkInputError):
            summarise(
                model,
                model.parameters(PATIENT),
                _schedule(ROWS),
                plasma_thresholds_mg_per_l=[bad],
            )
