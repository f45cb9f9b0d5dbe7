"""Letters through the services, on SQLite and PostgreSQL: versions drafted from the charts,
signed by a physician, never changed; the PDF's text matches the charts exactly; version
numbers taken in turn when two drafts race; permissions and audit."""

from __future__ import annotations

import io
import re
import threading
from fractions import Fraction

import pytest
from pypdf import PdfReader
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.integration.conftest import clinic_noon, given_course

from ketapath.config import Settings
from ketapath.domain.outcomes import follow_up_schedule
from ketapath.domain.session_dose import mg_text
from ketapath.domain.sessions import delivered_fraction
from ketapath.services import letters, sessions
from ketapath.services.errors import Conflict, NotFound, PermissionDenied
from ketapath.services.letters import DraftInput
from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, Letter

GP = "Dr Grace Hopper, Riverside Surgery"


def _settings(database: Database) -> Settings:
    return Settings(
        database_url=database.url,
        secret_key="letters-test-secret-key",
        clinic_name="Riverside Pain Clinic",
        clinic_address="2 Hospital Road, Springfield",
        clinic_after_hours="Ward 7, 0161 555 0123 (24 hours)",
    )


def _draft(
    database: Database, actor: Actor, order_id: int, kind: str = "gp_letter"
) -> letters.LetterView:
    return letters.draft_letter(
        database,
        actor,
        order_id,
        DraftInput(kind=kind),  # type: ignore[arg-type]
        clock=clinic_noon(3),
        settings=_settings(database),
    )


def _pdf_text(content: bytes) -> str:
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def test_a_draft_then_a_signature_are_versions_1_and_2_with_the_same_facts(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, gp=GP)
    draft = _draft(database, users["nurse"], order_id)
    assert (draft.version, draft.status, draft.current) == (1, "draft", True)
    signed = letters.sign_letter(database, users["physician"], draft.id, clock=clinic_noon(3))
    assert (signed.version, signed.status, signed.amends_id) == (2, "signed", draft.id)
    assert signed.facts == draft.facts and signed.digest == draft.digest
    assert signed.signed_by == "Physician (physician)"
    assert not letters.get_letter(database, users["nurse"], draft.id).current
    redraft = _draft(database, users["physician"], order_id)
    assert (redraft.version, redraft.status, redraft.amends_id) == (3, "draft", signed.id)
    listed = letters.list_letters(database, users["nurse"], order_id, "gp_letter")
    assert [(v.version, v.status, v.current) for v in listed] == [
        (3, "draft", True),
        (2, "signed", False),
        (1, "draft", False),
    ]


