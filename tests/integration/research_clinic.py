"""A clinic whose records hold every kind of identifier ketapath can store, for the research
export's tests: names, birth dates, a ZIP code, phone and fax numbers, e-mail addresses, a
social security number, record numbers, URLs, an IP address, licence, plate and device numbers
typed into free-text fields of the record, the chart, the diary and the safety results; staff
with distinctive user names; an escort's name; and dated events of every kind.

``build_clinic`` makes it through the services (as the clinic would) and returns what each
patient's records hold: their real dates and the identifiers that must never reach an export.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import TypeAdapter

from ketapath.domain.session_events import ChartEntry
from ketapath.services import (
    assessments,
    auth,
    diary,
    orders,
    patients,
    safety,
    screening,
    sessions,
)
from ketapath.services.assessments import AssessmentInput
from ketapath.services.clock import ClinicClock
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.services.safety import SafetyResultInput
from ketapath.services.sessions import ChartWrite, ScheduleRequest
from ketapath.store.db import Database
from ketapath.store.models import Patient

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)
TODAY = datetime.now(UTC).date()
# The day the export is made: ten days after the first sessions (the clock of every later
# record of the clinic).
EXPORT_DAY = 10
PASSWORD = "correct horse battery"

# Identifiers typed into free text (Safe Harbor (B), (D)-(R)); none may reach an export.
PHONE = "555-867-5309"
FAX = "555-201-7788"
EMAIL = "wq.daughter@example.org"
SSN = "123-45-6789"
MRN = "MRN-4471-2293"
PLAN_NUMBER = "HPB-88412-Z"
URL = "https://mychart.example.org/p/8841"
IP = "192.168.10.44"
LICENCE = "D1234-56789"
PLATE = "7ABC123"
DEVICE = "SN-PUMP-99871"
STREET = "221B Baker Street"
CITY = "Springfield"
TYPED = (PHONE, FAX, EMAIL, SSN, MRN, PLAN_NUMBER, URL, IP, LICENCE, PLATE, DEVICE, STREET, CITY)


def clock(days: int = 0) -> ClinicClock:
    """The clinic's clock at 12:00 UTC of today plus ``days`` (UTC: no midnight in a chart)."""
    return ClinicClock(
        zone=UTC, fixed=datetime.combine(TODAY + timedelta(days=days), time(12), tzinfo=UTC)
    )


@dataclass
class Person:
    """One patient of the clinic: the identifiers their records hold and their real dates."""

    patient_id: int
    pseudonym: str
    registered: date
    secrets: list[str] = field(default_factory=list)
    dates: dict[str, date] = field(default_factory=dict)


@dataclass
class Clinic:
    staff: dict[str, Actor]
    people: dict[str, Person]

    @property
    def secrets(self) -> list[str]:
        """Everything that must not appear in an export (names, numbers, dates ...)."""
        out = [*TYPED, *self.staff_names]
        for person in self.people.values():
            out += [*person.secrets, person.pseudonym]
            out += [text for day in person.dates.values() for text in date_spellings(day)]
        return out

    @property
    def staff_names(self) -> list[str]:
        return [actor.username for actor in self.staff.values()]


def date_spellings(day: date) -> list[str]:
    """A date as it might be written: ISO, US, European, compact."""
    return [
        day.isoformat(),
        day.strftime("%m/%d/%Y"),
        day.strftime("%d/%m/%Y"),
        day.strftime("%Y%m%d"),
        day.strftime("%d %B %Y"),
    ]


def _staff(database: Database) -> dict[str, Actor]:
    """Staff with user names no export may carry (the audit of who recorded what)."""
    names = {
        "physician": "dr.hortense.blakemore",
        "nurse": "nurse.ravenscroft",
        "researcher": "researcher.okonkwo",
        "admin": "admin.fairweather",
    }
    out = {}
    for role, username in names.items():
        view = auth.add_user(database, SYSTEM, username, role, PASSWORD, full_name=username)
        out[role] = Actor(view.id, view.username, view.role)
    return out


