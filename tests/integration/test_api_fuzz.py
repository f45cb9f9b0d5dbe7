"""Schema fuzzing of every operation of /api/v1/openapi.json, on SQLite and PostgreSQL.

Schemathesis generates requests from the OpenAPI document: data that fits the schema
(positive) and data that does not (negative), sent with the bearer token of a physician, of
each other role, or of nobody. A test fails on any 5xx or server exception, on a status code
the operation does not declare, and on a response body that does not match its declared
schema (errors included). The database holds the demo clinic (patients, assessments, a
screen, a signed order, an opioid plan and doses), so generated ids find real records.

Deterministic in CI (``derandomize``). ``KETAPATH_FUZZ_EXAMPLES`` sets the examples per
operation and mode (default 25; each operation runs both modes on each database); a longer
local run, e.g. ``KETAPATH_FUZZ_EXAMPLES=500 KETAPATH_FUZZ_SEED=7 pytest
tests/integration/test_api_fuzz.py``, also takes a seed so that each run explores new inputs.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from tests.integration.conftest import _empty_postgres

from ketapath.api.app import create_app
from ketapath.config import Settings
from ketapath.services import auth, demo, orders
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.store.db import Database

EXAMPLES = int(os.environ.get("KETAPATH_FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("KETAPATH_FUZZ_SEED")
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Physicians do the most; every other role, and nobody signed in, are tried as well.
CALLERS = ("physician", "physician", "nurse", "pharmacist", "researcher", "admin", None)
SECRET = "fuzz-test-secret-key"


def _schema() -> Any:
    app = create_app(Settings(secret_key=SECRET))
    return schemathesis.openapi.from_dict(app.openapi())


SCHEMA = _schema()
OPERATIONS = [result.ok() for result in SCHEMA.get_all_operations()]


@dataclass
class Clinic:
    """The application on a seeded database, with a bearer token per role."""

    client: TestClient
    tokens: dict[str, str]
    passwords: dict[str, str]

    def sign_in(self, role: str) -> None:
        response = self.client.post(
            "/api/v1/auth/token", data={"username": role, "password": self.passwords[role]}
        )
        assert response.status_code == 200, response.text
        self.tokens[role] = response.json()["access_token"]


def _seed(db: Database) -> dict[str, str]:
    """The demo clinic, plus a signed order for the screened first patient."""
    users = demo.seed_demo(db)
    physician = next(u for u in auth.list_users(db, SYSTEM) if u.role == "physician")
    actor = Actor(physician.id, physician.username, physician.role)
    orders.sign_order(
        db,
        actor,
        1,
        SignRequest(protocol_id="asra-initial", override_reason="fuzz test: reviewed"),
    )
    passwords = {user.username: user.password for user in users}
    _seed_ledger(db, passwords)
    _seed_letter(db, actor)
    return passwords


def _seed_letter(db: Database, physician: Actor) -> None:
    """A draft GP letter of the demo clinic's first order, so that letter ids find one."""
    from ketapath.services import letters

    first = orders.list_orders(db, physician, 1)[-1]
    letters.draft_letter(db, physician, first.id, letters.DraftInput(kind="gp_letter"))


def _seed_ledger(db: Database, passwords: dict[str, str]) -> None:
    """Stock in the ledger (product 1, location 1, lot A1), a count that differs, and a bag
    dispensed for the running demo session, so that generated ids and lots find lines."""
    from datetime import timedelta
    from decimal import Decimal

    from ketapath.services import ledger, sessions
    from ketapath.services.clock import clinic_clock
    from ketapath.services.ledger import (
        CountInput,
        DispenseInput,
        LocationInput,
        ProductInput,
        ReceiptInput,
    )

    people = {u.role: Actor(u.id, u.username, u.role) for u in auth.list_users(db, SYSTEM)}
    pharmacist, clock = people["pharmacist"], clinic_clock()
    # the demo clinic stocks one product in one safe already; add them only if it does not
    stock = ledger.stock(db, pharmacist, clock=clock)
    product = (
        stock.products[0]
        if stock.products
        else ledger.add_product(
            db,
            pharmacist,
            ProductInput(
                name="Ketamine 50 mg/mL, 10 mL vial",
                strength_mg_per_ml=Decimal(50),
                container_ml=Decimal(10),
                manufacturer="Example Pharma",
            ),
        )
    )
    location = (
        stock.locations[0]
        if stock.locations
        else ledger.add_location(db, pharmacist, LocationInput(name="CD safe 1"))
    )
    ledger.receive(
        db,
        pharmacist,
        ReceiptInput(
            product_id=product.id,
            location_id=location.id,
            lot="A1",
            expiry=clock.today() + timedelta(days=400),
            containers=10,
            received_on=clock.today(),
            supplier_name="Wholesaler Ltd",
            supplier_address="1 Supply Road, Springfield",
            invoice_number="INV-1",
        ),
        clock=clock,
    )
    ledger.count(
        db,
        pharmacist,
        CountInput(
            product_id=product.id,
            location_id=location.id,
            lot="A1",
            full_containers=9,
            witness_username="nurse",
            witness_password=passwords["nurse"],
        ),
        clock=clock,
    )
    running = [
        s for s in sessions.worklist(db, people["nurse"], clock=clock) if s.state == "running"
    ]
    for session in running:
        programme = sessions.get_session(db, people["nurse"], session.id, clock=clock).programme
        assert programme is not None
        bag_ml = Decimal(200) / Decimal(repr(programme.concentration_mg_per_ml))
        ledger.dispense(
            db,
            people["nurse"],
            DispenseInput(
                session_id=session.id,
                product_id=product.id,
                location_id=location.id,
                lot="A1",
                volume_ml=Decimal(4),
                final_volume_ml=bag_ml.quantize(Decimal("0.01")),
            ),
            clock=clock,
        )


