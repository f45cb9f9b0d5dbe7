"""Stored exposure summaries: AUC, peak and time above reference concentrations of ketamine
and norketamine for every infusion session and every course, as given (issue 13 item 2).

When a summary is computed: **lazily, on read, with a digest check.** Reading a session's (or
a course's) summary builds the summary's inputs from the records as they are now: the
doses its chart says were given (``domain.exposure.doses_given``, the same as the session's
exposure card), the patient's current record (weight, sex, height; age on the session's
day), the model the clinic's rule chooses with its parameters and the version of
``pk_models.yaml``, the reference concentrations in force and the method's version; their
SHA-256 is the inputs digest (``domain.exposure_summary.inputs_of``). A stored row with that
digest is the answer as it is; otherwise the summary is computed (a few milliseconds: the
exact closed forms of ``pk.summary``) and stored in the same transaction as a new row that
supersedes the one before, with the reason (what changed). So a chart entry or correction, a
new record version (a weight change), a new model version or new thresholds each give a new
row at the next read, and nothing is lost: every row keeps its inputs, from which it can be
recomputed deterministically, and the chain of rows is the history.

Why not on write: a chart write (p95 < 50 ms, issue 10) should not pay for predictions, a
record amendment would have to find and recompute every session of the patient from another
feature's transaction, and a change of a model or threshold file happens without any write
at all: only a read can see it. The registry's refresh (:func:`refresh`, ``ketapath exposure
refresh``) brings every stored summary up to date in one batch, through the population path.

A session whose pump is still running is summarised as if it stopped now (``provisional``)
and not stored: its digest would change every minute. A session with nothing given has no
summary.

Reading a summary follows ``exposure.read`` (it reads the patient's record); it is audited
(``exposure.summary``), with whether a row was stored and why.
"""

from __future__ import annotations

import functools
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from ketapath import pk
from ketapath.config import Settings, get_settings
from ketapath.domain import exposure as exposure_domain
from ketapath.domain import exposure_summary as domain
from ketapath.domain.errors import DomainError
from ketapath.domain.session_view import SessionView
from ketapath.knowledge.exposure import ExposureThresholdsFile, load_exposure_thresholds
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput, NotFound, ServiceError
from ketapath.services.orders import order_in
from ketapath.services.patients import as_patient, latest_versions_query, load_patient
from ketapath.services.permissions import Actor
from ketapath.services.sessions import chart_in, report_charts
from ketapath.services.signing import FindingView
from ketapath.services.unit import action, check
from ketapath.store.db import Database
from ketapath.store.models import (
    CourseRecord,
    ExposureSummaryRecord,
    InfusionSession,
    Order,
    PatientVersion,
)

T = TypeVar("T")
Status = Literal["stored", "provisional", "nothing given"]
TAIL_H = exposure_domain.TAIL_MIN / 60.0
# Orders read together by current_course_summaries (a refresh reads a transaction's orders).
ORDERS_PER_READ = 200
# Subjects per query of their newest stored rows (well inside SQLite's bound parameters).
SUBJECTS_PER_QUERY = 1000
# Sessions replayed at a time by a refresh (their views are let go before the next).
CHARTS_PER_READ = 200


# -- the thresholds in force ----------------------------------------------------------------
_configured: ExposureThresholdsFile | None = None


def thresholds(settings: Settings | None = None) -> ExposureThresholdsFile:
    """The reference concentrations: the packaged ``exposure_thresholds.yaml``, or the
    clinic's own file (``KETAPATH_EXPOSURE_THRESHOLDS_FILE``) in its place; those of the
    server's settings once :func:`configure_thresholds` ran. A bad file is a
    ``KnowledgeError`` naming it."""
    if settings is None and _configured is not None:
        return _configured
    return load_exposure_thresholds((settings or get_settings()).exposure_thresholds_file)


def configure_thresholds(settings: Settings) -> ExposureThresholdsFile:
    """Load and check the thresholds of ``settings`` for this process (the server does it at
    start, so that a bad file stops it there, naming the file)."""
    global _configured
    _configured = thresholds(settings)
    return _configured


# -- answers --------------------------------------------------------------------------------
class TimeAboveView(BaseModel):
    """Minutes above one reference concentration."""

    threshold_id: str
    name: str = Field(examples=["ketamine 100 ng/mL"])
    analyte: str = Field(description="The threshold's own analyte, as its source gives it.")
    basis: Literal["published", "policy"] = Field(
        description="published: a concentration a cited study used; policy: a local choice."
    )
    concentration_ng_per_ml: float = Field(description="As the source gives it.")
    applied_mg_per_l: float = Field(description="On the model's curve (mg/L).")
    converted: str | None = Field(
        description="How it was converted to the model's analyte (the other enantiomer)."
    )
    minutes: float


