"""The patient diary without an account (issue 12, item 2).

The clinic gives a patient a link for one course (``create_link``: a physician or a nurse).
The link's secret (``secrets.token_urlsafe(32)``) is shown once, as the full address, and
never stored or logged: only its SHA-256 is kept (``DiaryLink.token_hash``), like a sign-in
token. The link works once: ``open_link`` (a POST, so that a messaging app's link preview
does not use it up) stamps ``opened_at`` and makes a diary session for that phone, whose
secret goes in a cookie (its SHA-256 in ``session_hash``). A used, expired or withdrawn link
is refused in words (``LinkRefused``), and so is the session of an expired or withdrawn link.

Through the session the patient writes that course's diary and nothing else
(``record_entry``): one day's pain (NRS 0-10), sleep, side effects (the session side-effect
vocabulary), opioid doses taken and a note. A second entry for a day amends the first (a new
row with ``amends_id``: the diary is append-only). An opioid name the medicine vocabulary does
not know is kept as typed and marked "not recognised: check by hand", never dropped.

Rate limits are counted in memory, per server process (``services.rate_limit``): entries per
link per hour (``KETAPATH_DIARY_WRITES_PER_HOUR``) and refused openings per client address
per hour (``KETAPATH_DIARY_OPEN_FAILURES_PER_HOUR``); beyond them ``TooManyRequests`` (429).

Every action is audited; what the patient does is audited as user ``diary-link-<id>`` with the
role ``patient`` (``permissions.PATIENT``, which no account can have).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ketapath.config import Settings, get_settings
from ketapath.services import audit, mail
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    LinkRefused,
    NotFound,
    TooManyRequests,
)
from ketapath.services.people import usernames_of
from ketapath.services.permissions import PATIENT, SYSTEM, Actor
from ketapath.services.rate_limit import SlidingWindow
from ketapath.services.unit import action
from ketapath.services.validation import validate
from ketapath.store.db import Database
from ketapath.store.models import DiaryEntry, DiaryLink, InfusionSession, Order

# A 35-day diary (bibliography pickering-2020-ketamine-magnesium, primary endpoint: the area
# under the daily pain-intensity curve over 35 days after infusion) and a week to spare for
# late starts (clinic convenience, not a clinical number).
DEFAULT_DAYS_VALID = 42
MAX_DAYS_VALID = 120
NOTE_LENGTH = 500
DESCRIPTION_LENGTH = 200
MEDICINE_NAME_LENGTH = 120
MAX_SIDE_EFFECTS = 10
MAX_OPIOID_DOSES = 10
# The largest single dose a diary takes, in any unit: a bound against typing errors, not a
# clinical limit (the clinic checks the doses; the diary only records them).
MAX_DOSE = 100_000
RECENT_DAYS = 7
NOT_RECOGNISED = "not recognised: check by hand"
DIARY_PATH = "/diary/start/"
HOUR = timedelta(hours=1)

# In memory, per process (module docstring).
_writes = SlidingWindow(HOUR)
_open_failures = SlidingWindow(HOUR)

LinkState = Literal["not_opened", "opened", "expired", "revoked"]
LINK_STATE_LABELS: dict[str, str] = {
    "not_opened": "Not opened",
    "opened": "Opened",
    "expired": "Expired",
    "revoked": "Withdrawn",
}

USED = "This link has already been used: ask the clinic for a new one."
EXPIRED = "This link has expired: ask the clinic for a new one."
REVOKED = "This link was withdrawn by the clinic: ask the clinic for a new one."
UNKNOWN = (
    "This link is not known: check that the whole address was copied, or ask the clinic for "
    "a new one."
)
NO_SESSION = (
    "Your diary is not open on this device: open it from the link the clinic gave you (the "
    "link works once; for another device, ask the clinic for a new one)."
)


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def diary_actor(link_id: int) -> Actor:
    """Who a patient's action through link ``link_id`` is audited as."""
    return Actor(user_id=None, username=f"diary-link-{link_id}", role=PATIENT)


def reset_rate_limits() -> None:
    """Forget every count (tests; a restart does the same)."""
    _writes.clear()
    _open_failures.clear()


# ------------------------------------------------------------------ payloads


