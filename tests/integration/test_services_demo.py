"""The demo clinic that `ketapath serve --demo` starts with."""

from __future__ import annotations

from ketapath.config import Settings
from ketapath.services import auth, patients, screening
from ketapath.services.clock import clinic_clock
from ketapath.services.demo import seed_demo
from ketapath.services.permissions import ROLES, SYSTEM, Actor
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


def test_the_demo_shows_an_agreed_opioid_plan_with_follow_up_doses(database: Database) -> None:
    from ketapath.services import opioids
    from ketapath.services.permissions import PHYSICIAN

    seed_demo(database)
    reader = Actor(user_id=None, username="reader", role=PHYSICIAN)
    (jordan,) = patients.search_patients(database, reader, "Jordan Demo")
    (plan,) = opioids.list_opioid_plans(database, reader, jordan.id)
    assert plan.status == "agreed" and plan.override_reason is None
    doses = opioids.list_opioid_doses(database, reader, jordan.id)
    assert [d.ome_mg_per_day for d in doses] == [52.5, 45.0]
    assert all(d.planned is not None for d in doses)


def test_every_demo_patient_was_weighed_on_the_clinics_today(database: Database) -> None:
    """A demo order shows the date of the weight it used, not a 'weight date unknown' warning."""
    seed_demo(database)
    today = clinic_clock().today().isoformat()
    nurse = next(
        Actor(u.id, u.username, u.role)
        for u in auth.list_users(database, SYSTEM)
        if u.role == "nurse"
    )
    for listed in patients.search_patients(database, nurse):
        record = patients.get_patient(database, nurse, listed.id)
        assert record.document["weight_measured_on"] == today


def test_the_demo_board_has_a_scheduled_chair_and_a_running_infusion(database: Database) -> None:
    from ketapath.services import sessions
    from ketapath.services.permissions import NURSE

    seed_demo(database)
    board = sessions.board(database, Actor(user_id=None, username="reader", role=NURSE))
    states = {chair.chair: chair.session.state for chair in board.chairs if chair.session}
    assert states == {"Chair 1": "scheduled", "Chair 2": "running"}


def test_the_demo_ledger_holds_a_receipt_and_the_running_sessions_bag(database: Database) -> None:
    from ketapath.services import ledger, sessions
    from ketapath.services.permissions import PHARMACIST

    seed_demo(database)
    reader = Actor(user_id=None, username="reader", role=PHARMACIST)
    stock = ledger.stock(database, reader)
    [line] = stock.lines
    assert line.product.name == "Ketamine 50 mg/mL, 10 mL vial"
    assert line.location.name == "CD safe"
    assert line.balance_mg == 4900.0  # ten 500 mg vials, 100 mg drawn up for the bag
    [running] = [
        c.session
        for c in sessions.board(database, reader).chairs
        if c.session and c.session.state == "running"
    ]
    view = ledger.session_ledger(database, reader, running.id)
    assert [x.kind for x in view.lines] == ["dispense"]
    assert view.reconciliation.status == "in progress"
    assert view.reconciliation.dispensed_mg == 100.0