class AnalyteSummaryView(BaseModel):
    """One analyte over the window: AUC, peak and its time, time above each threshold."""

    label: str = Field(examples=["S-ketamine, plasma"])
    auc_mg_h_per_l: float = Field(description="From the first dose to the window's end.")
    auc_inf_mg_h_per_l: float = Field(description="To infinity, no dose after the window.")
    peak_mg_per_l: float
    peak_at_min: float = Field(description="Minutes from the first dose.")
    time_above: list[TimeAboveView]


class RecordView(BaseModel):
    """A stored summary row: when, why, and what it was computed from."""

    id: int
    computed_at: datetime
    reason: str
    model_id: str
    model_version: int = Field(description="The version of pk_models.yaml.")
    thresholds_version: int
    method_version: int
    inputs_digest: str = Field(description="SHA-256 of every input (doses, facts, model...).")
    patient_version: int
    ketamine_auc_mg_h_per_l: float
    ketamine_peak_mg_per_l: float


class CovariatesView(BaseModel):
    """The patient facts the summary used."""

    # CovariatesView.model_validate(covariates) reads the pk engine's Covariates
    model_config = ConfigDict(from_attributes=True)

    weight_kg: float
    age_years: float | None
    sex: Literal["male", "female"] | None
    height_cm: float | None


class ExposureSummaryView(BaseModel):
    """A stored (or provisional) exposure summary of a session or a course, as given."""

    subject: str = Field(examples=["session:12"])
    scope: Literal["session", "course"]
    status: Status = Field(
        description=(
            "stored: computed from the current inputs and kept; provisional: a pump is still "
            "running, so the summary counts to now and is not kept; nothing given: no dose "
            "charted yet."
        )
    )
    patient_id: int
    order_id: int
    patient_version: int
    covariates: CovariatesView | None
    given_from: datetime | None = Field(description="The first dose charted: time 0.")
    model_id: str | None
    model_name: str | None
    analyte: str | None = Field(description="'racemic ketamine' or 'S-ketamine'.")
    metabolite: str | None
    window_min: float | None = Field(description="From the first dose to 6 h after the last.")
    total_mg: float = Field(description="Racemic ketamine given (from the chart).")
    ketamine: AnalyteSummaryView | None
    norketamine: AnalyteSummaryView | None
    findings: list[FindingView]
    record: RecordView | None = Field(description="The stored row answered (None: not kept).")
    history: list[RecordView] = Field(description="Earlier rows of this subject, newest first.")
    basis: str = Field(description="What is summarised, in words.")


class SessionExposureSummaryView(ExposureSummaryView):
    """One infusion session, alone from its first dose."""

    session_id: int
    session_number: int


class CourseSessionBrief(BaseModel):
    """A session of the course in the course's summary."""

    session_id: int
    session_number: int
    status: Status
    offset_min: float | None = Field(description="Its first dose, minutes after the course's.")
    total_mg: float
    ketamine_auc_mg_h_per_l: float | None
    ketamine_peak_mg_per_l: float | None
    norketamine_auc_mg_h_per_l: float | None
    norketamine_peak_mg_per_l: float | None


class CourseExposureSummaryView(ExposureSummaryView):
    """A course: its sessions on one time axis (what remains of one session counts in the
    next), and each session's own summary."""

    sessions_in_course: int
    sessions: list[CourseSessionBrief]


