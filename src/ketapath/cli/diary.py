"""Commands of the patient diary (registered by `ketapath.cli`): diary remind.

``ketapath diary remind`` e-mails a reminder for each live diary link that has an address and
whose course has no entry for the clinic's today, at most once a clinic day per link; run it
from cron (e.g. every evening). It needs the mail settings (``KETAPATH_SMTP_HOST``,
``KETAPATH_SMTP_FROM``, ...; docs/diary.md) and reads ``KETAPATH_DATABASE_URL``. Each reminder
is audited as the operator's ``system``.

Exit codes: 0 done (also when there was nothing to send); 1 some reminders could not be sent,
or the database could not be read; 2 no mail settings.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

diary_app = typer.Typer(help="The patient diary: reminders by e-mail.", no_args_is_help=True)

EXIT_PROBLEMS = 1
EXIT_NO_MAIL = 2


@diary_app.command("remind")
def remind_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """E-mail today's diary reminders (cron-able: a link is reminded once a clinic day)."""
    from sqlalchemy.exc import SQLAlchemyError

    from ketapath.config import get_settings
    from ketapath.services import diary
    from ketapath.store.db import Database

    get_settings.cache_clear()
    settings = get_settings()
    if not settings.smtp_configured:
        typer.echo(
            "error: no mail settings: set KETAPATH_SMTP_HOST and KETAPATH_SMTP_FROM (and the "
            "port, user, password, STARTTLS as the mail server needs; docs/diary.md)",
            err=True,
        )
        raise typer.Exit(EXIT_NO_MAIL)
    db = Database(settings.database_url)
    try:
        report = diary.send_reminders(db, settings=settings)
    except SQLAlchemyError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        typer.echo(f"error: database: {first} (run `ketapath db upgrade`?)", err=True)
        raise typer.Exit(EXIT_PROBLEMS) from error
    finally:
        db.dispose()
    if as_json:
        typer.echo(
            json.dumps(
                {"sent": report.sent, "skipped": report.skipped, "problems": report.problems}
            )
        )
    else:
        typer.echo(f"{report.sent} reminder(s) sent, {report.skipped} not needed today")
        for problem in report.problems:
            typer.echo(f"warning: {problem}", err=True)
    if report.problems:
        raise typer.Exit(EXIT_PROBLEMS)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(diary_app, name="diary")
