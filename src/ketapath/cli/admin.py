"""Commands of the admin area (registered by `ketapath.cli`): serve, db, users.

The database, the password hashing and the web server are imported inside each command:
the other commands must not pay for them (the command line must start fast).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ketapath.cli.output import EXIT_INVALID, fail
from ketapath.services.permissions import ROLES, SYSTEM

if TYPE_CHECKING:
    from ketapath.config import Settings
    from ketapath.store.db import Database

db_app = typer.Typer(help="The database: migrations, backup, restore.", no_args_is_help=True)
users_app = typer.Typer(help="User accounts and roles.", no_args_is_help=True)


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def _settings() -> Settings:
    from ketapath.config import get_settings

    get_settings.cache_clear()
    return get_settings()


def _database() -> Database:
    from ketapath.store.db import Database

    return Database(_settings().database_url)


@contextmanager
def database_errors() -> Iterator[None]:
    """A database URL that is not one, a database that cannot be reached or a migration
    that does not exist: one line naming it (exit 2 for the URL or revision, 1 otherwise)."""
    from alembic.util.exc import CommandError
    from sqlalchemy.exc import ArgumentError, SQLAlchemyError

    try:
        yield
    except ArgumentError as error:
        fail(f"KETAPATH_DATABASE_URL is not a database URL ({error})", code=EXIT_INVALID)
    except CommandError as error:
        fail(f"migration: {error}", code=EXIT_INVALID)
    except SQLAlchemyError as error:
        reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        fail(f"cannot use the database ({reason}); check KETAPATH_DATABASE_URL", code=1)


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
) -> None:
    """Create or update the schema (Alembic migrations)."""
    from ketapath.store import migrate
    from ketapath.store.db import make_engine

    with database_errors():
        engine = make_engine(_settings().database_url)
        try:
            before = migrate.current_revision(engine)
            migrate.upgrade(engine, revision)
            after = migrate.current_revision(engine)
        finally:
            engine.dispose()
    typer.echo(f"database {engine.url.render_as_string()}: {before or 'empty'} -> {after}")


@db_app.command("current")
def db_current() -> None:
    """Show the schema revision of the database and the newest one this version knows."""
    from ketapath.store import migrate
    from ketapath.store.db import make_engine

    with database_errors():
        engine = make_engine(_settings().database_url)
        try:
            typer.echo(f"current: {migrate.current_revision(engine) or 'empty'}")
            typer.echo(f"newest:  {migrate.head_revision()}")
        finally:
            engine.dispose()


@db_app.command("backup")
def db_backup(
    file: Annotated[Path, typer.Argument(help="Where to write the backup.")],
    overwrite: Annotated[bool, typer.Option(help="Replace FILE if it exists.")] = False,
) -> None:
    """Copy the whole database to FILE (safe while the server runs)."""
    from ketapath.store import backup as backups

    if not file.parent.is_dir():
        fail(f"the folder {file.parent} does not exist", field="file")
    if file.is_dir():
        fail(f"{file} is a folder; give a file name", field="file")
    try:
        with database_errors():
            backups.backup(_settings().database_url, file, overwrite=overwrite)
    except backups.BackupError as error:
        raise _fail(str(error)) from error
    typer.echo(f"backup written to {file}")


@db_app.command("restore")
def db_restore(
    file: Annotated[Path, typer.Argument(help="A backup made by `ketapath db backup`.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Replace the database with the backup in FILE. Stop the server first."""
    from ketapath.store import backup as backups

    url = _settings().database_url
    if not yes:
        typer.confirm(f"Replace everything in {url} with {file}?", abort=True)
    try:
        with database_errors():
            backups.restore(url, file)
    except backups.BackupError as error:
        raise _fail(str(error)) from error
    typer.echo(f"restored {file}; run `ketapath db upgrade` if it is from an older version")