# -- use cases ------------------------------------------------------------------------------
def session_summary(
    db: Database,
    actor: Actor,
    session_id: int,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> SessionExposureSummaryView:
    """A session's exposure summary as given: the stored one if its inputs are unchanged,
    else computed now and stored (see the module docstring)."""
    clock = clock or clinic_clock()
    with action(db, actor, "exposure.read", entity="session", entity_id=session_id) as session:
        row, view = chart_in(session, session_id, clock)
        order = order_in(session, row.order_id, clock)
        _, version = load_patient(session, row.patient_id)
        route = _route(order.course)
        part = _session_part(session, actor, row, view, version, route, thresholds(settings))
        audit.record(
            session,
            actor,
            "exposure.summary",
            entity="session",
            entity_id=row.id,
            patient_id=row.patient_id,
            detail=part.audit_detail,
        )
        return SessionExposureSummaryView(
            **part.fields,
            session_id=row.id,
            session_number=row.session_number,
            basis=(
                f"Session {row.session_number} as given (its chart: pump rates between the pump "
                "entries, pauses giving nothing, and boluses), alone from its first dose to "
                f"{TAIL_H:g} h after its last, for the record's facts (version "
                f"{version.version}; age on the session's day), with the model's typical "
                "parameters."
            ),
        )


def course_summary(
    db: Database,
    actor: Actor,
    order_id: int,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
) -> CourseExposureSummaryView:
    """A course's exposure summary as given: its sessions at their clock times on one axis,
    stored like a session's; and each session's own summary (stored too)."""
    clock = clock or clinic_clock()
    with action(db, actor, "exposure.read", entity="order", entity_id=order_id) as session:
        order = order_in(session, order_id, clock)
        _, version = load_patient(session, order.patient_id)
        route = _route(order.course)
        limits = thresholds(settings)
        rows = _course_sessions(session, [order.id])
        given: list[tuple[InfusionSession, exposure_domain.SessionDoses, datetime]] = []
        parts: list[tuple[InfusionSession, _Part]] = []
        running = False
        for row in rows:
            _, view = chart_in(session, row.id, clock)
            parts.append((row, _session_part(session, actor, row, view, version, route, limits)))
            # a session's summary stored on this read is audited with the course's read
            doses, origin = _doses(view, route)
            if origin is not None:
                given.append((row, doses, origin))
                running = running or _running(view)
        start = min((origin for _, _, origin in given), default=None)
        offsets = {
            row.id: (origin - start).total_seconds() / 60.0
            for row, _, origin in given
            if start is not None
        }
        sessions = [(offsets[row.id], doses) for row, doses, _ in given]
        briefs = [_brief(row, part, offsets.get(row.id)) for row, part in parts]
        day = min((row.scheduled_on for row, _, _ in given), default=None)
        fields = _summary_fields(
            session,
            actor,
            subject=f"course:{order.id}",
            scope="course",
            patient_id=order.patient_id,
            order_id=order.id,
            session_id=None,
            version=version,
            day=day,
            doses=_engine(lambda: domain.course_doses(sessions)) if sessions else None,
            origin=start,
            complete=not running,
            limits=limits,
            extra={"sessions": [[row.id, row.session_number] for row, _, _ in given]},
        )
        audit.record(
            session,
            actor,
            "exposure.summary",
            entity="order",
            entity_id=order.id,
            patient_id=order.patient_id,
            detail={
                **fields.audit_detail,
                "sessions": {
                    str(row.id): part.audit_detail.get("stored_id") for row, part in parts
                },
            },
        )
        return CourseExposureSummaryView(
            **fields.fields,
            sessions_in_course=len(order.course.get("sessions") or []),
            sessions=briefs,
            basis=(
                f"The course as given so far ({len(given)} of "
                f"{len(order.course.get('sessions') or [])} sessions with doses charted): every "
                "session's chart on one time axis from the first dose, so that what remains of "
                f"one session when the next starts is counted, to {TAIL_H:g} h after the last "
                f"dose, for the record's facts (version {version.version}; age on the first "
                "session's day), with the model's typical parameters."
            ),
        )


class RefreshReport(BaseModel):
    """What a refresh of the registry's stored summaries did."""

    sessions: int = Field(description="Sessions looked at (every live session).")
    courses: int = Field(description="Courses looked at (every signed order with sessions).")
    stored: int = Field(description="New summaries stored (new, or their inputs changed).")
    unchanged: int = Field(description="Summaries whose stored row still stands.")
    provisional: int = Field(description="Summaries not stored: a pump is running.")
    nothing_given: int = Field(description="Sessions and courses with no dose charted.")
    seconds: float


def refresh(
    db: Database,
    actor: Actor,
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
    orders_per_transaction: int = 200,
) -> RefreshReport:
    """Bring every stored summary of the registry up to date: each session's and each
    course's inputs are built as a read builds them; the summaries whose digest changed (or
    that were never stored) are computed together, a model at a time, by the population path
    (``domain.exposure_summary.summarise_many``) and stored, ``orders_per_transaction`` orders
    per transaction. What a transaction's orders need is read in a fixed number of queries
    (:func:`_read_orders`) and its new rows are written in one flush. Audited once
    (``exposure.refresh``), with the counts."""
    clock = clock or clinic_clock()
    limits = thresholds(settings)
    started = time.perf_counter()
    check(db, actor, "exposure.refresh", entity="exposure")
    with db.read_only() as session:
        order_ids = list(
            session.scalars(select(InfusionSession.order_id).distinct().order_by("order_id"))
        )
    counts = {"sessions": 0, "courses": 0, "stored": 0, "unchanged": 0, "provisional": 0}
    counts["nothing_given"] = 0
    for lo in range(0, len(order_ids), orders_per_transaction):
        batch = order_ids[lo : lo + orders_per_transaction]
        with action(db, actor, "exposure.refresh", entity="exposure") as session:
            read = _read_orders(session, batch, clock)
            pending = []
            for order_id in batch:
                pending += _pending(read.get(order_id), order_id, limits, counts)
            stale = [p for p in pending if p.stale]
            computed = _engine(functools.partial(_summarise_stale, stale, limits))
            complete = []
            for item, result in zip(stale, computed, strict=True):
                if not item.complete:
                    counts["provisional"] += 1
                    continue
                complete.append((item, result.as_dict()))
            for stored in _store_all(session, actor, complete):
                counts["stored" if stored is not None else "unchanged"] += 1
            counts["unchanged"] += sum(1 for p in pending if not p.stale)
    report = RefreshReport(**counts, seconds=time.perf_counter() - started)
    with action(db, actor, "exposure.refresh", entity="exposure") as session:
        audit.record(
            session,
            actor,
            "exposure.refresh",
            entity="exposure",
            detail=report.model_dump(exclude={"seconds"}),
        )
    return report


def current_course_summaries(
    session: Session,
    order_ids: list[int],
    clock: ClinicClock,
    *,
    limits: ExposureThresholdsFile | None = None,
) -> dict[int, dict[str, Any]]:
    """The stored summary of each of ``order_ids``' courses whose newest stored course row
    has the inputs the course has now (the digest a read would build); a course with no
    stored row, or whose inputs changed since, is left out (the registry says "not
    computed"). Nothing is computed or stored here, and nothing is audited: the caller (the
    registry's refresh) reads derived numbers inside its own audited read."""
    if not order_ids:
        return {}
    stored = set(
        session.scalars(
            select(ExposureSummaryRecord.order_id)
            .where(ExposureSummaryRecord.scope == "course")
            .where(ExposureSummaryRecord.order_id.in_(order_ids))
            .distinct()
        )
    )
    limits = limits or thresholds()
    out: dict[int, dict[str, Any]] = {}
    ordered = sorted(stored)
    for lo in range(0, len(ordered), ORDERS_PER_READ):
        batch = ordered[lo : lo + ORDERS_PER_READ]
        read = _read_orders(session, batch, clock)
        for order_id in batch:
            counts: dict[str, int] = {"sessions": 0, "courses": 0, "nothing_given": 0}
            try:
                pending = _pending(read.get(order_id), order_id, limits, counts)
            except (DomainError, ServiceError):
                continue  # a course the exposure card cannot read has no current summary
            for item in pending:
                if item.scope == "course" and item.complete and not item.stale:
                    assert item.latest is not None
                    out[order_id] = dict(item.latest.summary)
    return out


def _summarise_stale(
    stale: list[_Pending], limits: ExposureThresholdsFile
) -> list[domain.ExposureSummary]:
    return domain.summarise_many(
        [p.patient for p in stale],
        [p.doses for p in stale],
        limits,
        model_ids=[p.inputs.model_id for p in stale],
    )


@dataclass(frozen=True)
class _OrderRead:
    """A signed order as its summaries are built from it, read with the other orders of its
    batch (:func:`_read_orders`)."""

    id: int
    patient_id: int
    version: PatientVersion | None
    sessions: list[_Given]
    latest: dict[str, ExposureSummaryRecord]


@dataclass(frozen=True)
class _Given:
    """A session with the doses its chart gives now (``origin`` None: nothing given)."""

    row: InfusionSession
    doses: exposure_domain.SessionDoses
    origin: datetime | None
    running: bool


def _read_orders(
    session: Session, order_ids: Sequence[int], clock: ClinicClock
) -> dict[int, _OrderRead]:
    """The signed orders among ``order_ids`` (the others left out), each with its patient's
    current record, its live sessions with the doses their charts give now (replayed as a
    read replays them, ``CHARTS_PER_READ`` at a time) and the newest stored row of each of
    its subjects: in a fixed number of queries however many orders there are."""
    orders = session.execute(
        select(Order.id, Order.patient_id, CourseRecord.course)
        .join(CourseRecord, CourseRecord.id == Order.course_id)
        .where(Order.id.in_(list(order_ids)), Order.status == "signed")
    ).all()
    if not orders:
        return {}
    versions = {
        row.patient_id: row
        for row in session.scalars(
            latest_versions_query().where(
                PatientVersion.patient_id.in_({patient_id for _, patient_id, _ in orders})
            )
        )
    }
    routes = {order_id: _route(course) for order_id, _, course in orders}
    rows = _course_sessions(session, list(routes))
    given: dict[int, list[_Given]] = defaultdict(list)
    for lo in range(0, len(rows), CHARTS_PER_READ):
        # each view is reduced to its doses at once: holding a transaction's thousand views
        # took 110 MB more at the peak (300 patients, docs/performance.md)
        for row, _, view in report_charts(session, rows[lo : lo + CHARTS_PER_READ], clock):
            doses, origin = _doses(view, routes[row.order_id])
            given[row.order_id].append(_Given(row, doses, origin, _running(view)))
    subjects = {f"course:{order_id}": order_id for order_id in routes}
    subjects.update({f"session:{row.id}": row.order_id for row in rows})
    latest: dict[int, dict[str, ExposureSummaryRecord]] = defaultdict(dict)
    for record in _newest_rows(session, list(subjects)):
        latest[subjects[record.subject]][record.subject] = record
    return {
        order_id: _OrderRead(
            id=order_id,
            patient_id=patient_id,
            version=versions.get(patient_id),
            sessions=given[order_id],
            latest=latest[order_id],
        )
        for order_id, patient_id, _ in orders
    }


def _newest_rows(session: Session, subjects: list[str]) -> list[ExposureSummaryRecord]:
    """The newest stored row (the highest id) of each of ``subjects`` that has one."""
    out: list[ExposureSummaryRecord] = []
    for lo in range(0, len(subjects), SUBJECTS_PER_QUERY):
        newest = (
            select(func.max(ExposureSummaryRecord.id))
            .where(ExposureSummaryRecord.subject.in_(subjects[lo : lo + SUBJECTS_PER_QUERY]))
            .group_by(ExposureSummaryRecord.subject)
        )
        out += session.scalars(
            select(ExposureSummaryRecord).where(ExposureSummaryRecord.id.in_(newest))
        ).all()
    return out


@dataclass(frozen=True)
class _Pending:
    """A subject's summary inputs, and whether its stored row is stale."""

    subject: str
    scope: Literal["session", "course"]
    patient_id: int
    order_id: int
    session_id: int | None
    version: PatientVersion
    patient: pk.Covariates
    doses: exposure_domain.SessionDoses
    inputs: domain.SummaryInputs
    latest: ExposureSummaryRecord | None
    complete: bool

    @property
    def stale(self) -> bool:
        return self.latest is None or self.latest.inputs_digest != self.inputs.digest


def _pending(
    order: _OrderRead | None,
    order_id: int,
    limits: ExposureThresholdsFile,
    counts: dict[str, int],
) -> list[_Pending]:
    """The inputs of an order's sessions' and course's summaries (nothing given: counted);
    ``NotFound`` for an order that is not signed or a patient with no record, as a read says."""
    if order is None:
        raise NotFound(f"order_id: no signed order {order_id}.", field="order_id")
    if order.version is None:
        raise NotFound(f"patient_id: no patient {order.patient_id}.", field="patient_id")
    version = order.version
    out: list[_Pending] = []
    given: list[tuple[InfusionSession, exposure_domain.SessionDoses, datetime]] = []
    running = False
    for item in order.sessions:
        counts["sessions"] += 1
        row, doses, origin = item.row, item.doses, item.origin
        if origin is None:
            counts["nothing_given"] += 1
            continue
        given.append((row, doses, origin))
        running = running or item.running
        out.append(
            _pending_one(
                f"session:{row.id}",
                "session",
                order,
                row.id,
                version,
                row.scheduled_on,
                doses,
                not item.running,
                limits,
                None,
            )
        )
    counts["courses"] += 1
    if not given:
        counts["nothing_given"] += 1
        return out
    start = min(origin for _, _, origin in given)
    sessions = [((origin - start).total_seconds() / 60.0, doses) for _, doses, origin in given]
    out.append(
        _pending_one(
            f"course:{order.id}",
            "course",
            order,
            None,
            version,
            min(row.scheduled_on for row, _, _ in given),
            _engine(lambda: domain.course_doses(sessions)),
            not running,
            limits,
            {"sessions": [[row.id, row.session_number] for row, _, _ in given]},
        )
    )
    return out


def _pending_one(
    subject: str,
    scope: Literal["session", "course"],
    order: _OrderRead,
    session_id: int | None,
    version: PatientVersion,
    day: date,
    doses: exposure_domain.SessionDoses,
    complete: bool,
    limits: ExposureThresholdsFile,
    extra: dict[str, Any] | None,
) -> _Pending:
    patient = _covariates(version, day)
    return _Pending(
        subject=subject,
        scope=scope,
        patient_id=order.patient_id,
        order_id=order.id,
        session_id=session_id,
        version=version,
        patient=patient,
        doses=doses,
        inputs=_engine(lambda: domain.inputs_of(patient, doses, limits, extra=extra)),
        latest=order.latest.get(subject),
        complete=complete,
    )


# -- the shared steps -----------------------------------------------------------------------
@dataclass(frozen=True)
class _Part:
    """The fields of an ``ExposureSummaryView`` and what the audit row says."""

    fields: dict[str, Any]
    audit_detail: dict[str, Any]


def _session_part(
    session: Session,
    actor: Actor,
    row: InfusionSession,
    view: SessionView,
    version: PatientVersion,
    route: exposure_domain.Route,
    limits: ExposureThresholdsFile,
) -> _Part:
    doses, origin = _doses(view, route)
    return _summary_fields(
        session,
        actor,
        subject=f"session:{row.id}",
        scope="session",
        patient_id=row.patient_id,
        order_id=row.order_id,
        session_id=row.id,
        version=version,
        day=row.scheduled_on,
        doses=doses if origin is not None else None,
        origin=origin,
        complete=not _running(view),
        limits=limits,
        extra=None,
    )


def _summary_fields(
    session: Session,
    actor: Actor,
    *,
    subject: str,
    scope: Literal["session", "course"],
    patient_id: int,
    order_id: int,
    session_id: int | None,
    version: PatientVersion,
    day: date | None,
    doses: exposure_domain.SessionDoses | None,
    origin: datetime | None,
    complete: bool,
    limits: ExposureThresholdsFile,
    extra: dict[str, Any] | None,
) -> _Part:
    """The summary of ``subject`` from the stored row when its inputs are unchanged, else
    computed (and stored when ``complete``)."""
    records = list(
        session.scalars(
            select(ExposureSummaryRecord)
            .where(ExposureSummaryRecord.subject == subject)
            .order_by(ExposureSummaryRecord.id)
        )
    )
    versions = _version_numbers(session, {r.patient_version_id for r in records})
    base: dict[str, Any] = {
        "subject": subject,
        "scope": scope,
        "patient_id": patient_id,
        "order_id": order_id,
        "patient_version": version.version,
        "given_from": origin,
    }
    if doses is None or day is None:
        return _Part(
            {
                **base,
                **_empty(),
                "covariates": None,
                "status": "nothing given",
                "record": None,
                "history": [_record_view(r, versions) for r in reversed(records)],
            },
            {"status": "nothing given"},
        )
    patient = _covariates(version, day)
    inputs = _engine(lambda: domain.inputs_of(patient, doses, limits, extra=extra))
    latest = records[-1] if records else None
    stored: ExposureSummaryRecord | None = None
    recomputed = False
    if latest is not None and latest.inputs_digest == inputs.digest:
        stored, summary = latest, latest.summary
        history = records[:-1]
    else:
        computed = _engine(
            lambda: domain.summarise_doses(patient, doses, limits, model_id=inputs.model_id)
        )
        summary = computed.as_dict()
        history = records
        if complete:
            stored = _store(
                session,
                actor,
                subject=subject,
                scope=scope,
                patient_id=patient_id,
                order_id=order_id,
                session_id=session_id,
                version=version,
                inputs=inputs,
                summary=summary,
                latest=latest,
            )
            recomputed = stored is not None and latest is not None
            if stored is not None and stored.id != (latest.id if latest else None):
                versions[stored.patient_version_id] = version.version
    model = pk.get_model(str(summary["model_id"]))
    findings = exposure_domain.model_findings(model, patient, doses.route)
    status: Status = "stored" if stored is not None else "provisional"
    fields = {
        **base,
        "status": status,
        "covariates": CovariatesView.model_validate(patient),
        "model_id": summary["model_id"],
        "model_name": summary["model_name"],
        "analyte": summary["analyte"],
        "metabolite": summary["metabolite"],
        "window_min": summary["window_min"],
        "total_mg": summary["total_mg"],
        "ketamine": _analyte_view(summary["ketamine"]),
        "norketamine": _analyte_view(summary["norketamine"]),
        "findings": [FindingView.model_validate(f) for f in findings],
        "record": None if stored is None else _record_view(stored, versions),
        "history": [_record_view(r, versions) for r in reversed(history)],
    }
    detail = {
        "status": status,
        "model": summary["model_id"],
        "inputs_digest": inputs.digest,
        "stored_id": None if stored is None else stored.id,
        "recomputed": recomputed,
    }
    return _Part(fields, detail)


def _store(
    session: Session,
    actor: Actor,
    *,
    subject: str,
    scope: str,
    patient_id: int,
    order_id: int,
    session_id: int | None,
    version: PatientVersion,
    inputs: domain.SummaryInputs,
    summary: dict[str, Any],
    latest: ExposureSummaryRecord | None,
) -> ExposureSummaryRecord | None:
    """A new row superseding ``latest``; when someone stored one at the same moment (the
    chain's unique constraint), theirs is read instead if it has the same inputs."""
    record = _new_record(
        actor,
        subject=subject,
        scope=scope,
        patient_id=patient_id,
        order_id=order_id,
        session_id=session_id,
        version=version,
        inputs=inputs,
        summary=summary,
        latest=latest,
    )
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        newest = session.scalars(
            select(ExposureSummaryRecord)
            .where(ExposureSummaryRecord.subject == subject)
            .order_by(ExposureSummaryRecord.id.desc())
            .limit(1)
        ).first()
        return newest if newest is not None and newest.inputs_digest == inputs.digest else None
    return record


def _store_all(
    session: Session, actor: Actor, items: list[tuple[_Pending, dict[str, Any]]]
) -> list[ExposureSummaryRecord | None]:
    """The new rows of a refresh's transaction (each pending subject with its summary),
    written in one flush, in order; when someone stored a row of one of the subjects at the
    same moment, the flush is undone and each is stored as a read stores it (:func:`_store`)."""
    if not items:
        return []
    records = [
        _new_record(
            actor,
            subject=item.subject,
            scope=item.scope,
            patient_id=item.patient_id,
            order_id=item.order_id,
            session_id=item.session_id,
            version=item.version,
            inputs=item.inputs,
            summary=summary,
            latest=item.latest,
        )
        for item, summary in items
    ]
    try:
        with session.begin_nested():
            session.add_all(records)
            session.flush()
    except IntegrityError:
        return [
            _store(
                session,
                actor,
                subject=item.subject,
                scope=item.scope,
                patient_id=item.patient_id,
                order_id=item.order_id,
                session_id=item.session_id,
                version=item.version,
                inputs=item.inputs,
                summary=summary,
                latest=item.latest,
            )
            for item, summary in items
        ]
    return list(records)


def _new_record(
    actor: Actor,
    *,
    subject: str,
    scope: str,
    patient_id: int,
    order_id: int,
    session_id: int | None,
    version: PatientVersion,
    inputs: domain.SummaryInputs,
    summary: dict[str, Any],
    latest: ExposureSummaryRecord | None,
) -> ExposureSummaryRecord:
    """A row for ``subject`` superseding ``latest``, saying why (not yet added)."""
    if latest is None:
        reason = "first computed"
    else:
        reason = "recomputed: " + ", ".join(inputs.changed_since(latest.inputs)) + " changed"
    return ExposureSummaryRecord(
        subject=subject,
        scope=scope,
        patient_id=patient_id,
        order_id=order_id,
        session_id=session_id,
        patient_version_id=version.id,
        model_id=inputs.model_id,
        model_version=inputs.model_version,
        thresholds_version=inputs.thresholds_version,
        method_version=domain.METHOD_VERSION,
        inputs_digest=inputs.digest,
        inputs=inputs.document,
        summary=summary,
        computed_by_id=actor.user_id,
        supersedes_id=None if latest is None else latest.id,
        reason=reason,
    )


def _doses(
    view: SessionView, route: exposure_domain.Route
) -> tuple[exposure_domain.SessionDoses, datetime | None]:
    log = exposure_domain.DeliveryLog(
        segments=tuple((s.start, s.end, s.rate_mg_per_h) for s in view.segments),
        boluses=tuple((b.at, b.mg) for b in view.boluses),
        at=view.at,
    )
    return exposure_domain.doses_given(log, route)


def _running(view: SessionView) -> bool:
    return any(s.end is None and s.rate_mg_per_h > 0 for s in view.segments)


def _route(course: dict[str, Any]) -> exposure_domain.Route:
    return "sc" if course.get("route") == "sc" else "iv"


def _covariates(version: PatientVersion, day: date) -> pk.Covariates:
    """The PK covariates of a stored record, its age on ``day`` (the session's)."""
    record = as_patient(version.document, day)
    return _engine(
        lambda: pk.Covariates(
            weight_kg=record.weight_kg,
            age_years=record.age_on(day),
            sex=record.sex,
            height_cm=record.height_cm,
        )
    )


def _course_sessions(session: Session, order_ids: Sequence[int]) -> list[InfusionSession]:
    """The orders' sessions as they stand (a moved session's old row left out), an order's
    together in session order."""
    newer = aliased(InfusionSession)
    return list(
        session.scalars(
            select(InfusionSession)
            .where(
                InfusionSession.order_id.in_(list(order_ids)),
                ~exists().where(newer.replaces_id == InfusionSession.id),
            )
            .order_by(InfusionSession.order_id, InfusionSession.session_number, InfusionSession.id)
        )
    )


def _version_numbers(session: Session, ids: set[int]) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(PatientVersion.id, PatientVersion.version).where(PatientVersion.id.in_(ids))
    )
    return {i: v for i, v in rows}


