"""The opioid plan as records (seed 004 section 6), on both databases: OME of the record,
plans agreed by a physician (a fast taper needs a reason), doses recorded at follow-ups and
corrected by amendment, every step audited and nothing overwritten."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from ketapath.services import opioids, patients
from ketapath.services.errors import Conflict, InvalidInput, OrderRefused, PermissionDenied
from ketapath.services.opioids import AgreeInput, DoseInput, PlanInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, OpioidDose, OpioidPlan

TWO_OPIOIDS: dict[str, Any] = {
    "name": "Opi Oid",
    "age_years": 52,
    "sex": "male",
    "weight_kg": 84,
    "diagnoses": ["crps-1"],
    "medications": [
        # 20 mg x 2 = 40 mg/day oxycodone = 60 mg OME (CDC 2022 factor 1.5)
        {"name": "oxycodone", "dose": 20, "unit": "mg", "frequency": "bd", "route": "oral"},
        # 10 mg x 4 = 40 mg/day morphine = 40 mg OME (factor 1)
        {"name": "morphine", "dose": 10, "unit": "mg", "frequency": "qid", "route": "oral"},
        {"name": "pregabalin", "dose": 150, "unit": "mg", "frequency": "bd", "route": "oral"},
    ],
}
START = date(2026, 12, 1)
# CDC 2022 (shorter use): 10% of the original dose a week down to ~30%, then ~10% of the
# remaining dose a week; 10% of the current dose each week never exceeds it.
SLOW_TAPER = {
    "step_percent": 10,
    "every_days": 7,
    "start_date": START.isoformat(),
    "basis": "current",
    "round_to": 5,
}
FAST_TAPER = {"step_percent": 25, "every_days": 7, "start_date": START.isoformat()}


@pytest.fixture
def patient_id(database: Database, users: dict[str, Actor]) -> int:
    return patients.create_patient(database, users["nurse"], TWO_OPIOIDS).id


def agree(database: Database, users: dict[str, Actor], patient_id: int, **body: Any) -> Any:
    return opioids.agree_opioid_plan(
        database, users["physician"], patient_id, AgreeInput.model_validate(body)
    )


def test_the_summary_converts_every_opioid_of_the_record_by_the_named_table(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    summary = opioids.opioid_summary(database, users["pharmacist"], patient_id)
    ome = summary.ome
    assert ome.table_id == "cdc-2022"
    assert "CDC" in ome.table_name
    assert ome.total_ome_mg_per_day == pytest.approx(100.0)
    assert ome.complete is True and ome.total_status == "complete"
    assert sorted(line.opioid_id for line in ome.lines) == ["morphine", "oxycodone"]
    assert all(line.findings == [] or line.findings[0].citation for line in ome.lines)


def test_a_plan_converts_to_one_opioid_and_tapers_and_is_kept_as_agreed(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    view = agree(
        database,
        users,
        patient_id,
        convert_to={"opioid_id": "oxycodone", "route": "oral", "reduce_percent": 25},
        taper=SLOW_TAPER,
        notes="GP letter on every change; relapse plan: back to the last tolerated step.",
    )
    conversion = view.plan.conversion
    assert conversion is not None and view.plan.taper is not None
    # 100 mg OME less 25% = 75 mg OME = 50 mg/day oral oxycodone
    assert conversion.daily_dose == pytest.approx(50.0)
    assert conversion.unit.startswith("mg")
    steps = view.plan.taper.steps
    # the first step is the first reduction: 10% of 50 mg, on the start date
    assert steps[0].daily_dose == pytest.approx(45.0)
    assert steps[0].date == START
    assert steps[1].date == START + timedelta(days=7)
    doses = [s.daily_dose for s in steps]
    assert doses == sorted(doses, reverse=True) and doses[-1] == 0
    assert view.status == "agreed" and view.agreed_by == "physician"
    assert view.override_reason is None
    (listed,) = opioids.list_opioid_plans(database, users["nurse"], patient_id)
    assert listed.plan == view.plan


def test_a_taper_faster_than_the_published_rate_needs_the_physicians_reason(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    body = {
        "convert_to": {"opioid_id": "morphine", "route": "oral", "reduce_percent": 0},
        "taper": FAST_TAPER,
    }
    preview = opioids.preview_opioid_plan(
        database, users["nurse"], patient_id, PlanInput.model_validate(body)
    )
    assert preview.status == "needs_override" and preview.soft_codes
    with pytest.raises(OrderRefused, match="override_reason"):
        agree(database, users, patient_id, **body)
    assert count(database, OpioidPlan) == 0
    view = agree(
        database, users, patient_id, **body, override_reason="short exposure; patient's wish"
    )
    assert view.override_reason == "short exposure; patient's wish"
    assert view.override_codes is not None
    assert view.override_codes.taper == preview.soft_codes
    assert view.plan.taper is not None and view.plan.taper.override is not None
    assert view.plan.taper.override.physician == "physician"
    # the soft findings reach the reader with their plain words and readable citations
    soft = [f for f in view.plan.taper.findings if f.severity == "soft"]
    assert soft and all(f.message and f.citation and "seed" not in f.citation for f in soft)


def test_conversion_to_methadone_is_refused_naming_the_rule(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    with pytest.raises(InvalidInput) as caught:
        agree(
            database,
            users,
            patient_id,
            convert_to={"opioid_id": "methadone", "route": "oral", "reduce_percent": 25},
        )
    assert "methadone" in caught.value.message and "CDC" in caught.value.message
    assert count(database, OpioidPlan) == 0


def test_only_a_physician_agrees_or_withdraws_a_plan(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    body = AgreeInput.model_validate(
        {
            "taper": {
                **SLOW_TAPER,
                "opioid_id": "morphine",
                "route": "oral",
                "start_daily_dose": 40,
                "unit": "mg",
            }
        }
    )
    for role in ("nurse", "pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            opioids.agree_opioid_plan(database, users[role], patient_id, body)
    view = opioids.agree_opioid_plan(database, users["physician"], patient_id, body)
    with pytest.raises(PermissionDenied):
        opioids.withdraw_opioid_plan(database, users["nurse"], view.id, reason="no")
    withdrawn = opioids.withdraw_opioid_plan(
        database, users["physician"], view.id, reason="patient declined the taper"
    )
    assert withdrawn.status == "withdrawn" and withdrawn.withdraw_reason
    with pytest.raises(Conflict):
        opioids.withdraw_opioid_plan(database, users["physician"], view.id, reason="again")
    # the agreed plan is still there, as agreed
    (listed,) = opioids.list_opioid_plans(database, users["physician"], patient_id)
    assert listed.plan == view.plan and listed.status == "withdrawn"


def test_a_taper_of_two_opioids_without_a_conversion_asks_which_opioid(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    with pytest.raises(InvalidInput, match=r"taper\.opioid_id"):
        agree(database, users, patient_id, taper=SLOW_TAPER)


def test_a_plan_reviewed_on_an_older_record_version_is_refused(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    patients.amend_patient(
        database,
        users["nurse"],
        patient_id,
        {**TWO_OPIOIDS, "weight_kg": 80},
        reason="weighed",
        expected_version=1,
    )
    with pytest.raises(Conflict, match="patient_version"):
        agree(
            database,
            users,
            patient_id,
            patient_version=1,
            convert_to={"opioid_id": "oxycodone", "reduce_percent": 25},
        )


def test_doses_recorded_at_follow_up_carry_their_ome_and_the_planned_step(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    agree(
        database,
        users,
        patient_id,
        convert_to={"opioid_id": "oxycodone", "route": "oral", "reduce_percent": 25},
        taper={**SLOW_TAPER, "start_date": "2026-01-05"},
    )
    dose = opioids.record_opioid_dose(
        database,
        users["nurse"],
        patient_id,
        DoseInput.model_validate(
            {
                "taken_on": "2026-01-13",
                "medications": [
                    {
                        "name": "oxycodone",
                        "dose": 20,
                        "unit": "mg",
                        "frequency": "bd",
                        "route": "oral",
                    }
                ],
            }
        ),
    )
    assert dose.ome_mg_per_day == pytest.approx(60.0) and dose.complete
    assert dose.planned is not None and dose.planned.date == date(2026, 1, 12)
    none_taken = opioids.record_opioid_dose(
        database,
        users["physician"],
        patient_id,
        DoseInput.model_validate({"taken_on": "2026-02-01", "medications": []}),
    )
    assert none_taken.ome_mg_per_day == 0 and none_taken.complete
    listed = opioids.list_opioid_doses(database, users["pharmacist"], patient_id)
    assert [d.taken_on.isoformat() for d in listed] == ["2026-01-13", "2026-02-01"]


def test_an_as_needed_opioid_without_a_daily_total_leaves_the_total_incomplete(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    dose = opioids.record_opioid_dose(
        database,
        users["nurse"],
        patient_id,
        DoseInput.model_validate(
            {
                "taken_on": "2026-01-13",
                "medications": [{"name": "oxycodone", "dose": 5, "unit": "mg", "frequency": "prn"}],
            }
        ),
    )
    assert dose.complete is False and dose.ome_mg_per_day is None
    assert dose.result.not_converted == ["oxycodone"]
    assert dose.result.total_status == "not-available"


def test_a_correction_amends_the_dose_record_and_replaces_it_in_the_list(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    body = {
        "taken_on": "2026-01-13",
        "medications": [{"name": "morphine", "daily_dose": 30, "unit": "mg", "route": "oral"}],
    }
    first = opioids.record_opioid_dose(
        database, users["nurse"], patient_id, DoseInput.model_validate(body)
    )
    with pytest.raises(InvalidInput, match="reason"):
        opioids.amend_opioid_dose(
            database, users["nurse"], first.id, DoseInput.model_validate(body), reason=" "
        )
    body["medications"][0]["daily_dose"] = 20
    second = opioids.amend_opioid_dose(
        database, users["nurse"], first.id, DoseInput.model_validate(body), reason="misread"
    )
    assert second.amends_id == first.id and second.ome_mg_per_day == pytest.approx(20)
    with pytest.raises(Conflict):
        opioids.amend_opioid_dose(
            database, users["nurse"], first.id, DoseInput.model_validate(body), reason="again"
        )
    listed = opioids.list_opioid_doses(database, users["nurse"], patient_id)
    assert [d.id for d in listed] == [second.id]
    assert count(database, OpioidDose) == 2


def test_a_future_day_and_a_dose_without_unit_are_refused(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    with pytest.raises(InvalidInput, match="taken_on"):
        opioids.record_opioid_dose(
            database,
            users["nurse"],
            patient_id,
            DoseInput.model_validate({"taken_on": tomorrow, "medications": []}),
        )
    with pytest.raises(InvalidInput, match=r"medications\[0\]"):
        opioids.record_opioid_dose(
            database,
            users["nurse"],
            patient_id,
            DoseInput.model_validate(
                {
                    "taken_on": "2026-01-01",
                    "medications": [{"name": "morphine", "dose": 10, "unit": "spoonfuls"}],
                }
            ),
        )


def test_researchers_and_admins_cannot_read_or_record_opioids(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    for role in ("researcher", "admin"):
        with pytest.raises(PermissionDenied):
            opioids.opioid_summary(database, users[role], patient_id)
        with pytest.raises(PermissionDenied):
            opioids.record_opioid_dose(
                database,
                users[role],
                patient_id,
                DoseInput.model_validate({"taken_on": "2026-01-01", "medications": []}),
            )
    with pytest.raises(PermissionDenied):
        opioids.record_opioid_dose(
            database,
            users["pharmacist"],
            patient_id,
            DoseInput.model_validate({"taken_on": "2026-01-01", "medications": []}),
        )


def test_plans_and_doses_are_append_only_and_audited(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    agree(database, users, patient_id, convert_to={"opioid_id": "oxycodone", "reduce_percent": 25})
    opioids.record_opioid_dose(
        database,
        users["nurse"],
        patient_id,
        DoseInput.model_validate({"taken_on": "2026-01-01", "medications": []}),
    )
    for table in ("opioid_plans", "opioid_doses"):
        with pytest.raises(DBAPIError, match="append-only"), database.transaction() as s:
            s.execute(text(f"UPDATE {table} SET patient_id = patient_id"))
        with pytest.raises(DBAPIError, match="append-only"), database.transaction() as s:
            s.execute(text(f"DELETE FROM {table}"))
    with database.transaction() as s:
        actions = set(
            s.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == patient_id))
        )
    assert {"opioid.plan.agree", "opioid.dose.record"} <= actions


def count(database: Database, model: type[Any]) -> int:
    with database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_the_timeline_shows_plans_and_doses(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    from ketapath.services import timeline

    plan = agree(
        database, users, patient_id, convert_to={"opioid_id": "oxycodone", "reduce_percent": 25}
    )
    opioids.withdraw_opioid_plan(database, users["physician"], plan.id, reason="declined")
    opioids.record_opioid_dose(
        database,
        users["nurse"],
        patient_id,
        DoseInput.model_validate({"taken_on": "2026-01-01", "medications": []}),
    )
    events = timeline.patient_timeline(database, users["nurse"], patient_id)
    summaries = [(e.kind, e.summary) for e in events if e.kind.startswith("opioid")]
    assert summaries == [
        ("opioid_plan", "opioid plan agreed (to oral oxycodone)"),
        ("opioid_plan_withdrawn", "opioid plan withdrawn"),
        ("opioid_dose", "opioids taken on 2026-01-01: 0 mg OME per day"),
    ]


def test_listing_doses_takes_the_same_number_of_queries_for_one_or_five(
    database: Database, users: dict[str, Actor], patient_id: int
) -> None:
    from tests.integration.conftest import count_statements

    agree(database, users, patient_id, convert_to={"opioid_id": "oxycodone", "reduce_percent": 25})
    other = patients.create_patient(database, users["nurse"], TWO_OPIOIDS).id
    for who, count in ((other, 1), (patient_id, 5)):
        for day in range(count):
            opioids.record_opioid_dose(
                database,
                users["nurse"],
                who,
                DoseInput.model_validate({"taken_on": f"2026-01-0{day + 1}", "medications": []}),
            )
    nurse = users["nurse"]
    one, _ = count_statements(database, lambda: opioids.list_opioid_doses(database, nurse, other))
    five, listed = count_statements(
        database, lambda: opioids.list_opioid_doses(database, nurse, patient_id)
    )
    assert five == one and len(listed) == 5
    assert all(d.recorded_by == "nurse" and not d.amended for d in listed)
