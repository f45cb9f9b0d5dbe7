"""The registry on SQLite and PostgreSQL: courses with outcomes known by construction, and the
analytics compared with numbers computed here by hand (the product-limit estimate, Wilson's
interval by its formula, responders counted); de-identification; the summary kept current by
the marks made on write; a synthetic registry whose generating model the analytics recover."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from datetime import UTC, date

import pytest
from sqlalchemy import func, select, text
from tests.integration.registry_builders import (
    LAST_SESSION,
    CourseSpec,
    add_diary,
    build_course,
    relieved,
)

from ketapath.services import orders, registry
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import InvalidInput, PermissionDenied
from ketapath.services.permissions import Actor
from ketapath.services.registry import RegistryFilters
from ketapath.services.registry_store import refresh
from ketapath.store.db import Database
from ketapath.store.models import RegistryCourse, RegistryDirty

CLOCK = ClinicClock(UTC)
Z95 = 1.959963984540054
# Baseline 8: relief has begun at 5 or less on the first diary day (30% below, more than the
# 1-point margin below); it has ended on the first day back at 7 or more.
SPECS = {
    "A": CourseSpec(follow_ups={7: 3}, diary={**relieved(1, 9), 10: 8}),
    "B": CourseSpec(follow_ups={7: 8}, diary={**relieved(1, 4), 5: 8}),
    "C": CourseSpec(follow_ups={28: 7, 14: 5}, diary=relieved(1, 6)),
    "D": CourseSpec(diary={**relieved(1, 10), 11: 8}),
    "E": CourseSpec(follow_ups={7: 4}, diary=relieved(1, 15)),
    "F": CourseSpec(follow_ups={7: 7}, diary={1: 8, 2: 8}),
}
# By construction: (days, ended) of the courses in which relief began.
RELIEF = {"A": (10, True), "B": (5, True), "C": (6, False), "D": (11, True), "E": (15, False)}


def product_limit(table: list[tuple[int, bool]]) -> dict[int, float]:
    times, survival, out = sorted({t for t, e in table if e}), 1.0, {}
    for t in times:
        at_risk = sum(1 for u, _ in table if u >= t)
        survival *= 1 - sum(1 for u, e in table if u == t and e) / at_risk
        out[t] = survival
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    p, z = k / n, Z95
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


@pytest.fixture
def courses(database: Database, users: dict[str, Actor]) -> dict[str, int]:
    return {
        key: build_course(database, users, replace(spec, name=f"Patient {key}"))
        for key, spec in SPECS.items()
    }


def test_relief_curves_are_the_hand_computed_product_limit_estimates(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    view = registry.relief(database, users["physician"], clock=CLOCK)
    (curve,) = view.groups
    assert (curve.courses, curve.ended, curve.censored, curve.never_began) == (6, 3, 2, 1)
    expected = product_limit(list(RELIEF.values()))
    # by hand: S(5) = 4/5, S(10) = 4/5 x 2/3, S(11) = that x 1/2
    assert expected == pytest.approx({5: 0.8, 10: 0.8 * 2 / 3, 11: 0.8 * 2 / 3 / 2})
    points = {p.days: p for p in curve.points}
    for day, survival in expected.items():
        assert points[day].survival == pytest.approx(survival)
    assert points[6].censored == 1 and points[15].censored == 1
    assert curve.median.days == 11


def test_responder_rates_are_counted_and_their_intervals_are_wilsons(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    view = registry.responders(database, users["researcher"], clock=CLOCK)
    (group,) = view.groups
    # at the first follow-up: A 8->3 (62.5%), B 8->8, C 8->5 at day 14 (37.5%), D none
    # (unknown), E 8->4 (50%), F 8->7 (12.5%)
    assert (group.at_30.n, group.at_30.events, group.at_30.unknown) == (5, 3, 1)
    assert (group.at_50.n, group.at_50.events) == (5, 2)
    assert (group.at_30.low, group.at_30.high) == pytest.approx(wilson(3, 5))
    assert (group.at_50.low, group.at_50.high) == pytest.approx(wilson(2, 5))


def test_with_six_courses_the_regression_says_the_data_are_too_few(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    view = registry.regression(database, users["physician"], clock=CLOCK)
    assert view.status == "too few data" and view.coefficients == []
    assert view.message.startswith("Too few data") and "3" in view.message
    assert [f.code for f in view.findings] == ["registry:too-few-events"]


def test_no_number_of_any_analysis_is_nan_or_infinite(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    view = registry.overview(database, users["physician"], by="indication", clock=CLOCK)
    json.loads(view.model_dump_json(), parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_a_researcher_sees_research_codes_and_coded_values_but_no_one_and_no_date(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    view = registry.courses(database, users["researcher"], limit=0, clock=CLOCK)
    assert view.identified is False and view.total == 6
    text_ = view.model_dump_json()
    assert all(c.link is None for c in view.courses)
    assert "Patient A" not in text_ and "patient_id" not in text_ and "order_id" not in text_
    assert not re.search(r"\d{4}-\d{2}-\d{2}", text_)
    # the research code of the export, never the pseudonym clinicians search by
    assert {c.patient_code[:2] for c in view.courses} == {"P-"}
    assert "KP-" not in text_
    doctor = registry.courses(database, users["physician"], limit=0, clock=CLOCK)
    links = {c.link.order_id for c in doctor.courses if c.link}
    assert links == set(courses.values())
    assert all(c.link and c.link.last_session_on == LAST_SESSION for c in doctor.courses)


def test_a_researchers_date_filter_is_widened_to_whole_years(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    narrow = RegistryFilters(date_from=date(2025, 3, 3), date_to=date(2025, 3, 3))
    view = registry.courses(database, users["researcher"], narrow, clock=CLOCK)
    assert view.filters.date_from == date(2025, 1, 1) and view.filters.date_to == date(2025, 12, 31)
    assert "whole calendar years" in view.filters.note and view.total == 6
    doctor = registry.courses(database, users["physician"], narrow, clock=CLOCK)
    assert doctor.filters.note == "" and doctor.total == 6


def test_filters_are_checked_and_only_physicians_and_researchers_read(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    with pytest.raises(InvalidInput, match="dose_band"):
        registry.courses(database, users["physician"], RegistryFilters(dose_band="lots"))
    with pytest.raises(InvalidInput, match="date_from"):
        registry.courses(
            database,
            users["physician"],
            RegistryFilters(date_from=date(2025, 2, 1), date_to=date(2025, 1, 1)),
        )
    for role in ("nurse", "pharmacist", "admin"):
        with pytest.raises(PermissionDenied):
            registry.courses(database, users[role], clock=CLOCK)
    band = registry.courses(database, users["physician"], RegistryFilters(dose_band="1-2 mg/kg"))
    assert band.total == 6  # 80 mg at 70 kg is 1.14 mg/kg
    assert registry.courses(database, users["physician"], RegistryFilters(protocol="x")).total == 0


def test_a_new_diary_day_reaches_the_registry_through_the_mark_its_insert_made(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    refresh(database, CLOCK)
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(RegistryDirty)) == 0
        patient_id = session.scalar(
            select(RegistryCourse.patient_id).where(RegistryCourse.order_id == courses["C"])
        )
        add_diary(session, patient_id, courses["C"], 7, 8)  # C's pain is back on day 7
    with database.transaction() as session:
        marked = session.scalars(select(RegistryDirty.patient_id)).all()
    assert set(marked) == {patient_id}
    view = registry.relief(database, users["physician"], clock=CLOCK)
    (curve,) = view.groups
    assert (curve.ended, curve.censored) == (4, 1)
    table = [*(v for k, v in RELIEF.items() if k != "C"), (7, True)]
    points = {p.days: p.survival for p in curve.points}
    for day, survival in product_limit(table).items():
        assert points[day] == pytest.approx(survival)


def test_a_cancelled_course_leaves_the_registry(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    orders.cancel_order(database, users["physician"], courses["F"], reason="entered in error")
    view = registry.courses(database, users["physician"], limit=0, clock=CLOCK)
    assert courses["F"] not in {c.link.order_id for c in view.courses if c.link}


def test_a_change_of_definitions_summarises_every_course_again(
    database: Database,
    users: dict[str, Actor],
    courses: dict[str, int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from ketapath.services import registry_store

    assert refresh(database, CLOCK).patients == 6
    assert refresh(database, CLOCK).patients == 0
    monkeypatch.setattr(registry_store, "SUMMARY_FORMAT", registry_store.SUMMARY_FORMAT + 1)
    again = refresh(database, CLOCK)
    assert again.rebuilt and again.courses == 6


# ------------------------------------------------------------------ a synthetic registry


def test_a_synthetic_registry_charts_cleanly_and_the_analytics_recover_its_model(
    database: Database, users: dict[str, Actor]
) -> None:
    from ketapath.services.registry_synth import Config, Model, synthesise

    report = synthesise(
        database, Config(patients=200, seed=3, end=date(2026, 6, 30)), CLOCK, keep_truth=True
    )
    assert report.rows["patients"] == 200 and report.courses_summarised == report.rows["orders"]
    with database.engine.connect() as connection:
        refusals = connection.execute(text("SELECT SUM(chart_refusals) FROM registry_courses"))
        assert refusals.scalar() == 0
        rates = _responders_by_hand(connection)
    view = registry.responders(database, users["researcher"], by="protocol", clock=CLOCK)
    for group in view.groups:
        assert (group.at_30.events, group.at_30.n) == rates[group.group], group.group
    truth = {t.order_id: t for t in report.truth}
    rows = registry.courses(database, users["physician"], limit=0, clock=CLOCK).courses
    for row in rows:
        drawn = truth[row.link.order_id]  # type: ignore[union-attr]
        if row.status == "complete" and not drawn.onset:
            assert row.relief_status in ("never began", "no data")
        if drawn.relief_days is None or row.relief_days is None:
            continue
        back = max(2, math.ceil(drawn.relief_days))  # the first day the model's pain is back
        if row.relief_status == "ended":  # a gap in the diary can only put the end later
            assert row.relief_days >= back
        if row.relief_status == "censored":
            assert row.relief_days < back
    # a course keeps its number among the patient's courses when others are filtered out
    numbers = {r.link.order_id: r.course_number for r in rows if r.link}
    assert max(numbers.values()) >= 2
    for name in ("crps-schwartzman-10day", "dose-ladder"):
        some = registry.courses(
            database, users["physician"], RegistryFilters(protocol=name), limit=0, clock=CLOCK
        )
        assert all(r.course_number == numbers[r.link.order_id] for r in some.courses if r.link)
    fitted = registry.regression(database, users["physician"], clock=CLOCK)
    assert fitted.status == "fitted", fitted.message
    dose = next(c for c in fitted.coefficients if c.covariate == "dose_mg_per_kg")
    assert dose.low is not None and dose.high is not None
    assert dose.low <= math.exp(Model().beta_dose) <= dose.high


def _responders_by_hand(connection: object) -> dict[str, tuple[int, int]]:
    """Responders at 30% per protocol, from the stored scores: the course's baseline NRS and
    its follow-up NRS at the smallest timepoint, (baseline - later) x 100 >= 30 x baseline."""
    rows = connection.execute(  # type: ignore[attr-defined]
        text(
            "SELECT c.order_id, c.label, c.timepoint_days, a.total, r.protocol_id, r.status "
            "FROM assessment_contexts c JOIN assessments a ON a.id = c.assessment_id "
            "JOIN registry_courses r ON r.order_id = c.order_id"
        )
    ).all()
    baseline: dict[int, float] = {}
    first: dict[int, tuple[int, float]] = {}
    protocol: dict[int, str] = {}
    for order_id, label, days, total, protocol_id, status in rows:
        if status != "complete":
            continue
        protocol[order_id] = protocol_id
        if label == "baseline":
            baseline[order_id] = total
        elif label == "follow-up" and (order_id not in first or days < first[order_id][0]):
            first[order_id] = (days, total)
    counts: dict[str, list[int]] = {}
    for order_id, name in protocol.items():
        tally = counts.setdefault(name, [0, 0])
        if order_id in baseline and order_id in first and baseline[order_id] > 0:
            tally[1] += 1
            base, later = baseline[order_id], first[order_id][1]
            tally[0] += (base - later) * 100 >= 30 * base
    return {name: (k, n) for name, (k, n) in counts.items()}


# ------------------------------------------------------------------ stored exposure


def test_stored_course_exposure_reaches_the_registry_groups_it_and_goes_when_stale(
    database: Database, users: dict[str, Actor], courses: dict[str, int]
) -> None:
    from tests.conftest import base_patient

    from ketapath.services import exposure_summary, patients

    physician = users["physician"]
    before = registry.courses(database, physician, limit=0, clock=CLOCK)
    assert {(c.exposure_status, c.exposure_auc, c.exposure_band) for c in before.courses} == {
        ("not computed", None, "not computed")
    }
    grouped = registry.responders(database, physician, by="exposure", clock=CLOCK)
    assert [g.group for g in grouped.groups] == ["not computed"]

    stored = exposure_summary.refresh(database, physician, clock=CLOCK)
    assert stored.stored == 12  # each course's one session and the course itself
    with database.transaction() as session:  # the inserts marked every patient (0014)
        assert set(session.scalars(select(RegistryDirty.patient_id))) == {
            c.link.patient_id for c in before.courses if c.link
        }
    after = registry.courses(database, physician, limit=0, clock=CLOCK)
    for row in after.courses:
        assert row.link is not None
        summary = exposure_summary.course_summary(
            database, physician, row.link.order_id, clock=CLOCK
        )
        assert summary.ketamine is not None and summary.status == "stored"
        assert row.exposure_status == "computed"
        assert row.exposure_auc == pytest.approx(summary.ketamine.auc_inf_mg_h_per_l)
        assert row.exposure_peak == pytest.approx(summary.ketamine.peak_mg_per_l)
        assert row.exposure_auc is not None and 0 < row.exposure_auc < 5  # 80 mg over 3 h
        assert row.exposure_band != "not computed"
    bands = {c.exposure_band for c in after.courses}
    grouped = registry.responders(database, physician, by="exposure", clock=CLOCK)
    assert {g.group for g in grouped.groups} == bands
    assert sum(g.courses for g in grouped.groups) == 6
    overview = registry.overview(database, physician, by="exposure", clock=CLOCK)
    assert "registry:exposure-not-computed" not in {f.code for f in overview.findings}

    # a new weight makes the stored summary's inputs stale: not computed again, never 0
    target = next(c for c in after.courses if c.link and c.link.order_id == courses["A"])
    assert target.link is not None
    record = patients.get_patient(database, physician, target.link.patient_id)
    document = {**base_patient(), "name": "Patient A", "weight_kg": 95.0}
    document.pop("id", None)
    patients.amend_patient(
        database,
        physician,
        target.link.patient_id,
        document,
        reason="re-weighed",
        expected_version=record.version,
        clock=CLOCK,
    )
    stale = registry.courses(database, physician, limit=0, clock=CLOCK)
    row = next(c for c in stale.courses if c.link and c.link.order_id == courses["A"])
    assert (row.exposure_status, row.exposure_auc, row.exposure_peak) == (
        "not computed",
        None,
        None,
    )
    # a read of the course stores a current summary, which marks the patient again
    exposure_summary.course_summary(database, physician, courses["A"], clock=CLOCK)
    again = registry.courses(database, physician, limit=0, clock=CLOCK)
    row = next(c for c in again.courses if c.link and c.link.order_id == courses["A"])
    assert row.exposure_status == "computed" and row.exposure_auc is not None
