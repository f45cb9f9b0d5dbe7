"""Commands of the controlled-drug ledger (registered by `ketapath.cli`): ledger verify, and
ledger report (the regulators' reports).

`ledger verify` only reads the database (``KETAPATH_DATABASE_URL``) and writes nothing, like
`audit verify`: it is the operator's check on the server. Imports of the database layer happen
inside the commands so that the command line starts fast.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ketapath.cli.audit import EXIT_BROKEN, EXIT_INTACT, _database_call

ledger_app = typer.Typer(
    help="The controlled-drug ledger: check its hash chain, print the regulators' reports.",
    no_args_is_help=True,
)


@ledger_app.command("verify")
def verify_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Walk the ledger's hash chain and name the first line that does not hold.

    Exit 0: intact.
    Exit 1: broken (the report names the line and what is wrong).
    Exit 2: the database could not be read.
    """
    from ketapath.services import ledger_chain
    from ketapath.services.ledger import verify_view

    report = _database_call(ledger_chain.verify)
    view = verify_view(report)
    if as_json:
        typer.echo(json.dumps(view.model_dump(mode="json"), indent=2))
    elif view.intact:
        where = (
            f"last line {view.head_seq}, hash {view.head_hash}"
            if view.head_seq is not None
            else "the ledger is empty"
        )
        typer.echo(f"ledger chain intact: {view.lines_checked} lines checked ({where})")
    else:
        typer.echo(
            f"ledger chain BROKEN at line {view.broken_seq}: {view.problem}\n"
            f"  {view.message}\n"
            f"  {view.lines_checked} lines before it are intact."
        )
    raise typer.Exit(EXIT_INTACT if view.intact else EXIT_BROKEN)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(ledger_app, name="ledger")