OLDEST: dict[str, Any] = {
    "name": "Wilhelmina Quarrington",
    "birth_date": "1932-03-17",
    "sex": "female",
    "pregnancy": "not_applicable",
    "weight_kg": 58.0,
    "height_cm": 157.0,
    "zip_code": "03601-2210",  # 036: a restricted area (000)
    "diagnoses": [
        "crps-1",
        {"code": f"call {PHONE} or {EMAIL}", "note": f"fax {FAX}"},
        {"code": "G90.511", "note": f"lives at {STREET}, {CITY}"},
    ],
    "medications": [
        {"name": "morphine", "dose": 10, "unit": "mg", "frequency": "bd", "route": "oral"},
        {"name": f"Wilhelmina Quarrington SSN {SSN}"},
    ],
    "allergies": [{"substance": "penicillin", "reaction": f"plan number {PLAN_NUMBER}"}],
    "consent": "given",
    "gp": f"Dr Hortense Blakemore, {STREET}, {CITY}",
    "referrer": f"St Elsewhere Hospital {MRN}",
    "assessment": {
        "central_sensitisation": True,
        "central_sensitisation_evidence": f"IP {IP} licence {LICENCE}",
        "opioid_context": {"poor_opioid_response": True},
        "multidisciplinary_care": True,
        "expectancy": f"see {URL}",
        "goals": f"drive her car {PLATE} again; pump {DEVICE}",
    },
    "purpose": ["pain_relief"],
}
YOUNGER: dict[str, Any] = {
    "name": "Bartholomew Ozymandias",
    "birth_date": "1979-06-21",
    "sex": "male",
    "weight_kg": 84.0,
    "height_cm": 181.0,
    "zip_code": "90210",
    "diagnoses": ["phantom-limb"],
    "medications": [{"name": "oxycodone", "dose": 20, "unit": "mg"}],
    "consent": "given",
    "assessment": {"central_sensitisation": True, "opioid_context": {"poor_opioid_response": True}},
    "purpose": ["pain_relief", "opioid_reduction"],
}
AGE_ONLY: dict[str, Any] = {
    "name": "Cornelius Vanderpool",
    "age_years": 93,
    "sex": "male",
    "weight_kg": 70.0,
    "diagnoses": ["fibromyalgia"],
    "consent": "pending",
}


def _register(database: Database, staff: dict[str, Actor], document: dict[str, Any]) -> Person:
    record = patients.create_patient(database, staff["nurse"], document, clock=clock())
    with database.read_only() as session:
        row = session.get(Patient, record.id)
        assert row is not None
        registered = clock().date_of(row.created_at)
    secrets = [document["name"], *document["name"].split()]
    if "birth_date" in document:
        born = date.fromisoformat(document["birth_date"])
        secrets += [born.strftime("%Y")] if born.year < 1940 else []
        person = Person(record.id, record.pseudonym, registered, secrets, {"birth": born})
    else:
        person = Person(record.id, record.pseudonym, registered, secrets)
    person.dates["registered"] = registered
    return person


class _Chart:
    """Charts one session as the nurse, at minutes after 09:00 of the session's day."""

    def __init__(self, database: Database, nurse: Actor, session_id: int, day: int) -> None:
        self.database, self.nurse, self.session_id = database, nurse, session_id
        self.clock = clock(day)
        self.seen = 0

    def at(self, minutes: float) -> datetime:
        assert self.clock.fixed is not None
        return self.clock.fixed.replace(hour=9, minute=0) + timedelta(minutes=minutes)

    def __call__(self, kind: str, minutes: float, **fields: Any) -> None:
        entry = ENTRY.validate_python({"kind": kind, "occurred_at": self.at(minutes), **fields})
        write = ChartWrite(expected_seq=self.seen, entry=entry)
        done = sessions.chart(self.database, self.nurse, self.session_id, write, clock=self.clock)
        self.seen = done.chart.last_seq

    def check_in(self) -> None:
        self(
            "check_in",
            0,
            consent_confirmed=True,
            fasting_confirmed=True,
            escort_present=True,
            allergies_confirmed=True,
            pregnancy_test="not_applicable",
            baseline={"heart_rate": 72, "systolic": 124, "diastolic": 78, "spo2": 98,
                      "respiratory_rate": 14, "sedation": 0},
            baseline_pain_nrs=7,
            note=f"daughter's phone {PHONE}",
        )  # fmt: skip


def _course(
    database: Database, staff: dict[str, Actor], person: Person, protocol_id: str
) -> tuple[int, list[int]]:
    """A screened, signed and scheduled course from today: the order and its session ids."""
    screening.run_screening(database, staff["physician"], person.patient_id, clock=clock())
    request = SignRequest(protocol_id=protocol_id, override_reason=f"reviewed; GP {PHONE} agrees")
    physician = staff["physician"]
    order = orders.sign_order(database, physician, person.patient_id, request, clock=clock())
    person.dates["signed"] = TODAY
    scheduled = sessions.schedule_course(
        database,
        staff["nurse"],
        order.id,
        ScheduleRequest(first_date=TODAY, chair="Chair 7"),
        clock=clock(),
    )
    for s in scheduled:
        person.dates[f"session {s.session_number}"] = s.scheduled_on
    return order.id, [s.id for s in scheduled]


