"""The engine against peers: opentiva's exact plasma superposition, and an independent
high-accuracy ODE solution for the effect site and norketamine."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
from scipy.integrate import solve_ivp
from scipy.linalg import expm

from ketapath.pk import Covariates, Regimen, get_model, predict
from ketapath.pk.system import expm_batch

if os.environ.get("KETAPATH_REQUIRE_POSTGRES") == "1":  # CI: the oracle must be installed
    import opentiva.ketamine as ot_ketamine
    from opentiva import pkpd
else:
    ot_ketamine = pytest.importorskip(
        "opentiva.ketamine", reason="opentiva not installed (make test installs it)"
    )
    from opentiva import pkpd

OPENTIVA_MODELS = ["domino", "clements", "hijazi"]


def _random_regimen(rng: np.random.Generator) -> Regimen:
    """Integer-second events so opentiva's one-second clock sees the same regimen."""
    infusions = []
    t = 0
    for _ in range(rng.integers(1, 6)):
        t += int(rng.integers(0, 600)) * 60 + int(rng.integers(0, 60))
        duration = int(rng.integers(1, 360)) * 60
        infusions.append((t / 60, (t + duration) / 60, float(rng.uniform(1, 80))))
        t += duration
    # a "bolus" as a 10-second infusion, which opentiva can represent
    b = int(rng.integers(0, t))
    infusions.append((b / 60, (b + 10) / 60, float(rng.uniform(5, 30)) * 360))
    return Regimen.from_infusion_record(infusions)


def _opentiva_plasma(
    model_id: str, patient: Covariates, regimen: Regimen, times_min: np.ndarray
) -> np.ndarray:
    cls = getattr(ot_ketamine, get_model(model_id).entry.opentiva_class or "")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(
            0 if patient.sex == "male" else 1,
            patient.age_years,
            patient.weight_kg,
            patient.height_cm,
        )
    engine = pkpd.PkPdModel(model)
    rows = [
        [
            round(i.start_min * 60),
            i.rate_mg_per_h / 3600,
            round((i.end_min - i.start_min) * 60),
            round(i.end_min * 60),
        ]
        for i in regimen.infusions
    ]
    table = np.array(rows, dtype=np.float64)
    return np.array([engine.calculate_cp(table, round(t * 60)) for t in times_min])


@pytest.mark.parametrize("model_id", OPENTIVA_MODELS)
def test_plasma_matches_opentiva_to_1e9_on_many_regimens_and_patients(model_id: str) -> None:
    rng = np.random.default_rng(hash(model_id) % 2**32)
    worst = 0.0
    for _ in range(12):
        patient = Covariates(
            weight_kg=float(rng.uniform(45, 140)),
            age_years=float(rng.uniform(18, 85)),
            sex="male" if rng.random() < 0.5 else "female",
            height_cm=float(rng.uniform(150, 195)),
        )
        regimen = _random_regimen(rng)
        end = regimen.end_min + 600
        times = np.unique(np.concatenate([np.arange(0, end, 7.0), rng.integers(0, end, 50)]))
        ours = predict(model_id, patient, regimen, times, analgesia=False).plasma_mg_per_l
        ref = _opentiva_plasma(model_id, patient, regimen, times)
        mask = ref > 1e-12
        assert mask.sum() > 10
        rel = np.abs(ours[mask] - ref[mask]) / ref[mask]
        worst = max(worst, float(rel.max()))
        assert np.all(ours[~mask] < 1e-12)
    assert worst < 1e-9