class LinkRequest(BaseModel):
    """A new diary link for a course."""

    model_config = ConfigDict(extra="forbid")

    days_valid: int = Field(
        default=DEFAULT_DAYS_VALID,
        ge=1,
        le=MAX_DAYS_VALID,
        description="How many days the link (and the diary it opens) works: 1-120; 42 = a "
        "35-day diary and a week to spare.",
    )
    send_to: str | None = Field(
        default=None,
        max_length=mail.ADDRESS_LENGTH,
        description="E-mail the link to this address (only when ketapath has mail settings).",
    )

    @field_validator("send_to")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if not mail.is_address(value):
            raise ValueError("not an e-mail address (for example name@example.org)")
        return value


class SideEffectInput(BaseModel):
    """A side effect the patient had that day, from the clinic's side-effect vocabulary."""

    model_config = ConfigDict(extra="forbid")

    effect: str = Field(min_length=1, max_length=40, examples=["headache"])
    description: str = Field(
        default="", max_length=DESCRIPTION_LENGTH, description="Required for 'other'."
    )

    @model_validator(mode="after")
    def _known(self) -> SideEffectInput:
        vocabulary = side_effect_names()
        if self.effect not in vocabulary:
            raise ValueError(f"'{self.effect}' is not a side effect of the list; choose 'other'")
        self.description = " ".join(self.description.split())
        if self.effect == "other" and not self.description:
            raise ValueError("say what the other side effect was")
        return self


class OpioidDoseInput(BaseModel):
    """An opioid the patient took that day: the medicine's name as written on the pack, one
    dose with its unit, and how many times."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=MEDICINE_NAME_LENGTH, examples=["oxycodone"])
    dose: float = Field(gt=0, le=MAX_DOSE, examples=[10])
    unit: str = Field(min_length=1, max_length=20, examples=["mg"])
    times: int = Field(ge=1, le=24, description="How many times that day.", examples=[2])

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("write the medicine's name")
        return value

    @field_validator("unit")
    @classmethod
    def _unit(cls, value: str) -> str:
        from ketapath.domain.medicines import unit_kind

        value = value.strip()
        if unit_kind(value) == "other":
            raise ValueError(f"'{value}' is not a dose unit; use e.g. mg, mcg, mL or tablets")
        return value


class DiaryEntryInput(BaseModel):
    """One day of the diary."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    day: date = Field(
        description="The day: not in the future, not before the course, not after the link's "
        "expiry."
    )
    pain_nrs: int = Field(ge=0, le=10, description="Pain today, 0 (none) to 10 (worst).")
    sleep_quality: int | None = Field(
        default=None, ge=0, le=10, description="Last night's sleep, 0 (worst) to 10 (best)."
    )
    side_effects: list[SideEffectInput] = Field(default=[], max_length=MAX_SIDE_EFFECTS)
    opioid_doses: list[OpioidDoseInput] = Field(default=[], max_length=MAX_OPIOID_DOSES)
    note: str = Field(default="", max_length=NOTE_LENGTH)

    @field_validator("side_effects")
    @classmethod
    def _once_each(cls, value: list[SideEffectInput]) -> list[SideEffectInput]:
        named = [s.effect for s in value if s.effect != "other"]
        if len(named) != len(set(named)):
            raise ValueError("a side effect is listed twice")
        return value


# ------------------------------------------------------------------ views


class DiaryLinkView(BaseModel):
    """A diary link (never its secret) and its state now."""

    id: int
    order_id: int
    patient_id: int
    state: LinkState
    created_at: datetime
    created_by: str | None
    expires_at: datetime
    opened_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None
    sent_to: str | None
    last_sent_at: datetime | None


class IssuedDiaryLink(BaseModel):
    """A new link: its address, shown this once (only its hash is kept)."""

    link: DiaryLinkView
    url: str = Field(description="The link to give the patient; it cannot be shown again.")
    sent: bool = Field(description="Whether ketapath e-mailed it (send_to, mail settings).")
    send_problem: str | None = Field(
        default=None, description="Why the e-mail was not sent; copy the link instead."
    )


class SideEffectView(BaseModel):
    effect: str
    name: str
    description: str = ""


class OpioidDoseView(BaseModel):
    """An opioid dose as the patient wrote it, with what the medicine vocabulary made of its
    name: ``recognised`` False is "not recognised: check by hand" (kept, never dropped)."""

    name: str
    dose: float
    unit: str
    times: int
    recognised: bool
    opioids: list[str] = Field(description="The opioid ingredients the name was read as.")
    check: str = Field(default="", description="What the clinic should check, in words.")


