"""What the server pays once at start so that the first requests do not (issue 9).

Measured on a fresh server (docs/performance.md, start-up): the first plan preview took
0.3 s and the first plan page 0.6 s against 15-25 ms afterwards. The difference was
SQLAlchemy configuring its mappers and compiling each statement on first use, opening the
first database connection, and Jinja compiling the page templates. Since the plan and order
pages show the predicted exposure, the PK engine is loaded here too (numpy, the models, each
model's effect-site constant: about 0.25 s once). Nothing here writes.
"""

from __future__ import annotations

import contextlib
import gc

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import configure_mappers

from ketapath.services import auth, exposure, patients, screening
from ketapath.services.errors import ServiceError
from ketapath.store.db import Database

NO_ID = 0  # ids start at 1: the statements run and find nothing


def warm_up(db: Database) -> None:
    """Configure the mappers, open a connection, and compile the first requests' statements
    (token lookup, patient and latest version, latest screen) by running them for no row;
    run each PK model once.

    Only a speed-up: a database that cannot answer yet (no schema: ``ketapath db upgrade``
    not run) is left for the requests to report.
    """
    configure_mappers()
    exposure.warm_up()
    with contextlib.suppress(SQLAlchemyError):
        with contextlib.suppress(ServiceError):
            auth.resolve_token(db, "", kind="api")
        with db.read_only() as session:
            with contextlib.suppress(ServiceError):
                patients.load_patient(session, NO_ID)
            screening.latest_screening(session, NO_ID)


def settle() -> None:
    """Collect the start-up's garbage now, and exempt what survives it (modules, the knowledge
    base, numpy, compiled templates and statements) from later collections.

    Python's full collection walks every live object. Measured on ``ketapath serve`` (issue
    10, exposure): with the PK engine loaded, the first full collection after start-up took
    about 80 ms and fell in the first plan page. ``gc.freeze`` moves the objects alive now to
    a permanent generation that collections skip; they are still freed when no longer used.
    """
    gc.collect()
    gc.freeze()


def unsettle() -> None:
    """Undo ``settle`` at shutdown (a process that starts the application again)."""
    gc.unfreeze()


def warm_up_analytics() -> None:
    """Import what the registry's analytics use (lifelines, pandas, SciPy's statistics): about
    a second, paid at start by ``ketapath serve`` rather than by the first registry page
    (docs/performance.md, registry). Other servers (tests) skip it."""
    import lifelines  # noqa: F401
