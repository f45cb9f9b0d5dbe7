"""The `ketapath` command line.

Each area of the product registers its commands from its own module, so that the command
line stays a thin edge over the services and the domain:

- ``clinical``: screen, protocols, plan, demo, knowledge
- ``pk``: simulate, compare-protocols
- ``instruments``: score
- ``opioids``: opioids, opioid-taper
- ``admin``: serve, db, users
- ``library``: the clinic's drug library (show, history, export, check, load)
"""

from __future__ import annotations

import typer

from ketapath.cli import admin, clinical, instruments, library, opioids, pk

app = typer.Typer(
    name="ketapath",
    help="Ketamine infusion programme: screening, limit-checked orders, pharmacokinetics.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

for _module in (clinical, pk, instruments, opioids, library, admin):
    _module.register(app)


def main() -> None:
    """Entry point of the `ketapath` console script."""
    app()