def _chart_oldest(database: Database, staff: dict[str, Actor], session_ids: list[int]) -> None:
    first = _Chart(database, staff["nurse"], session_ids[0], 0)
    first.check_in()
    first("start", 10)
    first(
        "side_effect",
        30,
        effect="nausea-vomiting",
        severity="moderate",
        troublesome=True,
        description=f"asked us to ring {PHONE}",
    )
    first("pause", 31, reason="side_effect")
    first("adjunct", 40, drug="midazolam", dose=1, unit="mg", route="iv")
    first("resume", 91)
    first("note", 100, note=f"Wilhelmina's licence {LICENCE} on file")
    first("stop", 130, reason="patient_request")
    first("begin_observation", 131)
    second = _Chart(database, staff["nurse"], session_ids[1], 2)
    second.check_in()
    second("start", 5)
    second("side_effect", 20, effect="dissociation", severity="mild", cadss6_total=4)
    second("stop", 65, reason="dissociation")


def _assessments(
    database: Database, staff: dict[str, Actor], person: Person, order_id: int, session_id: int
) -> None:
    # administered before the real now (the service checks it): days before registration
    after = {"order_id": order_id, "label": "post-session", "session_id": session_id}
    given = [
        ("baseline", -30, {"order_id": order_id, "label": "baseline"}),
        ("post-session", -3, after),
        ("follow-up", -1, {"order_id": order_id, "label": "follow-up", "timepoint_days": 7}),
    ]
    for name, day, context in given:
        at = datetime.combine(TODAY + timedelta(days=day), time(8, 30), tzinfo=UTC)
        data = AssessmentInput.model_validate(
            {"instrument_id": "nrs", "answers": {"pain": 6}, "administered_at": at, **context}
        )
        assessments.record_assessment(
            database, staff["nurse"], person.patient_id, data, clock=clock(EXPORT_DAY)
        )
        person.dates[f"assessment {name}"] = at.date()


def _diary(database: Database, staff: dict[str, Actor], person: Person, order_id: int) -> None:
    from ketapath.config import Settings

    settings = Settings(public_url="https://clinic.example", secret_key="research-clinic-key")
    diary.reset_rate_limits()  # counted per process: every test's clinic has a link 1
    issued = diary.create_link(
        database, staff["nurse"], order_id, clock=clock(EXPORT_DAY), settings=settings
    )
    token = issued.url.rsplit("/", 1)[1]
    opened = diary.open_link(database, token, client=IP, clock=clock(EXPORT_DAY), settings=settings)
    for day in (0, 1, 5):
        entry = {
            "day": (TODAY + timedelta(days=day)).isoformat(),
            "pain_nrs": 5 - day // 2,
            "sleep_quality": 6,
            "side_effects": [{"effect": "headache", "description": f"email {EMAIL}"}],
            "opioid_doses": [
                {"name": "oxycodone", "dose": 10, "unit": "mg", "times": 2},
                {"name": f"pills from {CITY} pharmacy", "dose": 1, "unit": "mg", "times": 1},
            ],
            "note": f"my neighbour {PHONE} visited",
        }
        diary.record_entry(
            database, opened.session, entry, clock=clock(EXPORT_DAY), settings=settings
        )
        person.dates[f"diary {day}"] = TODAY + timedelta(days=day)


def _safety(database: Database, staff: dict[str, Actor], person: Person) -> None:
    observed = TODAY + timedelta(days=6)
    data = SafetyResultInput(
        check_id="urinary-symptoms",
        observed_on=observed,
        values={
            "frequency": True,
            "urgency": False,
            "dysuria": False,
            "haematuria": False,
            "pelvic_pain": False,
            "urine_test_done": True,
            "urine_test_result": f"lab {CITY} ref {MRN}",
        },
        note=f"results phoned to {PHONE}",
    )
    safety.record_safety_result(
        database, staff["nurse"], person.patient_id, data, clock=clock(EXPORT_DAY)
    )
    person.dates["safety"] = observed
    liver = SafetyResultInput(
        check_id="liver-enzymes",
        observed_on=observed,
        values={"alt_u_per_l": 62, "alt_uln_u_per_l": 40},
    )
    safety.record_safety_result(
        database, staff["nurse"], person.patient_id, liver, clock=clock(EXPORT_DAY)
    )


def build_clinic(database: Database) -> Clinic:
    """The clinic: an oldest patient (93-94 years, restricted ZIP area) with a charted
    3-session course, a diary, assessments and safety results full of typed identifiers; a
    younger patient with a one-session course; a patient known only by age (93)."""
    staff = _staff(database)
    oldest = _register(database, staff, OLDEST)
    oldest.secrets += ["Hortense", "Blakemore", "St Elsewhere Hospital", "03601"]
    younger = _register(database, staff, YOUNGER)
    younger.secrets += ["90210"]
    age_only = _register(database, staff, AGE_ONLY)
    order_id, session_ids = _course(database, staff, oldest, "mixed-kang-3session")
    _chart_oldest(database, staff, session_ids)
    _assessments(database, staff, oldest, order_id, session_ids[0])
    _diary(database, staff, oldest, order_id)
    _safety(database, staff, oldest)
    _course(database, staff, younger, "asra-initial")
    return Clinic(staff, {"oldest": oldest, "younger": younger, "age_only": age_only})
