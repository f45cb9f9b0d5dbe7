"""The drug library on the command line: show, export, check and load a library.

- ``library show [--default] [--version N] [--json] [--outcomes [--markdown]]``: the
  clinic's active library (from the database), a stored version, or the packaged default.
- ``library history``: every version, who approved it, when and why.
- ``library export [--default] [--version N]``: the library as a YAML file to edit.
- ``library check FILE [--json] [--markdown]``: validate a library file (schema, citations,
  a pump for every protocol's route) and show what it does to every protocol; nothing is
  stored and no database is needed.
- ``library load FILE --approved-by USER --reason TEXT``: approve and load a new version on
  the clinic's database; USER must be an active pharmacist or administrator.

Exit codes: 0 done; 2 invalid input (the message names the field: a file that fails its
checks, a version not above the stored ones, an approver without the role).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from ketapath.cli.output import EXIT_INVALID, emit_json, fail

if TYPE_CHECKING:
    from ketapath.knowledge.library import DrugLibrary
    from ketapath.services.library import LibraryView

library_app = typer.Typer(
    help="The clinic's drug library: pumps, stocked strengths, dose limits.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(library_app, name="library")


def _database() -> Any:
    from ketapath.config import get_settings
    from ketapath.store.db import Database

    get_settings.cache_clear()
    return Database(get_settings().database_url)


def _stored(version: int | None, as_json: bool) -> LibraryView:
    """The active library, or a version, from the clinic's database."""
    from ketapath.services import library
    from ketapath.services.errors import ServiceError
    from ketapath.services.permissions import SYSTEM

    try:
        db = _database()
        if version is None:
            return library.get_active(db, SYSTEM)
        return library.get_version(db, SYSTEM, version)
    except ServiceError as error:
        fail(error.message, code=EXIT_INVALID, as_json=as_json, field=error.field or "")
    except Exception as error:  # no database, or no schema: say so in one line
        fail(
            f"cannot read the drug library from the database ({type(error).__name__}); run "
            "`ketapath db upgrade`, or use --default for the packaged library",
            code=1,
            as_json=as_json,
            kind="database",
        )


def _chosen(default: bool, version: int | None, as_json: bool) -> tuple[DrugLibrary, str]:
    from ketapath.knowledge.library import default_library

    if default:
        return default_library(), "packaged with ketapath"
    view = _stored(version, as_json)
    where = "packaged with ketapath" if view.packaged else f"approved by {view.approved_by}"
    return view.document, ("active; " if view.active else "") + where


