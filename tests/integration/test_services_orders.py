"""Screening, course preview and signed orders: the signing rules hold on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from tests.integration.conftest import count_statements

from ketapath.services import orders, patients, screening, timeline
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, PermissionDenied
from ketapath.services.orders import PlanRequest, SignRequest
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, CourseRecord, Order

ELIGIBLE: dict[str, Any] = {
    "name": "Eli Gible",
    "age_years": 45,
    "sex": "female",
    "weight_kg": 70,
    "height_cm": 168,
    "pregnancy": "not_pregnant",
    "diagnoses": ["crps-1"],
    "medications": [
        {"name": "oxycodone", "dose": 10, "unit": "mg", "frequency": "twice daily", "route": "oral"}
    ],
    "consent": "given",
    "assessment": {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
        "multidisciplinary_care": True,
    },
    "purpose": ["pain_relief", "opioid_reduction"],
}
CLINIC_COURSE = SignRequest(protocol_id="asra-initial", setting="clinic")
# The ASRA starting dose is a clinic/ward protocol: given in the ICU it is a protocol
# deviation, a soft finding (the setting is the only change, so no dose changes with it).
SOFT_COURSE = SignRequest(protocol_id="asra-initial", setting="icu")
# Titrating up from 10 mg/h (Correll 2004) reaches rates above the clinic's hard limit.
HARD_COURSE = SignRequest(protocol_id="titrate-correll", setting="clinic")


def screened(database: Database, users: dict[str, Actor], **changes: Any) -> int:
    patient_id = patients.create_patient(database, users["nurse"], {**ELIGIBLE, **changes}).id
    screening.run_screening(database, users["physician"], patient_id)
    return patient_id


def count(database: Database, model: type[Any]) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_physician_screens_the_current_record_and_the_result_is_stored(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = patients.create_patient(database, users["nurse"], ELIGIBLE).id
    result = screening.run_screening(database, users["physician"], patient_id)
    assert result.decision == "eligible"
    assert result.run_by == "physician"
    assert result.current
    assert all(f["citations"] and f["citation"] for f in result.result["findings"])


def test_a_screen_of_an_older_version_is_no_longer_current(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**ELIGIBLE, "weight_kg": 72},
        reason="re-weighed",
        expected_version=1,
    )
    (listed,) = screening.list_screenings(database, users["nurse"], patient_id)
    assert not listed.current


def test_a_nurse_may_read_but_not_run_the_screen(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = patients.create_patient(database, users["nurse"], ELIGIBLE).id
    with pytest.raises(PermissionDenied):
        screening.run_screening(database, users["nurse"], patient_id)
    assert screening.list_screenings(database, users["nurse"], patient_id) == []


def test_a_preview_shows_the_course_and_its_soft_findings_without_storing_anything(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    preview = orders.preview_course(database, users["nurse"], patient_id, SOFT_COURSE)
    assert preview.status == "needs_override"
    assert preview.soft_codes == ["protocol:setting-deviation"]
    assert preview.course["sessions"]
    assert preview.screening is not None and preview.screening.decision == "eligible"
    assert count(database, CourseRecord) == 0


def test_a_physician_signs_a_course_within_limits(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    preview = orders.preview_course(database, users["physician"], patient_id, CLINIC_COURSE)
    order = orders.sign_order(
        database,
        users["physician"],
        patient_id,
        CLINIC_COURSE.model_copy(
            update={"course_digest": preview.digest, "patient_version": preview.patient_version}
        ),
    )
    assert order.status == "signed"
    assert order.signed_by == "physician"
    assert order.override_reason is None
    assert order.course == preview.course
    assert orders.list_orders(database, users["pharmacist"], patient_id) == [order]


@pytest.mark.parametrize("role", ["nurse", "pharmacist", "researcher", "admin"])
def test_no_one_but_a_physician_can_sign_and_the_attempt_is_audited(
    database: Database, users: dict[str, Actor], role: str
) -> None:
    patient_id = screened(database, users)
    with pytest.raises(PermissionDenied):
        orders.sign_order(database, users[role], patient_id, CLINIC_COURSE)
    with pytest.raises(PermissionDenied):
        orders.sign_order(
            database,
            users[role],
            patient_id,
            SOFT_COURSE.model_copy(update={"override_reason": "I say so"}),
        )
    assert count(database, Order) == 0
    with database.transaction() as session:
        denied = session.scalars(
            select(AuditEntry.action).where(AuditEntry.outcome == "denied")
        ).all()
    assert set(denied) >= {"order.sign", "order.override"}


def test_an_unscreened_record_cannot_be_signed(database: Database, users: dict[str, Actor]) -> None:
    patient_id = patients.create_patient(database, users["nurse"], ELIGIBLE).id
    with pytest.raises(OrderRefused) as caught:
        orders.sign_order(database, users["physician"], patient_id, CLINIC_COURSE)
    assert caught.value.field == "screening"


def test_a_record_amended_after_screening_must_be_screened_again(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**ELIGIBLE, "weight_kg": 90},
        reason="re-weighed",
        expected_version=1,
    )
    with pytest.raises(OrderRefused, match="not been screened"):
        orders.sign_order(database, users["physician"], patient_id, CLINIC_COURSE)


def test_a_patient_screened_not_eligible_cannot_be_signed_for_even_with_a_reason(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users, consent="refused")
    with pytest.raises(OrderRefused, match="not eligible"):
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            CLINIC_COURSE.model_copy(update={"override_reason": "urgent"}),
        )


def test_a_soft_limit_needs_an_override_reason_which_is_stored_with_the_order(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    with pytest.raises(OrderRefused) as caught:
        orders.sign_order(database, users["physician"], patient_id, SOFT_COURSE)
    assert caught.value.field == "override_reason"
    assert caught.value.details["soft_codes"] == ["protocol:setting-deviation"]
    # the refusal says what needs the reason in words; the codes are for programs only
    message = caught.value.message
    assert "protocol:setting-deviation" not in message
    preview = orders.preview_course(database, users["physician"], patient_id, SOFT_COURSE)
    (soft,) = [f for f in preview.course["findings"] if f["severity"] == "soft"]
    assert soft["message"].rstrip(".")[1:] in message
    assert message.endswith("Screening findings: none.")

    order = orders.sign_order(
        database,
        users["physician"],
        patient_id,
        SOFT_COURSE.model_copy(update={"override_reason": "monitored bed needed after MI"}),
    )
    assert order.override_reason == "monitored bed needed after MI"
    assert order.override_codes == {"limits": ["protocol:setting-deviation"], "screening": []}
    assert order.course["override"]["physician"] == "physician"
    assert order.course["status"] == "ready"


def test_a_relative_contraindication_from_the_screen_also_needs_a_reason(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users, comorbidities=["psychosis"])
    with pytest.raises(OrderRefused) as caught:
        orders.sign_order(database, users["physician"], patient_id, CLINIC_COURSE)
    assert caught.value.details["screening_codes"] == ["contraindication:psychosis"]
    order = orders.sign_order(
        database,
        users["physician"],
        patient_id,
        CLINIC_COURSE.model_copy(update={"override_reason": "stable for 10 years, psychiatry ok"}),
    )
    assert order.override_codes == {"limits": [], "screening": ["contraindication:psychosis"]}


def test_a_course_over_a_hard_limit_is_never_stored_even_with_a_reason(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    with pytest.raises(OrderRefused) as preview_refusal:
        orders.preview_course(database, users["physician"], patient_id, HARD_COURSE)
    assert preview_refusal.value.field == "limits"
    assert {f["severity"] for f in preview_refusal.value.details["findings"]} == {"hard"}
    with pytest.raises(OrderRefused):
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            HARD_COURSE.model_copy(update={"override_reason": "I accept the risk"}),
        )
    assert count(database, CourseRecord) == 0
    assert count(database, Order) == 0


def test_signing_refuses_a_course_that_differs_from_the_reviewed_preview(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    preview = orders.preview_course(database, users["physician"], patient_id, CLINIC_COURSE)
    with pytest.raises(Conflict) as caught:
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            CLINIC_COURSE.model_copy(
                update={"course_digest": preview.digest, "concentration_mg_per_ml": 2.0}
            ),
        )
    assert caught.value.field == "course_digest"


def test_signing_refuses_a_stale_record_version(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    with pytest.raises(Conflict) as caught:
        orders.sign_order(
            database,
            users["physician"],
            patient_id,
            CLINIC_COURSE.model_copy(update={"patient_version": 7}),
        )
    assert caught.value.field == "patient_version"


def test_an_unknown_protocol_is_refused_naming_the_field(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    with pytest.raises(InvalidInput) as caught:
        orders.preview_course(
            database, users["physician"], patient_id, PlanRequest(protocol_id="no-such-protocol")
        )
    assert caught.value.field == "protocol_id"


def test_a_cancellation_amends_the_order_and_keeps_it(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    signed = orders.sign_order(database, users["physician"], patient_id, CLINIC_COURSE)
    with pytest.raises(PermissionDenied):
        orders.cancel_order(database, users["nurse"], signed.id, reason="not mine to cancel")
    cancelled = orders.cancel_order(
        database, users["physician"], signed.id, reason="patient declined"
    )
    assert cancelled.status == "cancelled"
    assert cancelled.cancel_reason == "patient declined"
    assert cancelled.signed_by == "physician"
    assert cancelled.course == signed.course
    assert count(database, Order) == 2
    with pytest.raises(Conflict):
        orders.cancel_order(database, users["physician"], signed.id, reason="again")


def test_the_timeline_shows_record_screen_order_and_cancellation_in_order(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = screened(database, users)
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**ELIGIBLE, "weight_kg": 71},
        reason="re-weighed",
        expected_version=1,
    )
    screening.run_screening(database, users["physician"], patient_id)
    signed = orders.sign_order(database, users["physician"], patient_id, CLINIC_COURSE)
    orders.cancel_order(database, users["physician"], signed.id, reason="declined")
    events = timeline.patient_timeline(database, users["nurse"], patient_id)
    assert [(e.kind, e.by) for e in events] == [
        ("record", "nurse"),
        ("screening", "physician"),
        ("amendment", "nurse"),
        ("screening", "physician"),
        ("order", "physician"),
        ("cancel", "physician"),
    ]
    assert events[2].reason == "re-weighed"
    assert events[-1].reason == "declined"
    assert [e.at for e in events] == sorted(e.at for e in events)


def test_listing_orders_and_screens_takes_the_same_number_of_queries_for_one_or_five(
    database: Database, users: dict[str, Actor]
) -> None:
    one = screened(database, users)
    orders.sign_order(database, users["physician"], one, CLINIC_COURSE)
    five = screened(database, users)
    signed = [
        orders.sign_order(database, users["physician"], five, CLINIC_COURSE) for _ in range(5)
    ]
    for _ in range(4):
        screening.run_screening(database, users["physician"], five)
    orders.cancel_order(database, users["physician"], signed[0].id, reason="duplicate")
    nurse = users["nurse"]
    queries_one, _ = count_statements(database, lambda: orders.list_orders(database, nurse, one))
    queries_five, listed = count_statements(
        database, lambda: orders.list_orders(database, nurse, five)
    )
    assert queries_five == queries_one
    assert [o.id for o in listed] == [o.id for o in reversed(signed)]
    assert listed[-1].status == "cancelled" and listed[-1].cancelled_by == "physician"
    assert all(o.signed_by == "physician" for o in listed)
    screens_one, _ = count_statements(
        database, lambda: screening.list_screenings(database, nurse, one)
    )
    screens_five, shown = count_statements(
        database, lambda: screening.list_screenings(database, nurse, five)
    )
    assert screens_five == screens_one and len(shown) == 5
    assert all(s.run_by == "physician" and s.patient_version == 1 for s in shown)
