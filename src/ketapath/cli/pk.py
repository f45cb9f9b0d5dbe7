"""Commands of the pk area (registered by `ketapath.cli`): simulate, compare-protocols,
target, pk-models.

The PK engine (numpy, and scipy for some models) is imported inside each command, so that
other commands do not pay for it. Every number is checked before it reaches the engine:
options here (finite, within the grid and population bounds), the patient and the regimen by
the engine itself (``pk_input_bounds.yaml``: what a human body and an infusion device can be).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import typer

from ketapath.cli.output import (
    EXIT_INVALID,
    bounded,
    emit_json,
    fail,
    read_text_file,
    warn,
    writable_output,
)

if TYPE_CHECKING:
    import numpy as np

    from ketapath import pk

T = TypeVar("T")

DEFAULT_TAIL_MIN = 360.0
PLOT_SUFFIXES = (".png", ".svg")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("simulate")(simulate)
    app.command("compare-protocols")(compare_protocols)
    app.command("target")(target)
    app.command("pk-models")(pk_models)


# -- shared options -----------------------------------------------------------------------
MODEL = typer.Option(..., "--model", help="PK model id (see `ketapath pk-models`).")
PATIENT = typer.Option(None, "--patient", help="Patient file (YAML/JSON).")
WEIGHT = typer.Option(None, "--weight-kg", help="Body weight, kg.")
AGE = typer.Option(None, "--age", help="Age, years.")
SEX = typer.Option(None, "--sex", help="male or female.")
HEIGHT = typer.Option(None, "--height-cm", help="Height, cm.")


def simulate(
    model: str = MODEL,
    patient: Path | None = PATIENT,
    weight_kg: float | None = WEIGHT,
    age: float | None = AGE,
    sex: str | None = SEX,
    height_cm: float | None = HEIGHT,
    protocol: str | None = typer.Option(None, "--protocol", help="Protocol id to plan."),
    infusion: list[str] = typer.Option(
        [], "--infusion", help="START_MIN:END_MIN:RATE_MG_PER_H (repeatable)."
    ),
    bolus: list[str] = typer.Option([], "--bolus", help="T_MIN:MG (repeatable)."),
    times: str | None = typer.Option(None, "--times", help="Output times T1,T2,... (min)."),
    step_min: float | None = typer.Option(None, "--step-min", help="Output grid step (min)."),
    until_min: float | None = typer.Option(
        None, "--until-min", help="End of the grid (default: last dose + 6 h)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Save a plot (.png or .svg)."),
    population: int | None = typer.Option(
        None, "--population", help="Also simulate N virtual patients (5th/50th/95th centiles)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Random seed for --population."),
) -> None:
    """Predict plasma, effect-site, norketamine and analgesia for one patient and regimen."""
    from ketapath import pk

    if plot is not None:
        writable_output(plot, option="--plot", suffixes=PLOT_SUFFIXES)
    if population is not None and population < 1:
        _fail(f"--population must be at least 1, not {population}")
    if seed is not None and seed < 0:
        _fail(f"--seed must be 0 or more, not {seed}")
    pk_model = _model(model)
    cov = _covariates(patient, weight_kg, age, sex, height_cm)
    regimen = _regimen(protocol, infusion, bolus, cov)
    grid = _grid(times, step_min, until_min, regimen)
    prediction = _run(lambda: pk.predict(pk_model, cov, regimen, grid))
    bands = None
    if population is not None:
        group = _run(
            lambda: pk.predict_population(
                pk_model, cov, regimen, grid, n=population, seed=seed, analgesia=True
            )
        )
        bands = _centiles(group)
    if plot is not None:
        _plot({"": prediction}, plot)
    summary = prediction.summary()
    if as_json:
        data = prediction.to_dict()
        data["summary"] = summary.as_dict()
        if bands is not None:
            data["population"] = {"n": population, "seed": seed, "centiles": bands}
        emit_json(data, indent=None)
        return
    if bands is not None:
        plasma = bands["plasma_mg_per_l"]
        typer.echo(
            f"{population} virtual patients: plasma Cmax centiles (ng/mL) "
            f"5th {max(plasma['5']) * 1000:.1f}, 50th {max(plasma['50']) * 1000:.1f}, "
            f"95th {max(plasma['95']) * 1000:.1f}"
        )
    _print_warnings(prediction.warnings)
    typer.echo(f"model {pk_model.id} ({pk_model.analyte}); concentrations in ng/mL")
    header = f"{'time min':>10} {'plasma':>10} {'effect':>10}"
    if prediction.norketamine_mg_per_l is not None:
        header += f" {'norket':>10}"
    if prediction.analgesia is not None:
        header += f" {'analgesia':>10}"
    typer.echo(header)
    for i, t in enumerate(prediction.times_min):
        line = (
            f"{t:10g} {prediction.plasma_mg_per_l[i] * 1000:10.3f} "
            f"{prediction.effect_site_mg_per_l[i] * 1000:10.3f}"
        )
        if prediction.norketamine_mg_per_l is not None:
            line += f" {prediction.norketamine_mg_per_l[i] * 1000:10.3f}"
        if prediction.analgesia is not None:
            line += f" {prediction.analgesia[i]:10.4f}"
        typer.echo(line)
    typer.echo(
        f"Cmax {summary.cmax_mg_per_l * 1000:.2f} ng/mL at {summary.tmax_min:g} min; "
        f"AUC {summary.auc_mg_min_per_l / 60:.4f} mg.h/L"
    )


def compare_protocols(
    model: str = MODEL,
    patient: Path | None = PATIENT,
    weight_kg: float | None = WEIGHT,
    age: float | None = AGE,
    sex: str | None = SEX,
    height_cm: float | None = HEIGHT,
    protocol: list[str] = typer.Option([], "--protocol", help="Protocol id (repeatable)."),
    regimen: list[str] = typer.Option(
        [],
        "--regimen",
        help="LABEL=S:E:R+S:E:R+@T:MG ad-hoc regimen (repeatable; @ marks a bolus).",
    ),
    threshold_ng_per_ml: float | None = typer.Option(
        None, "--threshold-ng-per-ml", help="Report time above this plasma concentration."
    ),
    step_min: float = typer.Option(1.0, "--step-min", help="Grid step (min)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    plot: Path | None = typer.Option(None, "--plot", help="Save a plot (.png or .svg)."),
) -> None:
    """Compare protocols (or ad-hoc regimens) side by side for one patient."""
    from ketapath import pk

    if plot is not None:
        writable_output(plot, option="--plot", suffixes=PLOT_SUFFIXES)
    bounded("--threshold-ng-per-ml", threshold_ng_per_ml, minimum=0, unit="ng/mL")
    pk_model = _model(model)
    cov = _covariates(patient, weight_kg, age, sex, height_cm)
    regimens: dict[str, pk.Regimen] = {}
    for pid in protocol:
        regimens[pid] = _regimen(pid, [], [], cov)
    for text in regimen:
        label, regimen_obj = _labelled_regimen(text)
        regimens[label] = regimen_obj
    if len(regimens) < 1:
        _fail("give at least one --protocol or --regimen")
    end = max(r.end_min for r in regimens.values()) + DEFAULT_TAIL_MIN
    grid = _grid(None, step_min, end, next(iter(regimens.values())))
    threshold = None if threshold_ng_per_ml is None else threshold_ng_per_ml / 1000.0
    predictions = {
        label: _run(lambda r=r: pk.predict(pk_model, cov, r, grid))  # type: ignore[misc]
        for label, r in regimens.items()
    }
    rows: list[dict[str, Any]] = []
    for label, pred in predictions.items():
        s = pred.summary(threshold)
        rows.append(
            {
                "label": label,
                "total_mg": regimens[label].total_mg,
                "cmax_ng_per_ml": s.cmax_mg_per_l * 1000,
                "tmax_min": s.tmax_min,
                "auc_mg_h_per_l": s.auc_mg_min_per_l / 60,
                "time_above_threshold_min": s.time_above_threshold_min,
                "effect_site_max_ng_per_ml": (s.effect_site_max_mg_per_l or 0.0) * 1000,
                "norketamine_max_ng_per_ml": None
                if s.metabolite_max_mg_per_l is None
                else s.metabolite_max_mg_per_l * 1000,
                "analgesia_after_course": s.analgesia_after_course,
                "warnings": list(pred.warnings),
            }
        )
    if plot is not None:
        _plot(predictions, plot)
    if as_json:
        emit_json(
            {"model": pk_model.id, "analyte": pk_model.analyte, "protocols": rows}, indent=None
        )
        return
    _print_warnings(next(iter(predictions.values())).warnings)
    typer.echo(f"model {pk_model.id} ({pk_model.analyte}); grid {step_min:g} min")
    typer.echo(
        f"{'protocol':<24}{'total mg':>10}{'Cmax ng/mL':>12}{'tmax min':>10}"
        f"{'AUC mg.h/L':>12}{'>thr min':>10}{'analg wk4':>10}"
    )
    for row in rows:
        above = row["time_above_threshold_min"]
        analg = row["analgesia_after_course"]
        week4 = "-" if not analg else f"{analg['week_4']:.3f}"
        typer.echo(
            f"{row['label']:<24}{row['total_mg']:>10.1f}{row['cmax_ng_per_ml']:>12.2f}"
            f"{row['tmax_min']:>10g}{row['auc_mg_h_per_l']:>12.4f}"
            f"{'-' if above is None else f'{above:.0f}':>10}"
            f"{week4:>10}"
        )


def target(
    model: str = MODEL,
    patient: Path | None = PATIENT,
    weight_kg: float | None = WEIGHT,
    age: float | None = AGE,
    sex: str | None = SEX,
    height_cm: float | None = HEIGHT,
    target_ng_per_ml: float = typer.Option(..., "--target-ng-per-ml", help="Target, ng/mL."),
    site: str = typer.Option("plasma", "--site", help="plasma or effect_site."),
    duration_min: float = typer.Option(240.0, "--duration-min", help="How long to hold it."),
    max_rate_mg_per_h: float | None = typer.Option(
        None, "--max-rate-mg-per-h", help="Maximum rate (default: the setting's soft limit)."
    ),
    max_bolus_mg: float | None = typer.Option(
        None, "--max-bolus-mg", help="Maximum bolus (default: the setting's soft limit)."
    ),
    setting: str | None = typer.Option(
        None, "--setting", help="clinic, ward or icu: take limits from the drug library."
    ),
    interval_min: float = typer.Option(5.0, "--interval-min", help="Minutes between changes."),
    concentration_mg_per_ml: float | None = typer.Option(
        None,
        "--concentration-mg-per-ml",
        help="Bag concentration (default: the pump settings' default); rates are rounded "
        "down to the pump's mL/h resolution at it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The bolus and rate steps that reach and hold a target concentration within limits.

    Rates and the bolus are rounded down to what the pump can be set to (the drug library's
    IV pump, pump.yaml: rate resolution in mL/h at the bag concentration, bolus resolution in
    mg); the bag must be a strength the library stocks for that pump.
    """
    from ketapath import pk
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.library import SETTING_IDS, default_library

    pump = default_library().pump_for("iv", setting if setting in SETTING_IDS else "clinic")
    if pump is None:
        _fail(f"the drug library has no IV pump for the {setting} setting")
    concentration = concentration_mg_per_ml or pump.default_concentration_mg_per_ml
    if not math.isfinite(concentration) or not pump.stocks(concentration):
        stocked = ", ".join(f"{c:g}" for c in pump.concentrations_mg_per_ml)
        _fail(
            f"--concentration-mg-per-ml {concentration:g} is not a strength the drug library "
            f"stocks for the {pump.name} ({stocked} mg/mL)"
        )
    pk_model = _model(model)
    cov = _covariates(patient, weight_kg, age, sex, height_cm)
    if site not in ("plasma", "effect_site"):
        _fail(f"--site must be plasma or effect_site, not {site!r}")
    max_rate_mg_per_h, max_bolus_mg = _limits(setting, cov, max_rate_mg_per_h, max_bolus_mg)
    scheme = _run(
        lambda: pk.target_concentration(
            pk_model,
            cov,
            target_ng_per_ml=target_ng_per_ml,
            duration_min=duration_min,
            max_rate_mg_per_h=max_rate_mg_per_h,
            max_bolus_mg=max_bolus_mg,
            site=site,  # type: ignore[arg-type]
            interval_min=interval_min,
            rate_step_mg_per_h=pump.rate_resolution_ml_per_h * concentration,
            bolus_step_mg=pump.bolus_resolution_mg,
        )
    )
    data = scheme.to_dict()
    data["concentration_mg_per_ml"] = concentration
    data["pump_resolution"] = {
        "rate_ml_per_h": pump.rate_resolution_ml_per_h,
        "bolus_mg": pump.bolus_resolution_mg,
        "citation": citation_text(pump.source),
    }
    for step in data["steps"]:
        step["rate_ml_per_h"] = round(step["rate_mg_per_h"] / concentration, 6)
    if as_json:
        emit_json(data, indent=None)
        return
    typer.echo(f"bolus {scheme.bolus_mg:.2f} mg at 0 min")
    for step in data["steps"]:
        typer.echo(
            f"{step['start_min']:8g}-{step['end_min']:<8g} min  {step['rate_mg_per_h']:8.2f} mg/h"
            f"  {step['rate_ml_per_h']:8.2f} mL/h at {concentration:g} mg/mL"
        )
    reached = scheme.time_to_target_min
    typer.echo(
        "target reached at "
        + ("never" if reached is None else f"{reached:g} min")
        + (f"; limited by {', '.join(scheme.limited_by)}" if scheme.limited_by else "")
    )


