"""Commands of the research area (registered by `ketapath.cli`): research export.

`ketapath research export --format csv|parquet --out FILE --user NAME` writes the
de-identified research export (HIPAA Safe Harbor; docs/research-export.md) of the clinic's
database (``KETAPATH_DATABASE_URL``) to a zip, for a researcher or a physician named with
``--user`` (or ``KETAPATH_USER``): the audit log records who exported, when, the format and
the rows of each table. The research codes follow ``KETAPATH_SECRET_KEY``: set it to the
server's so that the command's codes are the server's. The database, the services and pyarrow
are imported inside the command, so that the command line starts fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ketapath.cli.output import EXIT_INVALID, fail, writable_output
from ketapath.cli.sessions import USER_ENV, _acting, _database

FORMATS = ("csv", "parquet")

research_app = typer.Typer(
    help="De-identified research data: the research export (CSV or Parquet).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(research_app, name="research")


def _call(call: Any) -> Any:
    """A service call on the clinic's database, its refusals as one line."""
    from ketapath.services.errors import ServiceError

    try:
        return call()
    except typer.Exit:
        raise
    except ServiceError as error:
        fail(error.message, code=EXIT_INVALID, field=error.field or "")
    except OSError:
        raise  # writing the file (the caller says so), not reading the database
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot read the registry from the database ({type(error).__name__}); run "
            "`ketapath db upgrade` first",
            code=1,
            kind="database",
        )


@research_app.command("export")
def export_command(
    out: Annotated[Path, typer.Option("--out", help="The zip file to write.")],
    fmt: Annotated[
        str, typer.Option("--format", help="csv (a zip of CSV files) or parquet.")
    ] = "csv",
    user: Annotated[
        str | None,
        typer.Option("--user", help=f"Acting researcher or physician (or {USER_ENV})."),
    ] = None,
) -> None:
    """Write the de-identified research export (HIPAA Safe Harbor) to a zip file.

    The zip holds one file per table (patients, courses, course_outcomes, course_exposure,
    sessions, adverse_events, assessments, assessment_scales, diary_entries, safety_results,
    safety_values), the data dictionary and the table of the 18 Safe Harbor identifiers.
    """
    if fmt not in FORMATS:
        fail(f"--format: give csv or parquet (not {fmt!r})", field="--format")
    writable_output(out, option="--out", suffixes=(".zip",))
    import tempfile

    from ketapath.config import get_settings
    from ketapath.services import research_export
    from ketapath.services.clock import clinic_clock

    db = _database()
    actor = _call(lambda: _acting(db, user, False))
    settings = get_settings()
    # written beside --out and renamed into place once whole and audited: a failed export
    # leaves no file, and never half of one
    try:
        spool = tempfile.NamedTemporaryFile(  # noqa: SIM115 (renamed or removed below)
            dir=out.resolve().parent, prefix=f".{out.name}.", suffix=".part", delete=False
        )
    except OSError as error:
        fail(f"--out: cannot write {str(out)!r} ({error.strerror})", code=1, field="--out")
    part = Path(spool.name)
    try:
        with spool:
            export = _call(
                lambda: research_export.export_research(
                    db, actor, fmt, spool, clock=clinic_clock(settings), settings=settings
                )
            )
        size = part.stat().st_size
        part.replace(out)
    except OSError as error:
        fail(f"--out: cannot write {str(out)!r} ({error.strerror})", code=1, field="--out")
    finally:
        part.unlink(missing_ok=True)
    rows = ", ".join(f"{name} {count}" for name, count in export.counts.items())
    typer.echo(f"research export ({fmt}, {size} bytes) written to {out}: {rows}")
