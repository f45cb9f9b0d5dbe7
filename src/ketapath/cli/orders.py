"""Protocols and orders: ``ketapath protocols list|show`` and ``ketapath plan``.

Exit codes of ``plan``: 0 done; 2 invalid input (the message names the field, including a bag
strength the drug library does not stock); 3 refused because a hard limit would be passed or a
rate is outside the pump's range (nothing is produced); 4 the plan passes a soft limit and needs
``--override-by NAME --reason TEXT`` (the plan is shown, marked ``needs_override``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ketapath.cli.output import (
    EXIT_HARD_LIMIT,
    EXIT_INVALID,
    EXIT_NEEDS_OVERRIDE,
    emit_json,
    fail,
    finding_lines,
)
from ketapath.cli.screening import read_patient_file

if TYPE_CHECKING:  # the command bodies import these: the command line must start fast
    from ketapath.domain.orders import Course
    from ketapath.domain.planning import DosingInputs
    from ketapath.knowledge.clinical import Protocol
    from ketapath.knowledge.library import DrugLibrary

protocols_app = typer.Typer(help="List and show the infusion protocols.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(protocols_app, name="protocols")
    app.command("plan")(plan_command)


@protocols_app.command("list")
def protocols_list(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """List the protocols."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    protocols = knowledge().protocols.entries
    if as_json:
        emit_json(
            [
                {
                    "id": p.id,
                    "name": p.name,
                    "route": p.route,
                    "settings": p.settings,
                    "indications": p.indications,
                    "citation": citation_text(p.source),
                }
                for p in protocols
            ]
        )
        return
    width = max(len(p.id) for p in protocols)
    for p in protocols:
        typer.echo(f"{p.id:<{width}}  {p.route.upper():<2}  {'/'.join(p.settings):<10}  {p.name}")


