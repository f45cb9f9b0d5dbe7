"""Commands of the opioid plan (PRODUCT step 6): opioids, opioid-taper.

``ketapath opioids PATIENT_FILE`` prints each opioid's daily dose, factor and oral morphine
equivalent by a named table, and the total; ``--convert-to OPIOID --route ROUTE
--reduce-percent P`` adds the daily dose of one opioid for that total. ``ketapath opioid-taper``
prints dated taper steps. All clinical logic is in :mod:`ketapath.domain.opioids`.

Exit codes as ``plan``: 0 done; 2 invalid input or a refused conversion (the message names the
field, or the rule and its source); 4 the taper is faster than a published rate and needs
``--override-by NAME --reason TEXT`` (the plan is shown, marked ``needs_override``).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ketapath.cli.output import (
    EXIT_INVALID,
    EXIT_NEEDS_OVERRIDE,
    emit_json,
    fail,
    finding_lines,
    require_finite,
)
from ketapath.cli.screening import read_patient_file

if TYPE_CHECKING:  # the command bodies import the domain: the command line must start fast
    from ketapath.domain.findings import Finding
    from ketapath.domain.opioids import Conversion, OmeResult, TaperPlan


def register(app: typer.Typer) -> None:
    app.command("opioids")(opioids_command)
    app.command("opioid-taper")(taper_command)


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _finding_lines(findings: tuple[Finding, ...], indent: str) -> list[str]:
    return [line for f in findings for line in finding_lines(f, indent)]


# ------------------------------------------------------------------ opioids


def opioids_command(
    patient_file: Path = typer.Argument(..., help="Patient file (.json, .yaml or .yml)."),
    table: str | None = typer.Option(
        None, "--table", help="Conversion table id (default: cdc-2022, the CDC 2022 table)."
    ),
    convert_to: str | None = typer.Option(
        None,
        "--convert-to",
        help="Convert the total to this opioid (an opioid of the medicine vocabulary).",
    ),
    route: str | None = typer.Option(None, "--route", help="Route of the target opioid."),
    reduce_percent: float | None = typer.Option(
        None,
        "--reduce-percent",
        help="Reduction for incomplete cross-tolerance, percent (the physician's; no default).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Oral morphine equivalents of a patient's opioids, by a named table; optional conversion."""
    from ketapath.domain.errors import ConversionRefused, DomainError
    from ketapath.domain.opioids import (
        DEFAULT_TABLE,
        convert_medications,
        oral_morphine_equivalents,
    )

    conversion_options = (convert_to, route, reduce_percent)
    if any(v is not None for v in conversion_options) and any(
        v is None for v in conversion_options
    ):
        missing = [
            name
            for name, v in zip(
                ("convert_to", "route", "reduce_percent"), conversion_options, strict=True
            )
            if v is None
        ]
        fail(
            "a conversion needs --convert-to OPIOID, --route ROUTE and --reduce-percent P "
            f"(missing: {', '.join('--' + m.replace('_', '-') for m in missing)})",
            code=EXIT_INVALID,
            as_json=as_json,
            field=missing[0],
        )
    patient, _ = read_patient_file(patient_file, as_json)
    conversion: Conversion | None = None
    try:
        result = oral_morphine_equivalents(patient.medications, table or DEFAULT_TABLE)
        if convert_to is not None:
            assert route is not None and reduce_percent is not None
            conversion = convert_medications(result, convert_to, route, reduce_percent)
    except ConversionRefused as exc:
        fail(
            exc.message,
            code=EXIT_INVALID,
            as_json=as_json,
            kind="conversion_refused",
            field=exc.field,
            extra={"rule": exc.rule, "citation": exc.source},
        )
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)
    data = result.to_dict()
    data["conversion"] = conversion.to_dict() if conversion else None
    require_finite(data, what="the oral morphine equivalents")
    if as_json:
        emit_json(data)
        return
    typer.echo(format_ome(result))
    if conversion is not None:
        typer.echo(format_conversion(conversion))


def format_ome(r: OmeResult) -> str:
    lines = [f"Oral morphine equivalents by table {r.table_id}: {r.table_name}"]
    for line in r.lines:
        if line.converted:
            assert line.daily_dose is not None and line.ome_mg_per_day is not None
            lines.append(
                f"  {line.medication} ({line.opioid_id}, {line.route}): {_f(line.daily_dose)} "
                f"{line.unit} [{line.daily_dose_basis}] x {line.factor:g} per {line.factor_unit}"
                f" = {_f(line.ome_mg_per_day)} mg/day OME"
            )
        else:
            lines.append(f"  {line.medication} ({line.opioid_id}): NOT CONVERTED")
        lines += _finding_lines(line.findings, "      ")
    for name in r.unrecognised:
        lines.append(f"  {name}: NOT RECOGNISED: check by hand (it might be an opioid)")
    if r.not_opioids:
        lines.append(f"  Not opioids: {', '.join(r.not_opioids)}")
    if r.total_status == "no-opioids":
        lines.append("Total: none (no opioid is recorded among the medicines)")
    elif r.total_ome_mg_per_day is None:
        lines.append("Total: not available (nothing could be converted; not 0)")
    else:
        total = f"Total {_f(r.total_ome_mg_per_day)} mg/day OME"
        lines.append(
            total
            + (
                ""
                if r.complete
                else f" (INCOMPLETE: leaves out {', '.join(r.not_converted)}; see the findings)"
            )
        )
    lines += _finding_lines(r.findings, "  ")
    return "\n".join(lines)


