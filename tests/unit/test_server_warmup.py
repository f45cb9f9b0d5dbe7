"""A fresh server prepares the first requests while it starts, not while a clinician waits."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.store import migrate
from ketapath.store.db import make_engine
from ketapath.web.pages import templates


def _app(tmp_path: Path, *, migrated: bool) -> TestClient:
    url = f"sqlite:///{tmp_path / 'ketapath.sqlite3'}"
    if migrated:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    return TestClient(create_app(Settings(database_url=url, secret_key="warm-up-test-secret")))


def test_the_server_compiles_the_first_statements_and_templates_at_start(tmp_path: Path) -> None:
    templates.env.cache.clear()
    client = _app(tmp_path, migrated=True)
    engine = client.app.state.db.engine
    assert len(engine._compiled_cache) == 0
    with client:  # the lifespan start-up runs here
        assert len(engine._compiled_cache) >= 3  # token, patient, latest version, screen
        assert engine.pool.checkedin() >= 1  # a connection is open and ready
        cached = {key[1] for key in templates.env.cache}
        assert {"plan.html", "_course.html", "patient.html", "base.html"} <= cached


def test_a_server_on_a_database_without_its_schema_still_starts(tmp_path: Path) -> None:
    with _app(tmp_path, migrated=False) as client:
        assert client.get("/api/v1/docs").status_code == 200


def test_the_server_loads_the_pk_models_at_start(tmp_path: Path) -> None:
    from ketapath.pk.models import _ke0_for_time_to_peak

    _ke0_for_time_to_peak.cache_clear()
    with _app(tmp_path, migrated=True):
        # kamp, otto-fanta and perez-ruixo compute their effect-site constant once
        assert _ke0_for_time_to_peak.cache_info().currsize == 3


def test_ketapath_serve_exempts_what_start_up_leaves_from_later_collections(
    tmp_path: Path,
) -> None:
    import gc

    url = f"sqlite:///{tmp_path / 'ketapath.sqlite3'}"
    settings = Settings(database_url=url, secret_key="warm-up-test-secret")
    app = create_app(settings, settle_heap=True)
    assert gc.get_freeze_count() == 0
    with TestClient(app):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