@library_app.command("show")
def show(
    default: bool = typer.Option(False, "--default", help="The library packaged with ketapath."),
    version: int | None = typer.Option(None, "--version", min=0, help="A stored version."),
    outcomes: bool = typer.Option(
        False, "--outcomes", help="Also every protocol's outcome at light and heavy weights."
    ),
    markdown: bool = typer.Option(False, "--markdown", help="The outcomes as a Markdown table."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Show the drug library: pumps and strengths, limits per care setting, adjunct limits."""
    from ketapath.knowledge.clinical import knowledge

    lib, where = _chosen(default, version, as_json)
    if markdown:
        _print_outcomes(lib, markdown=True)
        return
    if as_json:
        data = knowledge().bibliography.public(lib.document())
        data["digest"] = lib.digest()
        emit_json(data)
        return
    typer.echo(format_library(lib, where))
    if outcomes:
        _print_outcomes(lib, markdown=False)


@library_app.command("history")
def history(as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Every version of the clinic's drug library: who approved it, when, and why."""
    from ketapath.services import library
    from ketapath.services.permissions import SYSTEM

    versions = library.list_versions(_database(), SYSTEM)
    if as_json:
        emit_json([v.model_dump(mode="json") for v in versions])
        return
    for v in versions:
        who = (
            "packaged with ketapath"
            if v.packaged
            else f"{v.approved_by}, {v.approved_at:%Y-%m-%d %H:%M} UTC"
        )
        mark = "  (active)" if v.active else ""
        typer.echo(f"version {v.version}: {v.name}{mark}\n  {who}; digest {v.digest[:12]}")
        if v.reason:
            typer.echo(f"  why: {v.reason}")


@library_app.command("export")
def export(
    default: bool = typer.Option(False, "--default", help="The library packaged with ketapath."),
    version: int | None = typer.Option(None, "--version", min=0, help="A stored version."),
) -> None:
    """Print the library as a YAML file to edit (raise its version) and load."""
    from ketapath.knowledge.library import library_yaml

    lib, _ = _chosen(default, version, False)
    typer.echo(library_yaml(lib), nl=False)


def _read(path: Path, as_json: bool) -> DrugLibrary:
    from ketapath.knowledge.base import KnowledgeError
    from ketapath.knowledge.library import read_library

    try:
        return read_library(path)
    except KnowledgeError as error:
        fail(str(error), code=EXIT_INVALID, as_json=as_json, field="file")


@library_app.command("check")
def check(
    file: Path = typer.Argument(..., help="A drug library file (.yaml or .json)."),
    markdown: bool = typer.Option(False, "--markdown", help="The outcomes as a Markdown table."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Validate a library file and show what it does to every protocol (nothing is stored)."""
    from ketapath.services.library import outcomes_of

    lib = _read(file, as_json)
    if as_json:
        emit_json(
            {
                "version": lib.version,
                "name": lib.name,
                "digest": lib.digest(),
                "outcomes": [o.__dict__ for o in outcomes_of(lib)],
            }
        )
        return
    if markdown:
        _print_outcomes(lib, markdown=True)
        return
    typer.echo(
        f"{file}: valid drug library {lib.name!r}, version {lib.version} "
        f"(digest {lib.digest()[:12]})"
    )
    _print_outcomes(lib, markdown=False)


@library_app.command("load")
def load(
    file: Path = typer.Argument(..., help="A drug library file (.yaml or .json)."),
    approved_by: str = typer.Option(
        ..., "--approved-by", help="User name of the approving pharmacist or administrator."
    ),
    reason: str = typer.Option(..., "--reason", help="What changed, and why."),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Approve and load a new version of the clinic's drug library (audited, append-only)."""
    from ketapath.services import library
    from ketapath.services.errors import ServiceError

    lib = _read(file, as_json)
    db = _database()
    try:
        actor = library.approver(db, approved_by)
        view = library.load_library(db, actor, lib, reason=reason)
    except ServiceError as error:
        fail(error.message, code=EXIT_INVALID, as_json=as_json, field=error.field or "")
    if as_json:
        emit_json(view.model_dump(mode="json", exclude={"document"}))
        return
    typer.echo(
        f"drug library {view.name!r} version {view.version} approved by {view.approved_by} "
        f"and loaded (digest {view.digest[:12]}); new orders are checked against it"
    )


def _print_outcomes(lib: DrugLibrary, *, markdown: bool) -> None:
    from ketapath.domain.library_check import outcomes_markdown
    from ketapath.services.library import outcomes_of

    results = outcomes_of(lib)
    if markdown:
        typer.echo(outcomes_markdown(results), nl=False)
        return
    typer.echo("Protocols in their own settings (outcome at each dosing weight):")
    for o in results:
        typer.echo(f"  {o.protocol_id:<28} {o.setting:<7} {o.weight_kg:>5g} kg  {o.outcome}")
        for code, words in zip(o.codes, o.messages, strict=False):
            typer.echo(f"      {words}  (code {code})")


LIMIT_ROWS = (
    ("bolus_mg_per_kg", "bolus", "mg/kg"),
    ("rate_mg_per_kg_per_h", "rate", "mg/kg/h"),
    ("rate_mg_per_h", "rate", "mg/h"),
    ("session_total_mg_per_kg", "session total", "mg/kg"),
    ("course_total_mg_per_kg", "course total", "mg/kg"),
)


def format_library(lib: DrugLibrary, where: str) -> str:
    """The library as text: pumps, then each setting's limits with their sources."""
    from ketapath.domain.findings import citation_text

    lines = [
        f"Drug library {lib.name!r}, version {lib.version} ({where}); digest {lib.digest()[:12]}",
        "Pumps:",
    ]
    for p in lib.pumps:
        strengths = ", ".join(
            f"{c:g}" + (" (default)" if c == p.default_concentration_mg_per_ml else "")
            for c in p.concentrations_mg_per_ml
        )
        lines.append(
            f"  {p.name}: {'/'.join(r.upper() for r in p.routes)} in {', '.join(p.settings)}; "
            f"{p.min_rate_ml_per_h:g}-{p.max_rate_ml_per_h:g} mL/h by "
            f"{p.rate_resolution_ml_per_h:g}; stocked {strengths} mg/mL  "
            f"[{citation_text(p.source)}]"
        )
    for s in lib.settings:
        lines.append(f"Limits, {s.id} (soft / hard):")
        for name, label, unit in LIMIT_ROWS:
            limit = getattr(s, name)
            soft = f"{limit.soft:g}" if limit.soft is not None else "-"
            lines.append(
                f"  {label} {soft} / {limit.hard:g} {unit}  [{citation_text(limit.source)}]"
            )
            for r in limit.published:
                lines.append(
                    f"    published: {r.text} for {r.applies_to} [{citation_text(r.source)}]"
                )
            if limit.follows:
                lines.append(f"    follows: {limit.follows}")
        for a in s.adjuncts:
            dose_soft = f"{a.dose.soft:g}" if a.dose.soft is not None else "-"
            sess_soft = f"{a.session.soft:g}" if a.session.soft is not None else "-"
            lines.append(
                f"  {a.drug} ({a.route}): dose {dose_soft} / {a.dose.hard:g} {a.dose_unit}; "
                f"session {sess_soft} / {a.session.hard:g} mg  "
                f"[{citation_text(a.dose.source)}]"
            )
    return "\n".join(lines)