def _read_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def users_add(
    username: Annotated[str, typer.Argument(help="Sign-in name (lower case).")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")],
    full_name: Annotated[str, typer.Option(help="Name shown in records.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create a user account."""
    from ketapath.services import auth
    from ketapath.services.errors import ServiceError

    password = _read_password(password_stdin)
    try:
        with database_errors():
            view = auth.add_user(_database(), SYSTEM, username, role, password, full_name=full_name)
    except ServiceError as error:
        raise _fail(error.message) from error
    typer.echo(f"user {view.username} ({view.role}) created")


@users_app.command("list")
def users_list() -> None:
    """List user accounts."""
    from ketapath.services import auth

    with database_errors():
        users = auth.list_users(_database(), SYSTEM)
    for user in users:
        flags = [] if user.active else ["disabled"]
        if user.locked_until is not None:
            flags.append(f"locked until {user.locked_until:%Y-%m-%d %H:%M} UTC")
        extra = f"  ({', '.join(flags)})" if flags else ""
        typer.echo(f"{user.username:<24} {user.role:<11} {user.full_name}{extra}")


@users_app.command("unlock")
def users_unlock(username: str) -> None:
    """Lift a lock-out after failed sign-ins."""
    from ketapath.services import auth
    from ketapath.services.errors import ServiceError

    try:
        with database_errors():
            auth.unlock_user(_database(), SYSTEM, username)
    except ServiceError as error:
        raise _fail(error.message) from error
    typer.echo(f"user {username} unlocked")


@users_app.command("password")
def users_password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin")] = False,
) -> None:
    """Set a new password (signs the user out everywhere)."""
    from ketapath.services import auth
    from ketapath.services.errors import ServiceError

    try:
        with database_errors():
            auth.set_password(_database(), SYSTEM, username, _read_password(password_stdin))
    except ServiceError as error:
        raise _fail(error.message) from error
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def users_disable(username: str) -> None:
    """Disable an account (it keeps its history; its sessions end)."""
    from ketapath.services import auth
    from ketapath.services.errors import ServiceError

    try:
        with database_errors():
            auth.set_active(_database(), SYSTEM, username, False)
    except ServiceError as error:
        raise _fail(error.message) from error
    typer.echo(f"user {username} disabled")


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    demo: Annotated[
        bool,
        typer.Option(help="Start on a fresh demo database with demo users and patients."),
    ] = False,
) -> None:
    """Run the web application and the REST API (uvicorn)."""
    import uvicorn

    from ketapath.api.app import create_app
    from ketapath.services.demo import seed_demo
    from ketapath.store import migrate
    from ketapath.store.db import Database, make_engine

    settings = _settings()
    if not demo and "KETAPATH_SECRET_KEY" not in os.environ:
        typer.echo(
            "warning: KETAPATH_SECRET_KEY is not set; a random key is used, so every restart "
            "signs everybody out",
            err=True,
        )
    if demo:
        folder = Path(tempfile.mkdtemp(prefix="ketapath-demo-"))
        settings = settings.model_copy(
            update={"database_url": f"sqlite:///{folder / 'demo.sqlite3'}"}
        )
    with database_errors():
        engine = make_engine(settings.database_url)
        migrate.upgrade(engine)
        engine.dispose()
        database = Database(settings.database_url)
        demo_users = seed_demo(database) if demo else []
    if demo:
        typer.echo(f"Demo database: {database.url}  (demo data only, never real patients)")
        typer.echo("Demo users (user name / password):")
        for user in demo_users:
            typer.echo(f"  {user.username:<11} {user.password}")
    from ketapath.knowledge.base import KnowledgeError

    try:
        app = create_app(settings, database=database, settle_heap=True)
    except KnowledgeError as error:
        fail(str(error), code=EXIT_INVALID, field="KETAPATH_VITAL_THRESHOLDS_FILE")
    typer.echo(f"ketapath on http://{host}:{port}/  (API docs: /api/v1/docs)")
    uvicorn.run(app, host=host, port=port)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
    app.command("serve")(serve)
    app.add_typer(db_app, name="db")
    app.add_typer(users_app, name="users")
