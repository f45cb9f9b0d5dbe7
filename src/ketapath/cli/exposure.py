"""Commands of the exposure summaries (registered by `ketapath.cli`): exposure refresh.

``ketapath exposure refresh`` brings every stored exposure summary of the registry up to date
(services.exposure_summary.refresh): after a new version of pk_models.yaml, new reference
concentrations (``KETAPATH_EXPOSURE_THRESHOLDS_FILE``) or a release that changes the method,
the summaries that a read would recompute are computed together by the population path and
stored, so that the registry's analytics read current summaries. It reads
``KETAPATH_DATABASE_URL`` and is audited as the operator's ``system``. A read recomputes a
stale summary anyway: the command only does it ahead, in bulk.

Exit codes: 0 done; 1 the database could not be read or a record could not be summarised.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

exposure_app = typer.Typer(
    help="Stored exposure summaries (AUC, peak, time above) of sessions and courses.",
    no_args_is_help=True,
)

EXIT_PROBLEMS = 1


@exposure_app.command("refresh")
def refresh_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Store a new summary for every session and course whose inputs changed."""
    from sqlalchemy.exc import SQLAlchemyError

    from ketapath.config import get_settings
    from ketapath.services import exposure_summary
    from ketapath.services.errors import ServiceError
    from ketapath.services.permissions import SYSTEM
    from ketapath.store.db import Database

    get_settings.cache_clear()
    settings = get_settings()
    db = Database(settings.database_url)
    try:
        report = exposure_summary.refresh(db, SYSTEM, settings=settings)
    except SQLAlchemyError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        typer.echo(f"error: database: {first} (run `ketapath db upgrade`?)", err=True)
        raise typer.Exit(EXIT_PROBLEMS) from error
    except ServiceError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(EXIT_PROBLEMS) from error
    finally:
        db.dispose()
    if as_json:
        typer.echo(json.dumps(report.model_dump()))
        return
    typer.echo(
        f"{report.sessions} session(s) and {report.courses} course(s): {report.stored} "
        f"summary(ies) stored, {report.unchanged} unchanged, {report.provisional} provisional "
        f"(a pump running), {report.nothing_given} with nothing given; {report.seconds:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(exposure_app, name="exposure")