def pk_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the PK models with their population and what was verified."""
    from ketapath import pk
    from ketapath.domain.findings import citation_text, full_references

    rows: list[dict[str, Any]] = []
    for mid in pk.model_ids():
        e = pk.get_model(mid).entry
        rows.append(
            {
                "id": e.id,
                "name": e.name,
                "analyte": e.analyte,
                "population": e.population,
                "verification": e.verification,
                "effect_site": e.effect_site.note,
                "citation": citation_text(e.source),
                "reference": full_references(e.source),
            }
        )
    if as_json:
        emit_json(rows, indent=None)
        return
    for row in rows:
        typer.echo(
            f"{row['id']}: {row['name']} [{row['analyte']}]\n  source: {row['reference']}\n"
            f"  population: {row['population']}\n  verified: {row['verification']}\n"
        )


# -- helpers ------------------------------------------------------------------------------
CENTILES = (5, 50, 95)


def _centiles(group: pk.PopulationPrediction) -> dict[str, dict[str, list[float]]]:
    from ketapath import pk

    names = {
        "plasma": "plasma_mg_per_l",
        "effect_site": "effect_site_mg_per_l",
        "norketamine": "norketamine_mg_per_l",
        "analgesia": "analgesia",
    }
    out: dict[str, dict[str, list[float]]] = {}
    for output, key in names.items():
        try:
            values = group.percentiles(CENTILES, output=output)
        except pk.PkInputError:
            continue  # not simulated for this model
        out[key] = {str(q): row.tolist() for q, row in zip(CENTILES, values, strict=True)}
    return out


def _limits(
    setting: str | None, cov: pk.Covariates, rate: float | None, bolus: float | None
) -> tuple[float, float]:
    """Targeting limits: explicit values, or the drug library's soft limits for the setting
    (per kg of actual weight and absolute); explicit values may not pass the hard limits."""
    if setting is None:
        if rate is None:
            _fail("give --max-rate-mg-per-h or --setting (clinic, ward, icu)")
        return rate, 0.0 if bolus is None else bolus
    from ketapath.knowledge.library import default_library

    try:
        lib = default_library().setting(setting)
    except KeyError:
        _fail(f"--setting must be clinic, ward or icu, not {setting!r}")
    w = cov.weight_kg
    soft_rate = min(
        lib.rate_mg_per_h.soft or math.inf, (lib.rate_mg_per_kg_per_h.soft or math.inf) * w
    )
    hard_rate = min(lib.rate_mg_per_h.hard, lib.rate_mg_per_kg_per_h.hard * w)
    soft_bolus = (lib.bolus_mg_per_kg.soft or 0.0) * w
    hard_bolus = lib.bolus_mg_per_kg.hard * w
    rate = soft_rate if rate is None else rate
    bolus = soft_bolus if bolus is None else bolus
    if rate > hard_rate:
        _fail(f"--max-rate-mg-per-h {rate:g} passes the {setting} hard limit ({hard_rate:g} mg/h)")
    if bolus > hard_bolus:
        _fail(f"--max-bolus-mg {bolus:g} passes the {setting} hard limit ({hard_bolus:g} mg)")
    return rate, bolus


def _fail(message: str) -> NoReturn:
    """One line on stderr (a JSON object with --json) and exit 2."""
    fail(message, code=EXIT_INVALID)


def _run(action: Callable[[], T]) -> T:
    from ketapath import pk

    try:
        return action()
    except pk.PkError as exc:
        _fail(str(exc))


def _model(model_id: str) -> pk.PkModel:
    from ketapath import pk

    try:
        return pk.get_model(model_id)
    except pk.UnknownModelError as exc:
        _fail(str(exc))


def _covariates(
    path: Path | None,
    weight_kg: float | None,
    age: float | None,
    sex: str | None,
    height_cm: float | None,
) -> pk.Covariates:
    from ketapath import pk

    if path is not None:
        if weight_kg is not None:
            _fail("give either --patient or --weight-kg, not both")
        return _load_patient(path)
    if weight_kg is None:
        _fail("give --patient FILE or --weight-kg (with --age, --sex, --height-cm)")
    if sex is not None and sex not in ("male", "female"):
        _fail(f"--sex must be male or female, not {sex!r}")
    weight = weight_kg
    return _run(
        lambda: pk.Covariates(
            weight_kg=weight, age_years=age, sex=cast(pk.Sex | None, sex), height_cm=height_cm
        )
    )


def _load_patient(path: Path) -> pk.Covariates:
    from ketapath import pk
    from ketapath.domain.errors import DomainError
    from ketapath.domain.patient import patient_from_text

    text = read_text_file(path, what="patient file", option="--patient")
    try:
        patient, notes = patient_from_text(text, origin=str(path), suffix=path.suffix)
    except DomainError as exc:
        _fail(f"--patient: {exc.message}")
    _print_warnings(notes)
    return _run(
        lambda: pk.Covariates(
            weight_kg=patient.weight_kg,
            age_years=patient.age_on(),
            sex=patient.sex,
            height_cm=patient.height_cm,
        )
    )


def _regimen(
    protocol: str | None, infusion: Sequence[str], bolus: Sequence[str], cov: pk.Covariates
) -> pk.Regimen:
    from ketapath import pk

    if protocol is not None:
        if infusion or bolus:
            _fail("give either --protocol or --infusion/--bolus, not both")
        course = _plan(protocol, cov)
        return _run(lambda: pk.Regimen.from_course(course))
    if not infusion and not bolus:
        _fail("give --protocol ID or at least one --infusion START_MIN:END_MIN:RATE_MG_PER_H")
    return _run(lambda: pk.Regimen.parse(infusion, bolus))


def _plan(protocol_id: str, cov: pk.Covariates) -> Any:
    """The limit-checked course the clinical core builds for this patient (hard limits refuse)."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.planning import DosingInputs, plan
    from ketapath.knowledge.library import default_library

    dosing = DosingInputs(
        weight_kg=cov.weight_kg, height_cm=cov.height_cm, sex=cov.sex, age_years=cov.age_years
    )
    try:
        return plan(protocol_id, dosing, library=default_library())
    except DomainError as exc:
        _fail(f"--protocol {protocol_id}: {exc.message}")


