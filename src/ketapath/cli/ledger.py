"""Commands of the controlled-drug ledger (registered by `ketapath.cli`): ledger verify, and
ledger report (the regulators' reports).

`ledger verify` only reads the database (``KETAPATH_DATABASE_URL``) and writes nothing, like
`audit verify`: it is the operator's check on the server. `ledger report` writes one of the
three reports (the US inventory, the US dispensing records, a UK register page) to a file as
CSV, PDF or JSON, for a pharmacist or physician named with ``--user`` (or ``KETAPATH_USER``):
the audit log records who read it. Imports of the database layer happen inside the commands
so that the command line starts fast.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ketapath.cli.audit import EXIT_BROKEN, EXIT_INTACT, _database_call
from ketapath.cli.output import EXIT_INVALID, fail
from ketapath.cli.sessions import USER_ENV, _acting, _database

REPORTS = ("us-inventory", "us-records", "uk-register")
FORMATS = ("csv", "pdf", "json")

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


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text!r} is not a date (YYYY-MM-DD)", field=option)


def _call(call: Any) -> Any:
    """A service call on the clinic's database, its refusals as one line."""
    from ketapath.services.errors import ServiceError

    try:
        return call()
    except typer.Exit:
        raise
    except ServiceError as error:
        options = {"from": "--from", "to": "--to", "on": "--on", "product_id": "--product"}
        option = options.get(error.field or "", "")
        message = error.message
        if option and message.startswith(f"{error.field}:"):
            message = option + message[len(error.field or "") :]
        fail(message, code=EXIT_INVALID, field=option)
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot read the ledger from the database ({type(error).__name__}); run "
            "`ketapath db upgrade` first",
            code=1,
            kind="database",
        )


@ledger_app.command("report")
def report_command(
    kind: Annotated[str, typer.Argument(help="us-inventory, us-records or uk-register.")],
    out: Annotated[Path, typer.Option("--out", help="The file to write.")],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="csv, pdf or json (default: from the --out suffix)."),
    ] = None,
    on: Annotated[
        str | None, typer.Option("--on", help="us-inventory: the clinic date (default today).")
    ] = None,
    time_of_day: Annotated[
        str, typer.Option("--time", help="us-inventory: opening or close of business.")
    ] = "close",
    date_from: Annotated[
        str | None, typer.Option("--from", help="us-records: the first clinic date.")
    ] = None,
    date_to: Annotated[
        str | None, typer.Option("--to", help="us-records: the last clinic date (included).")
    ] = None,
    product: Annotated[
        int | None,
        typer.Option("--product", min=1, max=2**31 - 1, help="uk-register: the product's id."),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help=f"Acting pharmacist or physician (or {USER_ENV}).")
    ] = None,
) -> None:
    """Write a regulator's report of the controlled-drug ledger to a file.

    us-inventory: the DEA inventory (21 CFR 1304.11) at the opening or close of a clinic date.
    us-records: the DEA dispensing records (21 CFR 1304.22(c)) of --from to --to.
    uk-register: a UK controlled drugs register page (MDR 2001 reg. 19-20) for --product.
    """
    if kind not in REPORTS:
        fail(f"report: {kind!r} is not one of {', '.join(REPORTS)}", field="report")
    chosen = fmt or out.suffix.lstrip(".").lower()
    if chosen not in FORMATS:
        fail(f"--format: give csv, pdf or json (not {chosen!r})", field="--format")
    if time_of_day not in ("opening", "close"):
        fail(f"--time: 'opening' or 'close' (not {time_of_day!r})", field="--time")
    if not out.parent.is_dir():
        fail(f"--out: there is no folder {str(out.parent)!r}", field="--out")
    from ketapath.reports.ledger import render
    from ketapath.services import ledger_reports
    from ketapath.services.clock import clinic_clock

    db = _database()
    actor = _call(lambda: _acting(db, user, False))
    clock = clinic_clock()
    if kind == "us-inventory":
        day = _day(on, "--on") or clock.today()
        when: Literal["opening", "close"] = "opening" if time_of_day == "opening" else "close"
        report = _call(lambda: ledger_reports.us_inventory(db, actor, day, when, clock=clock))
    elif kind == "us-records":
        first, last = _day(date_from, "--from"), _day(date_to, "--to")
        if first is None or last is None:
            fail("--from and --to: us-records covers a range of clinic dates", field="--from")
        report = _call(lambda: ledger_reports.us_records(db, actor, first, last, clock=clock))
    else:
        if product is None:
            fail("--product: uk-register is one product's page; give its id", field="--product")
        report = _call(lambda: ledger_reports.uk_register(db, actor, product, clock=clock))
    data = render(report, chosen)
    try:
        out.write_bytes(data)
    except OSError as error:
        fail(f"--out: cannot write {str(out)!r} ({error.strerror})", code=1, field="--out")
    typer.echo(f"{kind} ({chosen}, {len(data)} bytes) written to {out}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.add_typer(ledger_app, name="ledger")
