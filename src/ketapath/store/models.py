"""The clinic registry's tables (SQLAlchemy 2 declarative models).

Clinical records are append-only: a correction is a new row that points at the row it
amends (``amends_id``), with who, when and why. ``amends_id`` is unique, so a record's
history is a single chain and two people cannot amend the same version at once. The
migrations add database triggers that refuse UPDATE and DELETE on these tables (and, on
PostgreSQL, TRUNCATE), so the rule holds for someone with an ordinary SQL prompt; what a
database superuser can still do is in docs/operations.md ("What the audit log withstands").

Every timestamp is timezone-aware UTC (``UTCDateTime``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

ROLES = ("physician", "nurse", "pharmacist", "researcher", "admin")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# Tables whose rows are never updated or deleted (see the module docstring).
APPEND_ONLY_TABLES = (
    "patient_versions",
    "diagnoses",
    "medications",
    "assessments",
    "screening_results",
    "courses",
    "orders",
    "order_confirmations",
    "opioid_plans",
    "opioid_doses",
    "drug_libraries",
    "infusion_sessions",
    "session_events",
    "stock_products",
    "stock_locations",
    "ledger_lines",
    "assessment_contexts",
    "success_indicators",
    "diary_entries",
    "repeat_decisions",
    "safety_results",
    "letters",
    "exposure_summaries",
    "audit_log",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored as UTC and always read back timezone-aware.

    SQLite has no time zones, so the UTC wall time is stored there; a naive datetime is
    refused on the way in rather than guessed at.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware (UTC)")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDocument}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('physician', 'nurse', 'pharmacist', 'researcher', 'admin')", name="role"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    locked_until: Mapped[datetime | None]
    # Failed sign-ins before this moment no longer count (set on success and on unlock).
    failures_reset_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64))


class LoginAttempt(Base):
    """Every sign-in attempt, also for unknown user names (for lock-out and for audit)."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_username_at", "username", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(default=utcnow)
    succeeded: Mapped[bool] = mapped_column(Boolean)
    channel: Mapped[str] = mapped_column(String(10))  # "api" | "web"


