"""Assessments tied to a course, indicators of success, safety follow-up results (issue 12)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from tests.integration.conftest import clinic_noon, scheduled_session, signed_order

from ketapath.services import assessments, indicators, safety
from ketapath.services.assessments import AssessmentInput
from ketapath.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from ketapath.services.indicators import IndicatorsInput, SuccessIndicators
from ketapath.services.permissions import Actor
from ketapath.services.safety import SafetyResultInput
from ketapath.store.db import Database
from ketapath.store.models import AssessmentContext, InfusionSession, SafetyResult

NRS = {"instrument_id": "nrs", "answers": {"pain": 6}}


def _count(database: Database, model: type) -> int:
    with database.transaction() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def _patient_of(database: Database, order_id: int) -> int:
    from ketapath.store.models import Order

    with database.transaction() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return order.patient_id


def test_assessments_tied_to_a_course_come_back_by_label_and_an_amendment_keeps_its_context(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    session_id = scheduled_session(database, users, clock)
    with database.transaction() as s:
        order_id = s.get(InfusionSession, session_id).order_id  # type: ignore[union-attr]
    patient_id = _patient_of(database, order_id)
    nurse = users["nurse"]
    record = assessments.record_assessment
    record(database, nurse, patient_id, AssessmentInput(**NRS, order_id=order_id, label="baseline"))
    post = AssessmentInput(**NRS, order_id=order_id, label="post-session", session_id=session_id)
    record(database, nurse, patient_id, post)
    late = AssessmentInput(**NRS, order_id=order_id, label="follow-up", timepoint_days=28)
    first = record(database, nurse, patient_id, late)
    early = AssessmentInput(**NRS, order_id=order_id, label="follow-up", timepoint_days=7)
    record(database, nurse, patient_id, early)
    record(database, nurse, patient_id, AssessmentInput(**NRS))  # not for the course
    fixed = assessments.amend_assessment(
        database,
        nurse,
        first.id,
        AssessmentInput(instrument_id="nrs", answers={"pain": 3}),
        reason="misread",
    )
    assert fixed.context is not None and fixed.context.timepoint_days == 28

    course = assessments.assessments_for_course(database, users["physician"], order_id)
    assert [a.context.label for a in course.baseline if a.context] == ["baseline"]
    assert [a.context.session_id for a in course.post_session if a.context] == [session_id]
    assert [a.context.timepoint_days for a in course.follow_up if a.context] == [7, 28]
    assert course.follow_up[1].id == fixed.id and course.follow_up[1].total == 3
    assert course.timepoints_days == [7, 28]
    listed = assessments.list_assessments(database, nurse, patient_id)
    assert sum(1 for a in listed if a.context is None) == 1


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"label": "follow-up", "timepoint_days": 10, "order_id": "other"}, "order_id"),
        ({"label": "post-session", "session_id": "other"}, "session_id"),
    ],
)
def test_another_patient_s_order_or_session_is_refused_and_nothing_is_written(
    database: Database, users: dict[str, Actor], changes: dict[str, object], field: str
) -> None:
    clock = clinic_noon()
    mine = signed_order(database, users, name="Mine")
    other_session = scheduled_session(database, users, clock, name="Other")
    with database.transaction() as s:
        other_order = s.get(InfusionSession, other_session).order_id  # type: ignore[union-attr]
    patient_id = _patient_of(database, mine)
    values = {
        "order_id": other_order if changes.get("order_id") == "other" else mine,
        "label": changes["label"],
        "timepoint_days": changes.get("timepoint_days"),
        "session_id": other_session if changes.get("session_id") == "other" else None,
    }
    with pytest.raises(InvalidInput) as caught:
        assessments.record_assessment(
            database, users["nurse"], patient_id, AssessmentInput(**NRS, **values)
        )
    assert caught.value.field == field
    assert assessments.list_assessments(database, users["nurse"], patient_id) == []
    assert _count(database, AssessmentContext) == 0


@pytest.mark.parametrize(
    "context",
    [
        {"label": "baseline"},
        {"order_id": 1},
        {"order_id": 1, "label": "follow-up"},
        {"order_id": 1, "label": "follow-up", "timepoint_days": 731},
        {"order_id": 1, "label": "post-session"},
        {"order_id": 1, "label": "baseline", "timepoint_days": 7},
    ],
)
def test_an_inconsistent_label_is_refused_in_words(context: dict[str, object]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        AssessmentInput(**NRS, **context)  # type: ignore[arg-type]


def test_indicators_are_recorded_per_course_amended_and_read(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id = signed_order(database, users)
    patient_id = _patient_of(database, order_id)
    agreed = SuccessIndicators(
        pain_reduction_percent=30, function_goal="  walk the dog  ", opioid_reduction_percent=None
    )
    first = indicators.record_indicators(
        database, users["nurse"], patient_id, IndicatorsInput(order_id=order_id, indicators=agreed)
    )
    assert first.indicators.function_goal == "walk the dog"
    with pytest.raises(Conflict):
        indicators.record_indicators(
            database,
            users["physician"],
            patient_id,
            IndicatorsInput(order_id=order_id, indicators=agreed),
        )
    changed = indicators.amend_indicators(
        database,
        users["physician"],
        first.id,
        SuccessIndicators(pain_reduction_percent=50, sleep_goal="sleep 6 hours"),
        reason="agreed again with the patient",
    )
    assert changed.amends_id == first.id and changed.order_id == order_id
    read = indicators.course_indicators(database, users["pharmacist"], order_id)
    assert read is not None and read.id == changed.id
    assert [v.id for v in indicators.list_indicators(database, users["nurse"], patient_id)] == [
        changed.id
    ]
    with pytest.raises(Conflict):
        indicators.amend_indicators(
            database, users["nurse"], first.id, agreed, reason="stale version"
        )
    with pytest.raises(PermissionDenied):
        indicators.course_indicators(database, users["researcher"], order_id)
    with pytest.raises(PermissionDenied):
        indicators.record_indicators(
            database, users["pharmacist"], patient_id, IndicatorsInput(indicators=agreed)
        )


def test_indicators_for_another_patient_s_course_are_refused(
    database: Database, users: dict[str, Actor]
) -> None:
    mine = signed_order(database, users, name="Mine")
    theirs = signed_order(database, users, name="Theirs")
    data = IndicatorsInput(order_id=theirs, indicators=SuccessIndicators(pain_reduction_percent=30))
    with pytest.raises(InvalidInput) as caught:
        indicators.record_indicators(database, users["nurse"], _patient_of(database, mine), data)
    assert caught.value.field == "order_id"
    with pytest.raises(NotFound):
        indicators.course_indicators(database, users["nurse"], 99999)


LIVER = {"alt_u_per_l": 62, "alt_uln_u_per_l": 40, "ast_u_per_l": 30, "ast_uln_u_per_l": 40}


def test_an_abnormal_safety_result_comes_back_with_its_finding_and_is_amended(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    patient_id = _patient_of(database, signed_order(database, users))
    today = clock.today()
    result = safety.record_safety_result(
        database,
        users["nurse"],
        patient_id,
        SafetyResultInput(check_id="liver-enzymes", observed_on=today, values=LIVER),
        clock=clock,
    )
    assert result.abnormal
    (found,) = result.findings
    assert found.code == "safety:liver-enzymes-above-limit"
    assert "ALT 62 U/L (limit 40 U/L)" in found.message
    assert "ASRA/AAPM/ASA consensus 2018" in found.citation
    normal = safety.amend_safety_result(
        database,
        users["physician"],
        result.id,
        SafetyResultInput(
            check_id="liver-enzymes", observed_on=today, values={**LIVER, "alt_u_per_l": 32}
        ),
        reason="transcription error",
        clock=clock,
    )
    assert not normal.abnormal and normal.findings == []
    listed = safety.list_safety_results(database, users["pharmacist"], patient_id)
    assert [r.id for r in listed] == [normal.id]
    with pytest.raises(PermissionDenied):
        safety.list_safety_results(database, users["researcher"], patient_id)


@pytest.mark.parametrize(
    ("check_id", "values", "field"),
    [
        ("liver-enzymes", {"alt_u_per_l": 62}, "values.alt_uln_u_per_l"),
        ("liver-enzymes", {**LIVER, "bilirubin": 3}, "values.bilirubin"),
        ("liver-enzymes", {**LIVER, "alt_u_per_l": -1}, "values.alt_u_per_l"),
        ("cognition", {"moca_score": 31}, "values.moca_score"),
        ("cognition", {"moca_score": 25.5}, "values.moca_score"),
        ("urinary-symptoms", {"frequency": True}, "values.urgency"),
        ("misuse-screen", {"craving": "maybe"}, "values.non_prescribed_ketamine"),
        ("eyesight", {}, "check_id"),
    ],
)
def test_a_wrong_safety_value_is_refused_naming_it_and_nothing_is_written(
    database: Database,
    users: dict[str, Actor],
    check_id: str,
    values: dict[str, object],
    field: str,
) -> None:
    clock = clinic_noon()
    patient_id = _patient_of(database, signed_order(database, users))
    data = SafetyResultInput(check_id=check_id, observed_on=clock.today(), values=values)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput) as caught:
        safety.record_safety_result(database, users["nurse"], patient_id, data, clock=clock)
    assert caught.value.field == field
    assert _count(database, SafetyResult) == 0


def test_a_safety_result_in_the_future_is_refused(
    database: Database, users: dict[str, Actor]
) -> None:
    clock = clinic_noon()
    patient_id = _patient_of(database, signed_order(database, users))
    data = SafetyResultInput(
        check_id="cognition",
        observed_on=clock.today() + timedelta(days=1),
        values={"moca_score": 20},
    )
    with pytest.raises(InvalidInput) as caught:
        safety.record_safety_result(database, users["nurse"], patient_id, data, clock=clock)
    assert caught.value.field == "observed_on"
