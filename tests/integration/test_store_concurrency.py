"""Several clinicians at once: no lost update, no "database is locked", on both databases."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ketapath.services import assessments, audit, patients
from ketapath.services.assessments import AssessmentInput
from ketapath.services.errors import Conflict
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

DOCUMENT: dict[str, Any] = {
    "name": "Pat Concurrent",
    "sex": "male",
    "weight_kg": 75,
    "age_years": 60,
}


def test_two_simultaneous_amendments_of_one_version_give_one_amendment_and_one_conflict(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = patients.create_patient(database, users["nurse"], DOCUMENT).id
    start = threading.Barrier(2)

    def amend(weight_kg: float, who: str) -> str:
        start.wait()
        try:
            patients.amend_patient(
                database,
                users[who],
                patient_id,
                {**DOCUMENT, "weight_kg": weight_kg},
                reason=f"weighed by {who}",
                expected_version=1,
            )
        except Conflict:
            return "conflict"
        return "amended"

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = sorted(pool.map(amend, [74.0, 76.0], ["nurse", "physician"]))
    assert outcomes == ["amended", "conflict"]
    history = patients.patient_history(database, users["nurse"], patient_id)
    assert [v.version for v in history] == [1, 2]
    assert audit.verify(database).intact


def test_concurrent_writers_all_succeed(database: Database, users: dict[str, Actor]) -> None:
    patient_id = patients.create_patient(database, users["nurse"], DOCUMENT).id
    per_writer = 8

    def write(who: str) -> int:
        for score in range(per_writer):
            assessments.record_assessment(
                database,
                users[who],
                patient_id,
                AssessmentInput(instrument_id="nrs", answers={"pain": score}),
            )
        return per_writer

    with ThreadPoolExecutor(max_workers=4) as pool:
        written = sum(pool.map(write, ["nurse", "physician", "nurse", "physician"]))
    stored = assessments.list_assessments(database, users["physician"], patient_id)
    assert len(stored) == written == 4 * per_writer
    assert audit.verify(database).intact
