"""``ketapath demo``: the published UCSF case through screening and planning, offline."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import typer

from ketapath.cli.orders import format_course, status
from ketapath.cli.screening import format_screening


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)


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