def format_conversion(c: Conversion) -> str:
    lines = [
        f"Conversion to {c.route} {c.opioid_id} ({c.table_id}): {_f(c.from_ome_mg_per_day)} "
        f"mg/day OME less {c.reduce_percent:g}% = {_f(c.reduced_ome_mg_per_day)} mg/day OME "
        f"/ {c.factor:g} = {_f(c.daily_dose)} {c.unit}"
    ]
    lines += _finding_lines(c.findings, "  ")
    return "\n".join(lines)


# ------------------------------------------------------------------ opioid-taper


def taper_command(
    opioid: str = typer.Option(
        ..., "--opioid", help="Opioid ingredient id (medicine vocabulary), e.g. morphine."
    ),
    route: str = typer.Option(..., "--route", help="oral or transdermal (or another route)."),
    daily_dose: float = typer.Option(..., "--daily-dose", help="Starting daily dose."),
    unit: str = typer.Option(..., "--unit", help="mg or mcg (per day), or mcg/h for patches."),
    step_percent: float = typer.Option(
        ..., "--step-percent", help="Reduction per step, percent (of the start dose by default)."
    ),
    every_days: int = typer.Option(..., "--every-days", help="Days between steps."),
    start: str | None = typer.Option(
        None, "--start", help="Date of the first reduction, YYYY-MM-DD (default today)."
    ),
    round_to: float | None = typer.Option(
        None, "--round-to", help="Round each dose down to this increment (e.g. 5)."
    ),
    floor: float = typer.Option(0.0, "--floor", help="Stop at this daily dose (default 0)."),
    of_current: bool = typer.Option(
        False, "--of-current", help="Each step is a percent of the dose before it."
    ),
    override_by: str | None = typer.Option(
        None, "--override-by", help="Physician accepting a taper faster than a published rate."
    ),
    reason: str | None = typer.Option(None, "--reason", help="The physician's reason."),
    as_json: bool = typer.Option(False, "--json", help="Print the plan as JSON."),
) -> None:
    """A dated taper plan for one opioid, checked against published taper rates."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.opioids import TaperRequest, taper_plan

    try:
        start_date = date.fromisoformat(start) if start else date.today()
    except ValueError:
        fail(
            f"--start must be a date YYYY-MM-DD (got {start!r})",
            code=EXIT_INVALID,
            as_json=as_json,
            field="start",
        )
    request = TaperRequest(
        opioid_id=opioid.strip().lower(),
        route=route,
        start_daily_dose=daily_dose,
        unit=unit,
        step_percent=step_percent,
        every_days=every_days,
        start_date=start_date,
        round_to=round_to,
        floor=floor,
        basis="current" if of_current else "original",
        override_by=override_by,
        override_reason=reason,
    )
    try:
        plan = taper_plan(request)
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)
    if as_json:
        emit_json(plan.to_dict())
    else:
        typer.echo(format_taper(plan))
    if plan.status == "needs_override":
        fail(
            "the taper is faster than a published rate; it needs --override-by NAME --reason TEXT",
            code=EXIT_NEEDS_OVERRIDE,
            as_json=as_json,
            kind="needs_override",
            field="override",
        )


def format_taper(p: TaperPlan) -> str:
    basis = "of the starting dose" if p.basis == "original" else "of the dose before each step"
    lines = [
        f"Taper of {p.route} {p.opioid_id} from {_f(p.start_daily_dose)} {p.unit}: "
        f"{p.step_percent:g}% {basis} every {p.every_days} day(s)"
        + (f", rounded down to {p.round_to:g}" if p.round_to else "")
        + (f", floor {_f(p.floor)}" if p.floor else ""),
        f"  status: {p.status}",
    ]
    for s in p.steps:
        ome = f"  ({_f(s.ome_mg_per_day)} mg/day OME, {p.table_id})" if s.ome_mg_per_day else ""
        lines.append(
            f"  step {s.step:>3}  {s.date.isoformat()}  {_f(s.daily_dose):>8} {s.unit}  "
            f"{s.percent_of_start:5.1f}% of start{ome}"
        )
    lines += _finding_lines(p.findings, "  ")
    if p.override:
        lines.append(
            f"  Override by {p.override.physician}: {p.override.reason} "
            f"(accepts {', '.join(p.override.codes)})"
        )
    for n in p.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)
