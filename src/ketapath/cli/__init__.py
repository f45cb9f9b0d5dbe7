"""The `ketapath` command line.

Each area of the product registers its commands from its own module, so that the command
line stays a thin edge over the services and the domain:

- ``screening``: screen
- ``orders``: protocols, plan
- ``knowledge``: knowledge (check, references, findings, conditions, diagnosis, adverse-effects)
- ``demo``: demo
- ``pk``: simulate, compare-protocols, target, pk-models
- ``instruments``: score
- ``opioids``: opioids, opioid-taper
- ``admin``: serve, db, users
- ``audit``: audit verify, audit head
- ``library``: the clinic's drug library (show, history, export, check, load)
- ``sessions``: the infusion day (worklist, show, replay)
- ``diary``: the patient diary (remind: e-mail today's reminders; cron-able)
- ``fhir``: a patient's record as a FHIR Bundle (export), a Bundle as a record (import)
- ``research``: the de-identified research export (export)
- ``exposure``: stored exposure summaries (refresh: bring every one up to date)
- ``registry``: the registry (synth: a synthetic registry for benchmarks; refresh)
- ``outcomes``: after the infusion (show: a course's outcome, follow-up and repeat decision;
  follow-ups: the clinic's due and overdue)

A command imports only what it needs: the modules named here import typer and light things
at module level, and each command imports the domain, the PK engine, the database or the
web server inside its body (``tests/unit/test_cli_startup.py`` keeps it so). A new area is
its module in the import and in the loop below. Errors, bounds and strict JSON:
``ketapath.cli.output``.
"""

from __future__ import annotations

import typer

from ketapath.cli import (
    admin,
    audit,
    demo,
    diary,
    exposure,
    fhir,
    instruments,
    knowledge,
    ledger,
    library,
    opioids,
    orders,
    outcomes,
    pk,
    registry,
    research,
    screening,
    sessions,
)
from ketapath.cli.output import CommandGroup

app = typer.Typer(
    name="ketapath",
    help="Ketamine infusion programme: screening, limit-checked orders, pharmacokinetics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=CommandGroup,
)

for _module in (
    screening,
    orders,
    demo,
    knowledge,
    pk,
    instruments,
    opioids,
    library,
    admin,
    sessions,
    ledger,
    audit,
    diary,
    fhir,
    research,
    exposure,
    registry,
    outcomes,
):
    _module.register(app)


def main() -> None:
    """Entry point of the `ketapath` console script."""
    app()
