"""The patient diary's services on SQLite and PostgreSQL: links that work once, expire and can
be withdrawn, hashes only, entries that amend by day, refusals that write nothing, rate limits,
audit, and e-mail through a local SMTP server started by the test."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from tests.integration.conftest import clinic_noon, signed_order
from tests.integration.smtp_sink import Inbox, free_port
from tests.integration.smtp_sink import smtp_server as local_smtp_server

from ketapath.config import Settings
from ketapath.services import diary, sessions
from ketapath.services.diary import DiaryEntryInput
from ketapath.services.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    LinkRefused,
    PermissionDenied,
    TooManyRequests,
)
from ketapath.services.permissions import Actor
from ketapath.services.sessions import ScheduleRequest
from ketapath.store.db import Database
from ketapath.store.models import AuditEntry, DiaryEntry, DiaryLink

# The clinic's clock ten days after the orders are signed (today), so that a diary has days.
LATER = clinic_noon(10)
SIGNED_DAY = clinic_noon().today()


@pytest.fixture(autouse=True)
def fresh_limits() -> Iterator[None]:
    diary.reset_rate_limits()
    yield
    diary.reset_rate_limits()


@pytest.fixture
def order_id(database: Database, users: dict[str, Actor]) -> int:
    return signed_order(database, users)


def plain_settings(**changes: Any) -> Settings:
    return Settings(
        public_url="https://clinic.example/kp", secret_key="diary-tests-secret-key", **changes
    )


def opened(database: Database, users: dict[str, Actor], order_id: int, **kw: Any) -> str:
    """A link made and opened now (``LATER``); the diary session's secret."""
    issued = diary.create_link(
        database, users["nurse"], order_id, clock=kw.pop("clock", LATER), settings=plain_settings()
    )
    token = issued.url.rsplit("/", 1)[1]
    return diary.open_link(database, token, client="10.0.0.1", clock=LATER, **kw).session


def entry(day_offset: int = 10, **changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "day": (SIGNED_DAY + timedelta(days=day_offset)).isoformat(),
        "pain_nrs": 4,
        "sleep_quality": 6,
        "side_effects": [{"effect": "headache"}],
        "opioid_doses": [{"name": "oxycodone", "dose": 10, "unit": "mg", "times": 2}],
        "note": "a better day",
    }
    data.update(changes)
    return data