def _ode_solution(
    model_id: str, patient: Covariates, regimen: Regimen, times: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Plasma, effect site (and metabolite) by LSODA (ODEPACK) at tight tolerances, written
    from the model's parameters independently of ketapath.pk.system. State: parent amounts,
    effect site, metabolite amounts, then the liver amount for a hepatic model."""
    model = get_model(model_id)
    params = model.parameters(patient)
    v = params.volumes_l[0]
    cl = params.clearances_l_per_min[0]
    ke0 = float(params.ke0_per_min[0])
    mv = None if params.metabolite_volumes_l is None else params.metabolite_volumes_l[0]
    hepatic = params.hepatic_flow_l_per_min is not None
    if hepatic:
        assert params.hepatic_volume_l is not None
        assert params.hepatic_elimination_per_min is not None
        assert params.hepatic_metabolism_per_min is not None
        qh = float(params.hepatic_flow_l_per_min[0])
        vh = float(params.hepatic_volume_l[0])
        kel = float(params.hepatic_elimination_per_min[0])
        kmet = float(params.hepatic_metabolism_per_min[0])
    mcl = (
        None
        if params.metabolite_clearances_l_per_min is None
        else (params.metabolite_clearances_l_per_min[0])
    )
    n = len(v)

    def rhs(_t: float, y: np.ndarray, rate: float) -> np.ndarray:
        a = y[:n]
        dy = np.zeros_like(y)
        c1 = a[0] / v[0]
        dy[0] = rate * model.dose_fraction - cl[0] * c1
        for i in range(1, n):
            flow = cl[i] * (c1 - a[i] / v[i])
            dy[0] -= flow
            dy[i] = flow
        dy[n] = ke0 * (c1 - y[n])
        formation = params.metabolite_formation_fraction * cl[0] * c1
        if hepatic:
            liver = y[-1]
            to_liver = qh * (c1 - liver / vh)
            dy[0] -= to_liver
            dy[-1] = to_liver - (kel + kmet) * liver
            formation = kmet * liver
        if mv is not None and mcl is not None:
            m = y[n + 1 : n + 1 + len(mv)]
            cm = m[0] / mv[0]
            dy[n + 1] = formation - mcl[0] * cm
            for i in range(1, len(mv)):
                flow = mcl[i] * (cm - m[i] / mv[i])
                dy[n + 1] -= flow
                dy[n + 1 + i] = flow
        return dy

    size = n + 1 + (0 if mv is None else len(mv)) + (1 if hepatic else 0)
    # the system is linear: its Jacobian is the response to each unit state at zero rate
    jac = np.stack([rhs(0.0, e, 0.0) for e in np.eye(size)], axis=1)
    points, rates = regimen.rate_segments()
    edges = [*points.tolist(), float(times[-1]) + 1]
    y = np.zeros(size)
    out = np.zeros((len(times), size))
    for j in range(len(points)):
        lo, hi = edges[j], edges[j + 1]
        inside = (times >= lo) & (times < hi)
        t_eval = np.concatenate([times[inside], [hi]])
        sol = solve_ivp(
            rhs,
            (lo, hi),
            y,
            method="LSODA",
            rtol=1e-13,
            atol=1e-16,
            args=(float(rates[j]),),
            t_eval=t_eval,
            jac=lambda *_: jac,
        )
        out[inside] = sol.y[:, :-1].T
        y = sol.y[:, -1]
    metab = None if mv is None else out[:, n + 1] / mv[0]
    return out[:, 0] / v[0], out[:, n], metab


@pytest.mark.parametrize("model_id", ["domino", "hijazi", "kamp", "otto-fanta", "perez-ruixo"])
def test_effect_site_and_norketamine_match_an_independent_ode_solution(model_id: str) -> None:
    patient = Covariates(weight_kg=70, age_years=30, sex="female", height_cm=165)
    regimen = Regimen.parse(["0:60:30", "60:240:15", "300:330:40"])
    times = np.arange(0, 400, 5.0)
    ours = predict(model_id, patient, regimen, times, analgesia=False)
    cp, ce, cm = _ode_solution(model_id, patient, regimen, times)
    mask = cp > 1e-6 * cp.max()
    np.testing.assert_allclose(ours.plasma_mg_per_l[mask], cp[mask], rtol=1e-8)
    mask = ce > 1e-6 * ce.max()
    np.testing.assert_allclose(ours.effect_site_mg_per_l[mask], ce[mask], rtol=1e-8)
    if cm is not None:
        assert ours.norketamine_mg_per_l is not None
        mask = cm > 1e-6 * cm.max()
        np.testing.assert_allclose(ours.norketamine_mg_per_l[mask], cm[mask], rtol=1e-8)


def test_the_vectorised_matrix_exponential_equals_scipys() -> None:
    model = get_model("otto-fanta")
    from ketapath.pk.system import build_system

    params = model.sample(Covariates(weight_kg=70), 20, seed=3)
    system = build_system(params, outputs=("plasma", "effect_site", "metabolite", "auc"))
    for dt in (0.01, 1.0, 240.0, 14400.0):
        ours = expm_batch(system.k * dt)
        ref = np.stack([expm(k * dt) for k in system.k])
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-14 * np.abs(ref).max())


def test_opentivas_one_second_effect_site_is_only_an_approximation_of_the_exact_one() -> None:
    patient = Covariates(weight_kg=70, age_years=40, sex="male", height_cm=175)
    regimen = Regimen.parse(["0:30:40", "30:120:15"])
    seconds = np.arange(0, 180 * 60)
    cls = ot_ketamine.Domino
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine = pkpd.PkPdModel(cls(0, 40, 70, 175))
    rows = [
        [i.start_min * 60, i.rate_mg_per_h / 3600, (i.end_min - i.start_min) * 60, i.end_min * 60]
        for i in regimen.infusions
    ]
    cp = engine.cp_over_time(np.array(rows, dtype=np.float64), 0, len(seconds))
    ce_opentiva = engine.ce_over_time(cp)[:, 0]
    exact = predict("domino", patient, regimen, seconds / 60.0, analgesia=False)
    late = seconds >= 600  # opentiva skips its first step, so early values lag most
    rel = np.abs(ce_opentiva[late] / exact.effect_site_mg_per_l[late] - 1)
    assert 1e-7 < rel.max() < 1e-3  # close, but visibly not exact
    early = np.abs(ce_opentiva[5] / exact.effect_site_mg_per_l[5] - 1)
    assert early > 0.05
