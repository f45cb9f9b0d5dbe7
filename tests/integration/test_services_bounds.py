"""Dates and numbers are bounded in the services on both databases: "today" is the clinic's
(KETAPATH_TIMEZONE), no record is dated before 1900 or before the patient's birth, and a
stored record that no longer passes the bounds is refused rather than computed with."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from tests.integration.test_services_opioids import TWO_OPIOIDS
from tests.integration.test_services_patients import a_patient

from ketapath.services import assessments, opioids, orders, patients, research
from ketapath.services.assessments import AssessmentInput
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import InvalidInput
from ketapath.services.opioids import DoseInput, PlanInput
from ketapath.services.orders import PlanRequest
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import PatientVersion, utcnow

# Always at least one calendar day apart (UTC+14 and UTC-12).
AHEAD = ClinicClock(ZoneInfo("Pacific/Kiritimati"))
BEHIND = ClinicClock(ZoneInfo("Etc/GMT+12"))


def test_a_birth_on_the_clinics_today_is_accepted_where_it_is_today_only(
    database: Database, users: dict[str, Actor]
) -> None:
    newborn = a_patient(birth_date=AHEAD.today().isoformat(), weight_kg=3.4, height_cm=50)
    created = patients.create_patient(database, users["nurse"], newborn, clock=AHEAD)
    assert created.document["birth_date"] == AHEAD.today().isoformat()
    with pytest.raises(InvalidInput, match="in the future") as caught:
        patients.create_patient(database, users["nurse"], newborn, clock=BEHIND)
    assert caught.value.field == "patient.birth_date"


def dose_on(day: str) -> DoseInput:
    return DoseInput.model_validate(
        {"taken_on": day, "medications": [{"name": "morphine", "daily_dose": 30, "unit": "mg"}]}
    )


def test_a_dose_day_must_be_between_the_birth_date_and_the_clinics_today(
    database: Database, users: dict[str, Actor]
) -> None:
    born = patients.create_patient(database, users["nurse"], a_patient(birth_date="1970-05-04"))
    nurse = users["nurse"]
    for day, words in (
        ("1899-12-31", "before 1900-01-01"),
        ("1970-05-03", "before the birth date"),
        ((AHEAD.today()).isoformat(), "in the future"),
    ):
        with pytest.raises(InvalidInput, match=words) as caught:
            opioids.record_opioid_dose(database, nurse, born.id, dose_on(day), clock=BEHIND)
        assert caught.value.field == "taken_on"
    recorded = opioids.record_opioid_dose(
        database, nurse, born.id, dose_on(AHEAD.today().isoformat()), clock=AHEAD
    )
    with pytest.raises(InvalidInput, match="before the birth date"):
        opioids.amend_opioid_dose(
            database, nurse, recorded.id, dose_on("1960-01-01"), reason="typo", clock=AHEAD
        )


@pytest.mark.parametrize(
    ("when", "words"),
    [
        (datetime(1, 1, 1, tzinfo=UTC), "before 1900-01-01"),
        (datetime(9999, 12, 31, 23, 59, tzinfo=UTC), "in the future"),
        (datetime(1970, 5, 3, 12, tzinfo=UTC), "before the birth date"),
    ],
)
def test_an_assessment_time_outside_the_patients_life_is_refused(
    database: Database, users: dict[str, Actor], when: datetime, words: str
) -> None:
    born = patients.create_patient(database, users["nurse"], a_patient(birth_date="1970-05-04"))
    data = AssessmentInput(instrument_id="nrs", answers={"pain": 5}, administered_at=when)
    with pytest.raises(InvalidInput, match=words) as caught:
        assessments.record_assessment(database, users["nurse"], born.id, data)
    assert caught.value.field == "administered_at"


def test_a_taper_cannot_start_more_than_a_year_ahead(
    database: Database, users: dict[str, Actor]
) -> None:
    patient_id = patients.create_patient(database, users["nurse"], TWO_OPIOIDS).id
    start = AHEAD.today() + timedelta(days=400)
    body = {
        "taper": {
            "step_percent": 10,
            "every_days": 7,
            "start_date": start.isoformat(),
            "opioid_id": "morphine",
            "start_daily_dose": 60,
            "unit": "mg",
        }
    }
    with pytest.raises(InvalidInput) as caught:
        opioids.preview_opioid_plan(
            database, users["physician"], patient_id, PlanInput.model_validate(body), clock=AHEAD
        )
    assert caught.value.field == "taper.start_date"


def test_a_stored_record_outside_the_bounds_is_refused_not_computed_with(
    database: Database, users: dict[str, Actor]
) -> None:
    created = patients.create_patient(database, users["nurse"], a_patient())
    with database.transaction() as session:  # as a record stored before the bounds existed
        first = session.get(PatientVersion, 1)
        assert first is not None
        session.add(
            PatientVersion(
                patient_id=created.id,
                version=2,
                document={**first.document, "weight_kg": 5e-324},
                full_name=first.full_name,
                birth_date=first.birth_date,
                sex=first.sex,
                recorded_at=utcnow(),
                amends_id=first.id,
                reason="legacy",
            )
        )
    with pytest.raises(InvalidInput, match="does not pass the record's bounds") as caught:
        orders.preview_course(
            database, users["physician"], created.id, PlanRequest(protocol_id="asra-initial")
        )
    assert caught.value.field == "patient.weight_kg"


def test_researchers_age_bands_are_counted_on_the_clinics_today(
    database: Database, users: dict[str, Actor]
) -> None:
    today = AHEAD.today()
    birthday = today.replace(year=today.year - 40, day=min(today.day, 28))
    born = a_patient(birth_date=birthday.isoformat())
    patients.create_patient(database, users["nurse"], born, clock=AHEAD)
    (ahead,) = research.research_patients(database, users["researcher"], clock=AHEAD)
    (behind,) = research.research_patients(database, users["researcher"], clock=BEHIND)
    assert ahead.age_band == "40-49"
    # one or two days earlier in the clinic behind UTC; the 40th birthday has not come there
    # when it falls on the clinic-ahead's today
    if birthday.day == today.day:
        assert behind.age_band == "30-39"