class AuthToken(Base):
    """An API bearer token or a web session; only the SHA-256 of the secret is stored."""

    __tablename__ = "auth_tokens"
    __table_args__ = (CheckConstraint("kind IN ('api', 'session')", name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Patient(Base):
    """The identity of a patient; what is known about them is in ``PatientVersion``."""

    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stable research pseudonym, random, never derived from identifying data.
    pseudonym: Mapped[str] = mapped_column(String(24), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class PatientVersion(Base):
    """One version of the patient document (demographics, diagnoses, medicines ...)."""

    __tablename__ = "patient_versions"
    __table_args__ = (
        UniqueConstraint("patient_id", "version", name="uq_patient_versions_patient_version"),
        CheckConstraint("version >= 1", name="version_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    document: Mapped[dict[str, Any]]
    # Copied out of the document for search and sorting.
    full_name: Mapped[str] = mapped_column(String(200), index=True)
    birth_date: Mapped[date | None] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(10))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("patient_versions.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class Diagnosis(Base):
    __tablename__ = "diagnoses"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    # 200: a diagnosis may be written as the consensus tables word it (migration 0006).
    code: Mapped[str] = mapped_column(String(200), index=True)


class Medication(Base):
    __tablename__ = "medications"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(120), index=True)
    dose: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str | None] = mapped_column(String(20))
    frequency: Mapped[str | None] = mapped_column(String(40))
    route: Mapped[str | None] = mapped_column(String(20))


class Assessment(Base):
    """An instrument administered to a patient: the answers as given and the score."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    instrument_id: Mapped[str] = mapped_column(String(40))
    answers: Mapped[dict[str, Any]]
    score: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    total: Mapped[float | None] = mapped_column(Float)
    administered_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("assessments.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class ScreeningResult(Base):
    """The eligibility and safety screen of one patient version, as it was computed."""

    __tablename__ = "screening_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    # indexed: every plan preview and signature looks up the latest screen of a version
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"), index=True)
    decision: Mapped[str] = mapped_column(String(40))
    result: Mapped[dict[str, Any]]
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    run_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CourseRecord(Base):
    """A course computed from a protocol and a patient version, frozen at signing."""

    __tablename__ = "courses"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"))
    protocol_id: Mapped[str] = mapped_column(String(80))
    options: Mapped[dict[str, Any]]
    course: Mapped[dict[str, Any]]
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Order(Base):
    """A physician's signature on a course, or a later cancellation of it (amends_id)."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('signed', 'cancelled')", name="status"),
        CheckConstraint("status = 'signed' OR amends_id IS NOT NULL", name="cancel_amends"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id"))
    screening_result_id: Mapped[int | None] = mapped_column(ForeignKey("screening_results.id"))
    status: Mapped[str] = mapped_column(String(20))
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_codes: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    # What the signing physician saw (services.orders.OrderFacts), frozen at signing; None on
    # cancellations and on orders signed before migration 0007.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)


class OrderConfirmation(Base):
    """A physician's confirmation that a stale order (its dosing facts changed after signing)
    may be used at the record's current facts: a new row that amends the order, with who, when,
    why and at which record version. The order itself never changes; an order may be confirmed
    again after a later change."""

    __tablename__ = "order_confirmations"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"))
    # the dosing facts confirmed, what had changed, and the drug-library findings accepted
    facts: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class OpioidPlan(Base):
    """A physician's opioid plan (FPM (ANZCA) 2016, section 6), frozen when agreed: what the patient
    takes now in oral morphine equivalents, the one opioid to convert to, the taper steps.

    A withdrawal is a new row that amends the agreed plan; the plan itself never changes.
    """

    __tablename__ = "opioid_plans"
    __table_args__ = (
        CheckConstraint("status IN ('agreed', 'withdrawn')", name="status"),
        CheckConstraint("status = 'agreed' OR amends_id IS NOT NULL", name="withdraw_amends"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"))
    status: Mapped[str] = mapped_column(String(20))
    request: Mapped[dict[str, Any]]
    plan: Mapped[dict[str, Any]]
    override_reason: Mapped[str | None] = mapped_column(Text)
    override_codes: Mapped[dict[str, Any] | None] = mapped_column(JSONDocument)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("opioid_plans.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class OpioidDose(Base):
    """The opioids a patient actually took per day, recorded at a follow-up, with their oral
    morphine equivalents by the named table. Corrected by a new row that amends it."""

    __tablename__ = "opioid_doses"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    taken_on: Mapped[date] = mapped_column(Date)
    medications: Mapped[dict[str, Any]]
    result: Mapped[dict[str, Any]]
    table_id: Mapped[str] = mapped_column(String(40))
    ome_mg_per_day: Mapped[float | None] = mapped_column(Float)
    complete: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("opioid_doses.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class DrugLibraryVersion(Base):
    """A version of the clinic's drug library, as approved and loaded (never changed).

    The active library is the one with the highest version; with none stored, the default
    packaged with ketapath is used. Going back to an earlier library is a new version.
    """

    __tablename__ = "drug_libraries"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    approved_at: Mapped[datetime] = mapped_column(default=utcnow)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class InfusionSession(Base):
    """One infusion session of a signed order, on a clinic date and in a chair (never changed).

    Everything that happens in the session is in its chart (``SessionEvent``); its state, the
    dose given and the prompts are replayed from there. A session moved to another day or
    chair is a new row that replaces it (``replaces_id``, with a reason); one live row per
    session of an order.
    """

    __tablename__ = "infusion_sessions"
    __table_args__ = (
        CheckConstraint("session_number >= 1", name="number_positive"),
        Index("ix_infusion_sessions_scheduled_on_chair", "scheduled_on", "chair"),
        Index(
            "uq_infusion_sessions_order_session",
            "order_id",
            "session_number",
            unique=True,
            sqlite_where=text("replaces_id IS NULL"),
            postgresql_where=text("replaces_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    session_number: Mapped[int] = mapped_column(Integer)
    scheduled_on: Mapped[date] = mapped_column(Date)
    chair: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    replaces_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_sessions.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class SessionEvent(Base):
    """One entry of a session's chart, in order (``seq`` 1, 2, 3 ...), never changed.

    ``payload`` is the entry as validated (``ketapath.domain.session_events``); a correction is
    a new entry with ``amends_seq`` naming the one it corrects (one correction per entry: a
    chain), and a reason.
    """

    __tablename__ = "session_events"
    __table_args__ = (
        UniqueConstraint("session_id", "seq", name="uq_session_events_session_seq"),
        UniqueConstraint("session_id", "amends_seq", name="uq_session_events_session_amends"),
        CheckConstraint("seq >= 1", name="seq_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("infusion_sessions.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(30))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # the role at the time: some entries are a physician's to make (an early resume)
    recorded_role: Mapped[str] = mapped_column(String(20))
    payload: Mapped[dict[str, Any]]
    amends_seq: Mapped[int | None] = mapped_column(Integer)
    reason: Mapped[str | None] = mapped_column(Text)


class StockProduct(Base):
    """A controlled-drug product the clinic stocks: drug, strength, container, maker (never
    changed; a different product is a new row). Strength in micrograms per mL and container
    volume in microlitres, so that every amount of the ledger is a whole number."""

    __tablename__ = "stock_products"
    __table_args__ = (
        CheckConstraint("strength_ug_per_ml > 0", name="strength_positive"),
        CheckConstraint("container_ul > 0", name="container_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    drug: Mapped[str] = mapped_column(String(60))
    name: Mapped[str] = mapped_column(String(200), unique=True)
    strength_ug_per_ml: Mapped[int] = mapped_column(BigInteger)
    container_ul: Mapped[int] = mapped_column(BigInteger)
    form: Mapped[str] = mapped_column(String(40))
    manufacturer: Mapped[str] = mapped_column(String(200))
    product_code: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class StockLocation(Base):
    """Where controlled drugs are kept (a safe, a cabinet), by name (never changed)."""

    __tablename__ = "stock_locations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class LedgerLine(Base):
    """One line of the controlled-drug ledger, chained to the line before it by hash.

    ``kind`` says what happened (``ketapath.domain.ledger.LineKind``). ``stock_change_ug`` is
    what the line adds to (or takes from) the stock of its product, lot and location;
    ``amount_ug`` is the amount the line is about (received, dispensed, administered,
    wasted, counted). ``corrects_seq`` points at the line a correction corrects and
    ``resolves_seq`` at the discrepancy a resolution closes. Everything the line says is
    covered by ``row_hash`` (``ketapath.services.ledger``); UPDATE and DELETE are refused by
    trigger, like the clinical tables.
    """

    __tablename__ = "ledger_lines"
    __table_args__ = (
        Index("ix_ledger_lines_seq", "seq", unique=True),
        Index("ix_ledger_lines_stock", "product_id", "lot", "location_id"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        CheckConstraint("amount_ug >= 0", name="amount_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(30))
    product_id: Mapped[int] = mapped_column(ForeignKey("stock_products.id"))
    lot: Mapped[str] = mapped_column(String(40))
    expiry: Mapped[date | None] = mapped_column(Date)
    location_id: Mapped[int | None] = mapped_column(ForeignKey("stock_locations.id"))
    stock_change_ug: Mapped[int] = mapped_column(BigInteger, default=0)
    amount_ug: Mapped[int] = mapped_column(BigInteger, default=0)
    containers: Mapped[int | None] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_sessions.id"), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    witness_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    witness_username: Mapped[str | None] = mapped_column(String(64))
    corrects_seq: Mapped[int | None] = mapped_column(BigInteger)
    resolves_seq: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


# ------------------------------------------------------------------ after the infusion (issue 12)


class AssessmentContext(Base):
    """What an assessment was for: the course (its order) it belongs to and whether it is the
    baseline, after a session, or a follow-up (``timepoint_days`` after the last session).
    One per assessment; an amended assessment keeps the context of the one it amends."""

    __tablename__ = "assessment_contexts"
    __table_args__ = (
        CheckConstraint("label IN ('baseline', 'post-session', 'follow-up')", name="label"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id"), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    label: Mapped[str] = mapped_column(String(20))
    timepoint_days: Mapped[int | None] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_sessions.id"))
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SuccessIndicators(Base):
    """The indicators of success agreed with the patient at assessment, for a course (what the
    repeat decision compares the outcome with). Changed by a new row that amends it."""

    __tablename__ = "success_indicators"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    indicators: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("success_indicators.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class DiaryLink(Base):
    """A link that lets a patient write their own diary for one course without an account.

    Only the SHA-256 of the link's secret is stored (``token_hash``). The link works once:
    opening it sets a diary session on that phone (``session_hash``, SHA-256 of the cookie's
    secret) and stamps ``opened_at``; it expires at ``expires_at`` and can be revoked. Like a
    sign-in token, its state changes (opened, revoked, sent), and every change is audited.
    """

    __tablename__ = "diary_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    session_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    expires_at: Mapped[datetime]
    opened_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    sent_to: Mapped[str | None] = mapped_column(String(320))
    last_sent_at: Mapped[datetime | None]


class DiaryEntry(Base):
    """One day of a patient's diary: pain (NRS 0-10), sleep, side effects, opioid doses taken.
    A second entry for the same day amends the first (``amends_id``)."""

    __tablename__ = "diary_entries"
    __table_args__ = (
        CheckConstraint("pain_nrs BETWEEN 0 AND 10", name="pain_nrs"),
        Index(
            "uq_diary_entries_order_day",
            "order_id",
            "day",
            unique=True,
            sqlite_where=text("amends_id IS NULL"),
            postgresql_where=text("amends_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    link_id: Mapped[int | None] = mapped_column(ForeignKey("diary_links.id"))
    day: Mapped[date] = mapped_column(Date)
    pain_nrs: Mapped[int] = mapped_column(Integer)
    entry: Mapped[dict[str, Any]]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("diary_entries.id"), unique=True)


class RepeatDecision(Base):
    """The physician's decision after a course: repeat it, change the protocol, or stop, with
    what ketapath proposed, the facts it was based on, and the reason."""

    __tablename__ = "repeat_decisions"
    __table_args__ = (
        CheckConstraint("decision IN ('repeat', 'change protocol', 'stop')", name="decision"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    proposal: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    next_protocol_id: Mapped[str | None] = mapped_column(String(80))
    basis: Mapped[dict[str, Any]]
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("repeat_decisions.id"), unique=True)


class SafetyResult(Base):
    """A safety follow-up result for repeated courses (liver enzymes, urinary symptoms,
    cognition, misuse screening): the values as recorded and whether they were abnormal."""

    __tablename__ = "safety_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    check_id: Mapped[str] = mapped_column(String(40))
    observed_on: Mapped[date] = mapped_column(Date)
    values: Mapped[dict[str, Any]]
    abnormal: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("safety_results.id"), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)


class Letter(Base):
    """A letter (discharge summary, GP letter, patient information sheet) as one version: the
    facts it was written from, its HTML and PDF, and who signed it. A new version amends the
    one before; a signed letter is a version with ``signed_by_id``."""

    __tablename__ = "letters"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('discharge_summary', 'gp_letter', 'patient_information')", name="kind"
        ),
        CheckConstraint("version >= 1", name="version_positive"),
        # one row per version: two first drafts made at once cannot both be version 1
        # (migration 0011); a letter without a course has its own index, as NULLs differ
        Index(
            "uq_letters_patient_order_kind_version",
            "patient_id",
            "order_id",
            "kind",
            "version",
            unique=True,
        ),
        Index(
            "uq_letters_patient_kind_version_without_order",
            "patient_id",
            "kind",
            "version",
            unique=True,
            sqlite_where=text("order_id IS NULL"),
            postgresql_where=text("order_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    version: Mapped[int] = mapped_column(Integer)
    facts: Mapped[dict[str, Any]]
    html: Mapped[str] = mapped_column(Text)
    pdf: Mapped[bytes] = mapped_column(LargeBinary)
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    signed_at: Mapped[datetime | None]
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("letters.id"), unique=True)


class ExposureSummaryRecord(Base):
    """A stored exposure summary (AUC, peak, time above) of a session or a course as given,
    with everything it was computed from (``inputs``, and its SHA-256 ``inputs_digest``).

    Never changed: when the chart, the record, the model or the thresholds change, the next
    read stores a new row that ``supersedes`` the one before, saying why (``reason``); a
    subject's rows are one chain, newest last. ``subject`` is ``session:<id>`` or
    ``course:<order id>``.
    """

    __tablename__ = "exposure_summaries"
    __table_args__ = (
        CheckConstraint("scope IN ('session', 'course')", name="scope"),
        CheckConstraint("scope = 'course' OR session_id IS NOT NULL", name="session_scope"),
        Index(
            "uq_exposure_summaries_subject_first",
            "subject",
            unique=True,
            sqlite_where=text("supersedes_id IS NULL"),
            postgresql_where=text("supersedes_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), index=True)
    scope: Mapped[str] = mapped_column(String(10))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_sessions.id"))
    patient_version_id: Mapped[int] = mapped_column(ForeignKey("patient_versions.id"))
    model_id: Mapped[str] = mapped_column(String(40))
    model_version: Mapped[int] = mapped_column(Integer)
    thresholds_version: Mapped[int] = mapped_column(Integer)
    method_version: Mapped[int] = mapped_column(Integer)
    inputs_digest: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]]
    summary: Mapped[dict[str, Any]]
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    computed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supersedes_id: Mapped[int | None] = mapped_column(
        ForeignKey("exposure_summaries.id"), unique=True
    )
    reason: Mapped[str] = mapped_column(Text)


class AuditEntry(Base):
    """Who did or saw what, when. Written inside the transaction of the action itself.

    ``patient_id`` is the patient number the action was about as it was asked for, with no
    foreign key: a refused request for a patient that does not exist is audited too, and the
    audit log does not depend on the patients table. Rows are chained by hash (``seq``,
    ``prev_hash``, ``row_hash``; see ``ketapath.services.audit``).
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_patient_at", "patient_id", "at"),
        Index("ix_audit_log_seq", "seq", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    username: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(60))
    outcome: Mapped[str] = mapped_column(String(10), default="ok")  # "ok" | "denied"
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(40))
    patient_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


# ------------------------------------------------------------------ the registry (issue 13)


class RegistryCourse(Base):
    """One course (signed order) as the registry analyses it: derived from the charts, the
    diary, the assessments and the safety results, never typed (``services.registry_store``).

    Not a clinical record: a summary the registry recomputes when a patient's records change
    (``RegistryDirty``), so its rows are replaced, not amended. The exposure columns come
    from the newest stored course exposure summary whose inputs are current (migration 0014);
    without one ``exposure_status`` says "not computed" and the numbers are None, never 0.
    """

    __tablename__ = "registry_courses"

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    protocol_id: Mapped[str] = mapped_column(String(80))
    setting: Mapped[str] = mapped_column(String(10))
    indication: Mapped[str | None] = mapped_column(String(80))
    diagnoses: Mapped[str] = mapped_column(String(400), default="")
    icd10cm: Mapped[str] = mapped_column(String(400), default="")
    weight_kg: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(20))
    sessions_planned: Mapped[int] = mapped_column(Integer)
    sessions_given: Mapped[int] = mapped_column(Integer)
    first_session_on: Mapped[date | None] = mapped_column(Date, index=True)
    last_session_on: Mapped[date | None] = mapped_column(Date)
    delivered_mg: Mapped[float] = mapped_column(Float)
    dose_mg_per_kg: Mapped[float | None] = mapped_column(Float)
    infusion_hours: Mapped[float] = mapped_column(Float)
    adjuncts: Mapped[str] = mapped_column(String(200))
    side_effects: Mapped[int] = mapped_column(Integer)
    troublesome_side_effects: Mapped[int] = mapped_column(Integer)
    stopped_for_side_effect: Mapped[int] = mapped_column(Integer)
    chart_refusals: Mapped[int] = mapped_column(Integer)
    safety_abnormal: Mapped[int] = mapped_column(Integer)
    # the patient's delivered dose per kg over this course and every earlier one (None: unknown)
    cumulative_mg_per_kg: Mapped[float | None] = mapped_column(Float)
    baseline_nrs: Mapped[int | None] = mapped_column(Integer)
    follow_up_days: Mapped[int | None] = mapped_column(Integer)
    follow_up_nrs: Mapped[int | None] = mapped_column(Integer)
    responder_30: Mapped[str] = mapped_column(String(16))
    responder_50: Mapped[str] = mapped_column(String(16))
    relief_status: Mapped[str] = mapped_column(String(16))
    relief_days: Mapped[int | None] = mapped_column(Integer)
    relief_event: Mapped[bool | None] = mapped_column(Boolean)
    auc_status: Mapped[str] = mapped_column(String(12))
    auc: Mapped[float | None] = mapped_column(Float)
    exposure_auc: Mapped[float | None] = mapped_column(Float)
    exposure_status: Mapped[str] = mapped_column(String(20))
    computed_at: Mapped[datetime] = mapped_column(default=utcnow)
    # predicted ketamine peak (mg/L) and minutes above the first reference concentration
    exposure_peak: Mapped[float | None] = mapped_column(Float)
    exposure_minutes_above: Mapped[float | None] = mapped_column(Float)


class RegistryDirty(Base):
    """A patient whose records changed since the registry last summarised them: written by
    database triggers in the same transaction as the change (migration 0011), removed by the
    refresh that summarises the patient again. Several rows per patient are allowed."""

    __tablename__ = "registry_dirty"

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(Integer)


class RegistryState(Base):
    """The registry summary's one row: the definitions it was computed with (a change of the
    outcome or registry rules, or of the clinic's time zone, recomputes every course), and the
    generation of the rows (one more at every refresh that changed them)."""

    __tablename__ = "registry_state"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    definitions: Mapped[str] = mapped_column(String(64))
    # counts the refreshes that changed a row: a reader's copy of the rows is good while equal
    generation: Mapped[int] = mapped_column(BigInteger, default=0)
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
