"""A diagnosis written as the consensus tables word it is stored whole (SQLite and PostgreSQL),
and the longest wording in the vocabulary fits the record's bound."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text
from tests.integration.test_services_patients import a_patient

from ketapath.domain.patient import CODE_LENGTH
from ketapath.knowledge.clinical import knowledge
from ketapath.services import patients
from ketapath.services.errors import InvalidInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import Diagnosis

TABLE_5_LINE = "Elevated intracranial pressure, including secondary traumatic brain injury or tumor"


def test_every_wording_in_the_vocabulary_fits_a_recorded_diagnosis() -> None:
    longest = max((t for c in knowledge().conditions.entries for t in c.terms), key=len)
    assert len(longest) <= CODE_LENGTH, longest


def test_the_tables_longest_wording_is_stored_whole(
    database: Database, users: dict[str, Actor]
) -> None:
    record = patients.create_patient(
        database, users["nurse"], a_patient(diagnoses=["CRPS"], comorbidities=[TABLE_5_LINE])
    )
    assert record.document["comorbidities"][0]["code"] == TABLE_5_LINE
    long_line = "Elevated intraocular pressure, acute globe injury, or glaucoma (left eye)"
    patients.create_patient(database, users["nurse"], a_patient(diagnoses=[long_line]))
    with database.transaction() as session:
        codes = session.scalars(select(Diagnosis.code)).all()
    assert long_line in codes


def test_a_diagnosis_longer_than_the_bound_is_refused_naming_the_field(
    database: Database, users: dict[str, Actor]
) -> None:
    with pytest.raises(InvalidInput, match=r"diagnoses\[0\]\.code"):
        patients.create_patient(
            database, users["nurse"], a_patient(diagnoses=["x" * (CODE_LENGTH + 1)])
        )


def test_the_diagnoses_table_stays_append_only_after_the_migration(
    database: Database, users: dict[str, Actor]
) -> None:
    # Migration 0005 rebuilds the SQLite table; its guards must come back with it.
    patients.create_patient(database, users["nurse"], a_patient(diagnoses=[TABLE_5_LINE]))
    for statement in ("UPDATE diagnoses SET code = 'changed'", "DELETE FROM diagnoses"):
        with pytest.raises(Exception, match="append-only"), database.engine.begin() as conn:
            conn.execute(text(statement))
