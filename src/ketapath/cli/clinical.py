"""Clinical commands: screen, protocols, plan, demo, knowledge.

Exit codes: 0 done; 2 invalid input (the message names the field); 3 refused because a hard
limit would be passed (nothing is produced); 4 the plan passes a soft limit and needs
``--override-by NAME --reason TEXT`` (the plan is shown, marked ``needs_override``).
"""

from __future__ import annotations

import sys
from importlib import resources
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
    read_text_file,
)

if TYPE_CHECKING:  # the command bodies import these: the command line must start fast
    from ketapath.domain.orders import Course
    from ketapath.domain.patient import Patient
    from ketapath.domain.planning import DosingInputs
    from ketapath.domain.screening import ScreeningResult
    from ketapath.knowledge.clinical import Protocol
    from ketapath.knowledge.library import DrugLibrary

__all__ = ["EXIT_HARD_LIMIT", "EXIT_INVALID", "EXIT_NEEDS_OVERRIDE", "emit_json", "fail"]

protocols_app = typer.Typer(help="List and show the infusion protocols.", no_args_is_help=True)
knowledge_app = typer.Typer(help="The clinical knowledge base.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command("screen")(screen_command)
    app.add_typer(protocols_app, name="protocols")
    app.command("plan")(plan_command)
    app.command("demo")(demo_command)
    app.add_typer(knowledge_app, name="knowledge")


# ------------------------------------------------------------------ helpers


def _load(path: Path, as_json: bool) -> tuple[Patient, list[str]]:
    """The patient in a patient file, or exit 2 naming what is wrong with the file."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.patient import patient_from_text

    text = read_text_file(path, what="patient file")
    try:
        return patient_from_text(text, origin=str(path), suffix=path.suffix)
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)


# ------------------------------------------------------------------ screen


def screen_command(
    patient_file: Path = typer.Argument(..., help="Patient file (.json, .yaml or .yml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Screen a patient for ketamine infusion: decision, indications, findings with sources.

    The file's ``questionnaires`` (PHQ-9, GAD-7, DASS-21 answers) are screened for self-harm
    and severe scores, as the clinic's recorded assessments are on the server."""
    from ketapath.domain.errors import DomainError
    from ketapath.domain.mood import screening_from_document
    from ketapath.domain.patient import document_from_text
    from ketapath.domain.screening import screen

    text = read_text_file(patient_file, what="patient file")
    try:
        raw = document_from_text(text, origin=str(patient_file), suffix=patient_file.suffix)
        patient, warnings, questionnaires = screening_from_document(raw, origin=str(patient_file))
    except DomainError as exc:
        fail(exc.message, code=EXIT_INVALID, as_json=as_json, field=exc.field)
    result = screen(patient, input_warnings=warnings, questionnaires=questionnaires)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(format_screening(result))


def format_screening(result: ScreeningResult) -> str:
    from ketapath.domain.findings import sort_findings

    lines = [f"Screening of {result.patient_id or 'patient'}: {result.decision.upper()}"]
    lines.append(
        "Purpose: " + (", ".join(p.replace("_", " ") for p in result.purpose) or "not stated")
    )
    lines.append("Indications:")
    for ind in result.indications or ():
        lines.append(
            f"  - {ind.name} ({ind.given}): Grade {ind.grade}, {ind.certainty} "
            f"certainty; {ind.benefit}  [{ind.citation}]"
        )
    if not result.indications:
        lines.append("  (none recognised)")
    lines.append("Findings:")
    for f in sort_findings(result.findings):
        lines.extend(finding_lines(f))
    if result.decision == "needs_override":
        lines.append(
            "A physician must accept each finding marked 'needs override' with a written reason."
        )
    return "\n".join(lines)


# ------------------------------------------------------------------ protocols


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


# ------------------------------------------------------------------ plan


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
        patient, _ = _load(patient_file, as_json)
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


# ------------------------------------------------------------------ demo and knowledge


def demo_patient_path() -> Path:
    return Path(str(resources.files("ketapath.examples").joinpath("demo-patient.yaml")))


def demo_command() -> None:
    """Walk the demo patient (the published UCSF case) through screening and planning."""
    from ketapath.domain.errors import HardLimitExceeded
    from ketapath.domain.patient import load_patient
    from ketapath.domain.planning import DosingInputs, PlanOptions, plan
    from ketapath.domain.screening import screen

    path = demo_patient_path()
    patient, warnings = load_patient(path)
    typer.echo(
        "ketapath demo: a patient modelled on the case presented by Abrecht (UCSF Pain Medicine)"
    )
    typer.echo(f"Patient file: {path}\n")
    typer.echo(f"$ ketapath screen {path.name}")
    result = screen(patient, input_warnings=warnings)
    typer.echo(format_screening(result))
    typer.echo(
        "\nThe physician reviews the carbamazepine interaction (CYP3A4 induction may lower "
        "ketamine exposure) and accepts it with a reason.\n"
    )
    typer.echo(f"$ ketapath plan asra-initial --patient {path.name}")
    from ketapath.knowledge.library import default_library

    library = default_library()
    course = plan(
        "asra-initial",
        DosingInputs(
            patient.weight_kg,
            patient.height_cm,
            patient.sex,
            patient.age_on(),
            medicines=tuple(m.name for m in patient.medications),
        ),
        library=library,
    )
    typer.echo(format_course(course))
    typer.echo(
        "\nIn the published case the clinic gave about 60 mg over 2 h; the guideline "
        "starting dose above is at least 80 mg over more than 2 h (ASRA/AAPM/ASA consensus "
        "2018, Table 6).\n"
    )
    typer.echo("$ ketapath plan crps-schwartzman-10day --weight-kg 68 --setting icu")
    typer.echo(
        "(a CRPS protocol outside its setting is a protocol deviation: it needs an override)"
    )
    deviation = plan(
        "crps-schwartzman-10day", DosingInputs(68.0), PlanOptions(setting="icu"), library=library
    )
    typer.echo(
        f"  status: {status(deviation)}; "
        + "; ".join(
            f"[{f.severity}] {f.message}" for f in deviation.findings if f.severity != "info"
        )
    )
    typer.echo(
        "\n$ ketapath plan dose-ladder --weight-kg 68 --ladder-steps 0.5,1,2.5 --ladder-ceiling 3"
    )
    try:
        plan(
            "dose-ladder",
            DosingInputs(68.0),
            PlanOptions(
                ladder_steps_mg_per_kg_per_h=(0.5, 1.0, 2.5), ladder_ceiling_mg_per_kg_per_h=3.0
            ),
            library=library,
        )
    except HardLimitExceeded as exc:
        typer.echo(f"  {exc.message}")


@knowledge_app.command("check")
def knowledge_check() -> None:
    """Validate every knowledge file against its schema and print what was loaded."""
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.clinical import knowledge
    from ketapath.knowledge.instruments import load_instruments
    from ketapath.knowledge.pk_models import load_pk_input_bounds, load_pk_knowledge

    try:
        kb = knowledge()
        instruments = load_instruments()
        pk_models, analgesia = load_pk_knowledge()
        load_pk_input_bounds()
    except (KnowledgeError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    for name in kb.FILES:
        f = getattr(kb, name)
        typer.echo(f"{name}: version {f.version}, {len(f.entries)} entries")
    typer.echo(f"instruments: {len(instruments)} instruments")
    typer.echo(f"pk_models: {len(pk_models)} models, {len(analgesia)} analgesia models")
    typer.echo("pk_input_bounds: weight, age, height, rate, bolus and time bounds")


@knowledge_app.command("references")
def knowledge_references(
    ref_id: str = typer.Argument("", help="One reference id (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """The bibliography: every work a rule, limit or value cites, as full references."""
    from ketapath.knowledge.clinical import knowledge

    refs = knowledge().bibliography
    if ref_id and ref_id not in refs:
        fail(f"no reference {ref_id!r}", code=EXIT_INVALID, as_json=as_json, field="ref_id")
    chosen = [refs.get(ref_id)] if ref_id else list(refs.references)
    if as_json:
        emit_json([{**r.model_dump(mode="json"), "full": r.full(), "link": r.link} for r in chosen])
        return
    for r in chosen:
        typer.echo(f"{r.id}  [{r.short}]\n  {r.full()}\n  checked: {r.verified}")


def findings_markdown() -> str:
    """The catalogue of finding codes as the Markdown of docs/findings.md."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    lines = [
        "# Finding codes",
        "",
        "Every warning, recommendation and limit that ketapath shows is a finding: plain words",
        "first, then the rule and its citations, with one of the codes below. Severity: **hard**",
        "cannot be passed by anyone; **soft** passes only with a named physician's override and a",
        "written reason; **warning** needs attention but does not gate; **info** is for",
        "information. A code ending in `*` is a family: one code per entry of the named file.",
        "",
        "Written from `src/ketapath/knowledge/data/finding_codes.yaml` by",
        "`ketapath knowledge findings --markdown` (a test checks that this page is current).",
        "",
        "| code | engine | severities | meaning | rule | source |",
        "|---|---|---|---|---|---|",
    ]
    for c in kb.finding_codes.entries:
        source = citation_text(c.source) if c.source else f"each entry of `{c.source_from}`"
        lines.append(
            f"| `{c.code}` | {c.engine} | {', '.join(c.severities)} | {c.meaning} | {c.rule} "
            f"| {source} |"
        )
    return "\n".join(lines) + "\n"


@knowledge_app.command("findings")
def knowledge_findings(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/findings.md."),
) -> None:
    """The catalogue of finding codes: meaning, severities, rule and source of each."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    if markdown:
        typer.echo(findings_markdown(), nl=False)
        return
    if as_json:
        emit_json(
            [kb.bibliography.public(c.model_dump(mode="json")) for c in kb.finding_codes.entries]
        )
        return
    for c in kb.finding_codes.entries:
        source = citation_text(c.source) if c.source else f"each entry of {c.source_from}"
        typer.echo(f"{c.code}  [{', '.join(c.severities)}]  {c.meaning}\n  source: {source}")


def conditions_markdown() -> str:
    """The diagnosis vocabulary as the Markdown of docs/conditions.md."""
    from ketapath.domain.findings import citation_text
    from ketapath.domain.vocabulary import describe
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    lines = [
        "# The diagnosis vocabulary",
        "",
        "Every condition that screening understands, with the names, synonyms and abbreviations",
        "it recognises and its codes. How written diagnoses are matched (case, spelling,",
        "qualifiers such as 'history of' or '(left arm)', negation and uncertainty, ambiguous",
        "words, codes by longest prefix) is in",
        "[patient-file.md](patient-file.md#how-diagnoses-are-matched).",
        'Try a wording with `ketapath knowledge diagnosis "TEXT"`.',
        "",
        "Written from `src/ketapath/knowledge/data/conditions.yaml` by",
        "`ketapath knowledge conditions --markdown` (a test checks that this page is current).",
        "ICD-11 codes are of the WHO MMS release 2024-01; 'earlier' codes are of release 2019-04",
        "and are still matched; 'broader' categories are shown but never matched.",
        "",
    ]
    for kind, title in (
        ("indication", "Indications"),
        ("comorbidity", "Comorbidities"),
        ("state", "States"),
    ):
        lines += [f"## {title}", ""]
        for cond in (c for c in kb.conditions.entries if c.kind == kind):
            d = describe(cond, kb)
            lines += [f"### {cond.name}", "", f"- id: `{cond.id}`; screening: {d['screening']}"]
            codes = [f"ICD-10-CM {', '.join(cond.icd10cm) or 'none'}"]
            codes.append(f"ICD-11 {', '.join(cond.icd11) or 'none'}")
            if cond.icd11_earlier:
                codes.append(f"earlier ICD-11 {', '.join(cond.icd11_earlier)}")
            if cond.icd11_broader:
                codes.append(f"broader ICD-11 {', '.join(cond.icd11_broader)}")
            if cond.snomed_ct:
                codes.append(f"SNOMED CT {', '.join(cond.snomed_ct)}")
            lines.append(f"- codes: {'; '.join(codes)}")
            if cond.synonyms:
                lines.append(f"- names: {', '.join(cond.synonyms)}")
            if cond.abbreviations:
                lines.append(f"- abbreviations: {', '.join(cond.abbreviations)}")
            lines.append(f"- source: {citation_text(cond.source)}")
            lines.append("")
    lines += [
        "## Ambiguous words (never guessed)",
        "",
        "Written alone, these are reported as ambiguous (`input:ambiguous-diagnosis`) with their",
        "meanings; write the diagnosis out in full.",
        "",
        "| written | may mean |",
        "|---|---|",
    ]
    for amb in kb.conditions.ambiguous:
        meanings = "; ".join(
            m.meaning + (f" (`{m.condition}`)" if m.condition else "") for m in amb.meanings
        )
        lines.append(f"| {', '.join(amb.terms)} | {meanings} |")
    return "\n".join(lines) + "\n"


@knowledge_app.command("conditions")
def knowledge_conditions(
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
    markdown: bool = typer.Option(False, "--markdown", help="Print docs/conditions.md."),
) -> None:
    """The diagnosis vocabulary: names, synonyms, abbreviations, codes, screening role."""
    from ketapath.domain.vocabulary import describe
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    if markdown:
        typer.echo(conditions_markdown(), nl=False)
        return
    if as_json:
        emit_json(
            {
                "conditions": [
                    {**describe(c, kb), "source": kb.bibliography.public(c.source.model_dump())}
                    for c in kb.conditions.entries
                ],
                "ambiguous": [
                    {"terms": a.terms, "meanings": [m.model_dump() for m in a.meanings]}
                    for a in kb.conditions.ambiguous
                ],
            }
        )
        return
    for c in kb.conditions.entries:
        d = describe(c, kb)
        typer.echo(f"{c.id}  {c.name}  [{d['screening']}]")
        typer.echo(f"  ICD-10-CM {', '.join(c.icd10cm) or '-'}; ICD-11 {', '.join(c.icd11) or '-'}")
        words = [*c.synonyms, *c.abbreviations]
        if words:
            typer.echo(f"  also: {', '.join(words)}")


@knowledge_app.command("diagnosis")
def knowledge_diagnosis(
    texts: list[str] = typer.Argument(..., help="Diagnoses as written (names, codes...)."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """How ketapath reads written diagnoses: the condition, its codes, or why not."""
    from ketapath.domain.vocabulary import resolution_dict, resolve
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    results = [resolution_dict(resolve(t, kb), kb) for t in texts]
    if as_json:
        emit_json(results)
        return
    for r in results:
        typer.echo(r["explanation"])
        cond = r["condition"]
        if isinstance(cond, dict):
            typer.echo(
                f"  {cond['id']}: ICD-10-CM {', '.join(cond['icd10cm']) or '-'}; "
                f"ICD-11 {', '.join(cond['icd11']) or '-'}; screening: {cond['screening']}"
            )


@knowledge_app.command("adverse-effects")
def knowledge_adverse_effects(as_json: bool = typer.Option(False, "--json")) -> None:
    """The adverse effects of subanaesthetic ketamine (ASRA/AAPM/ASA consensus, Table 4)."""
    from ketapath.domain.findings import citation_text
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    effects = kb.adverse_effects.entries
    if as_json:
        emit_json([kb.bibliography.public(e.model_dump(mode="json")) for e in effects])
        return
    for e in effects:
        typer.echo(f"{e.name}: {', '.join(e.manifestations)}  [{citation_text(e.source)}]")
        for c in e.comments:
            typer.echo(f"  - {c}")


def _stdout_is_tty() -> bool:
    return sys.stdout.isatty()
