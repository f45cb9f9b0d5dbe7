"""PK engine benchmark: 1,000 patients x a 10-day protocol at 1-minute resolution.

Workload (Schwartzman 2009, seed 004 literature 5(b)): 0.35 mg/kg/h for 4 h daily for 10
days; outputs every minute over the 10 days (14,401 points) for 1,000 patients of 50-120 kg:
plasma + effect site (+ norketamine for the model that has it). Single-threaded (BLAS and
OpenMP pools set to 1 thread), so it uses one core; the machine's load is printed.
Compared in the same run against opentiva:

- per-patient pump simulation (``Pump.run``: per-second plasma + effect site): timed on a few
  patients and extrapolated to 1,000 (it takes ~1 s per patient);
- plasma-only evaluation at 1-minute resolution (``PkPdModel.calculate_cp``): timed on
  1,000 patients, or on a stated subset with ``--quick``.

Usage: python benchmarks/bench_pk.py [--quick]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

import numpy as np  # noqa: E402

from ketapath.pk import Covariates, Regimen, get_model, predict_population  # noqa: E402

N_PATIENTS = 1000
DAYS = 10
RATE_MG_PER_KG_PER_H = 0.35
SESSION_MIN = 240


def workload() -> tuple[list[Covariates], Regimen, np.ndarray]:
    weights = np.linspace(50.0, 120.0, N_PATIENTS)
    patients = [
        Covariates(weight_kg=float(w), age_years=45.0, sex="female", height_cm=168.0)
        for w in weights
    ]
    regimen = Regimen.daily(
        days=DAYS,
        start_min_of_day=0.0,
        duration_min=SESSION_MIN,
        rate_mg_per_h=RATE_MG_PER_KG_PER_H,
    )  # per kg: scaled per patient
    grid = np.arange(0.0, DAYS * 1440.0 + 1.0, 1.0)
    return patients, regimen, grid


def time_ketapath(model_id: str, repeats: int) -> tuple[float, float, float, tuple[int, ...]]:
    patients, regimen, grid = workload()
    assert get_model(model_id).ke0_per_min > 0  # load the knowledge base before timing
    timings = []
    shape: tuple[int, ...] = ()
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        result = predict_population(
            model_id, patients, regimen, grid, variability=False, per_kg=True
        )
        timings.append(time.perf_counter() - start)
        shape = result.plasma_mg_per_l.shape
        del result
    warm = timings[1:] or timings
    return timings[0], statistics.median(warm), min(warm), shape


def time_opentiva_plasma(n_patients: int) -> float:
    import opentiva.ketamine as ot
    from opentiva import pkpd

    patients, _, grid = workload()
    seconds = (grid * 60).astype(int)
    start = time.perf_counter()
    for p in patients[:n_patients]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pkpd.PkPdModel(ot.Domino(1, 45, p.weight_kg, 168))
        rate = RATE_MG_PER_KG_PER_H * p.weight_kg / 3600
        table = np.array(
            [
                [d * 86400, rate, SESSION_MIN * 60, d * 86400 + SESSION_MIN * 60]
                for d in range(DAYS)
            ],
            dtype=np.float64,
        )
        values = [model.calculate_cp(table, int(t)) for t in seconds]
        del values
    return (time.perf_counter() - start) * N_PATIENTS / n_patients


def time_opentiva_pump(n_patients: int) -> float:
    import opentiva.ketamine as ot
    from opentiva.pump import Pump

    patients, _, _ = workload()
    start = time.perf_counter()
    for p in patients[:n_patients]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = ot.Domino(1, 45, p.weight_kg, 168)
            pump = Pump(model, drug_concentration=10, end_time=DAYS * 86400 + 1)
        rate = RATE_MG_PER_KG_PER_H * p.weight_kg / 3600
        for d in range(DAYS):
            pump.add_infusion(d * 86400, rate, SESSION_MIN * 60)
        pump.run()
    return (time.perf_counter() - start) * N_PATIENTS / n_patients


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="time opentiva's plasma-only path on 100 patients, not 1,000",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"ketapath PK benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {platform.processor() or platform.machine()}, {platform.platform()}, "
        f"python {platform.python_version()}, numpy {np.__version__}, single-threaded, "
        f"{os.cpu_count()} CPUs, load average {load:.2f}"
    )
    print(
        f"workload: {N_PATIENTS} patients x {DAYS} days, 0.35 mg/kg/h 4 h daily, "
        "1-min grid (14,401 points)"
    )
    ours: dict[str, float] = {}
    for model_id, label in (
        ("domino", "plasma + effect site"),
        ("otto-fanta", "plasma + effect site + norketamine"),
    ):
        first, median, best, shape = time_ketapath(model_id, repeats=6)
        ours[model_id] = median
        print(
            f"ketapath {model_id:<11} {label:<36} median {median:.3f} s, best {best:.3f} s "
            f"(first call {first:.3f} s), arrays {shape}"
        )
    try:
        plasma_n = 100 if args.quick else N_PATIENTS
        plasma = time_opentiva_plasma(plasma_n)
        pump = time_opentiva_pump(3)
    except ImportError:
        print("opentiva not installed: no comparison (make test installs it)")
        return
    print(
        f"opentiva plasma-only, 1-min, {N_PATIENTS} patients: {plasma:.2f} s"
        + (f" (timed on {plasma_n}, extrapolated)" if plasma_n < N_PATIENTS else "")
    )
    print(
        f"opentiva Pump.run (per-second plasma + effect site), {N_PATIENTS} patients: "
        f"{pump:.0f} s (timed on 3 patients, extrapolated)"
    )
    base = ours["domino"]
    print(f"ratio vs opentiva plasma-only: {plasma / base:,.0f}x (target > 30x)")
    print(f"ratio vs opentiva pump:        {pump / base:,.0f}x (target > 1,000x)")
    print(
        f"target < 0.3 s: domino {'met' if base < 0.3 else 'NOT met'}, otto-fanta "
        f"{'met' if ours['otto-fanta'] < 0.3 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