def test_only_the_newest_unsigned_version_can_be_signed(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    first = _draft(database, users["nurse"], order_id)
    second = _draft(database, users["nurse"], order_id)
    with pytest.raises(Conflict, match="version 1 is not the newest; version 2"):
        letters.sign_letter(database, users["physician"], first.id)
    signed = letters.sign_letter(database, users["physician"], second.id)
    with pytest.raises(Conflict, match="not the newest"):
        letters.sign_letter(database, users["physician"], second.id)
    with pytest.raises(Conflict, match="already signed"):
        letters.sign_letter(database, users["physician"], signed.id)


def test_the_pdf_gives_the_charts_delivered_doses_and_dates_exactly(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, session_ids = given_course(database, users, gp=GP)
    clock = clinic_noon(3)
    charts = [
        sessions.get_session(database, users["nurse"], sid, clock=clock) for sid in session_ids
    ]
    given = [c for c in charts if c.chart.dose.started_at is not None]
    doses = [delivered_fraction(c.chart) for c in given]
    total = sum(doses, Fraction(0))
    for kind in ("discharge_summary", "gp_letter", "patient_information"):
        signed = letters.sign_letter(
            database, users["physician"], _draft(database, users["nurse"], order_id, kind).id
        )
        text = _pdf_text(letters.letter_pdf(database, users["nurse"], signed.id).content)
        html = letters.letter_html(database, users["nurse"], signed.id).content.decode()
        for chart, dose in zip(given, doses, strict=True):
            row = f"{chart.scheduled_on.isoformat()} {mg_text(dose, 1)}"
            assert row in text, (kind, row)
            assert mg_text(dose, 1) in html
        assert f"{mg_text(total, 1)} mg" in text
        last = max(c.scheduled_on for c in given)
        for timepoint in follow_up_schedule(last):
            assert timepoint.due_on.isoformat() in text
        assert "Ward 7, 0161 555 0123 (24 hours)" in text
        assert "Signed by Physician (physician)" in text
        if kind != "patient_information":
            assert f"exact sum ({mg_text(total)} mg)" in text
            assert signed.facts.total_mg_per_kg in text


def test_a_stored_version_never_changes(database: Database, users: dict[str, Actor]) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    draft = _draft(database, users["nurse"], order_id)
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("UPDATE letters SET html = 'changed' WHERE id = :i"), {"i": draft.id})
    with pytest.raises(DBAPIError, match="append-only"), database.transaction() as session:
        session.execute(text("DELETE FROM letters"))
    assert letters.get_letter(database, users["nurse"], draft.id).digest == draft.digest


def test_the_same_version_number_cannot_be_stored_twice(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    draft = _draft(database, users["nurse"], order_id)
    with pytest.raises(IntegrityError), database.transaction() as session:
        row = session.get(Letter, draft.id)
        assert row is not None
        session.add(
            Letter(
                patient_id=row.patient_id,
                order_id=row.order_id,
                kind=row.kind,
                version=1,
                facts=row.facts,
                html=row.html,
                pdf=row.pdf,
                digest=row.digest,
            )
        )


def test_a_draft_that_lost_the_race_for_its_number_takes_the_next_one(
    database: Database, users: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The newest version is read as none (as by a second writer that read before the first
    committed): the insert of version 1 is refused and the draft is made again as version 2."""
    order_id, _ = given_course(database, users, sessions_given=1)
    _draft(database, users["nurse"], order_id)
    real = letters._newest
    calls: list[int] = []

    def stale_once(*args: object) -> Letter | None:
        calls.append(1)
        return None if len(calls) == 1 else real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(letters, "_newest", stale_once)
    second = _draft(database, users["nurse"], order_id)
    assert second.version == 2 and len(calls) == 2


def test_a_draft_that_keeps_losing_the_race_is_a_clear_conflict(
    database: Database, users: dict[str, Actor], monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    _draft(database, users["nurse"], order_id)
    monkeypatch.setattr(letters, "_newest", lambda *args: None)
    with pytest.raises(Conflict, match="saved at the same moment"):
        _draft(database, users["nurse"], order_id)
    with database.transaction() as session:
        assert session.scalars(select(Letter.version)).all() == [1]


def test_two_first_drafts_at_once_become_versions_1_and_2(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    start = threading.Barrier(2)
    made: list[int] = []
    failed: list[BaseException] = []

    def draft(role: str) -> None:
        start.wait()
        try:
            made.append(_draft(database, users[role], order_id).version)
        except BaseException as error:  # reported below
            failed.append(error)

    threads = [threading.Thread(target=draft, args=(r,)) for r in ("nurse", "physician")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failed == []
    assert sorted(made) == [1, 2]


def test_who_may_draft_sign_and_read(database: Database, users: dict[str, Actor]) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    draft = _draft(database, users["nurse"], order_id)
    with pytest.raises(PermissionDenied):
        letters.sign_letter(database, users["nurse"], draft.id)
    for role in ("pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            letters.get_letter(database, users[role], draft.id)
        with pytest.raises(PermissionDenied):
            _draft(database, users[role], order_id)
    with database.transaction() as session:
        denied = session.scalars(
            select(AuditEntry.action).where(AuditEntry.outcome == "denied")
        ).all()
    assert "letters.sign" in denied and "letters.draft" in denied


def test_every_draft_signature_and_reading_is_audited(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1)
    draft = _draft(database, users["nurse"], order_id)
    signed = letters.sign_letter(database, users["physician"], draft.id)
    letters.letter_pdf(database, users["nurse"], signed.id)
    letters.letter_html(database, users["physician"], signed.id)
    letters.list_letters(database, users["nurse"], order_id)
    with database.transaction() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.entity_id, AuditEntry.detail).where(
                AuditEntry.action.like("letters.%")
            )
        ).all()
    actions = [a for a, _, _ in rows]
    assert actions == [
        "letters.draft",
        "letters.sign",
        "letters.read",
        "letters.read",
        "letters.list",
    ]
    assert rows[1][2]["signs"] == draft.id
    assert [r[2]["format"] for r in rows[2:4]] == ["pdf", "html"]


def test_a_missing_course_or_letter_is_not_found_and_writes_nothing(
    database: Database, users: dict[str, Actor]
) -> None:
    with pytest.raises(NotFound, match="order_id"):
        _draft(database, users["nurse"], 999_999)
    with pytest.raises(NotFound, match="letter_id"):
        letters.sign_letter(database, users["physician"], 999_999)
    with database.transaction() as session:
        assert session.scalars(select(Letter.id)).all() == []


def test_the_letter_uses_the_opioids_recorded_since_the_course_began(
    database: Database, users: dict[str, Actor]
) -> None:
    from ketapath.services import opioids
    from ketapath.services.opioids import DoseInput

    order_id, _ = given_course(database, users, sessions_given=1)
    patient_id = letters.get_letter(
        database, users["nurse"], _draft(database, users["nurse"], order_id).id
    ).patient_id
    opioids.record_opioid_dose(
        database,
        users["nurse"],
        patient_id,
        DoseInput.model_validate(
            {
                "taken_on": clinic_noon().today().isoformat(),
                "medications": [
                    {"name": "oxycodone", "daily_dose": 20, "unit": "mg", "route": "oral"}
                ],
            }
        ),
    )
    facts = _draft(database, users["nurse"], order_id).facts
    assert facts.opioids.before is not None and facts.opioids.before.total == "60 mg OME/day"
    assert facts.opioids.now is not None and facts.opioids.now.total == "30 mg OME/day"
    assert facts.opioids.change.startswith("-30 mg OME/day")


def test_the_signature_time_is_the_clinic_s_local_time_not_the_server_s_utc(
    database: Database, users: dict[str, Actor]
) -> None:
    """23:30 UTC is 10:30 the next morning in Sydney: the letter's date and its "Signed on"
    time are both the clinic's (KETAPATH_TIMEZONE), never the server's UTC date and time."""
    from datetime import UTC, datetime, time, timedelta
    from zoneinfo import ZoneInfo

    from ketapath.services.clock import ClinicClock

    order_id, _ = given_course(database, users, sessions_given=1)
    utc_day = datetime.now(UTC).date() + timedelta(days=3)
    at = datetime.combine(utc_day, time(23, 30), tzinfo=UTC)
    sydney = ClinicClock(zone=ZoneInfo("Australia/Sydney"), fixed=at)
    clinic_day = sydney.today()
    assert clinic_day == utc_day + timedelta(days=1)
    draft = letters.draft_letter(
        database,
        users["nurse"],
        order_id,
        DraftInput(kind="gp_letter"),
        clock=sydney,
        settings=_settings(database),
    )
    signed = letters.sign_letter(database, users["physician"], draft.id, clock=sydney)
    local = at.astimezone(ZoneInfo("Australia/Sydney"))
    stamp = f"{local:%Y-%m-%d %H:%M %Z}"
    assert stamp.startswith(f"{clinic_day.isoformat()} 10:30 ")
    assert signed.facts.letter_date == clinic_day.isoformat()
    text = _pdf_text(letters.letter_pdf(database, users["nurse"], signed.id).content)
    html = letters.letter_html(database, users["nurse"], signed.id).content.decode()
    for shown in (text, " ".join(re.sub(r"<[^>]+>", "", html).split())):
        assert f"Date of letter: {clinic_day.isoformat()}" in shown
        assert f"Signed by Physician (physician) on {stamp}." in shown
        assert f"drafted by Nurse (nurse) on {stamp}" in shown
        assert "UTC" not in shown


def test_the_clinicians_letters_give_the_course_s_outcome_and_the_physician_s_decision(
    database: Database, users: dict[str, Actor]
) -> None:
    """The outcome the course's Outcome card gives (the latest follow-up against baseline,
    responder at 30% and 50%, relief censored at the last diary day, PGIC) and the current
    decision with its written reason are in the discharge summary's and the GP letter's PDF;
    the patient's sheet has neither."""
    from datetime import timedelta

    from tests.integration.conftest import course_assessment, past_course, write_diary

    from ketapath.services import outcome_decisions, outcomes
    from ketapath.services.outcome_views import RepeatDecisionInput

    course = past_course(database, users, days_ago=60, gp=GP)
    last = course.last_day
    course_assessment(database, users, course, "nrs", {"pain": 8}, label="baseline", day=last)
    for days, pain in ((7, 5), (28, 3)):
        course_assessment(
            database,
            users,
            course,
            "nrs",
            {"pain": pain},
            label="follow-up",
            day=last + timedelta(days=days),
            timepoint_days=days,
        )
    course_assessment(
        database,
        users,
        course,
        "pgic",
        {"change": 2},
        label="follow-up",
        day=last + timedelta(days=28),
        timepoint_days=28,
    )
    write_diary(database, users, course.order_id, {last + timedelta(days=k): 3 for k in (1, 2, 5)})
    reason = "Relief for the whole diary; repeat in three months (discussed with the patient)."
    decided = outcome_decisions.record_decision(
        database,
        users["physician"],
        course.order_id,
        RepeatDecisionInput(decision="repeat", reason=reason),
        clock=clinic_noon(),
    )
    card = outcomes.course_outcome(database, users["nurse"], course.order_id, clock=clinic_noon())
    assert card.relief.status == "censored" and card.relief.days == 5
    for kind in ("discharge_summary", "gp_letter"):
        view = _draft(database, users["nurse"], course.order_id, kind)
        text = _pdf_text(letters.letter_pdf(database, users["nurse"], view.id).content)
        for words in (
            f"Pain before the course (NRS 0-10): 8, baseline assessment ({last.isoformat()})",
            "Pain at the latest follow-up (NRS 0-10): 3, at follow-up 28 days after the last "
            f"session ({(last + timedelta(days=28)).isoformat()})",
            "Change in pain from baseline: 8 to 3 (-5 points, -62.5%)",
            f"Responder at 30%: {card.responder_30.status}: {card.responder_30.reason}",
            f"Responder at 50%: {card.responder_50.status}: {card.responder_50.reason}",
            "Duration of relief: 5 days so far (censored",
            "Patient's impression of change (PGIC): much improved (2, at 28 days): improved",
            "The physician's decision: repeat the course (",
            f"decided by Physician (physician) on {clinic_noon().date_of(decided.decided_at)}",
            f"Reason, as the physician wrote it: {reason}",
        ):
            assert words in text, (kind, words)
        assert card.responder_50.status == "responder"
    sheet = _draft(database, users["nurse"], course.order_id, "patient_information")
    assert sheet.facts.outcome is None and sheet.facts.repeat_decision is None
    text = _pdf_text(letters.letter_pdf(database, users["nurse"], sheet.id).content)
    assert "Responder" not in text and reason not in text


def test_a_course_without_follow_up_or_decision_says_not_yet_recorded_never_zero(
    database: Database, users: dict[str, Actor]
) -> None:
    order_id, _ = given_course(database, users, sessions_given=1, gp=GP)
    view = _draft(database, users["nurse"], order_id, "discharge_summary")
    assert view.facts.outcome is not None and view.facts.repeat_decision is not None
    assert not view.facts.repeat_decision.recorded
    text = _pdf_text(letters.letter_pdf(database, users["nurse"], view.id).content)
    for words in (
        "Pain before the course (NRS 0-10): not yet recorded",
        "Pain at the latest follow-up (NRS 0-10): not yet recorded",
        "Change in pain from baseline: not yet recorded",
        "Responder at 30%: not yet recorded",
        "Responder at 50%: not yet recorded",
        "Duration of relief: not yet recorded",
        "Patient's impression of change (PGIC): not yet recorded",
        "(repeat the course, change protocol or stop): not yet recorded.",
    ):
        assert words in text, words
