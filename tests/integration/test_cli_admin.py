"""`ketapath db ...` and `ketapath users ...` on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from ketapath.cli import admin
from ketapath.services import patients
from ketapath.services.permissions import Actor
from ketapath.store import backup, migrate
from ketapath.store.db import Database, make_engine

DOCUMENT = {"name": "Kim Backup", "sex": "female", "weight_kg": 64.0, "age_years": 51}


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    admin.register(app)
    return app


def run(cli: typer.Typer, url: str, *args: str, stdin: str | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin, env={"KETAPATH_DATABASE_URL": url})
    return result.exit_code, result.output


def test_db_upgrade_creates_the_schema_of_a_new_sqlite_file(
    cli: typer.Typer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'new.sqlite3'}"
    code, output = run(cli, url, "db", "upgrade")
    assert code == 0, output
    assert f"empty -> {migrate.head_revision()}" in output
    engine = make_engine(url)
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def test_users_add_reads_the_password_from_stdin_and_users_list_shows_the_user(
    cli: typer.Typer, database: Database
) -> None:
    code, output = run(
        cli,
        database.url,
        "users",
        "add",
        "dr.okafor",
        "--role",
        "physician",
        "--password-stdin",
        stdin="a long enough password\n",
    )
    assert code == 0, output
    code, output = run(cli, database.url, "users", "list")
    assert code == 0
    assert "dr.okafor" in output
    assert "physician" in output


def test_users_add_refuses_a_short_password_and_says_why(
    cli: typer.Typer, database: Database
) -> None:
    code, output = run(
        cli, database.url, "users", "add", "n1", "--role", "nurse", "--password-stdin", stdin="x\n"
    )
    assert code == 1
    assert "password" in output


def test_a_backup_restores_the_database_as_it_was(
    cli: typer.Typer, database: Database, users: dict[str, Actor], tmp_path: Path
) -> None:
    kept = patients.create_patient(database, users["nurse"], DOCUMENT)
    file = tmp_path / "clinic.backup"
    code, output = run(cli, database.url, "db", "backup", str(file))
    assert code == 0, output
    patients.create_patient(database, users["nurse"], {**DOCUMENT, "name": "After Backup"})
    database.dispose()

    code, output = run(cli, database.url, "db", "restore", str(file), "--yes")
    assert code == 0, output
    found = patients.search_patients(database, users["nurse"])
    assert [p.id for p in found] == [kept.id]


def test_a_backup_does_not_overwrite_an_existing_file(database: Database, tmp_path: Path) -> None:
    file = tmp_path / "exists"
    file.write_text("keep me")
    with pytest.raises(backup.BackupError, match="already exists"):
        backup.backup(database.url, file)
    assert file.read_text() == "keep me"


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_restore_refuses_a_file_that_is_not_a_ketapath_database(
    cli: typer.Typer, database: Database, tmp_path: Path
) -> None:
    file = tmp_path / "junk.sqlite3"
    file.write_bytes(b"this is not a database" * 100)
    code, output = run(cli, database.url, "db", "restore", str(file), "--yes")
    assert code == 1
    assert "not a SQLite database" in output


def test_serve_demo_migrates_seeds_and_prints_a_password_for_each_role(
    cli: typer.Typer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    served = {}

    def fake_run(app: object, host: str, port: int) -> None:
        served.update(app=app, host=host, port=port)

    import uvicorn

    monkeypatch.setattr(uvicorn, "run", fake_run)
    monkeypatch.setattr("tempfile.mkdtemp", lambda prefix: str(tmp_path))
    code, output = run(cli, "sqlite:///unused.sqlite3", "serve", "--demo", "--port", "8123")
    assert code == 0, output
    assert served["port"] == 8123
    for role in ("physician", "nurse", "pharmacist", "researcher", "admin"):
        assert f"  {role} " in output
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.sqlite3'}")
    assert migrate.current_revision(engine) == migrate.head_revision()
    engine.dispose()


def _full_cli() -> typer.Typer:
    from ketapath.cli import app

    return app


@pytest.mark.parametrize(
    ("url", "args", "code", "says"),
    [
        ("sqlite:///{tmp}/k.sqlite3", ["db", "backup", "{tmp}/no/such/folder/b.db"], 2, "folder"),
        ("sqlite:///{tmp}/k.sqlite3", ["db", "backup", "{tmp}"], 2, "is a folder"),
        ("sqlite:///{tmp}/k.sqlite3", ["db", "upgrade", "--revision", "nope"], 2, "nope"),
        ("nonsense", ["db", "current"], 2, "not a database URL"),
        ("nonsense", ["users", "list"], 2, "not a database URL"),
        ("postgresql+psycopg://nobody@127.0.0.1:1/x", ["db", "current"], 1, "cannot use"),
        ("sqlite:///{tmp}/k.sqlite3", ["serve", "--port", "99999"], 2, "--port"),
    ],
)
def test_an_admin_command_on_bad_input_or_an_unreachable_database_says_why_in_one_line(
    tmp_path: Path, url: str, args: list[str], code: int, says: str
) -> None:
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = CliRunner().invoke(
        _full_cli(), args, env={"KETAPATH_DATABASE_URL": url.replace("{tmp}", str(tmp_path))}
    )
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0], result.stderr