def _record_view(record: ExposureSummaryRecord, versions: dict[int, int]) -> RecordView:
    ketamine = record.summary.get("ketamine") or {}
    return RecordView(
        id=record.id,
        computed_at=record.computed_at,
        reason=record.reason,
        model_id=record.model_id,
        model_version=record.model_version,
        thresholds_version=record.thresholds_version,
        method_version=record.method_version,
        inputs_digest=record.inputs_digest,
        patient_version=versions.get(record.patient_version_id, 0),
        ketamine_auc_mg_h_per_l=float(ketamine.get("auc_mg_h_per_l", 0.0)),
        ketamine_peak_mg_per_l=float(ketamine.get("peak_mg_per_l", 0.0)),
    )


def _analyte_view(data: dict[str, Any] | None) -> AnalyteSummaryView | None:
    if data is None:
        return None
    return AnalyteSummaryView(
        label=data["label"],
        auc_mg_h_per_l=data["auc_mg_h_per_l"],
        auc_inf_mg_h_per_l=data["auc_inf_mg_h_per_l"],
        peak_mg_per_l=data["peak_mg_per_l"],
        peak_at_min=data["peak_at_min"],
        time_above=[
            TimeAboveView(
                threshold_id=t["id"],
                name=t["name"],
                analyte=t["analyte"],
                basis=t["basis"],
                concentration_ng_per_ml=t["concentration_ng_per_ml"],
                applied_mg_per_l=t["applied_mg_per_l"],
                converted=t["converted"] or None,
                minutes=t["minutes"],
            )
            for t in data["time_above"]
        ],
    )


