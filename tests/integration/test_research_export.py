"""The de-identified research export on SQLite and PostgreSQL, scanned for every Safe Harbor
identifier the clinic's records hold.

The clinic (``research_clinic.build_clinic``) holds names, birth dates, a ZIP code, phone and
fax numbers, e-mail addresses, an SSN, record numbers, URLs, an IP address, licence, plate and
device numbers typed into the record, the chart, the diary and the safety results, and staff
with distinctive user names. Each test exports it as CSV and Parquet and checks the bytes of
every file of both archives (the zip's members, Parquet uncompressed inside) and the values
read back: no identifier appears, dates are day numbers that keep each patient's intervals,
ages from 90 are pooled, ZIP codes are three digits or 000, Parquet reads back as the CSV
does, and each export is audited.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from sqlalchemy import select
from tests.integration.research_clinic import (
    EXPORT_DAY,
    TODAY,
    TYPED,
    Clinic,
    build_clinic,
    clock,
)

from ketapath.config import Settings
from ketapath.domain import research as rules
from ketapath.interop import research as files
from ketapath.services import research_export
from ketapath.services.errors import InvalidInput, PermissionDenied
from ketapath.store.db import Database
from ketapath.store.models import (
    AuditEntry,
    DiaryEntry,
    Order,
    PatientVersion,
    SafetyResult,
    SessionEvent,
)

SETTINGS = Settings(secret_key="research-export-test-secret")


@pytest.fixture
def clinic(database: Database) -> Clinic:
    return build_clinic(database)


@dataclass(frozen=True)
class Done:
    """One export: the zip as written, the rows the service reported, the tables read back."""

    data: bytes
    counts: dict[str, int]
    tables: dict[str, list[dict[str, Any]]]


def export(
    database: Database,
    clinic: Clinic,
    fmt: str = "csv",
    role: str = "researcher",
    settings: Settings = SETTINGS,
    **options: Any,
) -> Done:
    out = io.BytesIO()
    report = research_export.export_research(
        database, clinic.staff[role], fmt, out, clock=clock(EXPORT_DAY), settings=settings,
        **options,
    )  # fmt: skip
    data = out.getvalue()
    return Done(data, report.counts, files.read_archive(data))


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def by_code(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["patient_code"], []).append(row)
    return out


def code_of(done: Done, registered: date, **known: Any) -> str:
    """The research code of the one patient whose row in ``patients`` has ``known`` values."""
    (row,) = [
        r
        for r in done.tables["patients"]
        if all(r[k] == v for k, v in known.items()) and r["registration_year"] == registered.year
    ]
    code: str = row["patient_code"]
    return code


def test_no_identifier_the_records_hold_appears_in_any_file_of_either_archive(
    database: Database, clinic: Clinic
) -> None:
    secrets = clinic.secrets
    assert len(secrets) > 60
    for fmt in ("csv", "parquet"):
        data = export(database, clinic, fmt).data
        contents = members(data)
        assert {f"patients.{fmt}", "data_dictionary.csv", "safe_harbor.csv"} <= set(contents)
        for name, content in [*contents.items(), ("(the zip)", data)]:
            text = content.decode("latin-1").lower()
            found = [s for s in secrets if s.lower() in text]
            assert not found, f"{fmt} {name} holds {found}"
        # the values read back hold none either (Parquet's strings, decoded)
        values = " ".join(str(v) for rows in files.read_archive(data).values() for r in rows
                          for v in r.values()).lower()  # fmt: skip
        assert not [s for s in secrets if s.lower() in values]


def test_the_export_holds_no_calendar_date_no_record_number_and_no_time_of_day(
    database: Database, clinic: Clinic
) -> None:
    done = export(database, clinic)
    text = members(done.data)
    tables = b"".join(text[f"{t.name}.csv"] for t in rules.TABLES).decode("utf-8")
    assert not re.search(r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{1,2}:\d{2}", tables)
    coded = {"protocol_id", "instrument_id", "check_id", "scale_id"}
    for spec in rules.TABLES:
        # numbers counted within the export, never ids of the clinic's records
        ids = [c for c in spec.column_names if c == "id" or c.endswith("_id")]
        assert set(ids) <= coded, spec.name
    codes = {r["patient_code"] for r in done.tables["patients"]}
    assert all(re.fullmatch(r"P-[A-Z2-7]{12}", c) for c in codes) and len(codes) == 3
    assert not codes & {p.pseudonym for p in clinic.people.values()}


def test_free_text_is_withheld_and_counted(database: Database, clinic: Clinic) -> None:
    done = export(database, clinic)
    oldest = clinic.people["oldest"]
    code = code_of(done, oldest.registered, zip3="000")
    (patient,) = by_code(done.tables["patients"])[code]
    assert patient["diagnoses"] == "crps-1" and patient["diagnoses_withheld"] == 1
    assert patient["medicines"] == "morphine" and patient["medicines_withheld"] == 1
    assert patient["allergies_withheld"] == 1
    # GP, referrer, evidence, expectancy, goals, two diagnosis notes, frequency, route, reaction
    assert patient["free_text_withheld"] == 10
    sessions = by_code(done.tables["sessions"])[code]
    assert [s["notes_withheld"] for s in sessions] == [2, 1, 0]
    (first_effect, _) = by_code(done.tables["adverse_events"])[code]
    assert first_effect["description_withheld"] is True
    diary = by_code(done.tables["diary_entries"])[code]
    assert {(d["opioid_doses"], d["opioid_doses_withheld"], d["note_withheld"]) for d in diary} == {
        (1, 1, True)
    }
    results = by_code(done.tables["safety_results"])[code]
    assert [r["text_withheld"] for r in results] == [2, 0]


def test_dates_are_day_numbers_from_registration_that_keep_every_interval(
    database: Database, clinic: Clinic
) -> None:
    done = export(database, clinic)
    oldest = clinic.people["oldest"]
    code = code_of(done, oldest.registered, zip3="000")
    real = oldest.dates
    anchor = oldest.registered

    def day(name: str) -> int:
        return (real[name] - anchor).days

    sessions = by_code(done.tables["sessions"])[code]
    assert [s["scheduled_day"] for s in sessions] == [day(f"session {n}") for n in (1, 2, 3)]
    assessments = by_code(done.tables["assessments"])[code]
    assert [a["day"] for a in assessments] == [
        day("assessment baseline"),
        day("assessment post-session"),
        day("assessment follow-up"),
    ]
    diary = by_code(done.tables["diary_entries"])[code]
    assert [d["day"] for d in diary] == [day("diary 0"), day("diary 1"), day("diary 5")]
    (course,) = by_code(done.tables["courses"])[code]
    assert course["signed_day"] == day("signed")
    dosed = (course["first_dose_day"], course["last_dose_day"])
    assert dosed == (day("session 1"), day("session 2"))
    results = by_code(done.tables["safety_results"])[code]
    assert {r["day"] for r in results} == {day("safety")}
    # one anchor across tables: the same real day is the same number everywhere
    assert diary[0]["day"] == sessions[0]["scheduled_day"] == course["signed_day"]
    # every interval between two of the patient's dates is kept
    exported = [s["scheduled_day"] for s in sessions] + [a["day"] for a in assessments]
    actual = [real[f"session {n}"] for n in (1, 2, 3)] + [
        real[f"assessment {k}"] for k in ("baseline", "post-session", "follow-up")
    ]
    for i in range(len(actual)):
        for j in range(len(actual)):
            assert exported[j] - exported[i] == (actual[j] - actual[i]).days
    patient = by_code(done.tables["patients"])[code][0]
    assert patient["registration_year"] == anchor.year


def test_ages_from_90_are_pooled_and_younger_ages_kept(database: Database, clinic: Clinic) -> None:
    done = export(database, clinic)
    bands = sorted((r["age_band"], r["sex"], r["zip3"]) for r in done.tables["patients"])
    younger_age = TODAY.year - 1979 - (TODAY.replace(year=2000) < date(2000, 6, 21))
    assert bands == [
        (rules.age_band(younger_age), "male", "902"),
        ("90 or older", "female", "000"),
        ("90 or older", "male", None),
    ]
    courses = {r["age_band_at_signing"]: r["age_at_signing"] for r in done.tables["courses"]}
    assert courses == {"90 or older": None, rules.age_band(younger_age): younger_age}


def test_zip_codes_are_three_digits_or_000_for_a_restricted_area(
    database: Database, clinic: Clinic
) -> None:
    done = export(database, clinic)
    assert sorted(str(r["zip3"]) for r in done.tables["patients"]) == ["000", "902", "None"]


def test_doses_pauses_stops_and_side_effects_come_from_the_charts(
    database: Database, clinic: Clinic
) -> None:
    done = export(database, clinic)
    code = code_of(done, clinic.people["oldest"].registered, zip3="000")
    first, second, third = by_code(done.tables["sessions"])[code]
    assert (first["running_min"], first["paused_min"], first["infusion_duration_min"]) == (
        60.0,
        60.0,
        120.0,
    )
    assert (first["pauses"], first["pause_reasons"], first["stop_reason"]) == (
        1,
        "side_effect",
        "patient_request",
    )
    assert first["adjuncts_given"] == "midazolam" and first["worst_severity"] == "moderate"
    assert second["stop_reason"] == "dissociation" and second["stopped_early"] is True
    assert third["state"] == "scheduled" and third["delivered_mg"] == 0.0
    (course,) = by_code(done.tables["courses"])[code]
    given = first["delivered_mg"] + second["delivered_mg"]
    assert course["delivered_total_mg"] == pytest.approx(given)
    assert course["delivered_total_mg_per_kg"] == pytest.approx(course["delivered_total_mg"] / 58.0)
    assert (course["pauses"], course["stops"], course["adverse_events"]) == (1, 2, 2)
    assert course["sessions_with_dose"] == 2 and course["infusion_minutes_total"] == 120.0
    events = by_code(done.tables["adverse_events"])[code]
    effects = [(e["effect"], e["minutes_from_start"]) for e in events]
    assert effects == [("nausea-vomiting", 20.0), ("dissociation", 15.0)]


def test_parquet_reads_back_as_the_csv_does(database: Database, clinic: Clinic) -> None:
    pyarrow = pytest.importorskip("pyarrow.parquet")
    as_csv = export(database, clinic).tables
    parquet = export(database, clinic, "parquet").data
    as_parquet = files.read_archive(parquet)
    assert as_parquet == as_csv
    contents = members(parquet)
    schema = pyarrow.read_schema(io.BytesIO(contents["sessions.parquet"]))
    assert str(schema.field("delivered_mg").type) == "double"
    assert schema.field("delivered_mg").metadata[b"unit"] == b"mg"
    assert str(schema.field("pauses").type) == "int64"
    assert str(schema.field("stopped_early").type) == "bool"


def test_the_archive_ships_its_data_dictionary_and_says_nothing_of_when_it_was_made(
    database: Database, clinic: Clinic
) -> None:
    data = export(database, clinic, "parquet").data
    with zipfile.ZipFile(io.BytesIO(data)) as bundle:
        assert {i.date_time for i in bundle.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        dictionary = bundle.read("data_dictionary.csv").decode("utf-8")
        harbor = bundle.read("safe_harbor.csv").decode("utf-8")
    assert dictionary.splitlines()[0] == "table,column,type,unit,meaning,deidentification"
    for spec in rules.TABLES:
        for column in spec.columns:
            assert f"{spec.name},{column.name},{column.type}," in dictionary
    assert len(harbor.splitlines()) == 19 and "(b)(2)(i)(R)" in harbor
    assert TODAY.isoformat() not in data.decode("latin-1")


def test_every_export_is_audited_with_who_the_format_and_the_row_counts(
    database: Database, clinic: Clinic
) -> None:
    csv_done = export(database, clinic, "csv")
    export(database, clinic, "parquet", role="physician")
    with database.read_only() as session:
        exports = select(AuditEntry).where(AuditEntry.action == "research.export")
        rows = session.scalars(exports.order_by(AuditEntry.seq)).all()
    assert [(r.username, r.role, r.outcome, r.detail["format"]) for r in rows] == [
        ("researcher.okonkwo", "researcher", "ok", "csv"),
        ("dr.hortense.blakemore", "physician", "ok", "parquet"),
    ]
    assert rows[0].detail["tables"] == csv_done.counts
    assert csv_done.counts["patients"] == 3 and csv_done.counts["sessions"] == 4
    assert set(rows[0].detail["tables"]) == set(rules.TABLE_NAMES)


def test_a_nurse_or_an_admin_is_refused_and_the_refusal_audited(
    database: Database, clinic: Clinic
) -> None:
    for role in ("nurse", "admin"):
        with pytest.raises(PermissionDenied, match=r"research\.export"):
            export(database, clinic, role=role)
    with database.read_only() as session:
        denied = session.scalars(
            select(AuditEntry.username).where(
                AuditEntry.action == "research.export", AuditEntry.outcome == "denied"
            )
        ).all()
    assert sorted(denied) == ["admin.fairweather", "nurse.ravenscroft"]


def test_an_unknown_format_is_refused_naming_it_and_nothing_is_audited(
    database: Database, clinic: Clinic
) -> None:
    with pytest.raises(InvalidInput, match="not csv or parquet") as refused:
        export(database, clinic, "xlsx")
    assert refused.value.field == "format"
    with database.read_only() as session:
        assert not session.scalars(
            select(AuditEntry).where(AuditEntry.action == "research.export")
        ).all()


def test_the_codes_are_the_same_in_two_exports_and_in_the_research_views(
    database: Database, clinic: Clinic
) -> None:
    from ketapath.services import research

    first, second = export(database, clinic), export(database, clinic, "parquet")
    assert first.tables == second.tables
    views = research.research_patients(
        database, clinic.staff["researcher"], clock=clock(EXPORT_DAY), settings=SETTINGS
    )
    assert {v.patient_code for v in views} == {r["patient_code"] for r in first.tables["patients"]}
    other = export(database, clinic, settings=Settings(secret_key="another-clinic-secret-key"))
    assert not {r["patient_code"] for r in other.tables["patients"]} & {
        r["patient_code"] for r in first.tables["patients"]
    }


def test_the_typed_identifiers_were_really_stored_where_the_export_withholds_them(
    database: Database, clinic: Clinic
) -> None:
    """The scan means something only if the records hold the identifiers: they do."""
    with database.read_only() as session:
        stored = " ".join(
            str(value)
            for model, column in (
                (PatientVersion, PatientVersion.document),
                (SessionEvent, SessionEvent.payload),
                (DiaryEntry, DiaryEntry.entry),
                (SafetyResult, SafetyResult.values),
                (SafetyResult, SafetyResult.note),
                (Order, Order.override_reason),
            )
            for value in session.scalars(select(column)).all()
        )
    missing = [typed for typed in TYPED if typed not in stored]
    assert missing == []
    assert "Wilhelmina Quarrington" in stored and "03601-2210" in stored


def test_course_outcomes_and_exposure_are_the_registrys_numbers_without_dates(
    database: Database, clinic: Clinic
) -> None:
    from ketapath.services import exposure_summary, registry

    physician = clinic.staff["physician"]
    day = clock(EXPORT_DAY)

    def registry_rows() -> list[Any]:
        return registry.courses(database, physician, limit=0, clock=day).courses

    done = export(database, clinic)
    outcomes, exposure = done.tables["course_outcomes"], done.tables["course_exposure"]
    rows = registry_rows()
    assert len(outcomes) == len(exposure) == len(rows) > 0
    courses = {(r["patient_code"], r["course_number"]) for r in done.tables["courses"]}
    assert {(r["patient_code"], r["course_number"]) for r in outcomes} <= courses

    def outcome(r: dict[str, Any]) -> str:
        return str((r["responder_30"], r["responder_50"], r["relief_status"], r["relief_days"]))

    def registered(c: Any) -> str:
        return str((c.responder_30, c.responder_50, c.relief_status, c.relief_days))

    assert sorted(map(outcome, outcomes)) == sorted(map(registered, rows))
    pairs = zip(sorted(outcomes, key=outcome), sorted(rows, key=registered), strict=True)
    for r, c in pairs:
        assert r["relief_censored"] == (None if c.relief_ended is None else not c.relief_ended)
        assert r["follow_up_days"] == c.follow_up_days and r["pain_auc_35"] == c.auc
    # before any stored exposure summary: flagged, and empty rather than 0
    assert all(r["not_computed"] is True for r in exposure)
    assert {r["ketamine_auc_inf"] for r in exposure} == {None}
    assert {r["exposure_band"] for r in exposure} == {"not computed"}

    exposure_summary.refresh(database, physician, clock=day)
    after = export(database, clinic).tables["course_exposure"]
    computed = [r for r in after if not r["not_computed"]]
    assert computed, "a complete course has a stored summary after the refresh"
    assert sorted(r["ketamine_auc_inf"] for r in computed) == pytest.approx(
        sorted(c.exposure_auc for c in registry_rows() if c.exposure_auc is not None)
    )
    for r in computed:
        assert r["ketamine_auc_inf"] > 0 and r["ketamine_peak"] > 0
        assert r["exposure_band"] != "not computed"
    for r in after:
        if r["not_computed"]:
            assert (r["ketamine_auc_inf"], r["ketamine_peak"]) == (None, None)


def test_charts_read_in_batches_give_the_same_export(
    database: Database, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The charts are read EVENTS_BATCH sessions a query (fresh and cached alike) and long id
    lists IN_BATCH ids a query (psycopg refused the 136,000 assessment ids of a registry): an
    export read one session and one id a query, charts cached or not, is the one read at once."""
    from ketapath.services import assessments, sessions

    at_once = export(database, clinic).tables
    monkeypatch.setattr(sessions, "EVENTS_BATCH", 1)
    monkeypatch.setattr(assessments, "IN_BATCH", 1)  # the ids of IN lists, one a query
    monkeypatch.setattr(research_export, "IN_BATCH", 1)
    cached = export(database, clinic).tables  # the charts now come from the process's cache
    monkeypatch.setattr(sessions, "_CHARTS", type(sessions._CHARTS)())
    fresh = export(database, clinic).tables
    assert cached == fresh == at_once


