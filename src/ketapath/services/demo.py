"""A demo clinic: one user per role with a fresh random password, a few patients, two
sessions today (one running), the controlled-drug ledger that stocked its bag, and a course
given ten weeks ago with its diary and follow-ups (so the outcome card has something to show).

For trying the system on a laptop (``ketapath serve --demo``); never for real patients.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from typing import Any

import yaml

from ketapath.services import (
    assessments,
    auth,
    diary,
    indicators,
    ledger,
    opioids,
    orders,
    patients,
    screening,
    sessions,
)
from ketapath.services.assessments import AssessmentInput
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.indicators import IndicatorsInput
from ketapath.services.ledger import DispenseInput, LocationInput, ProductInput, ReceiptInput
from ketapath.services.opioids import AgreeInput, DoseInput
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import ROLES, SYSTEM, Actor
from ketapath.services.sessions import ChartWrite, ScheduleRequest
from ketapath.store.db import Database

_CONSENTED: dict[str, Any] = {
    "pregnancy": "not_applicable",
    "consent": "given",
    "assessment": {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
        "multidisciplinary_care": True,
    },
    "purpose": ["pain_relief", "opioid_reduction"],
}

DEMO_PATIENTS: tuple[dict[str, Any], ...] = (
    {
        **_CONSENTED,
        "name": "Jordan Demo",
        "birth_date": "1968-02-14",
        "sex": "female",
        "pregnancy": "not_pregnant",
        "weight_kg": 72.0,
        "height_cm": 168.0,
        "diagnoses": ["crps-1"],
        "medications": [
            {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
            {"name": "pregabalin", "dose": 150, "unit": "mg", "frequency": "bd", "route": "oral"},
        ],
    },
    {
        **_CONSENTED,
        "name": "Casey Sample",
        "birth_date": "1955-09-03",
        "sex": "male",
        "weight_kg": 88.0,
        "height_cm": 181.0,
        "diagnoses": ["phantom-limb"],
        "comorbidities": ["hypertension"],
        "medications": [
            {"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd", "route": "oral"}
        ],
    },
    {
        **_CONSENTED,
        "name": "Riley Testcase",
        "birth_date": "1979-06-21",
        "sex": "female",
        "pregnancy": "not_pregnant",
        "weight_kg": 61.0,
        "height_cm": 160.0,
        "diagnoses": ["sci-pain"],
        "medications": [],
        "purpose": ["pain_relief"],
    },
)


def _seed_000_case() -> dict[str, Any]:
    """The packaged demo patient (the published UCSF case), as the clinical CLI's demo uses it."""
    text = resources.files("ketapath.examples").joinpath("demo-patient.yaml").read_text("utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    document.pop("id", None)
    return document


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    password: str


def seed_demo(db: Database) -> list[DemoUser]:
    """Create the demo users (user name = role) and patients; returns the passwords."""
    created = []
    for role in ROLES:
        password = secrets.token_urlsafe(9)
        auth.add_user(db, SYSTEM, role, role, password, full_name=f"Demo {role}")
        created.append(DemoUser(role, role, password))
    accounts = {u.role: Actor(u.id, u.username, u.role) for u in auth.list_users(db, SYSTEM)}
    nurse, physician = accounts["nurse"], accounts["physician"]
    today = clinic_clock().today()
    for number, demo in enumerate((_seed_000_case(), *DEMO_PATIENTS)):
        # weighed today, so that a demo order shows the date of the weight it used
        document = {"weight_measured_on": today.isoformat(), **demo}
        patient = patients.create_patient(db, nurse, document)
        # A baseline pain score for everyone; the first patient is also screened, so that
        # the pages show each kind of record. The answers are invented demo values.
        assessments.record_assessment(
            db,
            nurse,
            patient.id,
            AssessmentInput(instrument_id="nrs", answers={"pain": 7 - number % 3}),
        )
        if number == 0:
            screening.run_screening(db, physician, patient.id)
            _demo_session(db, physician, nurse, patient.id, chair="Chair 1", running=False)
        if document.get("name") == "Casey Sample":
            _demo_finished_course(db, physician, nurse, patient.id)
        if document.get("name") == "Jordan Demo":
            _demo_opioid_plan(db, physician, nurse, patient.id)
            screening.run_screening(db, physician, patient.id)
            running = _demo_session(db, physician, nurse, patient.id, chair="Chair 2", running=True)
            _demo_ledger(db, accounts["pharmacist"], nurse, running)
    return created


def _demo_session(
    db: Database, physician: Actor, nurse: Actor, patient_id: int, *, chair: str, running: bool
) -> int:
    """A signed ASRA starting dose scheduled today in ``chair``; ``running``: checked in and
    started up to half an hour ago (never before the clinic's midnight), one set of vitals.
    The values are invented demo values."""
    clock = clinic_clock()
    order = orders.sign_order(
        db,
        physician,
        patient_id,
        SignRequest(protocol_id="asra-initial", setting="clinic", override_reason="Demo: reviewed"),
        clock=clock,
    )
    request = ScheduleRequest(first_date=clock.today(), chair=chair)
    (session, *_) = sessions.schedule_course(db, nurse, order.id, request, clock=clock)
    if running:
        _demo_chart(db, nurse, session.id, clock)
    return session.id


def _demo_chart(db: Database, nurse: Actor, session_id: int, clock: ClinicClock) -> None:
    now = clock.now()
    began = max(now - timedelta(minutes=30), clock.start_of(clock.today()))
    vitals = {
        "heart_rate": 76,
        "systolic": 128,
        "diastolic": 80,
        "spo2": 98,
        "respiratory_rate": 14,
        "sedation": 0,
    }
    entries: list[dict[str, Any]] = [
        {
            "kind": "check_in",
            "occurred_at": began,
            "consent_confirmed": True,
            "fasting_confirmed": True,
            "escort_present": True,
            "allergies_confirmed": True,
            "pregnancy_test": "negative",
            "baseline": vitals,
            "baseline_pain_nrs": 7,
        },
        {"kind": "start", "occurred_at": began + (now - began) / 3},
        {
            "kind": "vitals",
            "occurred_at": began + 2 * (now - began) / 3,
            **vitals,
            "heart_rate": 82,
        },
    ]
    for seq, entry in enumerate(entries):
        write = ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
        sessions.chart(db, nurse, session_id, write, clock=clock)


DEMO_PRODUCT = ProductInput(
    name="Ketamine 50 mg/mL, 10 mL vial",
    strength_mg_per_ml=Decimal(50),
    container_ml=Decimal(10),
    manufacturer="Demo Pharma",
)
DEMO_DRAWN_ML = Decimal(2)  # 100 mg of 50 mg/mL for the running session's bag


def _demo_ledger(db: Database, pharmacist: Actor, nurse: Actor, session_id: int) -> None:
    """The controlled-drug ledger: one product in the CD safe, a box of ten vials received
    today, and the bag of the running session dispensed from it at the strength its pump is
    programmed for. Supplier, lot and invoice are invented demo values."""
    clock = clinic_clock()
    product = ledger.add_product(db, pharmacist, DEMO_PRODUCT)
    location = ledger.add_location(
        db, pharmacist, LocationInput(name="CD safe", description="Demo: treatment room safe")
    )
    ledger.receive(
        db,
        pharmacist,
        ReceiptInput(
            product_id=product.id,
            location_id=location.id,
            lot="DEMO-24A",
            expiry=clock.today() + timedelta(days=540),
            containers=10,
            received_on=clock.today(),
            supplier_name="Demo Wholesale Ltd",
            supplier_address="1 Example Street, Demo Town",
            supplier_registration="RD0000000",
            invoice_number="DEMO-0001",
        ),
        clock=clock,
    )
    detail = sessions.get_session(db, nurse, session_id, clock=clock)
    strength = detail.programme.concentration_mg_per_ml if detail.programme else 1.0
    drawn_mg = DEMO_DRAWN_ML * DEMO_PRODUCT.strength_mg_per_ml
    ledger.dispense(
        db,
        nurse,
        DispenseInput(
            session_id=session_id,
            product_id=product.id,
            location_id=location.id,
            lot="DEMO-24A",
            volume_ml=DEMO_DRAWN_ML,
            final_volume_ml=(drawn_mg / Decimal(repr(strength))).quantize(Decimal("0.01")),
        ),
        clock=clock,
    )


def _demo_opioid_plan(db: Database, physician: Actor, nurse: Actor, patient_id: int) -> None:
    """A taper of the patient's oxycodone started four weeks ago, and two follow-ups.

    The taper (10% of the current dose a week) is within the CDC 2022 rate for shorter use;
    the doses taken are invented demo values.
    """
    started = clinic_clock().today() - timedelta(days=28)
    opioids.agree_opioid_plan(
        db,
        physician,
        patient_id,
        AgreeInput.model_validate(
            {
                "taper": {
                    "step_percent": 10,
                    "every_days": 7,
                    "start_date": started.isoformat(),
                    "basis": "current",
                    "round_to": 5,
                },
                "notes": "Demo: GP informed of each step; relapse plan: back to the last step.",
            }
        ),
    )
    for days_ago, daily_mg in ((21, 35), (7, 30)):
        opioids.record_opioid_dose(
            db,
            nurse,
            patient_id,
            DoseInput.model_validate(
                {
                    "taken_on": (started + timedelta(days=28 - days_ago)).isoformat(),
                    "medications": [
                        {"name": "oxycodone", "daily_dose": daily_mg, "unit": "mg", "route": "oral"}
                    ],
                }
            ),
        )


# The demo's finished course: one guideline starting dose given ten weeks ago. Every value
# is an invented demo value (baseline NRS 7, relief to 2-3 for about five weeks, then pain
# coming back; morphine 60 mg/day before, 40 mg/day a month later).
FINISHED_DAYS_AGO = 70
FINISHED_DIARY: tuple[int, ...] = (3, 2, 2, 3, 2, 2, 2, 3, 2, 2) * 3 + (
    3,
    3,
    2,
    3,
    3,
    4,
    4,
    5,
    5,
    6,
    6,
)
FOLLOW_UPS: tuple[tuple[int, int], ...] = ((7, 2), (14, 2), (28, 3))  # (days after, NRS)


def _at(clock: ClinicClock, day: date, hour: int) -> datetime:
    """``hour`` o'clock on a clinic ``day``, as an aware time."""
    return clock.start_of(day) + timedelta(hours=hour)


def _fixed(day: date, hour: int = 20) -> ClinicClock:
    """The clinic's clock stopped at ``hour`` on ``day`` (the demo's past is written on it)."""
    zone = clinic_clock().zone
    start = ClinicClock(zone).start_of(day)
    return ClinicClock(zone, fixed=(start + timedelta(hours=hour)).astimezone(UTC))


def _demo_finished_course(db: Database, physician: Actor, nurse: Actor, patient_id: int) -> None:
    """A course given ten weeks ago with what followed: baseline NRS and BPI-SF, the
    indicators of success agreed, the session charted from check-in to completion, five
    weeks and more of diary, follow-ups at 1, 2 and 4 weeks (the 8-week one not done, so it
    is overdue), and the opioid dose a month later. No repeat decision: the physician makes
    it on the patient page."""
    today = clinic_clock().today()
    day = today - timedelta(days=FINISHED_DAYS_AGO)
    screening.run_screening(db, physician, patient_id)
    order = orders.sign_order(
        db,
        physician,
        patient_id,
        SignRequest(protocol_id="asra-initial", setting="clinic", override_reason="Demo: reviewed"),
    )
    on_day = _fixed(day, 13)
    for instrument, answers in (
        ("nrs", {"pain": 7}),
        ("bpi-sf", _bpi(7, 6)),
    ):
        assessments.record_assessment(
            db,
            nurse,
            patient_id,
            AssessmentInput(
                instrument_id=instrument,
                answers=answers,
                administered_at=_at(on_day, day, 8),
                order_id=order.id,
                label="baseline",
            ),
            clock=on_day,
        )
    indicators.record_indicators(
        db,
        physician,
        patient_id,
        IndicatorsInput.model_validate(
            {
                "order_id": order.id,
                "indicators": {
                    "pain_reduction_percent": 30,
                    "relief_days": 28,
                    "opioid_reduction_percent": 25,
                    "function_goal": "Demo: walk to the shops and back",
                },
            }
        ),
    )
    (given, *_) = sessions.schedule_course(
        db, nurse, order.id, ScheduleRequest(first_date=day, chair="Chair 3"), clock=on_day
    )
    _chart_whole_session(db, nurse, given.id, day, on_day)
    _demo_diary(db, nurse, order.id, day)
    _demo_follow_ups(db, nurse, patient_id, order.id, day)
    opioids.record_opioid_dose(
        db,
        nurse,
        patient_id,
        DoseInput.model_validate(
            {
                "taken_on": (day + timedelta(days=28)).isoformat(),
                "medications": [
                    {"name": "morphine", "daily_dose": 40, "unit": "mg", "route": "oral"}
                ],
                "note": "Demo: follow-up at 4 weeks",
            }
        ),
    )


def _bpi(pain: int, interference: int) -> dict[str, int]:
    items = ("worst", "least", "average", "now")
    others = ("general_activity", "mood", "walking", "normal_work", "relations", "sleep")
    return {
        **{item: pain for item in items},
        **{item: interference for item in others},
        "enjoyment": interference,
    }


def _chart_whole_session(
    db: Database, nurse: Actor, session_id: int, day: date, clock: ClinicClock
) -> None:
    vitals = {
        "heart_rate": 72,
        "systolic": 124,
        "diastolic": 78,
        "spo2": 98,
        "respiratory_rate": 14,
        "sedation": 0,
    }
    began = _at(clock, day, 9)
    entries: list[dict[str, Any]] = [
        {
            "kind": "check_in",
            "occurred_at": began,
            "consent_confirmed": True,
            "fasting_confirmed": True,
            "escort_present": True,
            "allergies_confirmed": True,
            "pregnancy_test": "not_applicable",
            "baseline": vitals,
            "baseline_pain_nrs": 7,
        },
        {"kind": "start", "occurred_at": began + timedelta(minutes=15)},
        {"kind": "vitals", "occurred_at": began + timedelta(minutes=75), **vitals},
        {"kind": "complete", "occurred_at": began + timedelta(minutes=195)},
    ]
    for seq, entry in enumerate(entries):
        write = ChartWrite.model_validate({"expected_seq": seq, "entry": entry})
        sessions.chart(db, nurse, session_id, write, clock=clock)


def _demo_diary(db: Database, nurse: Actor, order_id: int, day: date) -> None:
    """The patient's diary from the day after the session, written day by day.

    The diary's rate limit counts writes in memory at the clock's times; the demo's past
    writes are forgotten afterwards, so that they count against nobody (the demo is seeded
    before the server takes any request)."""
    link = diary.create_link(db, nurse, order_id, days_valid=60, clock=_fixed(day, 14))
    token = link.url.rsplit("/", 1)[1]
    opened = diary.open_link(db, token, clock=_fixed(day, 15))
    diary.reset_rate_limits()
    try:
        for offset, pain in enumerate(FINISHED_DIARY, start=1):
            entry_day = day + timedelta(days=offset)
            diary.record_entry(
                db,
                opened.session,
                {"day": entry_day.isoformat(), "pain_nrs": pain, "sleep_quality": 8 - pain // 2},
                clock=_fixed(entry_day),
            )
    finally:
        diary.reset_rate_limits()


def _demo_follow_ups(db: Database, nurse: Actor, patient_id: int, order_id: int, day: date) -> None:
    for offset, pain in FOLLOW_UPS:
        when = day + timedelta(days=offset)
        clock = _fixed(when, 13)
        answers: list[tuple[str, dict[str, int]]] = [
            ("nrs", {"pain": pain}),
            ("bpi-sf", _bpi(pain, 3)),
        ]
        if offset == 28:
            answers.append(("pgic", {"change": 2}))
        for instrument, given in answers:
            assessments.record_assessment(
                db,
                nurse,
                patient_id,
                AssessmentInput(
                    instrument_id=instrument,
                    answers=given,
                    administered_at=_at(clock, when, 11),
                    order_id=order_id,
                    label="follow-up",
                    timepoint_days=offset,
                ),
                clock=clock,
            )
