"""The demo clinic that `ketapath serve --demo` starts with."""

from __future__ import annotations

from ketapath.config import Settings
from ketapath.services import auth, patients, screening
from ketapath.services.demo import seed_demo
from ketapath.services.permissions import ROLES, Actor
from ketapath.store.db import Database


def test_the_demo_has_one_user_per_role_who_can_sign_in_with_the_printed_password(
    database: Database,
) -> None:
    created = seed_demo(database)
    assert sorted(u.role for u in created) == sorted(ROLES)
    settings = Settings(secret_key="demo-test-secret-key-123")
    for user in created:
        actor = auth.authenticate(database, settings, user.username, user.password, channel="web")
        assert actor.role == user.role


def test_every_demo_patient_is_a_valid_record_that_screening_can_read(database: Database) -> None:
    created = seed_demo(database)
    settings = Settings(secret_key="demo-test-secret-key-123")
    physician_login = next(u for u in created if u.role == "physician")
    physician: Actor = auth.authenticate(
        database, settings, physician_login.username, physician_login.password, channel="web"
    )
    listed = patients.search_patients(database, physician)
    assert len(listed) == 4
    decisions = {screening.run_screening(database, physician, p.id).decision for p in listed}
    assert decisions <= {"eligible", "needs_override", "not_eligible"}
    assert "eligible" in decisions
