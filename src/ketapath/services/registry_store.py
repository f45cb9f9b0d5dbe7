"""The registry's summary table: one row per course, kept current by marks made on write.

Reading 100,000 charts, a million diary days and every assessment on each page would take
minutes, so the registry keeps one row per course (``registry_courses``) and recomputes only
the patients whose records changed. A database trigger on every table the summary reads adds
the patient to ``registry_dirty`` in the same transaction as the insert (migrations 0013 and
0014), so a change cannot be missed however it was written. :func:`refresh` (called before
every registry read) takes a batch of marked patients, recomputes their courses in bulk (a
fixed number of queries per batch, then the domain per course in memory) and removes exactly
the marks it read; a mark written meanwhile stays for the next refresh.

Everything a row holds comes from the domain's own definitions: each chart replayed
(``domain.sessions.replay``: the delivered dose, running time, adjuncts, side effects), the
outcomes of ``domain.outcomes`` (``domain.registry.course_outcomes``). A change of those
definitions (the version of ``outcome_rules.yaml``, ``registry_rules.yaml``, the session rules,
this module's ``SUMMARY_FORMAT``) or of the clinic's time zone marks every patient again.

The exposure columns are read, never simulated: the newest stored course exposure summary
(``services.exposure_summary``) when its inputs digest is the one the course has now, else
"not computed" (None, never 0). Storing a summary marks its patient (the trigger of 0014), and
a new model or threshold file changes the definitions, so a summary made stale by either is
never shown.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, func, insert, select, text
from sqlalchemy.orm import Session, aliased

from ketapath.domain.registry import (
    NOT_COMPUTED,
    CourseDelivery,
    CourseOutcomes,
    SessionFacts,
    course_delivery,
    course_outcomes,
    cumulative_doses,
    session_facts,
)
from ketapath.domain.sessions import SessionContext, replay
from ketapath.domain.vocabulary import resolve
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.outcomes import outcome_rules
from ketapath.knowledge.registry import registry_rules
from ketapath.services.clock import ClinicClock
from ketapath.services.patients import latest_versions_query
from ketapath.services.sessions import _programme as programme_at_check_in
from ketapath.services.sessions import read_charts, session_rules
from ketapath.store.db import Database
from ketapath.store.models import (
    Assessment,
    AssessmentContext,
    CourseRecord,
    Diagnosis,
    DiaryEntry,
    InfusionSession,
    Order,
    PatientVersion,
    RegistryCourse,
    RegistryDirty,
    RegistryState,
    SafetyResult,
    utcnow,
)

# Bumped when what a row holds, or how it is computed here, changes.
# 2: the stored course exposure summary (migration 0014); 3: charts read with who recorded
# each entry (sessions.read_charts), as the chart replays them
SUMMARY_FORMAT = 3
BATCH_PATIENTS = 400
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/ketapath-registry'))"


@dataclass(frozen=True)
class RefreshReport:
    """What a refresh did: patients and courses recomputed, and whether it was a full rebuild
    (the definitions or the time zone changed)."""

    patients: int
    courses: int
    rebuilt: bool
    seconds: float


def definitions(clock: ClinicClock) -> str:
    """The fingerprint of everything a summary row depends on besides the records."""
    parts = [
        f"format={SUMMARY_FORMAT}",
        f"outcome_rules={outcome_rules().version}",
        f"registry_rules={registry_rules().version}",
        f"session_rules={session_rules().version}",
        f"zone={clock.tz()}",
        # a new model or threshold file changes every exposure digest without a write
        f"exposure={_exposure_definitions()}",
    ]
    return hashlib.sha256(";".join(parts).encode()).hexdigest()


def _exposure_definitions() -> str:
    from ketapath.domain.exposure_summary import METHOD_VERSION
    from ketapath.knowledge.pk_models import pk_models_version
    from ketapath.services.exposure_summary import thresholds

    return f"{pk_models_version()}/{thresholds().digest()}/{METHOD_VERSION}"


def _lock(session: Session) -> None:
    """One refresher at a time (SQLite's BEGIN IMMEDIATE already admits one writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_LOCK_SQL))


def refresh(db: Database, clock: ClinicClock, *, batch: int = BATCH_PATIENTS) -> RefreshReport:
    """Bring the summary up to date with the records: recompute every marked patient, in
    transactions of ``batch`` patients; all patients when the definitions changed."""
    import time

    started = time.perf_counter()
    wanted = definitions(clock)
    if _up_to_date(db, wanted):
        return RefreshReport(0, 0, False, time.perf_counter() - started)
    rebuilt = _start(db, wanted)
    patients = courses = 0
    while True:
        with db.transaction() as session:
            _lock(session)
            chosen = list(
                session.scalars(select(RegistryDirty.patient_id).distinct().limit(batch)).all()
            )
            if not chosen:
                break
            marks = session.scalars(
                select(RegistryDirty.id).where(RegistryDirty.patient_id.in_(chosen))
            ).all()
            rows = summarise(session, chosen, clock)
            session.execute(delete(RegistryCourse).where(RegistryCourse.patient_id.in_(chosen)))
            if rows:
                session.execute(insert(RegistryCourse), rows)
            for part in _chunks(list(marks), 5000):
                session.execute(delete(RegistryDirty).where(RegistryDirty.id.in_(part)))
            _next_generation(session)
            patients += len(chosen)
            courses += len(rows)
    return RefreshReport(patients, courses, rebuilt, time.perf_counter() - started)


def _up_to_date(db: Database, wanted: str) -> bool:
    """Whether nothing is marked and the definitions are the same (no write lock taken)."""
    with db.read_only() as session:
        state = session.get(RegistryState, 1)
        if state is None or state.definitions != wanted:
            return False
        return session.scalar(select(RegistryDirty.id).limit(1)) is None


def _start(db: Database, wanted: str) -> bool:
    """Mark every patient with a course when the summary was made with other definitions."""
    with db.transaction() as session:
        _lock(session)
        state = session.get(RegistryState, 1)
        if state is not None and state.definitions == wanted:
            return False
        session.execute(delete(RegistryCourse))
        session.execute(
            insert(RegistryDirty).from_select(["patient_id"], select(Order.patient_id).distinct())
        )
        if state is None:
            state = RegistryState(id=1, definitions=wanted, generation=1, refreshed_at=utcnow())
            session.add(state)
        else:
            state.definitions, state.refreshed_at = wanted, utcnow()
            state.generation += 1
        return True


def _next_generation(session: Session) -> None:
    state = session.get(RegistryState, 1)
    if state is not None:
        state.generation += 1
        state.refreshed_at = utcnow()


def generation(db: Database) -> int:
    """The generation of the summary rows (0 before the first refresh)."""
    with db.read_only() as session:
        state = session.get(RegistryState, 1)
        return 0 if state is None else int(state.generation)


def compact_marks(db: Database) -> int:
    """Replace every mark by one per patient (after a bulk load, which marks a patient once
    per inserted statement or row); returns the patients marked."""
    with db.transaction() as session:
        _lock(session)
        patients = list(session.scalars(select(RegistryDirty.patient_id).distinct()).all())
        session.execute(delete(RegistryDirty))
        if patients:
            session.execute(insert(RegistryDirty), [{"patient_id": p} for p in patients])
        return len(patients)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ------------------------------------------------------------------ one batch of patients


@dataclass
class _Course:
    order_id: int
    patient_id: int
    protocol_id: str
    setting: str
    weight_kg: float | None
    sessions: list[SessionFacts]


def summarise(
    session: Session, patient_ids: Sequence[int], clock: ClinicClock
) -> list[dict[str, Any]]:
    """The summary rows of every signed, not cancelled course of ``patient_ids``."""
    courses = _courses(session, patient_ids)
    if not courses:
        return []
    _sessions(session, courses, clock)
    kb = knowledge()
    diagnoses = _diagnoses(session, patient_ids, kb)
    baselines, follow_ups = _pain_scores(session, patient_ids, set(courses))
    diaries = _diaries(session, set(courses))
    safety = _abnormal_safety(session, patient_ids)
    deliveries = {oid: course_delivery(c.sessions, c.weight_kg) for oid, c in courses.items()}
    windows = _safety_windows(courses, deliveries)
    cumulative = cumulative_doses(
        (oid, c.patient_id, d.first_session_on, d.status, d.delivered_mg_per_kg)
        for (oid, c), d in zip(courses.items(), deliveries.values(), strict=True)
    )
    exposures = _exposures(session, list(courses), clock)
    now = utcnow()
    rows = []
    for order_id, course in courses.items():
        delivery = deliveries[order_id]
        outcome = course_outcomes(
            baselines.get(order_id),
            follow_ups.get(order_id, {}),
            diaries.get(order_id, {}),
            delivery.last_session_on if delivery.status != "not given" else None,
        )
        start, end = windows[order_id]
        abnormal = sum(
            1 for day in safety.get(course.patient_id, ()) if start and start <= day < end
        )
        row = _row(course, delivery, outcome, diagnoses.get(course.patient_id), abnormal, now)
        exposure = exposures.get(order_id, _NOT_COMPUTED)
        rows.append({**row, **exposure, "cumulative_mg_per_kg": cumulative[order_id]})
    return rows


def _row(
    course: _Course,
    delivery: CourseDelivery,
    outcome: CourseOutcomes,
    diagnosis: tuple[str | None, str, str] | None,
    safety_abnormal: int,
    now: datetime,
) -> dict[str, Any]:
    indication, conditions, icd = diagnosis or (None, "", "")
    facts = asdict(delivery)
    facts["dose_mg_per_kg"] = facts.pop("delivered_mg_per_kg")
    return {
        "order_id": course.order_id,
        "patient_id": course.patient_id,
        "protocol_id": course.protocol_id,
        "setting": course.setting,
        "indication": indication,
        "diagnoses": conditions,
        "icd10cm": icd,
        "weight_kg": course.weight_kg,
        **facts,
        **asdict(outcome),
        "safety_abnormal": safety_abnormal,
        **_NOT_COMPUTED,
        "computed_at": now,
    }


_NOT_COMPUTED: dict[str, Any] = {
    "exposure_status": NOT_COMPUTED,
    "exposure_auc": None,
    "exposure_peak": None,
    "exposure_minutes_above": None,
}


def _exposures(
    session: Session, order_ids: list[int], clock: ClinicClock
) -> dict[int, dict[str, Any]]:
    """The exposure columns of each course with a stored course exposure summary whose inputs
    are current (``services.exposure_summary``'s own digest); the others are not computed.
    Ketamine's AUC to infinity, its peak, and the minutes above the first reference
    concentration on its curve (None when the thresholds have none for it)."""
    from ketapath.services.exposure_summary import current_course_summaries

    out: dict[int, dict[str, Any]] = {}
    for order_id, summary in current_course_summaries(session, order_ids, clock).items():
        ketamine = summary.get("ketamine") or {}
        auc = _finite(ketamine.get("auc_inf_mg_h_per_l"))
        if auc is None:
            continue
        above = ketamine.get("time_above") or []
        out[order_id] = {
            "exposure_status": "computed",
            "exposure_auc": auc,
            "exposure_peak": _finite(ketamine.get("peak_mg_per_l")),
            "exposure_minutes_above": _finite(above[0].get("minutes")) if above else None,
        }
    return out


def _finite(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _courses(session: Session, patient_ids: Sequence[int]) -> dict[int, _Course]:
    """Signed orders not cancelled (no cancellation amends them), with what the course says."""
    cancel = aliased(Order)
    rows = session.execute(
        select(
            Order.id,
            Order.patient_id,
            CourseRecord.protocol_id,
            CourseRecord.course["setting"].as_string(),
            CourseRecord.course["actual_weight_kg"].as_float(),
        )
        .join(CourseRecord, CourseRecord.id == Order.course_id)
        .where(Order.patient_id.in_(patient_ids), Order.status == "signed")
        .where(~exists().where(cancel.amends_id == Order.id))
    ).all()
    return {
        oid: _Course(oid, pid, protocol, setting or "clinic", weight, [])
        for oid, pid, protocol, setting, weight in rows
    }


def _sessions(session: Session, courses: dict[int, _Course], clock: ClinicClock) -> None:
    """Each live session of the courses, its chart replayed, summarised into its course."""
    newer = aliased(InfusionSession)
    rows = session.execute(
        select(InfusionSession.id, InfusionSession.order_id, InfusionSession.scheduled_on)
        .where(InfusionSession.order_id.in_(list(courses)))
        .where(~exists().where(newer.replaces_id == InfusionSession.id))
        .order_by(InfusionSession.order_id, InfusionSession.session_number)
    ).all()
    charts = read_charts(session, [r[0] for r in rows])
    now, rules, zone = utcnow(), session_rules(), clock.tz()
    for session_id, order_id, scheduled_on in rows:
        events = charts.get(session_id, [])
        context = SessionContext(
            # the programme the chart froze at check-in, read as the sessions service reads it
            programme=programme_at_check_in(events),
            zone=zone,
            earliest=clock.start_of(scheduled_on),
            clinic_rules=rules,
        )
        view = replay(events, now, context)
        ended = view.dose.ended_at
        ended_on = clock.date_of(ended) if ended is not None else None
        courses[order_id].sessions.append(session_facts(scheduled_on, events, view, ended_on))


def _diagnoses(
    session: Session, patient_ids: Sequence[int], kb: Knowledge
) -> dict[int, tuple[str | None, str, str]]:
    """Each patient's current diagnoses as coded values: the first recognised indication
    (a condition of indications.yaml), the recognised condition ids and their ICD-10-CM codes.
    Text the vocabulary does not recognise is left out (free text is never shown)."""
    pain = {c for entry in kb.indications.entries for c in entry.conditions}
    latest = latest_versions_query().where(PatientVersion.patient_id.in_(patient_ids)).subquery()
    rows = session.execute(
        select(latest.c.patient_id, Diagnosis.code)
        .join(Diagnosis, Diagnosis.patient_version_id == latest.c.id)
        .order_by(latest.c.patient_id, Diagnosis.position)
    ).all()
    resolved: dict[str, tuple[str, tuple[str, ...]] | None] = {}
    found: dict[int, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
    for patient_id, code in rows:
        if code not in resolved:
            r = resolve(code, kb)
            resolved[code] = (
                None
                if r.condition is None
                else (
                    r.condition.id,
                    (code.strip().upper(),)
                    if r.matched_by == "icd10cm"
                    else tuple(r.condition.icd10cm),
                )
            )
        hit = resolved[code]
        if hit is not None:
            found[patient_id].append(hit)
    out = {}
    for patient_id, items in found.items():
        indication = next((cid for cid, _ in items if cid in pain), None)
        conditions = " ".join(dict.fromkeys(cid for cid, _ in items))
        codes = " ".join(dict.fromkeys(code for _, cs in items for code in cs))
        out[patient_id] = (indication, conditions[:400], codes[:400])
    return out


def _pain_scores(
    session: Session, patient_ids: Sequence[int], order_ids: set[int]
) -> tuple[dict[int, int], dict[int, dict[int, int]]]:
    """Per course: the baseline NRS (the latest current one given) and the follow-up NRS by
    timepoint (the latest current one at each), each read through its amendments to the
    context of the first version."""
    rows = session.execute(
        select(
            Assessment.id,
            Assessment.amends_id,
            Assessment.instrument_id,
            Assessment.total,
            Assessment.administered_at,
        ).where(Assessment.patient_id.in_(patient_ids))
    ).all()
    parent = {aid: amends for aid, amends, *_ in rows}
    amended = {amends for _, amends, *_ in rows if amends is not None}
    contexts = {
        c.assessment_id: (c.order_id, c.label, c.timepoint_days)
        for c in session.execute(
            select(
                AssessmentContext.assessment_id,
                AssessmentContext.order_id,
                AssessmentContext.label,
                AssessmentContext.timepoint_days,
            ).where(AssessmentContext.patient_id.in_(patient_ids))
        ).all()
    }
    baselines: dict[int, tuple[datetime, int]] = {}
    follow_ups: dict[int, dict[int, tuple[datetime, int]]] = defaultdict(dict)
    for aid, _, instrument, total, given in rows:
        if aid in amended or instrument != "nrs" or total is None:
            continue
        root = aid
        while parent.get(root) is not None:
            root = parent[root]  # type: ignore[assignment]
        context = contexts.get(root)
        if context is None or context[0] not in order_ids:
            continue
        order_id, label, days = context
        score = round(total)
        if label == "baseline":
            if order_id not in baselines or given >= baselines[order_id][0]:
                baselines[order_id] = (given, score)
        elif label == "follow-up" and days is not None:
            known = follow_ups[order_id].get(days)
            if known is None or given >= known[0]:
                follow_ups[order_id][days] = (given, score)
    return (
        {oid: score for oid, (_, score) in baselines.items()},
        {oid: {d: s for d, (_, s) in days.items()} for oid, days in follow_ups.items()},
    )


def _diaries(session: Session, order_ids: set[int]) -> dict[int, dict[date, int]]:
    """Each course's diary: the current entry of each day (the one no later entry amends)."""
    newer = aliased(DiaryEntry)
    out: dict[int, dict[date, int]] = defaultdict(dict)
    for part in _chunks(sorted(order_ids), 2000):
        rows = session.execute(
            select(DiaryEntry.order_id, DiaryEntry.day, DiaryEntry.pain_nrs)
            .where(DiaryEntry.order_id.in_(part))
            .where(~exists().where(newer.amends_id == DiaryEntry.id))
        ).all()
        for order_id, day, pain in rows:
            out[order_id][day] = pain
    return out


def _abnormal_safety(session: Session, patient_ids: Sequence[int]) -> dict[int, list[date]]:
    """The days of each patient's current abnormal safety results."""
    newer = aliased(SafetyResult)
    rows = session.execute(
        select(SafetyResult.patient_id, SafetyResult.observed_on)
        .where(SafetyResult.patient_id.in_(patient_ids), SafetyResult.abnormal.is_(True))
        .where(~exists().where(newer.amends_id == SafetyResult.id))
    ).all()
    out: dict[int, list[date]] = defaultdict(list)
    for patient_id, day in rows:
        out[patient_id].append(day)
    return out


def _safety_windows(
    courses: dict[int, _Course], deliveries: dict[int, CourseDelivery]
) -> dict[int, tuple[date | None, date]]:
    """Each course's window for safety results: from its first session to the next course's
    first session, or the relief follow-up after its last session, whichever is first."""
    days = registry_rules().relief.follow_up_days
    by_patient: dict[int, list[int]] = defaultdict(list)
    for order_id, course in courses.items():
        by_patient[course.patient_id].append(order_id)
    out: dict[int, tuple[date | None, date]] = {}
    for order_ids in by_patient.values():
        ordered = sorted(order_ids, key=lambda o: (deliveries[o].first_session_on or date.max, o))
        for index, order_id in enumerate(ordered):
            delivery = deliveries[order_id]
            last = delivery.last_session_on or delivery.first_session_on
            end = last + timedelta(days=days + 1) if last else date.max
            following = ordered[index + 1] if index + 1 < len(ordered) else None
            if following is not None and deliveries[following].first_session_on is not None:
                end = min(end, deliveries[following].first_session_on or end)
            out[order_id] = (delivery.first_session_on, end)
    return out


def stored_courses(session: Session) -> int:
    """How many summary rows there are."""
    return int(session.scalar(select(func.count()).select_from(RegistryCourse)) or 0)