def test_a_link_is_returned_once_as_an_address_and_only_its_hash_is_kept(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    issued = diary.create_link(
        database, users["nurse"], order_id, clock=LATER, settings=plain_settings()
    )
    assert issued.url.startswith("https://clinic.example/kp/diary/start/")
    token = issued.url.rsplit("/", 1)[1]
    assert len(token) >= 43
    assert issued.link.state == "not_opened" and not issued.sent
    assert issued.link.expires_at - LATER.now() == timedelta(days=42)
    with database.read_only() as session:
        row = session.scalars(select(DiaryLink)).one()
        assert row.token_hash == hashlib.sha256(token.encode()).hexdigest()
        audit_text = " ".join(str(a.detail) for a in session.scalars(select(AuditEntry)))
    assert token not in audit_text
    with database.engine.connect() as connection:
        dumped = " ".join(
            str(r) for r in connection.execute(text("SELECT * FROM diary_links")).all()
        )
    assert token not in dumped


@pytest.mark.parametrize("days", [0, 121])
def test_days_valid_is_bounded(
    database: Database, users: dict[str, Actor], order_id: int, days: int
) -> None:
    with pytest.raises(InvalidInput) as refused:
        diary.create_link(database, users["nurse"], order_id, days_valid=days)
    assert refused.value.field == "days_valid"


def test_only_physicians_and_nurses_give_links_and_the_clinical_team_reads_them(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    for role in ("pharmacist", "researcher", "admin"):
        with pytest.raises(PermissionDenied):
            diary.create_link(database, users[role], order_id)
    diary.create_link(database, users["physician"], order_id)
    assert len(diary.links_for_order(database, users["pharmacist"], order_id)) == 1
    with pytest.raises(PermissionDenied):
        diary.diary_for_order(database, users["researcher"], order_id)


def test_a_link_opens_once_and_a_second_opening_is_refused_in_words(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    issued = diary.create_link(database, users["nurse"], order_id, clock=LATER)
    token = issued.url.rsplit("/", 1)[1]
    first = diary.open_link(database, token, client="a", clock=LATER)
    assert first.session and first.session != token
    with pytest.raises(LinkRefused) as again:
        diary.open_link(database, token, client="a", clock=LATER)
    assert again.value.message == "This link has already been used: ask the clinic for a new one."
    assert again.value.field == "token" and again.value.status_code == 410
    [link] = diary.links_for_order(database, users["nurse"], order_id, clock=LATER)
    assert link.state == "opened" and link.opened_at is not None


def test_an_expired_or_withdrawn_link_is_refused_and_its_diary_stops(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    made = diary.create_link(database, users["nurse"], order_id, days_valid=1, clock=LATER)
    with pytest.raises(LinkRefused, match="expired"):
        diary.open_link(database, made.url.rsplit("/", 1)[1], clock=clinic_noon(12))
    secret = opened(database, users, order_id)
    link_id = diary.links_for_order(database, users["nurse"], order_id)[0].id
    diary.revoke_link(database, users["nurse"], link_id, clock=LATER)
    with pytest.raises(LinkRefused, match="closed by the clinic"):
        diary.record_entry(database, secret, entry(), clock=LATER)
    with pytest.raises(Conflict):
        diary.revoke_link(database, users["nurse"], link_id)
    withdrawn = diary.create_link(database, users["nurse"], order_id, clock=LATER)
    diary.revoke_link(database, users["physician"], withdrawn.link.id, clock=LATER)
    with pytest.raises(LinkRefused, match="withdrawn"):
        diary.open_link(database, withdrawn.url.rsplit("/", 1)[1], clock=LATER)
    states = {x.id: x.state for x in diary.links_for_order(database, users["nurse"], order_id)}
    assert states[withdrawn.link.id] == "revoked"
    assert states[made.link.id] == "expired" or states[made.link.id] == "not_opened"


def test_an_unknown_link_is_refused_and_an_address_that_keeps_guessing_is_held_off(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    settings = plain_settings(diary_open_failures_per_hour=3)
    for _ in range(3):
        with pytest.raises(LinkRefused, match="not known"):
            diary.open_link(database, "guess", client="6.6.6.6", settings=settings)
    made = diary.create_link(database, users["nurse"], order_id)
    with pytest.raises(TooManyRequests):
        diary.open_link(database, made.url.rsplit("/", 1)[1], client="6.6.6.6", settings=settings)
    # another address is not held off, and the link was not used up by the refusal
    diary.open_link(database, made.url.rsplit("/", 1)[1], client="7.7.7.7", settings=settings)


def test_an_entry_is_written_to_that_patient_s_course_only_and_a_second_one_amends_it(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    other_order = signed_order(database, users, name="Another Patient")
    secret = opened(database, users, order_id)
    first = diary.record_entry(database, secret, entry(), clock=LATER)
    assert first.order_id == order_id and first.amends_id is None
    assert first.recorded_by.startswith("diary-link-")
    assert first.opioid_doses[0].recognised and first.opioid_doses[0].opioids == ["oxycodone"]
    second = diary.record_entry(database, secret, entry(pain_nrs=2), clock=LATER)
    assert second.amends_id == first.id
    third = diary.record_entry(database, secret, entry(pain_nrs=3), clock=LATER)
    assert third.amends_id == second.id
    diary.record_entry(database, secret, entry(9, pain_nrs=7), clock=LATER)
    view = diary.diary_for_order(database, users["nurse"], order_id)
    assert [(e.day.isoformat(), e.pain_nrs, e.versions) for e in view.entries] == [
        ((SIGNED_DAY + timedelta(days=9)).isoformat(), 7, 1),
        ((SIGNED_DAY + timedelta(days=10)).isoformat(), 3, 3),
    ]
    assert diary.diary_for_order(database, users["nurse"], other_order).entries == []


def test_an_unrecognised_medicine_is_kept_and_flagged_never_dropped(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    secret = opened(database, users, order_id)
    doses = [
        {"name": "Zapnoxidol", "dose": 5, "unit": "mg", "times": 1},
        {"name": "oxycodone", "dose": 5, "unit": "mg", "times": 1},
    ]
    written = diary.record_entry(database, secret, entry(opioid_doses=doses), clock=LATER)
    assert written.not_recognised == ["Zapnoxidol"]
    assert written.opioid_doses[0].check == "Zapnoxidol: not recognised: check by hand"
    view = diary.diary_for_order(database, users["physician"], order_id)
    assert view.not_recognised == ["Zapnoxidol"]
    assert [d.name for d in view.entries[0].opioid_doses] == ["Zapnoxidol", "oxycodone"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"pain_nrs": 11}, "pain_nrs"),
        ({"pain_nrs": 4.5}, "pain_nrs"),
        ({"sleep_quality": -1}, "sleep_quality"),
        ({"side_effects": [{"effect": "gout"}]}, "side_effects[0]"),
        ({"side_effects": [{"effect": "other"}]}, "side_effects[0]"),
        ({"opioid_doses": [{"name": "x", "dose": 5, "unit": "parsecs", "times": 1}]}, None),
        ({"note": "x" * 501}, "note"),
    ],
)
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
    database: Database,
    users: dict[str, Actor],
    order_id: int,
    changes: dict[str, Any],
    field: str | None,
) -> None:
    secret = opened(database, users, order_id)
    with pytest.raises(InvalidInput) as refused:
        diary.record_entry(database, secret, entry(**changes), clock=LATER)
    if field:
        assert refused.value.field == field
    else:
        assert (refused.value.field or "").startswith("opioid_doses[0]")
    with database.read_only() as session:
        assert session.scalars(select(DiaryEntry)).all() == []


@pytest.mark.parametrize(("offset", "words"), [(-1, "before the course"), (11, "future")])
def test_a_day_outside_the_course_is_refused(
    database: Database, users: dict[str, Actor], order_id: int, offset: int, words: str
) -> None:
    secret = opened(database, users, order_id)
    with pytest.raises(InvalidInput, match=words) as refused:
        diary.record_entry(database, secret, entry(offset), clock=LATER)
    assert refused.value.field == "day"


def test_the_course_begins_at_its_first_scheduled_session(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    first = SIGNED_DAY + timedelta(days=3)
    sessions.schedule_course(
        database,
        users["nurse"],
        order_id,
        ScheduleRequest(first_date=first, chair="Chair 1"),
        clock=clinic_noon(),
    )
    secret = opened(database, users, order_id)
    with pytest.raises(InvalidInput, match="before the course"):
        diary.record_entry(database, secret, entry(2), clock=LATER)
    diary.record_entry(database, secret, entry(3), clock=LATER)


def test_an_unknown_diary_session_writes_nothing(database: Database) -> None:
    with pytest.raises(AuthenticationFailed):
        diary.record_entry(database, "not-a-session", entry(), clock=LATER)


def test_writes_per_link_are_limited_per_hour(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    settings = plain_settings(diary_writes_per_hour=2)
    secret = opened(database, users, order_id)
    for _ in range(2):
        diary.record_entry(database, secret, entry(), clock=LATER, settings=settings)
    with pytest.raises(TooManyRequests, match="Too many diary entries"):
        diary.record_entry(database, secret, entry(), clock=LATER, settings=settings)


def test_every_diary_action_is_audited_the_patient_s_as_the_link(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    secret = opened(database, users, order_id)
    diary.record_entry(database, secret, entry(), clock=LATER)
    diary.diary_for_order(database, users["nurse"], order_id)
    with database.read_only() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action.like("diary.%"))).all()
    seen = {(r.action, r.role) for r in rows}
    assert ("diary.link.create", "nurse") in seen
    assert ("diary.link.open", "patient") in seen
    assert ("diary.entry.record", "patient") in seen
    assert ("diary.read", "nurse") in seen
    patient_rows = [r for r in rows if r.role == "patient"]
    assert all(r.username.startswith("diary-link-") and r.user_id is None for r in patient_rows)


def test_a_cancelled_order_gets_no_link(database: Database, users: dict[str, Actor]) -> None:
    from ketapath.services import orders

    order = signed_order(database, users)
    orders.cancel_order(database, users["physician"], order, reason="test: not going ahead")
    with pytest.raises(Conflict, match="cancelled"):
        diary.create_link(database, users["nurse"], order)


def test_the_typed_input_model_takes_the_vocabulary() -> None:
    model = DiaryEntryInput.model_validate(entry(side_effects=[{"effect": "nausea-vomiting"}]))
    assert model.side_effects[0].effect == "nausea-vomiting"


# ------------------------------------------------------------------ e-mail


@pytest.fixture
def smtp_server() -> Iterator[Inbox]:
    """A local SMTP server that keeps what it receives (``tests.integration.smtp_sink``)."""
    with local_smtp_server() as inbox:
        yield inbox


def mail_settings(inbox: Inbox) -> Settings:
    return plain_settings(
        smtp_host="127.0.0.1",
        smtp_port=inbox.port,
        smtp_from="clinic@clinic.example",
        smtp_starttls=False,
    )


def test_a_link_is_e_mailed_when_the_mail_settings_are_set(
    database: Database, users: dict[str, Actor], order_id: int, smtp_server: Inbox
) -> None:
    settings = mail_settings(smtp_server)
    issued = diary.create_link(
        database,
        users["nurse"],
        order_id,
        send_to="patient@example.org",
        clock=LATER,
        settings=settings,
    )
    assert issued.sent and issued.send_problem is None
    [message] = smtp_server.messages
    assert message["To"] == "patient@example.org"
    assert message["From"] == "clinic@clinic.example"
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    assert issued.url in body
    assert issued.link.sent_to == "patient@example.org"
    assert diary.links_for_order(database, users["nurse"], order_id)[0].last_sent_at is not None


def test_without_mail_settings_a_send_to_is_refused_and_nothing_is_made(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    with pytest.raises(InvalidInput) as refused:
        diary.create_link(
            database, users["nurse"], order_id, send_to="p@example.org", settings=plain_settings()
        )
    assert refused.value.field == "send_to"
    assert diary.links_for_order(database, users["nurse"], order_id) == []


def test_a_mail_server_that_is_down_leaves_the_link_to_copy(
    database: Database, users: dict[str, Actor], order_id: int
) -> None:
    settings = plain_settings(
        smtp_host="127.0.0.1", smtp_port=free_port(), smtp_from="c@clinic.example"
    )
    issued = diary.create_link(
        database, users["nurse"], order_id, send_to="p@example.org", settings=settings
    )
    assert not issued.sent and "not sent" in (issued.send_problem or "")
    assert issued.url.startswith("https://clinic.example/kp/diary/start/")


def test_reminders_go_to_live_links_without_an_entry_today_once_a_day(
    database: Database, users: dict[str, Actor], order_id: int, smtp_server: Inbox
) -> None:
    settings = mail_settings(smtp_server)
    written_order = signed_order(database, users, name="Diary Writer")
    make = {"send_to": "p@example.org", "settings": settings, "clock": clinic_noon(9)}
    diary.create_link(database, users["nurse"], order_id, **make)
    written = diary.create_link(database, users["nurse"], written_order, **make)
    secret = diary.open_link(database, written.url.rsplit("/", 1)[1], clock=LATER).session
    diary.record_entry(database, secret, entry(), clock=LATER)
    withdrawn = diary.create_link(database, users["nurse"], order_id, **make)
    diary.revoke_link(database, users["nurse"], withdrawn.link.id)
    smtp_server.messages.clear()

    report = diary.send_reminders(database, clock=LATER, settings=settings)
    assert (report.sent, report.problems) == (1, [])
    [reminder] = smtp_server.messages
    assert reminder["Subject"] == diary.REMINDER_SUBJECT
    again = diary.send_reminders(database, clock=LATER, settings=settings)
    assert again.sent == 0 and len(smtp_server.messages) == 1
    assert diary.send_reminders(database, clock=LATER, settings=plain_settings()).sent == 0
