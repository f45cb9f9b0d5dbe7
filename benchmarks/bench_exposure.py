"""Exposure summaries for a whole registry: the summary path against the per-minute path and
opentiva (issue 13 item 2: 10,000 patients x 10-day courses in under 2 s and 1 GB, one core).

Workload: a reproducible random cohort of 10,000 patients (weight ~ N(80, 18) kg clipped
to 40-200, age 18-85, sex, height), each on a protocol of protocols.yaml planned for them by
the clinic's planner (domain.planning.plan against the packaged drug library), given as one
session a day for 10 days: day d gives the course's session min(d, last) cut to its first
12 hours (so the continuous protocols are 12-hour daily sessions), starting 08:00-10:00,
with what a chart records: a pause of 10-60 min in 30% of sessions, an early stop in 15%,
the ordered bolus at the start. Event times are whole seconds (opentiva's clock). The model
is the clinic's rule (Perez-Ruixo, Kamp above 170 kg); the thresholds are
exposure_thresholds.yaml's.

Paths, each in a fresh process (its peak RSS from resource.getrusage; BLAS/OpenMP pools set
to one thread):

- summary: ketapath.pk.summary (closed forms between events, no grid) for every patient:
  parameters, the schedule from the flat event tables, AUC, AUC to infinity, peak and time
  above each threshold for ketamine and norketamine;
- per-minute: the current engine (pk.simulate.run_engine, exact matrix exponentials) on a
  1-minute grid over each patient's window (10 days + 6 h), one patient at a time (each has
  its own dose events), then AUC (the exact AUC state), peak (grid maximum) and time above
  (crossings interpolated on the grid); timed on a subset and extrapolated;
- opentiva: its plasma-only evaluation (PkPdModel.calculate_cp) at every minute with the
  Domino model (racemic; opentiva has no S-ketamine or norketamine model), on a subset, with
  the summary path's Domino summaries of the same patients for comparison (boluses given to
  both as 10-second infusions, which opentiva can represent).

Usage: python benchmarks/bench_exposure.py [--quick] [--patients N] [--per-minute N]
[--opentiva N] [--seed S]. Not part of the test suite (make bench runs it).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

DAYS = 10
SESSION_CAP_MIN = 720.0
TAIL_MIN = 360.0


# -- the cohort -----------------------------------------------------------------------------
def cohort(n: int, seed: int) -> dict[str, np.ndarray]:
    """Covariates and flat event tables (infusions, boluses) of ``n`` patients."""
    from ketapath.domain.planning import DosingInputs, plan
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.library import default_library

    rng = np.random.default_rng(seed)
    library = default_library()
    protocols = [p.id for p in knowledge().protocols.entries]
    weight = np.round(np.clip(rng.normal(80, 18, n), 40, 200), 1)
    age = rng.integers(18, 86, n).astype(float)
    female = rng.random(n) < 0.55
    height = np.round(np.where(female, rng.normal(163, 7, n), rng.normal(177, 7, n)), 0)
    choice = rng.integers(0, len(protocols), n)
    rows: list[tuple[int, float, float, float]] = []
    boluses: list[tuple[int, float, float]] = []
    templates: dict[tuple[str, float], Any] = {}
    for i in range(n):
        key = (protocols[choice[i]], float(weight[i]))
        if key not in templates:
            templates[key] = plan(
                key[0],
                DosingInputs(weight_kg=key[1], height_cm=170, sex="female", age_years=50),
                library=library,
            ).sessions
        sessions = templates[key]
        for day in range(DAYS):
            session = sessions[min(day, len(sessions) - 1)]
            start = day * 1440 + 480 + float(rng.integers(0, 7200)) / 60
            steps = [
                (s.start_min, min(s.end_min, SESSION_CAP_MIN), s.rate_mg_per_h)
                for s in session.steps
                if s.start_min < SESSION_CAP_MIN and s.rate_mg_per_h > 0
            ]
            if not steps:
                continue
            length = steps[-1][1]
            stop = length if rng.random() > 0.15 else length * rng.uniform(0.5, 1.0)
            pause_at = rng.uniform(0, stop) if rng.random() < 0.3 else None
            pause_len = rng.uniform(10, 60)
            if session.bolus_mg > 0:
                boluses.append((i, _second(start), float(session.bolus_mg)))
            for a, b, rate in steps:
                pieces = [(a, min(b, stop))]
                if pause_at is not None:
                    pieces = [
                        (x, y)
                        for lo, hi in pieces
                        for x, y in ((lo, min(hi, pause_at)), (max(lo, pause_at + pause_len), hi))
                    ]
                for x, y in pieces:
                    x, y = _second(start + x), _second(start + y)
                    if y > x:
                        rows.append((i, x, y, float(rate)))
    inf = np.array(rows, dtype=float).reshape(-1, 4)
    bol = np.array(boluses, dtype=float).reshape(-1, 3)
    ends = np.zeros(n)
    np.maximum.at(ends, inf[:, 0].astype(int), inf[:, 2])
    if len(bol):
        np.maximum.at(ends, bol[:, 0].astype(int), bol[:, 1])
    return {
        "weight": weight,
        "age": age,
        "female": female,
        "height": height,
        "infusions": inf,
        "boluses": bol,
        "end": ends + TAIL_MIN,
    }


def _second(minutes: float) -> float:
    return round(minutes * 60) / 60


def _covariates(data: dict[str, np.ndarray], index: np.ndarray | None = None) -> list[Any]:
    from ketapath import pk

    which = np.arange(len(data["weight"])) if index is None else index
    return [
        pk.Covariates(
            weight_kg=float(data["weight"][i]),
            age_years=float(data["age"][i]),
            sex="female" if data["female"][i] else "male",
            height_cm=float(data["height"][i]),
        )
        for i in which
    ]


def _thresholds(model: Any) -> tuple[list[float], list[float]]:
    from ketapath.domain.exposure_summary import applied_thresholds
    from ketapath.knowledge.exposure import load_exposure_thresholds

    plasma, metabolite = applied_thresholds(model, load_exposure_thresholds())
    return [t.applied_mg_per_l for t in plasma], [t.applied_mg_per_l for t in metabolite]


def _events(data: dict[str, np.ndarray], index: np.ndarray, *, bolus_as_infusion: bool) -> Any:
    """The flat event tables of the patients ``index`` (renumbered from 0)."""
    renumber = np.full(len(data["weight"]), -1)
    renumber[index] = np.arange(len(index))
    inf, bol = data["infusions"], data["boluses"]
    inf = inf[renumber[inf[:, 0].astype(int)] >= 0]
    bol = bol[renumber[bol[:, 0].astype(int)] >= 0] if len(bol) else bol
    if bolus_as_infusion and len(bol):  # 10 s at the rate that gives the bolus
        extra = np.stack([bol[:, 0], bol[:, 1], bol[:, 1] + 10 / 60, bol[:, 2] * 360], axis=1)
        inf, bol = np.concatenate([inf, extra]), bol[:0]
    return {
        "infusion_patient": renumber[inf[:, 0].astype(int)],
        "infusion_start_min": inf[:, 1],
        "infusion_end_min": inf[:, 2],
        "infusion_rate_mg_per_h": inf[:, 3],
        "bolus_patient": renumber[bol[:, 0].astype(int)] if len(bol) else [],
        "bolus_time_min": bol[:, 1] if len(bol) else [],
        "bolus_mg": bol[:, 2] if len(bol) else [],
    }


# -- the paths (each run in its own process) ------------------------------------------------
def part_summary(data: dict[str, np.ndarray], model_ids: list[str] | None) -> dict[str, Any]:
    from ketapath import pk
    from ketapath.domain.exposure import choose_model
    from ketapath.pk.summary import Schedule, summarise

    n = len(data["weight"])
    people = _covariates(data)
    rss_before = _rss_mb()
    clock, cpu = time.perf_counter(), time.process_time()
    chosen = (
        np.array([choose_model(p)[0] for p in people])
        if model_ids is None
        else np.array(model_ids * n)[:n]
    )
    t_choice = time.perf_counter() - clock
    results: dict[str, Any] = {}
    steps = {"choice": t_choice, "parameters": 0.0, "schedule": 0.0, "summaries": 0.0}
    for model_id in sorted(set(chosen)):
        index = np.flatnonzero(chosen == model_id)
        model = pk.get_model(model_id)
        t0 = time.perf_counter()
        params = model.parameters([people[i] for i in index])
        t1 = time.perf_counter()
        schedule = Schedule.from_events(
            len(index), end_min=data["end"][index], **_events(data, index, bolus_as_infusion=False)
        )
        t2 = time.perf_counter()
        plasma_t, metabolite_t = _thresholds(model)
        out = summarise(
            model,
            params,
            schedule,
            plasma_thresholds_mg_per_l=plasma_t,
            metabolite_thresholds_mg_per_l=metabolite_t,
        )
        t3 = time.perf_counter()
        steps["parameters"] += t1 - t0
        steps["schedule"] += t2 - t1
        steps["summaries"] += t3 - t2
        results[model_id] = _arrays(index, out)
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "steps_s": steps,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _rss_mb(),
        "models": {m: int(np.sum(chosen == m)) for m in sorted(set(chosen))},
        "segments": len(data["infusions"]),
        "results": results,
    }


def part_domino(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, Any]:
    """The summary path with Domino on the opentiva subset (boluses as 10 s infusions)."""
    from ketapath import pk
    from ketapath.pk.summary import Schedule, summarise

    model = pk.get_model("domino")
    plasma_t, _ = _thresholds(model)
    schedule = Schedule.from_events(
        len(index), end_min=data["end"][index], **_events(data, index, bolus_as_infusion=True)
    )
    out = summarise(
        model,
        model.parameters(_covariates(data, index)),
        schedule,
        plasma_thresholds_mg_per_l=plasma_t,
    )
    return {"results": {"domino": _arrays(index, out)}}


def part_per_minute(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, Any]:
    from ketapath import pk
    from ketapath.domain.exposure import choose_model
    from ketapath.pk.simulate import run_engine

    people = _covariates(data, index)
    rss_before = _rss_mb()
    clock, cpu = time.perf_counter(), time.process_time()
    found: dict[str, dict[str, list[Any]]] = {}
    inf, bol = data["infusions"], data["boluses"]
    for person, i in zip(people, index, strict=True):
        model = pk.get_model(choose_model(person)[0])
        mine = inf[inf[:, 0] == i]
        given = bol[bol[:, 0] == i] if len(bol) else bol
        regimen = pk.Regimen.from_infusion_record(
            [tuple(r[1:]) for r in mine], boluses=[tuple(b[1:]) for b in given]
        )
        times = np.append(np.arange(0.0, data["end"][i], 1.0), data["end"][i])
        outputs = ("plasma", "auc", *(("metabolite",) if model.has_metabolite else ()))
        res = run_engine(model, model.parameters(person), regimen, times, outputs)
        plasma_t, metabolite_t = _thresholds(model)
        row = found.setdefault(model.id, {k: [] for k in _KEYS})
        row["index"].append(int(i))
        row["auc"].append(float(res["auc"][0, -1]))
        row["peak"].append(float(res["plasma"][0].max()))
        row["above"].append([_time_above(times, res["plasma"][0], t) for t in plasma_t])
        if "metabolite" in res:
            m = res["metabolite"][0]
            row["m_auc"].append(float(np.trapezoid(m, times)))
            row["m_peak"].append(float(m.max()))
            row["m_above"].append([_time_above(times, m, t) for t in metabolite_t])
    wall, cpu = time.perf_counter() - clock, time.process_time() - cpu
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_before_mb": rss_before,
        "rss_peak_mb": _rss_mb(),
        "results": {k: {x: np.asarray(y).tolist() for x, y in v.items()} for k, v in found.items()},
    }


def part_opentiva(data: dict[str, np.ndarray], index: np.ndarray) -> dict[str, Any]:
    import opentiva.ketamine as ot
    from opentiva import pkpd

    from ketapath import pk

    plasma_t, _ = _thresholds(pk.get_model("domino"))
    clock, cpu = time.perf_counter(), time.process_time()
    rows: dict[str, list[Any]] = {k: [] for k in _KEYS}
    fine_rows: dict[str, list[Any]] = {k: [] for k in _KEYS}
    fine, untimed = 3, 0.0
    events = _events(data, index, bolus_as_infusion=True)
    who = np.asarray(events["infusion_patient"])
    for local, i in enumerate(index):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pkpd.PkPdModel(
                ot.Domino(
                    1 if data["female"][i] else 0,
                    float(data["age"][i]),
                    float(data["weight"][i]),
                    float(data["height"][i]),
                )
            )
        mine = who == local
        starts = np.round(events["infusion_start_min"][mine] * 60)
        ends = np.round(events["infusion_end_min"][mine] * 60)
        rates = events["infusion_rate_mg_per_h"][mine] / 3600
        table = np.stack([starts, rates, ends - starts, ends], axis=1)
        table = table[np.argsort(table[:, 0])]
        # every minute to the window's last whole second (opentiva's clock is in seconds)
        end = np.floor(data["end"][i] * 60) / 60
        times = np.append(np.arange(0.0, end, 1.0), end)
        cp = np.array([model.calculate_cp(table, round(t * 60)) for t in times])
        rows["index"].append(int(i))
        rows["auc"].append(float(np.trapezoid(cp, times)))
        rows["peak"].append(float(cp.max()))
        rows["above"].append([_time_above(times, cp, t) for t in plasma_t])
        if local < fine:  # every second, for the accuracy (not timed)
            tick = time.perf_counter()
            seconds = np.arange(0, round(end * 60) + 1)
            cps = model.cp_over_time(table, 0, len(seconds))[:, 1]
            fine_rows["index"].append(int(i))
            fine_rows["auc"].append(float(np.trapezoid(cps, seconds / 60)))
            fine_rows["peak"].append(float(cps.max()))
            fine_rows["above"].append([_time_above(seconds / 60, cps, t) for t in plasma_t])
            untimed += time.perf_counter() - tick
    wall, cpu = time.perf_counter() - clock - untimed, time.process_time() - cpu - untimed
    return {
        "wall_s": wall,
        "cpu_s": cpu,
        "rss_peak_mb": _rss_mb(),
        "results": {"domino": {k: v for k, v in rows.items() if v}},
        "fine": {"domino": {k: v for k, v in fine_rows.items() if v}},
    }


_KEYS = ("index", "auc", "peak", "above", "m_auc", "m_peak", "m_above")


def _arrays(index: np.ndarray, out: Any) -> dict[str, list[Any]]:
    got = {
        "index": index.tolist(),
        "auc": out.plasma.auc_mg_min_per_l.tolist(),
        "auc_inf": out.plasma.auc_inf_mg_min_per_l.tolist(),
        "peak": out.plasma.peak_mg_per_l.tolist(),
        "above": out.plasma.time_above_min.tolist(),
    }
    if out.metabolite is not None:
        got |= {
            "m_auc": out.metabolite.auc_mg_min_per_l.tolist(),
            "m_peak": out.metabolite.peak_mg_per_l.tolist(),
            "m_above": out.metabolite.time_above_min.tolist(),
        }
    return got


def _time_above(times: np.ndarray, values: np.ndarray, threshold: float) -> float:
    a, b = values[:-1] - threshold, values[1:] - threshold
    dt = np.diff(times)
    full = (a >= 0) & (b >= 0)
    part = ~full & ((a > 0) | (b > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(part, np.maximum(a, b) / np.abs(b - a), 0.0)
    return float(np.sum(dt * full) + np.sum(dt * share))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


# -- the parent: run each part in a fresh process and compare -------------------------------
def _child(part: str, cohort_file: Path, extra: list[str]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--part", part, "--cohort", str(cohort_file), *extra]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{part} failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _differences(a: dict[str, Any], b: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """Largest relative (and, for times, absolute) difference of ``b`` from ``a`` over the
    patients both have."""
    where = {i: k for k, i in enumerate(a["index"])}
    pick = [where[i] for i in b["index"] if i in where]
    out: dict[str, Any] = {}
    for key in keys:
        if key not in a or key not in b or not b[key]:
            continue
        x, y = np.asarray(a[key])[pick], np.asarray(b[key])
        if key.endswith("above"):
            out[key] = {"max_abs_min": float(np.max(np.abs(x - y)))}
            big = x > 1.0
            if np.any(big):
                out[key]["max_rel_over_1_min"] = float(np.max(np.abs(x - y)[big] / x[big]))
        else:
            out[key] = {"max_rel": float(np.max(np.abs(x - y) / np.abs(x)))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=10_000)
    parser.add_argument("--per-minute", type=int, default=200, dest="per_minute")
    parser.add_argument("--opentiva", type=int, default=100)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--quick", action="store_true", help="per-minute 50, opentiva 20")
    parser.add_argument("--part", help=argparse.SUPPRESS)
    parser.add_argument("--cohort", help=argparse.SUPPRESS)
    parser.add_argument("--model", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part:
        loaded = dict(np.load(args.cohort))
        subset = np.arange(len(loaded["weight"]))
        if args.part == "summary":
            print(json.dumps(part_summary(loaded, [args.model] if args.model else None)))
            return
        count = args.per_minute if args.part == "per-minute" else args.opentiva
        subset = np.random.default_rng(1).choice(subset, size=count, replace=False)
        runner = {"per-minute": part_per_minute, "opentiva": part_opentiva, "domino": part_domino}
        print(json.dumps(runner[args.part](loaded, np.sort(subset))))
        return
    if args.quick:
        args.per_minute, args.opentiva = 50, 20
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    from _common import cpu_model

    print(f"ketapath exposure-summary benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {platform.platform()}, python "
        f"{platform.python_version()}, numpy {np.__version__}, single-threaded, load average "
        f"{load:.2f}"
    )
    started = time.perf_counter()
    data = cohort(args.patients, args.seed)
    print(
        f"cohort: {args.patients:,} patients x {DAYS} days, {len(data['infusions']):,} infusion "
        f"segments and {len(data['boluses']):,} boluses (made in "
        f"{time.perf_counter() - started:.1f} s, not timed)"
    )
    with tempfile.TemporaryDirectory() as folder:
        cohort_file = Path(folder) / "cohort.npz"
        np.savez(cohort_file, **data)
        extra = ["--per-minute", str(args.per_minute), "--opentiva", str(args.opentiva)]
        summary = _child("summary", cohort_file, extra)
        per_minute = _child("per-minute", cohort_file, extra)
        try:
            opentiva = _child("opentiva", cohort_file, extra)
            domino = _child("domino", cohort_file, extra)
        except RuntimeError as error:
            opentiva = domino = None
            print(f"opentiva not run ({str(error).splitlines()[-1]})")
    steps = summary["steps_s"]
    print(
        f"summary path, all {args.patients:,} patients ({summary['models']}): wall "
        f"{summary['wall_s']:.3f} s, CPU {summary['cpu_s']:.3f} s (model choice "
        f"{steps['choice']:.3f}, parameters {steps['parameters']:.3f}, schedule "
        f"{steps['schedule']:.3f}, summaries {steps['summaries']:.3f}); peak RSS "
        f"{summary['rss_peak_mb']:.0f} MB ({summary['rss_before_mb']:.0f} MB after imports "
        "and the cohort)"
    )
    scale = args.patients / args.per_minute
    extrapolated = per_minute["wall_s"] * scale
    print(
        f"per-minute path, {args.per_minute} patients: wall {per_minute['wall_s']:.2f} s, CPU "
        f"{per_minute['cpu_s']:.2f} s -> {args.patients:,} patients ~ {extrapolated:.0f} s "
        f"(extrapolated); peak RSS {per_minute['rss_peak_mb']:.0f} MB; ratio "
        f"~{extrapolated / summary['wall_s']:.0f}x"
    )
    keys = ("auc", "peak", "above", "m_auc", "m_peak", "m_above")
    for model_id, ours in summary["results"].items():
        theirs = per_minute["results"].get(model_id)
        if theirs:
            print(f"  {model_id}: summary vs per-minute, {_differences(ours, theirs, keys)}")
    if opentiva is not None and domino is not None:
        scale = args.patients / args.opentiva
        print(
            f"opentiva plasma-only (Domino), 1-min, {args.opentiva} patients: wall "
            f"{opentiva['wall_s']:.2f} s -> {args.patients:,} patients ~ "
            f"{opentiva['wall_s'] * scale:.0f} s (extrapolated)"
        )
        ours = domino["results"]["domino"]
        theirs = opentiva["results"]["domino"]
        print(f"  domino: summary vs opentiva, {_differences(ours, theirs, keys)}")
        fine = opentiva["fine"]["domino"]
        print(
            f"  domino: summary vs opentiva every second ({len(fine['index'])} patients, "
            f"{_differences(ours, fine, keys)}"
        )
    memory = summary["rss_peak_mb"] < 1024
    print(
        "target < 2 s and < 1 GB on one core: "
        f"CPU time {'met' if summary['cpu_s'] < 2.0 and memory else 'NOT met'}, wall time "
        f"{'met' if summary['wall_s'] < 2.0 and memory else 'NOT met'} (load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs: other processes share the core)"
    )


if __name__ == "__main__":
    main()