def _empty() -> dict[str, Any]:
    return {
        "model_id": None,
        "model_name": None,
        "analyte": None,
        "metabolite": None,
        "window_min": None,
        "total_mg": 0.0,
        "ketamine": None,
        "norketamine": None,
        "findings": [],
    }


def _brief(row: InfusionSession, part: _Part, offset: float | None) -> CourseSessionBrief:
    f = part.fields
    ketamine: AnalyteSummaryView | None = f.get("ketamine")
    norketamine: AnalyteSummaryView | None = f.get("norketamine")
    return CourseSessionBrief(
        session_id=row.id,
        session_number=row.session_number,
        status=f["status"],
        offset_min=offset,
        total_mg=f["total_mg"],
        ketamine_auc_mg_h_per_l=None if ketamine is None else ketamine.auc_mg_h_per_l,
        ketamine_peak_mg_per_l=None if ketamine is None else ketamine.peak_mg_per_l,
        norketamine_auc_mg_h_per_l=None if norketamine is None else norketamine.auc_mg_h_per_l,
        norketamine_peak_mg_per_l=None if norketamine is None else norketamine.peak_mg_per_l,
    )


def _engine(compute: Callable[[], T]) -> T:
    """Run a computation, turning an input the domain or the engine refuses into 422."""
    try:
        return compute()
    except DomainError as error:
        raise InvalidInput(error.message, field=error.field or None) from error
    except pk.PkInputError as error:
        raise InvalidInput(str(error), field=error.field) from error