class DiaryEntryView(BaseModel):
    id: int
    order_id: int
    patient_id: int
    day: date
    pain_nrs: int
    sleep_quality: int | None
    side_effects: list[SideEffectView]
    opioid_doses: list[OpioidDoseView]
    note: str
    recorded_at: datetime
    recorded_by: str
    amends_id: int | None
    versions: int = Field(default=1, description="How many times the day was written.")
    not_recognised: list[str] = Field(
        default=[], description="Opioid names the vocabulary did not recognise."
    )


class DiaryView(BaseModel):
    """A course's diary for the clinic: the latest entry of each day, oldest day first."""

    order_id: int
    patient_id: int
    entries: list[DiaryEntryView]
    days: int
    not_recognised: list[str] = Field(
        default=[],
        description="Every opioid name of the diary the vocabulary did not recognise: check "
        "by hand.",
    )


class OpenedDiary(BaseModel):
    """A diary opened from its link: the session secret for the phone's cookie (only its
    hash is kept) and until when it works."""

    session: str
    link_id: int
    expires_at: datetime


class PatientDiary(BaseModel):
    """What the patient's page shows: the days they may write and their recent entries."""

    link_id: int
    today: date
    earliest: date
    latest: date
    expires_at: datetime
    entries: list[DiaryEntryView]
    today_entry: DiaryEntryView | None


@dataclass(frozen=True)
class ReminderReport:
    sent: int
    skipped: int
    problems: list[str]


# ------------------------------------------------------------------ vocabulary


def side_effect_names() -> dict[str, str]:
    """The session side-effect vocabulary (``session_rules.yaml``): id -> name."""
    from ketapath.knowledge.clinical import knowledge

    return {entry.id: entry.name for entry in knowledge().session_rules.entries}


def _recognised(name: str) -> tuple[bool, list[str]]:
    """Whether the medicine vocabulary knows ``name``, and its opioid ingredients."""
    from ketapath.domain.medicines import recognise
    from ketapath.knowledge.clinical import knowledge

    kb = knowledge()
    found = recognise(name, kb.medicines)
    if not found.recognised:
        return False, []
    return True, [i for i in found.ingredients if i in set(kb.opioid_ids)]


# ------------------------------------------------------------------ links (the clinic)


def _state(link: DiaryLink, now: datetime) -> LinkState:
    if link.revoked_at is not None:
        return "revoked"
    if link.expires_at <= now:
        return "expired"
    return "opened" if link.opened_at is not None else "not_opened"


def _link_views(session: Session, links: list[DiaryLink], now: datetime) -> list[DiaryLinkView]:
    people = [x.created_by_id for x in links] + [x.revoked_by_id for x in links]
    names = usernames_of(session, people)
    return [
        DiaryLinkView(
            id=x.id,
            order_id=x.order_id,
            patient_id=x.patient_id,
            state=_state(x, now),
            created_at=x.created_at,
            created_by=names.get(x.created_by_id),
            expires_at=x.expires_at,
            opened_at=x.opened_at,
            revoked_at=x.revoked_at,
            revoked_by=names.get(x.revoked_by_id),
            sent_to=x.sent_to,
            last_sent_at=x.last_sent_at,
        )
        for x in links
    ]


def _signed_order(session: Session, order_id: int) -> Order:
    order = session.get(Order, order_id)
    if order is None or order.status != "signed":
        raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
    return order


def _cancelled(session: Session, order_id: int) -> bool:
    return (
        session.scalar(
            select(Order.id).where(Order.amends_id == order_id, Order.status == "cancelled")
        )
        is not None
    )


def link_url(settings: Settings, secret: str) -> str:
    return f"{settings.public_url}{DIARY_PATH}{secret}"