@protocols_app.command("show")
def protocols_show(
    protocol_id: str = typer.Argument(..., help="Protocol id (see `protocols list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show one protocol as written, with its sources and local defaults."""
    from ketapath.knowledge.clinical import knowledge

    try:
        protocol = knowledge().protocol(protocol_id)
    except KeyError as exc:
        fail(
            str(exc.args[0]),
            code=EXIT_INVALID,
            as_json=as_json,
            kind="unknown_protocol",
            field="protocol_id",
        )
    if as_json:
        emit_json(knowledge().bibliography.public(protocol.model_dump(mode="json")))
    else:
        typer.echo(format_protocol(protocol))


def format_protocol(p: Protocol) -> str:
    from ketapath.domain.findings import citation_text

    lines = [
        f"{p.id}: {p.name}",
        f"  {p.summary}",
        f"  route {p.route.upper()}; settings {', '.join(p.settings)}; "
        f"weight basis {p.weight_basis}",
        f"  indications: {', '.join(p.indications) or 'any (screening decides)'}",
    ]
    if p.dose_ladder:
        lad = p.dose_ladder
        lines.append(
            f"  dose ladder: {', '.join(f'{s:g}' for s in lad.steps_mg_per_kg_per_h)} "
            f"mg/kg/h, ceiling {lad.ceiling_mg_per_kg_per_h:g}, "
            f"{lad.session_duration_min:g} min sessions every {lad.interval_days} days"
        )
        lines.append(f"    condition: {lad.condition}")
    else:
        lines.append(f"  session days: {', '.join(str(d) for d in p.day_offsets)}")
        if p.bolus:
            lines.append(f"  bolus {p.bolus.value:g} {p.bolus.unit}")
        for i, s in enumerate(p.steps, 1):
            if s.rate:
                dose = f"{s.rate.value:g} {s.rate.unit}"
            elif s.amount:
                dose = f"{s.amount.value:g} {s.amount.unit} over the step"
            else:
                dose = f"{s.fraction_of_previous:g} x previous rate"
            lines.append(
                f"  step {i}: {s.duration_min:g} min at {dose}" + (f" ({s.note})" if s.note else "")
            )
    if p.caps:
        caps = [
            f"{p.caps.max_rate_mg_per_h:g} mg/h" if p.caps.max_rate_mg_per_h else "",
            f"{p.caps.max_rate_mg_per_kg_per_h:g} mg/kg/h"
            if p.caps.max_rate_mg_per_kg_per_h
            else "",
        ]
        where = citation_text(p.caps.source) if p.caps.source else "the protocol's source"
        lines.append(f"  caps: {', '.join(c for c in caps if c)} ({where})")
    for a in p.adjuncts:
        dose = f"{a.dose:g}" + (f"-{a.dose_max:g}" if a.dose_max else "")
        lines.append(
            f"  adjunct: {a.drug} {dose} {a.unit} {a.route}, {a.timing} ({citation_text(a.source)})"
        )
    for d in p.local_defaults:
        lines.append(f"  local default: {d}")
    for n in p.notes:
        lines.append(f"  note: {n}")
    lines.append(f"  source: {citation_text(p.source)}")
    return "\n".join(lines)


def _parse_steps(text: str | None, as_json: bool) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        fail(
            f"--ladder-steps must be numbers separated by commas (got {text!r})",
            code=EXIT_INVALID,
            as_json=as_json,
            field="ladder_steps",
        )


def plan_command(
    protocol_id: str = typer.Argument(..., help="Protocol id (see `protocols list`)."),
    patient_file: Path | None = typer.Option(None, "--patient", help="Patient file."),
    weight_kg: float | None = typer.Option(None, "--weight-kg", help="Actual body weight, kg."),
    height_cm: float | None = typer.Option(None, "--height-cm", help="Height, cm."),
    sex: str | None = typer.Option(None, "--sex", help="male or female."),
    age: float | None = typer.Option(None, "--age", help="Age, years."),
    concentration: float | None = typer.Option(
        None, "--concentration-mg-per-ml", help="Bag concentration, mg/mL (default 1)."
    ),
    setting: str | None = typer.Option(None, "--setting", help="clinic, ward or icu."),
    weight_basis: str | None = typer.Option(
        None, "--weight-basis", help="actual, ideal or adjusted."
    ),
    override_by: str | None = typer.Option(
        None, "--override-by", help="Physician accepting soft-limit findings."
    ),
    reason: str | None = typer.Option(None, "--reason", help="The physician's reason."),
    ladder_steps: str | None = typer.Option(
        None, "--ladder-steps", help="dose-ladder steps, mg/kg/h, e.g. 0.1,0.2,0.3."
    ),
    ladder_ceiling: float | None = typer.Option(
        None, "--ladder-ceiling", help="dose-ladder ceiling, mg/kg/h."
    ),
    library_file: Path | None = typer.Option(
        None,
        "--library",
        help="A drug library file to plan against (default: the one packaged with ketapath).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the course as JSON."),
) -> None:
    """Turn a protocol into a limit-checked course of pump orders for one patient.

    The course is checked against the drug library: the packaged default, or --library FILE
    (a clinic's library, as `ketapath library export` writes it). A clinic server plans
    against the library loaded into its database (`ketapath library load`).
    """
    from ketapath.domain.errors import DomainError, HardLimitExceeded
    from ketapath.domain.planning import DosingInputs, PlanOptions, course_to_dict, plan

    if (patient_file is None) == (weight_kg is None):
        fail(
            "give either --patient FILE or --weight-kg W",
            code=EXIT_INVALID,
            as_json=as_json,
            field="patient",
        )
    if patient_file is not None:
        if any(v is not None for v in (height_cm, sex, age)):
            fail(
                "--height-cm, --sex and --age come from the patient file when --patient is given",
                code=EXIT_INVALID,
                as_json=as_json,
                field="patient",
            )
        patient, _ = read_patient_file(patient_file, as_json)
        dosing = DosingInputs(
            patient.weight_kg,
            patient.height_cm,
            patient.sex,
            patient.age_on(),
            medicines=tuple(m.name for m in patient.medications),
        )
    else:
        assert weight_kg is not None
        dosing = DosingInputs(weight_kg, height_cm, _sex(sex), age)
    _check_human(dosing, as_json)
    library = _library(library_file, as_json)
    options = PlanOptions(
        setting=setting.lower() if setting else None,  # type: ignore[arg-type]
        weight_basis=weight_basis.lower() if weight_basis else None,  # type: ignore[arg-type]
        concentration_mg_per_ml=concentration,
        ladder_steps_mg_per_kg_per_h=_parse_steps(ladder_steps, as_json),
        ladder_ceiling_mg_per_kg_per_h=ladder_ceiling,
        override_by=override_by,
        override_reason=reason,
    )
    try:
        course = plan(protocol_id, dosing, options, library=library)
    except HardLimitExceeded as exc:
        fail(
            exc.message,
            code=EXIT_HARD_LIMIT,
            as_json=as_json,
            kind="hard_limit",
            field=exc.field,
            extra={"findings": [f.to_dict() for f in exc.findings]},
        )
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)
    if as_json:
        emit_json(course_to_dict(course))
    else:
        typer.echo(format_course(course))
    if status(course) == "needs_override":
        fail(
            "the plan passes a soft limit; it needs --override-by NAME --reason TEXT before it "
            "can be signed",
            code=EXIT_NEEDS_OVERRIDE,
            as_json=as_json,
            kind="needs_override",
            field="override",
        )


def _check_human(dosing: DosingInputs, as_json: bool) -> None:
    """Refuse a weight, height or age no human body has (``pk_input_bounds.yaml``), typed or
    read from the patient file: 5e-324 kg would give infinite doses per kg."""
    from ketapath.knowledge.pk_models import load_pk_input_bounds

    bounds = load_pk_input_bounds()
    checks = (
        ("weight_kg", dosing.weight_kg, bounds.weight_kg, "kg"),
        ("height_cm", dosing.height_cm, bounds.height_cm, "cm"),
        ("age_years", dosing.age_years, bounds.age_years, "years"),
    )
    for field, value, limits, unit in checks:
        if value is not None and not limits.minimum <= value <= limits.maximum:
            fail(
                f"{field.replace('_', ' ')} {value:g} {unit} is outside what a human body has "
                f"({limits.minimum:g}-{limits.maximum:g} {unit})",
                code=EXIT_INVALID,
                as_json=as_json,
                field=field,
            )


def status(course: Course) -> str:
    """The course's status (``domain.planning.status``, imported when a course exists)."""
    from ketapath.domain.planning import status as course_status

    return course_status(course)


def _library(path: Path | None, as_json: bool) -> DrugLibrary:
    """The drug library to plan against: a file, or the packaged default."""
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.library import default_library, read_library

    if path is None:
        return default_library()
    try:
        return read_library(path)
    except KnowledgeError as exc:
        fail(str(exc), code=EXIT_INVALID, as_json=as_json, field="library")


def _sex(text: str | None) -> str | None:
    if text is None:
        return None
    low = text.strip().lower()
    return {"m": "male", "f": "female"}.get(low, low)


def _f(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def format_course(c: Course) -> str:
    from ketapath.domain.findings import sort_findings

    lines = [
        f"{c.protocol_name}",
        f"  protocol {c.protocol_id}; route {c.route.upper()}; setting {c.setting}; "
        f"bag {_f(c.concentration_mg_per_ml)} mg/mL; pump {c.pump_name}",
        f"  dosing weight {_f(c.dosing_weight_kg)} kg ({c.weight_basis}; actual "
        f"{_f(c.actual_weight_kg)} kg)",
        f"  status: {status(c)}",
    ]
    if c.library is not None:
        lines.insert(
            3,
            f"  drug library {c.library.name}, version {c.library.version} "
            f"(digest {c.library.digest[:12]})",
        )
    for s in c.sessions:
        head = f"  Session {s.number} (day {s.day})"
        if s.condition:
            head += f" - {s.condition}"
        lines.append(head)
        if s.bolus_mg:
            lines.append(f"    bolus {_f(s.bolus_mg)} mg = {_f(s.bolus_ml)} mL")
        for st in s.steps:
            lines.append(
                f"    {_f(st.start_min):>8}-{_f(st.end_min):<8} min  "
                f"{_f(st.rate_mg_per_h):>7} mg/h = {_f(st.rate_ml_per_h):>7} mL/h  "
                f"({st.rate_mg_per_kg_per_h:.3f} mg/kg/h)  VTBI {_f(st.volume_ml)} mL"
                + (f"  {st.note}" if st.note else "")
            )
        lines.append(
            f"    session total {_f(s.total_mg)} mg; volume to be infused "
            f"{_f(s.infusion_volume_ml)} mL"
        )
    lines.append(f"  Course total {_f(c.course_total_mg)} mg over {len(c.sessions)} session(s)")
    for a in c.adjuncts:
        dose = _f(a.dose) + (f"-{_f(a.dose_max)}" if a.dose_max else "")
        per_session = (
            f"; up to {_f(a.session_total)} {a.session_unit} a session"
            if a.session_unit and (a.doses_per_session > 1 or a.unit == "mg/day")
            else ""
        )
        lines.append(
            f"  Adjunct: {a.drug} {dose} {a.unit} {a.route}, {a.timing}"
            + (f" ({a.basis})" if a.basis else "")
            + per_session
            + f"  [{'; '.join(x.text for x in a.citations)}]"
        )
    for f in sort_findings(c.findings):
        lines.extend(finding_lines(f))
    if c.override:
        lines.append(
            f"  Override by {c.override.physician}: {c.override.reason} "
            f"(accepts {', '.join(c.override.codes)})"
        )
    for n in c.notes:
        lines.append(f"  note: {n}")
    return "\n".join(lines)
