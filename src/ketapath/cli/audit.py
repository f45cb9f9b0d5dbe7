"""Commands of the audit area (registered by `ketapath.cli`): audit verify, audit head.

Both only read the database (``KETAPATH_DATABASE_URL``) and write nothing, not even an audit
row. Imports of the database layer happen inside the commands so that the command line
starts fast.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from ketapath.services.audit import Anchor, ChainBreak, ChainHead

audit_app = typer.Typer(
    help="The audit log: check its hash chain, print its head.", no_args_is_help=True
)

# Exit codes of `audit verify`.
EXIT_INTACT = 0
EXIT_BROKEN = 1
EXIT_UNUSABLE = 2  # the database could not be read, or an argument is wrong

_ANCHOR = re.compile(r"^(\d{1,18}):([0-9a-f]{64})$")


def _fail(message: str, code: int = EXIT_UNUSABLE) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _anchor(value: str | None) -> Anchor | None:
    from ketapath.services.audit import Anchor

    if value is None:
        return None
    match = _ANCHOR.match(value.strip().lower())
    if match is None:
        raise _fail(
            f"--anchor {value!r}: give SEQ:HASH as printed by `ketapath audit head` "
            "(a number, a colon, 64 hexadecimal digits)"
        )
    return Anchor(seq=int(match.group(1)), row_hash=match.group(2))


def _head_json(head: ChainHead | None) -> dict[str, Any] | None:
    if head is None:
        return None
    return {
        "seq": head.seq,
        "row_id": head.row_id,
        "hash": head.row_hash,
        "at": head.at.isoformat(),
        "anchor": f"{head.seq}:{head.row_hash}",
    }


def _break_json(problem: ChainBreak | None) -> dict[str, Any] | None:
    if problem is None:
        return None
    return {
        "problem": problem.problem,
        "seq": problem.seq,
        "row_id": problem.row_id,
        "message": problem.message,
    }


def _database_call(call: Any) -> Any:
    """Run ``call(db)`` on the configured database; a failure to reach it is exit 2."""
    from sqlalchemy.exc import SQLAlchemyError

    from ketapath.config import get_settings
    from ketapath.store.db import Database

    get_settings.cache_clear()
    try:
        db = Database(get_settings().database_url)
    except (SQLAlchemyError, ValueError) as error:
        raise _fail(f"database: {error}") from error
    try:
        return call(db)
    except SQLAlchemyError as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise _fail(
            f"database {db.engine.url.render_as_string()}: {first} "
            "(is it a ketapath database at the newest schema? `ketapath db upgrade`)"
        ) from error
    finally:
        db.dispose()


@audit_app.command("verify")
def verify_command(
    anchor: Annotated[
        str | None,
        typer.Option(
            help=(
                "A head recorded earlier with `ketapath audit head` (SEQ:HASH): the row with "
                "that seq must still carry that hash. Detects a chain rewritten consistently "
                "or cut short at its end."
            ),
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Walk the audit chain and report the first broken link.

    Exit 0: intact.
    Exit 1: broken (the report names the row and what is wrong).
    Exit 2: the database could not be read, or an argument is wrong.
    """
    from ketapath.services import audit

    wanted = _anchor(anchor)
    report = _database_call(lambda db: audit.verify(db, anchor=wanted))
    if as_json:
        document = {
            "intact": report.intact,
            "rows_checked": report.rows_checked,
            "head": _head_json(report.head),
            "first_break": _break_json(report.first_break),
            "anchor_checked": wanted is not None,
        }
        typer.echo(json.dumps(document, indent=2))
    elif report.first_break is None:
        where = (
            f"head seq {report.head.seq}, hash {report.head.row_hash}"
            if report.head is not None
            else "the audit log is empty"
        )
        anchored = f"; the recorded head {wanted.seq} matches" if wanted is not None else ""
        typer.echo(f"audit chain intact: {report.rows_checked} rows checked ({where}){anchored}")
    else:
        problem = report.first_break
        location = f"row {problem.row_id}" if problem.row_id is not None else "the chain"
        typer.echo(
            f"audit chain BROKEN at {location} (seq {problem.seq}): {problem.problem}\n"
            f"  {problem.message}\n"
            f"  {report.rows_checked} rows before it are intact."
        )
    raise typer.Exit(EXIT_INTACT if report.intact else EXIT_BROKEN)


@audit_app.command("head")
def head_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the head as JSON.")] = False,
) -> None:
    """Print the chain's last row (seq and hash) to record somewhere the database is not.

    Give it back later as `ketapath audit verify --anchor SEQ:HASH`.
    """
    from ketapath.services import audit

    head = _database_call(audit.head)
    if as_json:
        typer.echo(json.dumps(_head_json(head), indent=2))
    elif head is None:
        typer.echo("the audit log is empty")
    else:
        typer.echo(f"{head.seq}:{head.row_hash}")
        typer.echo(f"  row {head.row_id}, written {head.at.isoformat()}", err=True)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(audit_app, name="audit")