def _labelled_regimen(text: str) -> tuple[str, pk.Regimen]:
    from ketapath import pk

    label, sep, body = text.partition("=")
    if not sep or not label or not body:
        _fail(f"--regimen {text!r}: expected LABEL=S:E:R+S:E:R+@T:MG")
    parts = [p for p in body.split("+") if p]
    infusions = [p for p in parts if not p.startswith("@")]
    boluses = [p[1:] for p in parts if p.startswith("@")]
    return label, _run(lambda: pk.Regimen.parse(infusions, boluses))


def _grid(
    times: str | None, step_min: float | None, until_min: float | None, regimen: pk.Regimen
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The output times: ``--times``, or every ``--step-min`` up to ``--until-min``.

    Their bounds (finite, not negative, within a year, at most MAX_OUTPUT_TIMES) are the
    engine's (``pk.simulate.check_times``); here only what must hold to build the grid.
    """
    import numpy as np

    from ketapath.pk.simulate import MAX_OUTPUT_TIMES

    if times is not None:
        if step_min is not None or until_min is not None:
            _fail("give either --times or --step-min/--until-min, not both")
        try:
            values = [float(t) for t in times.split(",") if t.strip()]
        except ValueError:
            _fail(f"--times {times!r}: expected numbers separated by commas")
        if not values:
            _fail("--times: give at least one time in minutes, e.g. 0,60,240")
        if any(not math.isfinite(v) or v < 0 for v in values):
            _fail("--times: every time must be a finite number of minutes, not negative")
        return np.array(sorted(set(values)), dtype=np.float64)
    step = 1.0 if step_min is None else step_min
    if not math.isfinite(step) or step <= 0:
        _fail(f"--step-min must be a finite number above zero, not {step}")
    if until_min is not None and (not math.isfinite(until_min) or until_min < 0):
        _fail(f"--until-min must be a finite number of minutes, not negative (got {until_min})")
    end = regimen.end_min + DEFAULT_TAIL_MIN if until_min is None else until_min
    intervals = end / step  # inf when the step is tiny (5e-324)
    if not intervals + 1 <= MAX_OUTPUT_TIMES:
        _fail(
            f"--step-min {step:g} up to {end:g} min is {intervals + 1:,.0f} output times, more "
            f"than {MAX_OUTPUT_TIMES:,}; give a larger --step-min"
        )
    count = math.floor(intervals + 1e-9) + 1
    return np.arange(count, dtype=np.float64) * step


def _print_warnings(warnings: Sequence[str]) -> None:
    for warning in warnings:
        warn(warning)


def _plot(predictions: dict[str, pk.Prediction], path: Path) -> None:
    writable_output(path, option="--plot", suffixes=PLOT_SUFFIXES)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first = next(iter(predictions.values()))
    has_analgesia = first.analgesia is not None
    fig, axes = plt.subplots(
        2 if has_analgesia else 1,
        1,
        figsize=(9, 6 if has_analgesia else 4),
        sharex=True,
        squeeze=False,
    )
    ax = axes[0][0]
    hours = first.times_min / 60.0
    for label, pred in predictions.items():
        prefix = f"{label}: " if label else ""
        ax.plot(hours, pred.plasma_mg_per_l * 1000, label=f"{prefix}plasma")
        if len(predictions) == 1:
            ax.plot(hours, pred.effect_site_mg_per_l * 1000, "--", label="effect site")
            if pred.norketamine_mg_per_l is not None:
                ax.plot(hours, pred.norketamine_mg_per_l * 1000, ":", label="norketamine")
    ax.set_ylabel(f"{first.model.analyte}, ng/mL")
    ax.set_title(f"{first.model.name}")
    ax.legend(loc="upper right", fontsize="small")
    if has_analgesia:
        ax2 = axes[1][0]
        for label, pred in predictions.items():
            if pred.analgesia is not None:
                ax2.plot(hours, pred.analgesia, label=label or "analgesia")
        ax2.set_ylabel("analgesia (fraction of max)")
    axes[-1][0].set_xlabel("time, h")
    fig.tight_layout()
    try:
        fig.savefig(path)
    except OSError as exc:
        _fail(f"--plot: cannot write {path}: {exc.strerror or exc}")
    finally:
        plt.close(fig)