def test_the_charts_of_thousands_of_sessions_are_read_without_a_query_too_large(
    database: Database,
) -> None:
    """A registry's every session at once (the export): SQLite refused one OR of more than
    ~1,000 sessions ("Expression tree is too large")."""
    from ketapath.services.sessions import _events

    ids = list(range(10_000_000, 10_002_500))
    with database.read_only() as session:
        charts = _events(session, ids)
    assert charts == {sid: [] for sid in ids}


def test_an_export_read_one_patient_a_batch_is_the_export_read_at_once(
    database: Database, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry is read a batch of patients at a time, in research-code order, and each
    batch's rows appended: however the patients fall into batches, the files are the same
    bytes (the same rows in the same order), and no batch reads more patients than asked."""
    batches: list[int] = []
    reader = research_export._Registry

    class Counting(reader):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            batches.append(len(self.people))

    monkeypatch.setattr(research_export, "_Registry", Counting)
    for fmt in ("csv", "parquet"):
        whole = export(database, clinic, fmt)
        assert batches == [3]
        batches.clear()
        one_by_one = export(database, clinic, fmt, batch=1)
        assert batches == [1, 1, 1]
        batches.clear()
        assert one_by_one.tables == whole.tables and one_by_one.counts == whole.counts
        if fmt == "csv":
            assert members(one_by_one.data) == members(whole.data)
    codes = [r["patient_code"] for r in whole.tables["patients"]]
    assert codes == sorted(codes)
    sessions = [(r["patient_code"], r["course_number"], r["session_number"])
                for r in whole.tables["sessions"]]  # fmt: skip
    assert sessions == sorted(sessions)


def test_an_export_that_cannot_be_audited_is_refused_and_nothing_is_recorded(
    database: Database, clinic: Clinic, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The audit row is written after the zip; if it cannot be, the call raises, so the
    caller (the API, the CLI) never releases the file."""
    from ketapath.services import audit

    def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("the audit log is unavailable")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError, match="audit log"):
        export(database, clinic)
    monkeypatch.undo()
    with database.read_only() as session:
        assert not session.scalars(
            select(AuditEntry).where(AuditEntry.action == "research.export")
        ).all()
