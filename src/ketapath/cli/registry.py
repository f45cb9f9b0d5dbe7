"""Commands of the registry (registered by `ketapath.cli`): registry synth, registry refresh.

- ``ketapath registry synth --patients 10000 --centres 5 --seed 1``: write a synthetic
  multi-centre registry (invented patients, charted sessions, diaries, assessments drawn from
  a known model; ``services.registry_synth``) to an EMPTY database, in bulk, then summarise
  it for the registry. A database that holds patients is refused unless ``--force``.
- ``ketapath registry refresh``: bring the registry's summary up to date now (the pages do it
  themselves; this is for after a large import, or a change of the rules files).

Both use ``--database URL`` or ``KETAPATH_DATABASE_URL`` and create the schema if it is not
there (``ketapath db upgrade``). The database, the domain and the generator are imported
inside each command (the command line starts fast).

Exit codes: 0 done; 1 the database could not be used, or holds patients (synth without
``--force``); 2 an option out of range.
"""

from __future__ import annotations

import json
from datetime import date
from typing import TYPE_CHECKING, Annotated

import typer

from ketapath.cli.output import EXIT_INVALID, fail

if TYPE_CHECKING:
    from ketapath.services.clock import ClinicClock

registry_app = typer.Typer(
    help="The registry: a synthetic registry for benchmarks, the summary's refresh.",
    no_args_is_help=True,
)
MAX_PATIENTS = 1_000_000
DatabaseOption = Annotated[
    str | None,
    typer.Option(
        "--database", help="Database URL (default: KETAPATH_DATABASE_URL, else ./ketapath.db)."
    ),
]


def _url(database: str | None) -> str:
    from ketapath.config import get_settings

    if database:
        return database
    get_settings.cache_clear()
    return get_settings().database_url


def _clock() -> ClinicClock:
    from ketapath.config import get_settings
    from ketapath.services.clock import clinic_clock

    get_settings.cache_clear()
    return clinic_clock(get_settings())


@registry_app.command("synth")
def synth_command(
    patients: Annotated[int, typer.Option(help="How many patients (1 to 1,000,000).")] = 10_000,
    centres: Annotated[int, typer.Option(help="How many centres (1 to 100).")] = 5,
    seed: Annotated[int, typer.Option(help="The generator's seed (same seed, same registry).")] = 1,
    end_date: Annotated[
        str | None, typer.Option(help="The last day of the registry (default: the clinic's today).")
    ] = None,
    database: DatabaseOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Add to a database that already holds patients.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Write a synthetic multi-centre registry to an empty database (for benchmarks)."""
    if not 1 <= patients <= MAX_PATIENTS:
        fail(f"--patients: 1 to {MAX_PATIENTS:,}, not {patients}", code=EXIT_INVALID)
    if not 1 <= centres <= 100:
        fail(f"--centres: 1 to 100, not {centres}", code=EXIT_INVALID)
    end = None
    if end_date is not None:
        try:
            end = date.fromisoformat(end_date)
        except ValueError:
            fail(f"--end-date: {end_date!r} is not a date (YYYY-MM-DD)", code=EXIT_INVALID)
    from ketapath.cli.admin import database_errors
    from ketapath.services.registry_synth import Config, NotEmpty, synthesise
    from ketapath.store import migrate
    from ketapath.store.db import Database, make_engine

    url = _url(database)
    with database_errors():
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(url)
        try:
            config = Config(patients=patients, centres=centres, seed=seed, end=end)
            say = (lambda _: None) if as_json else (lambda m: typer.echo(m, err=True))
            report = synthesise(db, config, _clock(), force=force, progress=say)
        except NotEmpty as refused:
            fail(str(refused), code=1)
        finally:
            db.dispose()
    result = {
        "rows": report.rows,
        "observations": report.rows["session_events"]
        + report.rows["diary_entries"]
        + report.rows["assessments"],
        "seconds": {
            "generate": round(report.generate_seconds, 1),
            "write": round(report.write_seconds, 1),
            "summarise": round(report.summary_seconds, 1),
        },
        "courses_summarised": report.courses_summarised,
    }
    if as_json:
        typer.echo(json.dumps(result))
        return
    rows = report.rows
    written = report.generate_seconds + report.write_seconds
    typer.echo(
        f"{rows['patients']} patients, {rows['orders']} courses, {rows['infusion_sessions']} "
        f"sessions, {result['observations']} observations (chart entries, diary days, "
        f"assessments) written in {written:.0f} s; "
        f"{report.courses_summarised} courses summarised in {report.summary_seconds:.0f} s"
    )


@registry_app.command("refresh")
def refresh_command(
    database: DatabaseOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Bring the registry's summary up to date with the records now."""
    from ketapath.cli.admin import database_errors
    from ketapath.services.registry_store import refresh
    from ketapath.store import migrate
    from ketapath.store.db import Database, make_engine

    url = _url(database)
    with database_errors():
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        db = Database(url)
        try:
            report = refresh(db, _clock())
        finally:
            db.dispose()
    if as_json:
        typer.echo(json.dumps(vars(report)))
        return
    everything = " (every course: the definitions changed)" if report.rebuilt else ""
    typer.echo(
        f"{report.patients} patient(s), {report.courses} course(s) summarised in "
        f"{report.seconds:.1f} s{everything}"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(registry_app, name="registry")
