"""Assessments are scored on the way in by the instruments of the knowledge base."""

from __future__ import annotations

import pytest

from ketapath.domain import instruments
from ketapath.services import assessments, patients
from ketapath.services.assessments import AssessmentInput
from ketapath.services.errors import Conflict, InvalidInput, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

DOCUMENT = {"name": "Sam Scored", "sex": "female", "weight_kg": 64, "age_years": 38}
PHQ9 = {f"q{i}": answer for i, answer in enumerate([1, 2, 3, 0, 1, 2, 1, 0, 0], start=1)}


@pytest.fixture
def patient_id(database: Database, users: dict[str, Actor]) -> int:
    return patients.create_patient(database, users["nurse"], DOCUMENT).id


def test_the_stored_score_is_the_instrument_module_s_score_of_the_answers(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    stored = assessments.record_assessment(
        database, users["nurse"], patient_id, AssessmentInput(instrument_id="phq9", answers=PHQ9)
    )
    expected = instruments.score("phq9", PHQ9)
    assert stored.total == expected.total
    assert stored.score == expected.to_dict()
    assert stored.answers == PHQ9


def test_the_instrument_id_is_stored_in_its_canonical_spelling(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    stored = assessments.record_assessment(
        database,
        users["nurse"],
        patient_id,
        AssessmentInput(instrument_id="NRS", answers={"pain": 6}),
    )
    assert stored.instrument_id == "nrs"
    assert stored.total == 6


@pytest.mark.parametrize(
    ("instrument_id", "answers", "field"),
    [
        ("no-such-scale", {"pain": 3}, "instrument_id"),
        ("nrs", {"pain": 11}, "answers.pain"),
        ("nrs", {"pain": "a lot"}, "answers.pain"),
        ("nrs", {"mood": 3}, "answers.mood"),
    ],
)
def test_a_wrong_instrument_or_answer_is_refused_naming_it(
    database: Database,
    users: dict[str, Actor],
    patient_id: int,
    instrument_id: str,
    answers: dict[str, object],
    field: str,
) -> None:
    with pytest.raises(InvalidInput) as caught:
        assessments.record_assessment(
            database,
            users["nurse"],
            patient_id,
            AssessmentInput(instrument_id=instrument_id, answers=answers),
        )
    assert caught.value.field == field
    assert assessments.list_assessments(database, users["nurse"], patient_id) == []


def test_an_amendment_is_rescored_and_keeps_the_original(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    first = assessments.record_assessment(
        database,
        users["nurse"],
        patient_id,
        AssessmentInput(instrument_id="nrs", answers={"pain": 8}),
    )
    second = assessments.amend_assessment(
        database,
        users["physician"],
        first.id,
        AssessmentInput(instrument_id="nrs", answers={"pain": 3}),
        reason="patient meant 3",
    )
    assert (second.total, second.amends_id, second.reason) == (3, first.id, "patient meant 3")
    history = assessments.assessment_history(database, users["nurse"], second.id)
    assert [(a.total, a.recorded_by) for a in history] == [(8, "nurse"), (3, "physician")]
    with pytest.raises(Conflict):
        assessments.amend_assessment(
            database,
            users["nurse"],
            first.id,
            AssessmentInput(instrument_id="nrs", answers={"pain": 4}),
            reason="stale",
        )


def test_an_amendment_cannot_change_the_instrument(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    first = assessments.record_assessment(
        database,
        users["nurse"],
        patient_id,
        AssessmentInput(instrument_id="nrs", answers={"pain": 8}),
    )
    with pytest.raises(InvalidInput) as caught:
        assessments.amend_assessment(
            database,
            users["nurse"],
            first.id,
            AssessmentInput(instrument_id="phq9", answers=PHQ9),
            reason="wrong form",
        )
    assert caught.value.field == "instrument_id"


@pytest.mark.parametrize("role", ["pharmacist", "researcher", "admin"])
def test_only_clinicians_record_assessments(
    database: Database, users: dict[str, Actor], patient_id: int, role: str
) -> None:
    with pytest.raises(PermissionDenied):
        assessments.record_assessment(
            database,
            users[role],
            patient_id,
            AssessmentInput(instrument_id="nrs", answers={"pain": 2}),
        )


def test_listing_assessments_takes_the_same_number_of_queries_for_one_or_five(
    database: Database, users: dict[str, Actor]
) -> None:
    from tests.integration.conftest import count_statements

    from ketapath.services import patients

    ids = []
    for _ in range(2):
        ids.append(
            patients.create_patient(
                database,
                users["nurse"],
                {"name": "Count", "age_years": 40, "sex": "male", "weight_kg": 70},
            ).id
        )
    for patient_id, count in zip(ids, (1, 5), strict=True):
        for pain in range(count):
            assessments.record_assessment(
                database,
                users["nurse"],
                patient_id,
                AssessmentInput(instrument_id="nrs", answers={"pain": pain}),
            )
    reader = users["physician"]
    one, _ = count_statements(
        database, lambda: assessments.list_assessments(database, reader, ids[0])
    )
    five, listed = count_statements(
        database, lambda: assessments.list_assessments(database, reader, ids[1])
    )
    assert five == one and len(listed) == 5
    assert all(a.recorded_by == "nurse" for a in listed)
