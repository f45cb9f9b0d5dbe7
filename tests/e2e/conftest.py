"""Browser tests: Debian's Chromium driven by Playwright against the app on a free local port.

The app runs in a thread (uvicorn) on a fresh, migrated SQLite file with one user per role
(user name = role, password ``E2E_PASSWORD``) and the web tests' three patients. Chromium is
the system one (``/usr/bin/chromium``, installed by ``.ci/run``); Playwright never downloads
a browser.
When Chromium or Playwright is missing the tests are skipped with the reason, unless ``CI``
or ``KETAPATH_REQUIRE_BROWSER`` is set, which makes them fail instead.

Screenshots of each scenario go to ``test-artifacts/e2e/`` (git-ignored).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from tests.unit.web_app import PATIENTS

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, patients
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store import migrate
from ketapath.store.db import Database, make_engine

CHROMIUM = os.environ.get("KETAPATH_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E_PASSWORD = "browser test password"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
LAPTOP = {"width": 1366, "height": 850}
TABLET = {"width": 820, "height": 1180}


def _browser_required() -> bool:
    return bool(os.environ.get("KETAPATH_REQUIRE_BROWSER")) or os.environ.get("CI", "").lower() in (
        "1",
        "true",
        "yes",
    )


def _missing_browser() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package 'playwright' is not installed (make installs it with .[dev])"
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        return f"Chromium not found at {CHROMIUM} (install: apt-get install -y chromium)"
    return ""


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    why = _missing_browser()
    if why:
        if _browser_required():
            pytest.fail(f"{why}; CI/KETAPATH_REQUIRE_BROWSER is set", pytrace=False)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[str]:
    """The application on http://127.0.0.1:<free port>, with users and demo patients."""
    monkeypatch = pytest.MonkeyPatch()
    # argon2 at its cheapest: creating and signing in users should not dominate the suite.
    monkeypatch.setattr(
        auth, "password_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    )
    url = f"sqlite:///{tmp_path_factory.mktemp('e2e') / 'ketapath.sqlite3'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    database = Database(url)
    actors: dict[str, Actor] = {}
    for role in ROLES:
        view = auth.add_user(database, SYSTEM, role, role, E2E_PASSWORD, full_name=role.title())
        actors[role] = Actor(view.id, view.username, view.role)
    for document in PATIENTS:
        patients.create_patient(database, actors["nurse"], document)

    settings = Settings(database_url=url, secret_key="browser-test-secret-key")
    try:
        with serving(create_app(settings, database=database)) as base_url:
            yield base_url
    finally:
        database.dispose()
        monkeypatch.undo()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Serve ``app`` (uvicorn, in a thread) on a free local port while the block runs."""
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start within 15 s", pytrace=False)
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


class Screens:
    """Saves numbered screenshots of one test under test-artifacts/e2e/."""

    def __init__(self, test_name: str) -> None:
        self.prefix = test_name.removeprefix("test_")
        self.count = 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(self, page: Any, name: str) -> Path:
        self.count += 1
        path = ARTIFACTS / f"{self.prefix}-{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def screens(request: pytest.FixtureRequest) -> Screens:
    return Screens(request.node.name)


@pytest.fixture
def new_page(browser: Any, live_server: str) -> Iterator[Any]:
    """Open a fresh browser context (no cookies) at a viewport size: new_page(LAPTOP)."""
    contexts = []

    def _open(viewport: dict[str, int] | None = None) -> Any:
        context = browser.new_context(viewport=viewport or LAPTOP, base_url=live_server)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield _open
    for context in contexts:
        context.close()


def sign_in(page: Any, username: str, password: str = E2E_PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def htmx_settled(page: Any) -> None:
    """Wait until no htmx request is in flight. Each choice in the protocol chooser sends one,
    and its answer replaces the course panel (and what was typed into it meanwhile): a test
    that types into the panel must wait for the last answer, as a person waits to see it."""
    page.wait_for_function("() => !document.querySelector('.htmx-request')")


UNLABELLED_CONTROLS = """() => Array.from(
        document.querySelectorAll('input, select, textarea, button'))
    .filter(el => el.type !== 'hidden')
    .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                  && !(el.tagName === 'BUTTON' && el.textContent.trim()))
    .map(el => el.outerHTML.slice(0, 120))"""


def assert_accessible_basics(page: Any) -> None:
    """Every visible control has a label, the page has one h1 and a language."""
    assert page.evaluate(UNLABELLED_CONTROLS) == [], f"unlabelled controls on {page.url}"
    assert page.locator("h1").count() == 1, f"not exactly one h1 on {page.url}"
    assert page.evaluate("document.documentElement.lang") == "en"
