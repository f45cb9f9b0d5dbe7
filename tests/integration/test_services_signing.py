"""The signing checks on both databases: consent, the facts frozen into an order, stale orders,
physicians' confirmations, ``usable_order``, and the mood questionnaires in the screen."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.test_services_orders import ELIGIBLE

from ketapath.services import assessments, orders, patients, screening, timeline
from ketapath.services.assessments import AssessmentInput
from ketapath.services.errors import Conflict, OrderRefused, PermissionDenied
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import Actor
from ketapath.services.signing import (
    ConfirmRequest,
    OrderCancelled,
    OrderConsentNotGiven,
    OrderNotUsable,
    OrderStale,
)
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, Order, OrderConfirmation

COURSE = SignRequest(protocol_id="asra-initial", setting="clinic")
IDEAL_COURSE = SignRequest(protocol_id="asra-initial", setting="clinic", weight_basis="ideal")
WEIGHED = (date.today() - timedelta(days=3)).isoformat()
RECORD: dict[str, Any] = {
    **ELIGIBLE,
    "weight_kg": 68,
    "weight_measured_on": WEIGHED,
    "laterality": "left",
    "allergies": [{"substance": "penicillin", "reaction": "rash"}],
}


def registered(database: Database, users: dict[str, Actor], **changes: Any) -> int:
    return patients.create_patient(database, users["nurse"], {**RECORD, **changes}).id


def screened(database: Database, users: dict[str, Actor], **changes: Any) -> int:
    patient_id = registered(database, users, **changes)
    screening.run_screening(database, users["physician"], patient_id)
    return patient_id


def amend(
    database: Database, users: dict[str, Actor], patient_id: int, reason: str, **changes: Any
) -> int:
    current = patients.get_patient(database, users["nurse"], patient_id)
    document = {**current.document, **changes}
    return patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        document,
        reason=reason,
        expected_version=current.version,
    ).version


def signed(
    database: Database, users: dict[str, Actor], course: SignRequest = COURSE, **changes: Any
) -> tuple[int, int]:
    patient_id = screened(database, users, **changes)
    return patient_id, orders.sign_order(database, users["physician"], patient_id, course).id


def rows(database: Database, model: type[Any]) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_an_order_cannot_be_signed_while_consent_is_not_yet_asked(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users, consent="pending")
    with pytest.raises(OrderRefused) as caught:
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            COURSE.model_copy(update={"override_reason": "urgent"}),
        )
    assert caught.value.field == "consent"
    assert "'not yet asked'" in caught.value.message
    assert "record the patient's consent on the patient record" in caught.value.message
    assert rows(database, Order) == 0
    preview = orders.preview_course(database, users["physician"], patient_id, COURSE)
    assert preview.facts is not None and preview.facts.consent == "pending"
    assert "order:consent-not-given" in {f.code for f in preview.facts.findings}


def test_once_consent_is_recorded_as_given_the_amended_record_can_be_signed(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users, consent="pending")
    amend(database, users, patient_id, "consent given at the clinic", consent="given")
    screening.run_screening(database, users["physician"], patient_id)
    order = orders.sign_order(database, users["physician"], patient_id, COURSE)
    assert order.state == "usable" and order.facts is not None and order.facts.consent == "given"


def test_the_order_freezes_the_facts_the_physician_needs(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    order = orders.get_order(database, users["pharmacist"], order_id)
    facts = order.facts
    assert facts is not None
    assert (facts.weight_kg, facts.weight_measured_on, facts.weight_age_days) == (
        68,
        date.fromisoformat(WEIGHED),
        3,
    )
    assert [(a.substance, a.reaction) for a in facts.allergies] == [("penicillin", "rash")]
    assert (facts.laterality, facts.pregnancy, facts.patient_version) == ("left", "not_pregnant", 1)
    assert facts.dosing_facts == {"weight_kg": 68.0}
    assert facts.findings == []
    # what was seen at signing stays, whatever the record says later
    amend(database, users, patient_id, "new allergy", allergies=["latex"], laterality="right")
    again = orders.get_order(database, users["pharmacist"], order_id)
    assert again.facts == facts
    assert again.state == "usable"


def test_an_old_or_undated_weight_is_a_warning_on_the_order(
    database: Database, users: dict[str, Actor]
) -> None:
    old = (date.today() - timedelta(days=45)).isoformat()
    _, order_id = signed(database, users, weight_measured_on=old)
    order = orders.get_order(database, users["nurse"], order_id)
    assert order.facts is not None
    assert [f.code for f in order.facts.findings] == ["order:weight-out-of-date"]
    assert order.facts.weight_age_days == 45
    assert "order:weight-out-of-date" in {f.code for f in order.findings}
    assert order.usable  # a warning: it does not stop the order
    _, undated = signed(database, users, weight_measured_on=None)
    facts = orders.get_order(database, users["nurse"], undated).facts
    assert facts is not None and [f.code for f in facts.findings] == [
        "order:weight-date-not-recorded"
    ]


def test_a_record_change_that_is_not_a_dosing_fact_leaves_the_order_usable(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    amend(database, users, patient_id, "new GP", gp="Dr A New", height_cm=171)
    order = orders.usable_order(database, users["nurse"], order_id)
    assert (order.state, order.stale, order.current_version) == ("usable", False, 2)


def test_an_order_signed_at_68_kg_is_stale_when_the_record_says_90_kg(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    amend(database, users, patient_id, "re-weighed", weight_kg=90)
    order = orders.get_order(database, users["nurse"], order_id)
    assert (order.state, order.stale, order.usable) == ("stale", True, False)
    assert order.stale_message == "signed at 68 kg; the record now says 90 kg"
    assert [(c.fact, c.signed, c.now) for c in order.stale_changes] == [("weight_kg", 68, 90)]
    assert [f.code for f in order.findings] == ["order:stale"]
    assert order.status == "signed"  # the signature itself stands
    with pytest.raises(OrderStale) as caught:
        orders.usable_order(database, users["nurse"], order_id)
    assert "signed at 68 kg; the record now says 90 kg" in caught.value.message
    assert caught.value.status_code == 409
    (listed,) = orders.list_orders(database, users["nurse"], patient_id)
    assert listed.stale_message == order.stale_message


def test_on_ideal_body_weight_a_new_height_makes_the_order_stale(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users, IDEAL_COURSE)
    amend(database, users, patient_id, "measured", height_cm=175)
    order = orders.get_order(database, users["nurse"], order_id)
    assert order.stale_message == "signed at 168 cm; the record now says 175 cm"
    assert order.stale_changes[0].fact == "height_cm"


def test_a_physician_confirms_a_stale_order_with_a_new_row_that_amends_it(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    version = amend(database, users, patient_id, "re-weighed", weight_kg=90)
    request = ConfirmRequest(
        reason="re-weighed at 90 kg; 80 mg over 3 h stays", patient_version=version
    )
    with pytest.raises(PermissionDenied):
        orders.confirm_order(database, users["nurse"], order_id, request)
    before = orders.get_order(database, users["nurse"], order_id)
    confirmed = orders.confirm_order(database, users["physician"], order_id, request)
    assert (confirmed.state, confirmed.usable) == ("usable", True)
    (confirmation,) = confirmed.confirmations
    assert confirmation.confirmed_by == "physician"
    assert confirmation.patient_version == version
    assert confirmation.reason == request.reason
    assert [c.text for c in confirmation.changes] == ["signed at 68 kg; the record now says 90 kg"]
    assert confirmation.dosing_facts == {"weight_kg": 90.0}
    # the order is not rewritten: same course, same signature, same frozen facts
    assert (confirmed.course, confirmed.digest, confirmed.facts) == (
        before.course,
        before.digest,
        before.facts,
    )
    assert rows(database, Order) == 1 and rows(database, OrderConfirmation) == 1
    assert orders.usable_order(database, users["nurse"], order_id).id == order_id
    with database.transaction() as session:
        audited = session.scalars(
            select(AuditEntry.outcome).where(AuditEntry.action == "order.confirm")
        ).all()
    assert sorted(audited) == ["denied", "ok"]  # the nurse's attempt, the physician's
    # a later change makes it stale again, against what was confirmed
    amend(database, users, patient_id, "re-weighed", weight_kg=85)
    again = orders.get_order(database, users["nurse"], order_id)
    assert again.stale_message == "confirmed at 90 kg; the record now says 85 kg"
    events = timeline.patient_timeline(database, users["nurse"], patient_id)
    assert "order_confirmation" in {e.kind for e in events}


def test_a_confirmation_names_the_version_the_physician_looked_at(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    version = amend(database, users, patient_id, "re-weighed", weight_kg=90)
    amend(database, users, patient_id, "new GP", gp="Dr B")
    with pytest.raises(Conflict) as caught:
        orders.confirm_order(
            database,
            users["physician"],
            order_id,
            ConfirmRequest(reason="ok", patient_version=version),
        )
    assert caught.value.field == "patient_version"
    assert rows(database, OrderConfirmation) == 0


def test_an_order_that_is_not_stale_has_nothing_to_confirm(
    database: Database, users: dict[str, Actor]
) -> None:
    _, order_id = signed(database, users)
    with pytest.raises(Conflict, match="nothing to confirm"):
        orders.confirm_order(
            database, users["physician"], order_id, ConfirmRequest(reason="ok", patient_version=1)
        )


def test_a_stale_order_whose_doses_pass_a_hard_limit_at_the_new_weight_cannot_be_confirmed(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    # 80 mg over 3 h (26.7 mg/h) is 2.7 mg/kg/h at 10 kg: over the clinic's hard limit
    version = amend(database, users, patient_id, "weighed on the ward scale", weight_kg=10)
    with pytest.raises(OrderRefused) as caught:
        orders.confirm_order(
            database,
            users["physician"],
            order_id,
            ConfirmRequest(reason="I accept", patient_version=version),
        )
    assert caught.value.field == "limits"
    assert {f["severity"] for f in caught.value.details["findings"]} == {"hard"}
    assert rows(database, OrderConfirmation) == 0
    assert orders.get_order(database, users["nurse"], order_id).state == "stale"


def test_a_soft_limit_at_the_new_weight_is_kept_with_the_confirmation(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    # 26.7 mg/h at 25 kg is 1.07 mg/kg/h: over the clinic's 1 mg/kg/h soft limit only
    version = amend(database, users, patient_id, "lost weight", weight_kg=25)
    confirmed = orders.confirm_order(
        database,
        users["physician"],
        order_id,
        ConfirmRequest(reason="tolerated 1.1 mg/kg/h before", patient_version=version),
    )
    assert confirmed.confirmations[0].limit_codes == ["limit:rate_mg_per_kg_per_h:soft"]


def test_a_cancelled_order_is_not_usable_and_cannot_be_confirmed(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    orders.cancel_order(database, users["physician"], order_id, reason="patient declined")
    with pytest.raises(OrderCancelled, match="patient declined"):
        orders.usable_order(database, users["nurse"], order_id)
    version = amend(database, users, patient_id, "re-weighed", weight_kg=90)
    with pytest.raises(Conflict, match="cancelled"):
        orders.confirm_order(
            database,
            users["physician"],
            order_id,
            ConfirmRequest(reason="x", patient_version=version),
        )
    assert orders.get_order(database, users["nurse"], order_id).state == "cancelled"


def test_an_order_is_not_usable_once_the_record_no_longer_says_consent_was_given(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    amend(database, users, patient_id, "patient withdrew consent", consent="refused")
    order = orders.get_order(database, users["nurse"], order_id)
    assert order.state == "no_consent"
    with pytest.raises(OrderConsentNotGiven) as caught:
        orders.usable_order(database, users["nurse"], order_id)
    assert isinstance(caught.value, OrderNotUsable) and caught.value.field == "consent"


def test_an_order_signed_before_facts_were_frozen_reads_them_from_its_record_version(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id, order_id = signed(database, users)
    with database.transaction() as session:
        first = session.get(Order, order_id)
        assert first is not None
        legacy = Order(
            patient_id=patient_id,
            course_id=first.course_id,
            screening_result_id=first.screening_result_id,
            status="signed",
            recorded_at=datetime.now(UTC),
            recorded_by_id=first.recorded_by_id,
        )
        session.add(legacy)
        session.flush()
        legacy_id = legacy.id
    amend(database, users, patient_id, "re-weighed", weight_kg=90)
    order = orders.get_order(database, users["nurse"], legacy_id)
    assert order.facts is not None and order.facts.weight_kg == 68
    assert order.stale_message == "signed at 68 kg; the record now says 90 kg"


def test_confirmations_are_append_only(database: Database, users: dict[str, Actor]) -> None:
    patient_id, order_id = signed(database, users)
    version = amend(database, users, patient_id, "re-weighed", weight_kg=90)
    orders.confirm_order(
        database, users["physician"], order_id, ConfirmRequest(reason="ok", patient_version=version)
    )
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE order_confirmations SET reason = 'rewritten'"))
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE orders SET facts = NULL"))


# ------------------------------------------------------------------ mood in the screen


def record(
    database: Database,
    users: dict[str, Actor],
    patient_id: int,
    instrument: str,
    answers: dict[str, Any],
) -> int:
    data = AssessmentInput(instrument_id=instrument, answers=answers)
    return assessments.record_assessment(database, users["nurse"], patient_id, data).id


PHQ9_ITEM9 = {**{f"q{i}": 0 for i in range(1, 9)}, "q9": 1}
GAD7_SEVERE = {f"q{i}": 3 for i in range(1, 6)} | {"q6": 0, "q7": 0}


def test_the_screen_reads_the_latest_recorded_phq9_and_gad7(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = registered(database, users)
    assessment_id = record(database, users, patient_id, "phq9", PHQ9_ITEM9)
    record(database, users, patient_id, "gad7", GAD7_SEVERE)
    result = screening.run_screening(database, users["physician"], patient_id)
    assert result.decision == "needs_override"
    found = {f["code"]: f for f in result.result["findings"]}
    assert found["mood:phq9-item9"]["severity"] == "soft"
    assert f"assessment {assessment_id}" in found["mood:phq9-item9"]["message"]
    assert found["mood:severe-anxiety"]["severity"] == "soft"
    assert [q["instrument_id"] for q in result.result["questionnaires"]] == ["phq9", "gad7"]
    with pytest.raises(OrderRefused) as caught:
        orders.sign_order(database, users["physician"], patient_id, COURSE)
    assert caught.value.details["screening_codes"] == ["mood:phq9-item9", "mood:severe-anxiety"]
    preview = orders.preview_course(database, users["physician"], patient_id, COURSE)
    assert preview.screening is not None
    assert "ask about suicidal thoughts" in preview.screening.gating_findings[0].message
    order = orders.sign_order(
        database,
        users["physician"],
        patient_id,
        COURSE.model_copy(update={"override_reason": "suicide risk assessed today: low, no plan"}),
    )
    assert order.override_codes == {
        "limits": [],
        "screening": ["mood:phq9-item9", "mood:severe-anxiety"],
    }


def test_a_questionnaire_recorded_after_the_screen_must_be_screened_before_signing(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    assessment_id = record(database, users, patient_id, "phq9", PHQ9_ITEM9)
    (listed,) = screening.list_screenings(database, users["nurse"], patient_id)
    assert not listed.current
    with pytest.raises(OrderRefused, match=r"after the\s+screen"):
        orders.sign_order(database, users["physician"], patient_id, COURSE)
    screening.run_screening(database, users["physician"], patient_id)
    # a correction of item 9 (amendment) also needs a new screen; then nothing is raised
    assessments.amend_assessment(
        database,
        users["nurse"],
        assessment_id,
        AssessmentInput(instrument_id="phq9", answers={**PHQ9_ITEM9, "q9": 0}),
        reason="misread the answer sheet",
    )
    with pytest.raises(OrderRefused, match=r"after the\s+screen"):
        orders.sign_order(database, users["physician"], patient_id, COURSE)
    result = screening.run_screening(database, users["physician"], patient_id)
    assert result.decision == "eligible" and result.current
    assert orders.sign_order(database, users["physician"], patient_id, COURSE).state == "usable"


def test_only_the_latest_phq9_counts(database: Database, users: dict[str, Actor]) -> None:
    patient_id = registered(database, users)
    long_ago = datetime.now(UTC) - timedelta(days=400)
    assessments.record_assessment(
        database,
        users["nurse"],
        patient_id,
        AssessmentInput(instrument_id="phq9", answers=PHQ9_ITEM9, administered_at=long_ago),
    )
    record(database, users, patient_id, "phq9", {**PHQ9_ITEM9, "q9": 0})
    result = screening.run_screening(database, users["physician"], patient_id)
    assert result.decision == "eligible"