def create_link(
    db: Database,
    actor: Actor,
    order_id: int,
    *,
    days_valid: int = DEFAULT_DAYS_VALID,
    send_to: str | None = None,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> IssuedDiaryLink:
    """A new single-use diary link for the course of ``order_id`` (physician, nurse).

    The address is returned once and never kept. With ``send_to`` it is e-mailed (the mail
    settings must be set, or nothing is made); a mail server that fails leaves the link made,
    with ``send_problem`` saying why, so that the clinic copies it instead.
    """
    settings = settings or get_settings()
    clock = clock or clinic_clock(settings)
    request = validate(LinkRequest, {"days_valid": days_valid, "send_to": send_to})
    if request.send_to and not settings.smtp_configured:
        raise InvalidInput(
            "send_to: ketapath has no mail settings (KETAPATH_SMTP_HOST, KETAPATH_SMTP_FROM), "
            "so it cannot e-mail the link; leave the address out and give the patient the link "
            "through the clinic's own channel.",
            field="send_to",
        )
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    with action(db, actor, "diary.manage", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        if _cancelled(session, order_id):
            raise Conflict(
                f"order_id: order {order_id} was cancelled; a diary link is for a course that "
                "goes ahead.",
                field="order_id",
            )
        link = DiaryLink(
            patient_id=order.patient_id,
            order_id=order.id,
            token_hash=hash_secret(secret),
            created_at=now,
            created_by_id=actor.user_id,
            expires_at=now + timedelta(days=request.days_valid),
            sent_to=request.send_to,
        )
        session.add(link)
        session.flush()
        audit.record(
            session,
            actor,
            "diary.link.create",
            entity="diary_link",
            entity_id=link.id,
            patient_id=order.patient_id,
            detail={
                "order_id": order.id,
                "days_valid": request.days_valid,
                "send_to": request.send_to,
            },
        )
        link_id = link.id
    url = link_url(settings, secret)
    problem = None
    if request.send_to:
        problem = _send_link(db, settings, link_id, request.send_to, url, clock)
    with db.read_only() as session:
        row = session.get(DiaryLink, link_id)
        assert row is not None
        view = _link_views(session, [row], now)[0]
    return IssuedDiaryLink(
        link=view, url=url, sent=bool(request.send_to) and problem is None, send_problem=problem
    )


LINK_SUBJECT = "Your pain diary from the clinic"
LINK_BODY = """Hello,

The clinic asks you to keep a short diary of your pain each day after your ketamine
infusions. Open this link on your phone and press "Open my diary":

{url}

The link works once, on one phone, until {expires}. Keep the diary page open or bookmark
{diary}. If the link does not work, ask the clinic for a new one. Do not share it.

This e-mail was sent by the clinic's ketapath system; replies are not read.
"""
REMINDER_SUBJECT = "A reminder: today's pain diary"
REMINDER_OPENED = """Hello,

Please fill in today's pain diary: open {diary} on the phone where you opened the clinic's
link. It takes a minute.

If the diary does not open, ask the clinic for a new link.
"""
REMINDER_NOT_OPENED = """Hello,

Please fill in today's pain diary: open the link in the clinic's e-mail of {sent} on your
phone and press "Open my diary".

If you cannot find it, ask the clinic for a new link.
"""


def _send_link(
    db: Database, settings: Settings, link_id: int, to: str, url: str, clock: ClinicClock
) -> str | None:
    """E-mail the link; the problem in words when the mail server does not take it."""
    with db.read_only() as session:
        row = session.get(DiaryLink, link_id)
        assert row is not None
        expires = clock.local(row.expires_at).strftime("%d %B %Y")
    body = LINK_BODY.format(url=url, expires=expires, diary=f"{settings.public_url}/diary")
    try:
        mail.send(settings, to, LINK_SUBJECT, body)
    except mail.MailNotSent as error:
        problem = f"The e-mail was not sent: {error}. Copy the link and send it another way."
        _stamp_sent(db, link_id, None, f"diary.link.send_failed: {error}")
        return problem
    _stamp_sent(db, link_id, clock.now(), "")
    return None


def _stamp_sent(db: Database, link_id: int, at: datetime | None, failure: str) -> None:
    with db.transaction() as session:
        row = session.get(DiaryLink, link_id)
        assert row is not None
        if at is not None:
            row.last_sent_at = at
        audit.record(
            session,
            SYSTEM,
            "diary.link.send" if at is not None else "diary.link.send_failed",
            entity="diary_link",
            entity_id=link_id,
            patient_id=row.patient_id,
            outcome="ok" if at is not None else "failed",
            detail={"to": row.sent_to, **({"problem": failure} if failure else {})},
        )


def links_for_order(
    db: Database, actor: Actor, order_id: int, *, clock: ClinicClock | None = None
) -> list[DiaryLinkView]:
    """The course's diary links, newest first, each with its state now."""
    now = (clock or clinic_clock()).now()
    with action(db, actor, "diary.read", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        links = list(
            session.scalars(
                select(DiaryLink)
                .where(DiaryLink.order_id == order_id)
                .order_by(DiaryLink.id.desc())
            )
        )
        audit.record(
            session,
            actor,
            "diary.link.list",
            entity="diary_link",
            patient_id=order.patient_id,
            detail={"order_id": order_id, "count": len(links)},
        )
        return _link_views(session, links, now)


def revoke_link(
    db: Database, actor: Actor, link_id: int, *, clock: ClinicClock | None = None
) -> DiaryLinkView:
    """Withdraw a link: it cannot be opened any more, and a diary opened from it stops."""
    now = (clock or clinic_clock()).now()
    with action(db, actor, "diary.manage", entity="diary_link", entity_id=link_id) as session:
        link = session.get(DiaryLink, link_id)
        if link is None:
            raise NotFound(f"link_id: no diary link {link_id}.", field="link_id")
        if link.revoked_at is not None:
            raise Conflict(f"link_id: diary link {link_id} is already withdrawn.", field="link_id")
        link.revoked_at = now
        link.revoked_by_id = actor.user_id
        audit.record(
            session,
            actor,
            "diary.link.revoke",
            entity="diary_link",
            entity_id=link.id,
            patient_id=link.patient_id,
            detail={"order_id": link.order_id},
        )
        session.flush()
        return _link_views(session, [link], now)[0]


# ------------------------------------------------------------------ opening (the patient)


def _too_many_failures(client: str, settings: Settings, now: datetime) -> None:
    if _open_failures.over(client, settings.diary_open_failures_per_hour, now):
        wait = max(1, round(_open_failures.retry_after(client, now).total_seconds() / 60))
        raise TooManyRequests(
            f"Too many links that could not be opened from this address: try again in about "
            f"{wait} minutes, or ask the clinic for help.",
            field="token",
        )


def _refuse_open(
    db: Database, link: DiaryLink | None, message: str, client: str, now: datetime
) -> LinkRefused:
    """Count and audit a refused opening; the error to raise."""
    _open_failures.hit(client, 1_000_000, now)
    with db.transaction() as session:
        audit.record(
            session,
            diary_actor(link.id) if link is not None else Actor(None, "diary-link", PATIENT),
            "diary.link.open",
            entity="diary_link",
            entity_id=link.id if link is not None else None,
            patient_id=link.patient_id if link is not None else None,
            outcome="denied",
            detail={"reason": message, "client": client},
        )
    return LinkRefused(message, field="token")


def open_link(
    db: Database,
    token: str,
    *,
    client: str = "",
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> OpenedDiary:
    """Open a diary link, once: stamps ``opened_at`` and returns the session secret for the
    phone's cookie. A second opening, an expired, withdrawn or unknown link is refused in
    words; so are further attempts from ``client`` (its address) after too many refusals."""
    settings = settings or get_settings()
    now = (clock or clinic_clock(settings)).now()
    _too_many_failures(client, settings, now)
    token = token.strip()
    if not token or len(token) > 200:
        raise _refuse_open(db, None, UNKNOWN, client, now)
    session_secret = secrets.token_urlsafe(32)
    with db.transaction() as session:
        link = session.scalar(select(DiaryLink).where(DiaryLink.token_hash == hash_secret(token)))
        refusal = _open_refusal(link, now)
        if refusal is None and link is not None:
            # one UPDATE that only an unopened link matches: two openings at once, one wins
            opened = session.execute(
                update(DiaryLink)
                .where(DiaryLink.id == link.id, DiaryLink.opened_at.is_(None))
                .values(opened_at=now, session_hash=hash_secret(session_secret))
                .execution_options(synchronize_session=False)
            )
            if opened.rowcount != 1:  # type: ignore[attr-defined]
                refusal = USED
            else:
                audit.record(
                    session,
                    diary_actor(link.id),
                    "diary.link.open",
                    entity="diary_link",
                    entity_id=link.id,
                    patient_id=link.patient_id,
                    detail={"order_id": link.order_id, "client": client},
                )
                return OpenedDiary(
                    session=session_secret, link_id=link.id, expires_at=link.expires_at
                )
    raise _refuse_open(db, link, refusal or UNKNOWN, client, now)


def _open_refusal(link: DiaryLink | None, now: datetime) -> str | None:
    if link is None:
        return UNKNOWN
    if link.revoked_at is not None:
        return REVOKED
    if link.opened_at is not None:
        return USED
    if link.expires_at <= now:
        return EXPIRED
    return None


# ------------------------------------------------------------------ writing (the patient)


def _session_link(session: Session, session_secret: str, now: datetime) -> DiaryLink:
    """The link a diary session belongs to, refused once it expired or was withdrawn."""
    if not session_secret or len(session_secret) > 200:
        raise AuthenticationFailed(NO_SESSION)
    link = session.scalar(
        select(DiaryLink).where(DiaryLink.session_hash == hash_secret(session_secret))
    )
    if link is None:
        raise AuthenticationFailed(NO_SESSION)
    if link.revoked_at is not None:
        raise LinkRefused(
            "This diary was closed by the clinic: ask the clinic for a new link.", field="session"
        )
    if link.expires_at <= now:
        raise LinkRefused(
            "This diary link has expired: ask the clinic for a new one if the diary should go on.",
            field="session",
        )
    return link


def _first_day(session: Session, order: Order, clock: ClinicClock) -> date:
    """The course's first diary day: its first scheduled session (a diary is about the
    course, not before it), or the order's signing date while nothing is scheduled.

    A session cannot be scheduled before the clinic's today, so the first session is never
    before the signing date in practice; a course recorded on a clinic clock set back (the
    demo's finished course, a replayed scenario) keeps its own dates."""
    signed = clock.date_of(order.recorded_at)
    replaced = select(InfusionSession.replaces_id).where(InfusionSession.replaces_id.is_not(None))
    first = session.scalar(
        select(func.min(InfusionSession.scheduled_on)).where(
            InfusionSession.order_id == order.id, InfusionSession.id.not_in(replaced)
        )
    )
    return first if first is not None else signed


def _window(session: Session, link: DiaryLink, clock: ClinicClock) -> tuple[date, date]:
    """The days the diary of ``link`` takes: from the course's first day to the last of
    today and the link's expiry."""
    order = session.get(Order, link.order_id)
    assert order is not None
    last = min(clock.today(), clock.date_of(link.expires_at))
    return _first_day(session, order, clock), last


def _check_day(day: date, earliest: date, clock: ClinicClock, last: date) -> None:
    """A diary day: not in the future (the clinic's today), not before the course's first
    day, not after the link's last day."""
    today = clock.today()
    if day > today:
        raise InvalidInput(
            f"day: {day:%d %B %Y} is in the future; today is {today:%d %B %Y}.", field="day"
        )
    if day < earliest:
        raise InvalidInput(
            f"day: {day:%d %B %Y} is before the course began ({earliest:%d %B %Y}).",
            field="day",
        )
    if day > last:
        raise InvalidInput(
            f"day: {day:%d %B %Y} is after the diary link's last day ({last:%d %B %Y}).",
            field="day",
        )


def _entry_document(data: DiaryEntryInput) -> dict[str, Any]:
    names = side_effect_names()
    doses = []
    for dose in data.opioid_doses:
        recognised, opioids = _recognised(dose.name)
        doses.append(
            {
                **dose.model_dump(mode="json"),
                "recognised": recognised,
                "opioids": opioids,
                "check": "" if recognised else f"{dose.name}: {NOT_RECOGNISED}",
            }
        )
    return {
        "sleep_quality": data.sleep_quality,
        "side_effects": [
            {"effect": s.effect, "name": names[s.effect], "description": s.description}
            for s in data.side_effects
        ],
        "opioid_doses": doses,
        "note": " ".join(data.note.split()) if data.note.strip() else "",
    }


def _current_for_day(session: Session, order_id: int, day: date) -> tuple[DiaryEntry | None, int]:
    """The latest entry of a day (the one no other entry amends) and how many were written."""
    rows = list(
        session.scalars(
            select(DiaryEntry)
            .where(DiaryEntry.order_id == order_id, DiaryEntry.day == day)
            .order_by(DiaryEntry.id)
        )
    )
    amended = {row.amends_id for row in rows if row.amends_id is not None}
    current = [row for row in rows if row.id not in amended]
    return (current[-1] if current else None), len(rows)


def _check_rate(link_id: int, settings: Settings, now: datetime) -> None:
    if not _writes.hit(str(link_id), settings.diary_writes_per_hour, now):
        wait = max(1, round(_writes.retry_after(str(link_id), now).total_seconds() / 60))
        raise TooManyRequests(
            f"Too many diary entries sent in the last hour: try again in about {wait} minutes.",
            field="session",
        )


@contextmanager
def _patient_transaction(db: Database) -> Iterator[Session]:
    try:
        with db.transaction() as session:
            yield session
    except IntegrityError as error:
        raise Conflict(
            "The diary for this day was saved from another window at the same time; reload "
            "the page and check it."
        ) from error


def record_entry(
    db: Database,
    session_secret: str,
    data: DiaryEntryInput | dict[str, Any],
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> DiaryEntryView:
    """Write one day of the diary of the link whose session this is (only that patient's,
    that course's). A second entry for a day amends the first; nothing is written when the
    input is refused."""
    settings = settings or get_settings()
    clock = clock or clinic_clock(settings)
    now = clock.now()
    entry = data if isinstance(data, DiaryEntryInput) else validate(DiaryEntryInput, data)
    with _patient_transaction(db) as session:
        link = _session_link(session, session_secret, now)
        _check_rate(link.id, settings, now)
        earliest, _ = _window(session, link, clock)
        _check_day(entry.day, earliest, clock, clock.date_of(link.expires_at))
        previous, written = _current_for_day(session, link.order_id, entry.day)
        row = DiaryEntry(
            patient_id=link.patient_id,
            order_id=link.order_id,
            link_id=link.id,
            day=entry.day,
            pain_nrs=entry.pain_nrs,
            entry=_entry_document(entry),
            recorded_at=now,
            recorded_by_id=None,
            amends_id=previous.id if previous is not None else None,
        )
        session.add(row)
        session.flush()
        view = _entry_view(row, f"diary-link-{link.id}", written + 1)
        audit.record(
            session,
            diary_actor(link.id),
            "diary.entry.amend" if previous is not None else "diary.entry.record",
            entity="diary_entry",
            entity_id=row.id,
            patient_id=link.patient_id,
            detail={
                "order_id": link.order_id,
                "day": entry.day.isoformat(),
                "amends": previous.id if previous is not None else None,
                "not_recognised": view.not_recognised,
            },
        )
        return view


def _entry_view(row: DiaryEntry, recorded_by: str, versions: int = 1) -> DiaryEntryView:
    document = row.entry or {}
    doses = [OpioidDoseView.model_validate(d) for d in document.get("opioid_doses") or []]
    return DiaryEntryView(
        id=row.id,
        order_id=row.order_id,
        patient_id=row.patient_id,
        day=row.day,
        pain_nrs=row.pain_nrs,
        sleep_quality=document.get("sleep_quality"),
        side_effects=[SideEffectView.model_validate(s) for s in document.get("side_effects") or []],
        opioid_doses=doses,
        note=document.get("note") or "",
        recorded_at=row.recorded_at,
        recorded_by=recorded_by,
        amends_id=row.amends_id,
        versions=versions,
        not_recognised=[d.name for d in doses if not d.recognised],
    )


def _latest_per_day(session: Session, order_id: int) -> list[DiaryEntryView]:
    rows = list(
        session.scalars(
            select(DiaryEntry).where(DiaryEntry.order_id == order_id).order_by(DiaryEntry.id)
        )
    )
    amended = {row.amends_id for row in rows if row.amends_id is not None}
    per_day: dict[date, int] = {}
    for row in rows:
        per_day[row.day] = per_day.get(row.day, 0) + 1
    names = usernames_of(session, [row.recorded_by_id for row in rows])
    current = sorted((r for r in rows if r.id not in amended), key=lambda r: (r.day, r.id))
    return [
        _entry_view(
            row,
            names.get(row.recorded_by_id) or f"diary-link-{row.link_id}",
            per_day[row.day],
        )
        for row in current
    ]


def diary_for_order(db: Database, actor: Actor, order_id: int) -> DiaryView:
    """The course's diary for the clinic: the latest entry of each day, with what the
    medicine vocabulary did not recognise flagged (clinical readers)."""
    with action(db, actor, "diary.read", entity="order", entity_id=order_id) as session:
        order = _signed_order(session, order_id)
        entries = _latest_per_day(session, order_id)
        audit.record(
            session,
            actor,
            "diary.read",
            entity="diary_entry",
            patient_id=order.patient_id,
            detail={"order_id": order_id, "days": len(entries)},
        )
        unknown = list(dict.fromkeys(n for e in entries for n in e.not_recognised))
        return DiaryView(
            order_id=order_id,
            patient_id=order.patient_id,
            entries=entries,
            days=len(entries),
            not_recognised=unknown,
        )


def patient_diary(
    db: Database, session_secret: str, *, clock: ClinicClock | None = None
) -> PatientDiary:
    """What the patient's own page shows: the days they may write, today's entry and the
    last week's entries (audited as the link)."""
    clock = clock or clinic_clock()
    now = clock.now()
    with db.transaction() as session:
        link = _session_link(session, session_secret, now)
        earliest, latest = _window(session, link, clock)
        entries = _latest_per_day(session, link.order_id)
        audit.record(
            session,
            diary_actor(link.id),
            "diary.patient_read",
            entity="diary_entry",
            patient_id=link.patient_id,
            detail={"order_id": link.order_id},
        )
    today = clock.today()
    recent = [e for e in entries if e.day > today - timedelta(days=RECENT_DAYS)]
    return PatientDiary(
        link_id=link.id,
        today=today,
        earliest=earliest,
        latest=latest,
        expires_at=link.expires_at,
        entries=list(reversed(recent)),
        today_entry=next((e for e in entries if e.day == today), None),
    )


# ------------------------------------------------------------------ reminders


def send_reminders(
    db: Database, *, clock: ClinicClock | None = None, settings: Settings | None = None
) -> ReminderReport:
    """E-mail a reminder for each live link with an address whose course has no diary entry
    for the clinic's today, at most once a clinic day per link (run it from cron). Without
    mail settings nothing is sent."""
    settings = settings or get_settings()
    clock = clock or clinic_clock(settings)
    if not settings.smtp_configured:
        return ReminderReport(0, 0, ["ketapath has no mail settings: no reminder was sent"])
    now, today = clock.now(), clock.today()
    with db.read_only() as session:
        live = list(
            session.scalars(
                select(DiaryLink)
                .where(
                    DiaryLink.revoked_at.is_(None),
                    DiaryLink.expires_at > now,
                    DiaryLink.sent_to.is_not(None),
                )
                .order_by(DiaryLink.id)
            )
        )
        written = set(
            session.scalars(
                select(DiaryEntry.order_id).where(
                    DiaryEntry.order_id.in_({x.order_id for x in live}), DiaryEntry.day == today
                )
            )
        )
    sent, skipped, problems = 0, 0, []
    for link in live:
        reminded_today = link.last_sent_at is not None and clock.date_of(link.last_sent_at) == today
        if link.order_id in written or reminded_today or link.sent_to is None:
            skipped += 1
            continue
        if link.opened_at is not None:
            body = REMINDER_OPENED.format(diary=f"{settings.public_url}/diary")
        else:
            sent_on = clock.local(link.created_at).strftime("%d %B %Y")
            body = REMINDER_NOT_OPENED.format(sent=sent_on)
        try:
            mail.send(settings, link.sent_to, REMINDER_SUBJECT, body)
        except mail.MailNotSent as error:
            problems.append(f"diary link {link.id}: {error}")
            _stamp_reminder(db, link.id, None, str(error))
            continue
        _stamp_reminder(db, link.id, now, "")
        sent += 1
    return ReminderReport(sent, skipped, problems)


def _stamp_reminder(db: Database, link_id: int, at: datetime | None, failure: str) -> None:
    with db.transaction() as session:
        row = session.get(DiaryLink, link_id)
        assert row is not None
        if at is not None:
            row.last_sent_at = at
        audit.record(
            session,
            SYSTEM,
            "diary.remind",
            entity="diary_link",
            entity_id=link_id,
            patient_id=row.patient_id,
            outcome="ok" if at is not None else "failed",
            detail={"to": row.sent_to, **({"problem": failure} if failure else {})},
        )
