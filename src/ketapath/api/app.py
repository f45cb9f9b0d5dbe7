"""The web application: the REST API under /api/v1 (OpenAPI at /api/v1/openapi.json) and,
mounted beside it, the server-rendered pages of ``ketapath.web``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, FastAPI

import ketapath
from ketapath.api import errors
from ketapath.api.deps import StrictTransportSecurity
from ketapath.api.docs import docs_router
from ketapath.api.routers import (
    admin,
    assessments,
    auth,
    diary,
    evidence,
    exposure,
    fhir,
    indicators,
    knowledge,
    ledger,
    ledger_reports,
    letters,
    library,
    opioids,
    orders,
    outcomes,
    patients,
    registry,
    research,
    safety,
    screening,
    sessions,
)
from ketapath.api.storable import StorableText
from ketapath.config import Settings, get_settings
from ketapath.knowledge.clinical import knowledge as load_knowledge
from ketapath.knowledge.evidence import evidence as load_evidence
from ketapath.knowledge.instruments import load_instruments
from ketapath.services.exposure_summary import configure_thresholds
from ketapath.services.sessions import configure_rules as configure_session_rules
from ketapath.services.warmup import settle, unsettle, warm_up, warm_up_analytics
from ketapath.store.db import Database

API_PREFIX = "/api/v1"


def api_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX)
    # Sign-in answers 400 (a form that cannot be read), 401 (wrong password, no token), 403
    # (CSRF), 422 (a field missing) and 423 (locked).
    router.include_router(auth.router, responses=errors.responses(400, 401, 403, 422, 423))
    modules = (
        patients,
        assessments,
        screening,
        orders,
        exposure,
        opioids,
        sessions,
        indicators,
        safety,
        diary,
        outcomes,
        letters,
        research,
        evidence,
        fhir,
        registry,
        knowledge,
        library,
        ledger,
        ledger_reports,
        admin,
    )
    for module in modules:
        router.include_router(module.router)
    return router


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    settle_heap: bool = False,
) -> FastAPI:
    """The application for ``settings`` (default: from the environment).

    The schema is not created here: run ``ketapath db upgrade`` (``serve`` does it). With
    ``settle_heap`` (``ketapath serve``) the start-up ends by collecting its garbage and
    exempting what survives from later collections (``services.warmup.settle_heap``).
    """
    from ketapath.web import warm_up as warm_up_pages

    settings = settings or get_settings()
    # the clinic's own vital-sign thresholds, if any: a bad file stops the server here
    configure_session_rules(settings)
    # and its own reference concentrations for the exposure summaries, if any
    configure_thresholds(settings)
    db = database or Database(settings.database_url, echo=settings.sql_echo)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Load (and validate) the clinical knowledge once at start: a bad file stops the
        # server here, and the first requests do not each pay for the loading.
        load_knowledge()
        load_instruments()
        load_evidence()
        warm_up(db)  # the database's first connection, mappers and statements
        warm_up_pages()  # the page templates
        # FastAPI prepares each route (its dependencies, its models) the first time a request
        # is matched against it, so the first page request paid for every API route before
        # it; building the OpenAPI document prepares them all, and the document is then ready.
        app.openapi()
        if settle_heap:
            warm_up_analytics()  # the registry's survival analysis (lifelines): ~1 s
            settle()
        yield
        if settle_heap:
            unsettle()
        if database is None:
            db.dispose()

    app = FastAPI(
        title="ketapath",
        version=ketapath.__version__,
        description=(
            "Ketamine infusion programme: patient record, assessments, eligibility screen, "
            "limit-checked orders, predicted exposure. Sign in at /api/v1/auth/token and send "
            "the bearer token."
        ),
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=None,  # served by ketapath.api.docs from the app's own files, not a CDN
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.db = db
    errors.install(app, api_prefix=API_PREFIX)
    app.add_middleware(StorableText, api_prefix=API_PREFIX)
    app.add_middleware(StrictTransportSecurity)  # HSTS while secure cookies are on
    app.include_router(api_router())
    app.include_router(docs_router(f"{API_PREFIX}/docs", f"{API_PREFIX}/openapi.json", app.title))

    # Web pages (Jinja2 + htmx): the same services, ketapath.api.deps.current_user / CSRF.
    from ketapath.web import install as install_web_pages

    install_web_pages(app, api_prefix=API_PREFIX)
    return app