@pytest.fixture(
    scope="module",
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)],
)
def clinic(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Clinic]:
    with pytest.MonkeyPatch.context() as patch:
        cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        patch.setattr(auth, "password_hasher", cheap)
        # unknown user names are checked against this hash; made cheap too for generated names
        patch.setattr(auth, "_DUMMY_HASH", cheap.hash("not a real password"))
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("fuzz") / "ketapath.sqlite3"
            template: Path = request.getfixturevalue("sqlite_template")
            shutil.copyfile(template, path)
            db = Database(f"sqlite:///{path}")
        else:
            db = Database(request.getfixturevalue("postgres_url"))
            _empty_postgres(db)
        passwords = _seed(db)
        # Generated sign-ins must not lock the seeded accounts out of the rest of the run.
        settings = Settings(database_url=db.url, secret_key=SECRET, lockout_threshold=10**6)
        with TestClient(
            create_app(settings, database=db),
            base_url="https://testserver",
            raise_server_exceptions=True,
        ) as client:
            clinic = Clinic(client, {}, passwords)
            for role in ROLES:
                clinic.sign_in(role)
            yield clinic
        if request.param == "postgresql":
            _empty_postgres(db)
        db.dispose()


def _send(clinic: Clinic, case: Case, role: str | None) -> Any:
    kwargs = case.as_transport_kwargs(base_url="https://testserver")
    headers = {k: v for k, v in (kwargs.get("headers") or {}).items() if k.lower() != "host"}
    if role is not None:
        headers["Authorization"] = f"Bearer {clinic.tokens[role]}"
    data = kwargs.get("data")
    return clinic.client.request(
        kwargs["method"],
        kwargs["url"],
        headers=headers,
        params=kwargs.get("params"),
        json=kwargs.get("json"),
        content=data if isinstance(data, bytes | str) else None,
        data=data if isinstance(data, dict) else None,
        files=kwargs.get("files"),
    )


def _fuzz(clinic: Clinic, operation: Any, mode: GenerationMode) -> None:
    revokes = operation.method.upper() == "DELETE" and operation.path == "/api/v1/auth/token"

    @settings(
        max_examples=EXAMPLES,
        derandomize=SEED is None,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )
    @given(case=operation.as_strategy(generation_mode=mode), role=st.sampled_from(CALLERS))
    def run(case: Case, role: str | None) -> None:
        response = _send(clinic, case, role)
        case.validate_response(response, checks=CHECKS)
        if revokes and role is not None and response.status_code == 204:
            clinic.sign_in(role)  # the token was revoked: the next examples need a new one

    if SEED is not None:
        run = seed(int(SEED))(run)
    try:
        run()
    except Unsatisfiable:
        assert mode is GenerationMode.NEGATIVE  # nothing in this operation can be invalid


@pytest.mark.slow
@pytest.mark.parametrize("operation", OPERATIONS, ids=[op.label for op in OPERATIONS])
def test_no_request_gives_a_server_error_or_a_response_outside_the_schema(
    clinic: Clinic, operation: Any
) -> None:
    _fuzz(clinic, operation, GenerationMode.POSITIVE)
    _fuzz(clinic, operation, GenerationMode.NEGATIVE)


def test_the_fuzz_covers_every_operation_of_the_document() -> None:
    app = create_app(Settings(secret_key=SECRET))
    declared = {
        (method.upper(), path) for path, item in app.openapi()["paths"].items() for method in item
    }
    assert {(op.method.upper(), op.path) for op in OPERATIONS} == declared
    assert len(declared) >= 37


def test_an_admin_asking_for_a_missing_patient_is_refused_not_a_500(
    clinic: Clinic,
) -> None:
    response = clinic.client.get(
        "/api/v1/patients/999999/orders",
        headers={"Authorization": f"Bearer {clinic.tokens['admin']}"},
    )
    assert response.status_code == 403
