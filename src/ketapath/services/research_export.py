"""The de-identified research export (issue 13, item 4): the registry as tables a researcher
may hold, by the HIPAA Safe Harbor method (45 CFR 164.514(b)(2); ``safe_harbor.yaml``).

One call (``research.export``: researchers and physicians; either gets the same de-identified
tables, never more) writes the zip of every table of the data dictionary
(``ketapath.domain.research.TABLES``) as CSV or Parquet files (``interop.research``) to a file
the caller gives. It reads the registry in one read-only transaction (one snapshot: SQLite's
deferred read, PostgreSQL's REPEATABLE READ; no write lock is held, so the clinic keeps
working), a batch of ``BATCH_PATIENTS`` patients at a time in research-code order: each batch's
rows of every table are appended to that table's spooled file and dropped, so memory holds one
batch whatever the registry's size (docs/performance.md). Once the zip is written, the export
is audited in a transaction of its own (the format and each table's row count); the caller
releases the file only after that, so no export leaves unaudited.

What the rows hold, and what they never hold:

- a patient appears under a research code (``domain.research.research_code``), never the
  clinic's number or pseudonym; courses, sessions, assessments and results are numbered within
  the export, never by their record numbers; rows are sorted by the code, so their order does
  not follow registration;
- every date of a patient is a day number from the day they were registered (day 0; the
  same anchor in every table, so intervals are kept); the year of registration is the one
  calendar element; times of day are not exported, only durations;
- ages are whole years up to 89 and ten-year bands, with "90 or older" pooled;
- the ZIP code is three digits, or 000 in a restricted area;
- medicines, diagnoses, adjuncts and opioids are vocabulary codes; whatever the vocabulary does
  not recognise, and every free-text field (notes, descriptions, reasons, names), is withheld
  and only counted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction
from typing import IO, Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from ketapath.config import Settings
from ketapath.domain import research as rules
from ketapath.domain.medicines import Recognition, recognise
from ketapath.domain.registry import NOT_COMPUTED, band_of
from ketapath.domain.research import age_band, age_in_years, day_number, joined, zip3
from ketapath.domain.session_events import ChartEvent
from ketapath.domain.session_view import SessionView
from ketapath.domain.sessions import delivered_fraction, effective_log
from ketapath.interop import research as files
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.registry import registry_rules
from ketapath.knowledge.safe_harbor import SafeHarbor, safe_harbor
from ketapath.knowledge.safety import safety_checks
from ketapath.services import audit
from ketapath.services.assessments import IN_BATCH, contexts_of
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput
from ketapath.services.patients import latest_versions_query
from ketapath.services.permissions import Actor
from ketapath.services.registry_store import refresh
from ketapath.services.research import (
    age_years_on,
    coded_diagnosis,
    coded_medicine,
    research_key,
)
from ketapath.services.sessions import live_sessions, report_charts
from ketapath.services.unit import check
from ketapath.store.db import Database
from ketapath.store.models import (
    Assessment,
    CourseRecord,
    DiaryEntry,
    InfusionSession,
    Order,
    Patient,
    PatientVersion,
    RegistryCourse,
    SafetyResult,
)

ExportFormat = Literal["csv", "parquet"]
FORMATS: tuple[ExportFormat, ...] = ("csv", "parquet")
# Patients read a batch: ~10 sessions, ~100 diary days and ~14 assessments each in a
# synthetic registry, so a batch holds some thousands of rows of each table.
BATCH_PATIENTS = 250
SEVERITY_ORDER = ("mild", "moderate", "severe")


@dataclass(frozen=True)
class ExportReport:
    """What one export wrote: its format and the rows of each table (what the audit row
    records), in the data dictionary's order."""

    format: ExportFormat
    counts: dict[str, int]


def check_format(fmt: str) -> ExportFormat:
    """``fmt`` as an export format, or ``InvalidInput`` naming the choices."""
    for known in FORMATS:
        if fmt == known:
            return known
    raise InvalidInput(f"format: {fmt!r} is not csv or parquet", field="format")


def export_research(
    db: Database,
    actor: Actor,
    fmt: str,
    out: IO[bytes],
    *,
    clock: ClinicClock | None = None,
    settings: Settings | None = None,
    batch: int = BATCH_PATIENTS,
) -> ExportReport:
    """Write the research export's zip (every table, de-identified, as ``fmt``: csv or
    parquet) to ``out``, then audit it; answer the rows of each table.

    Researchers and physicians may export (``research.export``). Nothing is audited as
    exported unless the zip was written whole; if the audit cannot be written the call
    raises, and the caller must discard ``out``.
    """
    chosen = check_format(fmt)
    clock = clock or clinic_clock(settings)
    key = research_key(settings)
    check(db, actor, "research.export", entity="research_export")
    refresh(db, clock)  # the registry's summary rows, current, for the outcome tables
    with files.ArchiveWriter(chosen) as writer:
        with db.read_only() as session:
            if session.get_bind().dialect.name == "postgresql":
                # one snapshot for every batch's queries
                session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
            people = _people(session, clock, key)
            kb, rules_ = knowledge(), safe_harbor()
            for i in range(0, len(people), batch):
                reader = _Registry(session, clock, kb, rules_, dict(people[i : i + batch]))
                for name, rows in reader.tables().items():
                    writer.add(name, rows)
                session.expunge_all()  # the batch's records: not kept for the next
        writer.finish(out)
        report = ExportReport(chosen, dict(writer.counts))
    with db.transaction() as session:
        audit.record(
            session,
            actor,
            "research.export",
            entity="research_export",
            detail={"format": chosen, "tables": report.counts},
        )
    return report


def _people(session: Session, clock: ClinicClock, key: bytes) -> list[tuple[int, _Person]]:
    """Every registered patient's research code and day 0, in the order of the codes (the
    rows' order in every table, which does not follow registration)."""
    people = [
        (patient_id, _Person(rules.research_code(key, pseudonym), clock.date_of(created_at)))
        for patient_id, pseudonym, created_at in session.execute(
            select(Patient.id, Patient.pseudonym, Patient.created_at)
        ).all()
    ]
    return sorted(people, key=lambda item: item[1].code)


class TableSummary(BaseModel):
    """A table of the export as the research page lists it (no data)."""

    name: str
    row: str = Field(description="What one row is.")
    columns: list[str]


class IdentifierView(BaseModel):
    """One of the 18 Safe Harbor identifiers and what ketapath does with it."""

    letter: str
    identifier: str
    handling: str
    how: str
    citation: str


class ExportCatalogue(BaseModel):
    """What an export holds and how it is de-identified, without any patient's data."""

    formats: list[str]
    tables: list[TableSummary]
    identifiers: list[IdentifierView]
    age_pooled_from_years: int
    age_label: str
    restricted_zip3: list[str]


def catalogue(db: Database, actor: Actor) -> ExportCatalogue:
    """The export's tables and the Safe Harbor table, for those who may export (no patient
    data, so nothing to audit but a refusal)."""
    check(db, actor, "research.export", entity="research_export")
    rules_ = safe_harbor()
    bib = bibliography()
    return ExportCatalogue(
        formats=list(FORMATS),
        tables=[
            TableSummary(name=t.name, row=t.row, columns=list(t.column_names)) for t in rules.TABLES
        ],
        identifiers=[
            IdentifierView(
                letter=i.letter,
                identifier=i.identifier,
                handling=i.handling,
                how=i.how,
                citation="; ".join(bib.short(c) for c in i.source.cite),
            )
            for i in sorted(rules_.identifiers, key=lambda i: i.letter)
        ],
        age_pooled_from_years=rules_.age.pooled_from_years,
        age_label=rules_.age.label,
        restricted_zip3=sorted(rules_.zip.restricted_prefixes),
    )


# ------------------------------------------------------------------ reading the registry


@dataclass
class _Person:
    code: str
    anchor: date  # the day of registration in the clinic's time zone: day 0


@dataclass
class _Course:
    patient_id: int
    number: int
    dosing_weight_kg: float | None
    row: dict[str, Any]
    ordered_mg: dict[int, float] = field(default_factory=dict)  # by session number
    sessions: int = 0
    with_dose: int = 0
    delivered: Fraction = Fraction(0)
    running_min: float = 0.0
    dose_days: list[int] = field(default_factory=list)
    adjuncts: list[str] = field(default_factory=list)
    pauses: int = 0
    stops: int = 0
    adverse_events: int = 0


class _Registry:
    """The reading of a batch of patients (their codes and anchors given): their records,
    then courses, sessions, assessments, diaries and safety results; each table's rows in
    the export's order."""

    def __init__(
        self,
        session: Session,
        clock: ClinicClock,
        kb: Knowledge,
        rules_: SafeHarbor,
        people: dict[int, _Person],
    ) -> None:
        self.session, self.clock, self.kb, self.rules = session, clock, kb, rules_
        self.people = people
        self.ids = list(people)
        self.courses: dict[int, _Course] = {}  # by order id
        self.session_numbers: dict[int, tuple[int, int]] = {}  # session id -> order, number
        self.recognised: dict[str, Recognition] = {}  # drug name -> its recognition

    def recognise(self, name: str) -> Recognition:
        """``recognise`` once per name in an export (an adjunct name recurs in thousands of
        sessions; each recognition hashes the vocabulary and scans every name variant)."""
        found = self.recognised.get(name)
        if found is None:
            found = self.recognised[name] = recognise(name, self.kb.medicines)
        return found

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        raw: dict[str, list[dict[str, Any]]] = {
            "patients": self._patients(),
            "courses": [],
            "sessions": [],
            "adverse_events": [],
        }
        self._courses()
        raw["sessions"], raw["adverse_events"] = self._sessions()
        raw["courses"] = [self._course_row(c) for c in self.courses.values()]
        raw["course_outcomes"], raw["course_exposure"] = self._registry_rows()
        raw["assessments"], raw["assessment_scales"] = self._assessments()
        raw["diary_entries"] = self._diary()
        raw["safety_results"], raw["safety_values"] = self._safety()
        return {
            name: rules.checked_rows(name, _sorted(raw[name], name)) for name in rules.TABLE_NAMES
        }

    def day(self, patient_id: int, when: date | datetime) -> int:
        day = self.clock.date_of(when) if isinstance(when, datetime) else when
        return day_number(day, self.people[patient_id].anchor)

    def code(self, patient_id: int) -> str:
        return self.people[patient_id].code

    # -------------------------------------------------------------- patients

    def _patients(self) -> list[dict[str, Any]]:
        versions = self.session.scalars(
            latest_versions_query().where(PatientVersion.patient_id.in_(self.ids))
        ).all()
        out = []
        for version in versions:
            person = self.people[version.patient_id]
            row = patient_row(person.code, person.anchor, version.document, self.kb, self.rules)
            out.append(row)
        return out

    def _band(self, age: float | None) -> str | None:
        return age_band(age, self.rules.age.pooled_from_years, self.rules.age.label)

    # -------------------------------------------------------------- the registry's courses

    def _registry_rows(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Outcomes and exposure of each course the registry summarises, from its summary
        rows (brought up to date before the export's transaction), so the definitions are the
        registry's; numbered as in ``courses``. Their dates are not read."""
        summary = {
            row.order_id: row
            for row in self.session.scalars(
                select(RegistryCourse).where(RegistryCourse.order_id.in_(list(self.courses)))
            )
        }
        outcomes, exposure = [], []
        for order_id, course in self.courses.items():
            row = summary.get(order_id)
            if row is None:
                continue  # cancelled: not in the registry
            code = self.code(course.patient_id)
            censored = None if row.relief_event is None else not row.relief_event
            outcomes.append(
                {
                    "patient_code": code,
                    "course_number": course.number,
                    "registry_status": row.status,
                    "baseline_nrs": row.baseline_nrs,
                    "follow_up_days": row.follow_up_days,
                    "follow_up_nrs": row.follow_up_nrs,
                    "responder_30": row.responder_30,
                    "responder_50": row.responder_50,
                    "relief_status": row.relief_status,
                    "relief_days": row.relief_days,
                    "relief_censored": censored,
                    "pain_auc_status": row.auc_status,
                    "pain_auc_35": _number(row.auc),
                }
            )
            computed = row.exposure_auc is not None
            exposure.append(
                {
                    "patient_code": code,
                    "course_number": course.number,
                    "not_computed": not computed,
                    "ketamine_auc_inf": _number(row.exposure_auc),
                    "ketamine_peak": _number(row.exposure_peak) if computed else None,
                    "minutes_above_first_threshold": (
                        _number(row.exposure_minutes_above) if computed else None
                    ),
                    "exposure_band": (
                        band_of(row.exposure_auc, registry_rules().bands.exposure_auc_mg_h_per_l)
                        if computed
                        else NOT_COMPUTED
                    ),
                }
            )
        return outcomes, exposure

    # -------------------------------------------------------------- courses

    def _courses(self) -> None:
        rows = self.session.execute(
            select(Order, CourseRecord)
            .join(CourseRecord, CourseRecord.id == Order.course_id)
            .where(Order.status == "signed", Order.patient_id.in_(self.ids))
            .order_by(Order.patient_id, Order.recorded_at, Order.id)
        ).all()
        cancelled = set(
            self.session.scalars(
                select(Order.amends_id).where(
                    Order.status == "cancelled", Order.patient_id.in_(self.ids)
                )
            )
        )
        version_ids = sorted({course.patient_version_id for _, course in rows})
        versions: dict[int, dict[str, Any]] = {}
        for i in range(0, len(version_ids), IN_BATCH):
            versions.update(
                self.session.execute(
                    select(PatientVersion.id, PatientVersion.document).where(
                        PatientVersion.id.in_(version_ids[i : i + IN_BATCH])
                    )
                ).all()
            )
        numbers: dict[int, int] = defaultdict(int)
        for order, course in rows:
            if order.patient_id not in self.people:
                continue
            numbers[order.patient_id] += 1
            document = versions.get(course.patient_version_id, {})
            self.courses[order.id] = self._course(
                order, course.course, document, numbers[order.patient_id], order.id in cancelled
            )

    def _course(
        self,
        order: Order,
        plan: dict[str, Any],
        document: dict[str, Any],
        number: int,
        cancelled: bool,
    ) -> _Course:
        facts = order.facts or {}
        signed = self.clock.date_of(order.recorded_at)
        age = facts.get("age_years")
        age = float(age) if age is not None else age_years_on(document, signed)
        weight = _positive(plan.get("dosing_weight_kg"))
        planned = _number(plan.get("course_total_mg"))
        indication = [
            coded_diagnosis(_code(item), self.kb) for item in document.get("diagnoses", [])
        ]
        adjuncts = [self.recognise(str(a.get("drug", ""))) for a in plan.get("adjuncts", [])]
        row = {
            "patient_code": self.code(order.patient_id),
            "course_number": number,
            "protocol_id": str(plan.get("protocol_id", "")) or None,
            "status": "cancelled" if cancelled else "signed",
            "signed_day": self.day(order.patient_id, signed),
            "indication": joined(d.condition or "" for d in indication if d is not None),
            "age_at_signing": age_in_years(age, self.rules.age.pooled_from_years),
            "age_band_at_signing": self._band(age),
            "route": plan.get("route"),
            "setting": plan.get("setting"),
            "weight_basis": plan.get("weight_basis"),
            "dosing_weight_kg": weight,
            "actual_weight_kg": _positive(plan.get("actual_weight_kg")),
            "override": bool(order.override_reason),
            "sessions_planned": len(plan.get("sessions", [])),
            "planned_total_mg": planned,
            "planned_total_mg_per_kg": _per_kg(planned, weight),
            "adjuncts_planned": joined(i for a in adjuncts if a.recognised for i in a.ingredients),
        }
        ordered = {
            s["session"]: mg
            for s in plan.get("sessions", [])
            if isinstance(s, dict)
            and isinstance(s.get("session"), int)
            and (mg := _number(s.get("total_mg"))) is not None
        }
        return _Course(order.patient_id, number, weight, row, ordered)

    def _course_row(self, course: _Course) -> dict[str, Any]:
        delivered = float(course.delivered)
        return {
            **course.row,
            "sessions_scheduled": course.sessions,
            "sessions_with_dose": course.with_dose,
            "delivered_total_mg": delivered,
            "delivered_total_mg_per_kg": _per_kg(delivered, course.dosing_weight_kg),
            "infusion_minutes_total": course.running_min,
            "first_dose_day": min(course.dose_days, default=None),
            "last_dose_day": max(course.dose_days, default=None),
            "adjuncts_given": joined(course.adjuncts),
            "pauses": course.pauses,
            "stops": course.stops,
            "adverse_events": course.adverse_events,
        }

    # -------------------------------------------------------------- sessions

    def _sessions(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        sessions: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        rows = self.session.scalars(
            live_sessions()
            .where(InfusionSession.patient_id.in_(self.ids))
            .order_by(InfusionSession.order_id, InfusionSession.session_number)
        ).all()
        for row, chart, view in report_charts(self.session, rows, self.clock):
            course = self.courses.get(row.order_id)
            if course is None:
                continue
            self.session_numbers[row.id] = (row.order_id, row.session_number)
            record = self._session_row(row, chart, view, course)
            sessions.append(record)
            events += self._adverse_events(record, view)
        self._moved_sessions()
        return sessions, events

    def _moved_sessions(self) -> None:
        """A session moved to another day keeps its number: assessments that name the old
        row find it."""
        for sid, order_id, number in self.session.execute(
            select(
                InfusionSession.id, InfusionSession.order_id, InfusionSession.session_number
            ).where(InfusionSession.patient_id.in_(self.ids))
        ).all():
            self.session_numbers.setdefault(sid, (order_id, number))

    def _session_row(
        self, row: InfusionSession, chart: list[ChartEvent], view: SessionView, course: _Course
    ) -> dict[str, Any]:
        dose = view.dose
        pauses, stops = _pauses_and_stops(chart, view)
        adjuncts = [self.recognise(a.drug) for a in view.adjuncts]
        given = [i for a in adjuncts if a.recognised for i in a.ingredients]
        day = self.day(row.patient_id, row.scheduled_on)
        course.sessions += 1
        course.delivered += delivered_fraction(view)
        course.running_min += dose.running_minutes
        if dose.delivered_mg > 0:
            course.with_dose += 1
            course.dose_days.append(day)
        course.adjuncts += given
        course.pauses += len(pauses)
        course.stops += len(stops)
        course.adverse_events += len(view.side_effects)
        severities = [s.severity for s in view.side_effects if s.severity in SEVERITY_ORDER]
        discharged = view.discharged
        return {
            "patient_code": self.code(row.patient_id),
            "course_number": course.number,
            "session_number": row.session_number,
            "scheduled_day": day,
            "state": view.state,
            "delivered_mg": dose.delivered_mg,
            "infusion_mg": dose.infusion_mg,
            "bolus_mg": dose.bolus_mg,
            "delivered_mg_per_kg": _per_kg(dose.delivered_mg, course.dosing_weight_kg),
            "ordered_mg": dose.ordered_mg
            if dose.ordered_mg is not None
            else course.ordered_mg.get(row.session_number),
            "delivered_percent": dose.delivered_percent,
            "infusion_duration_min": _minutes(dose.started_at, dose.ended_at),
            "running_min": dose.running_minutes,
            "paused_min": dose.paused_minutes,
            "pauses": len(pauses),
            "pause_reasons": joined(pauses),
            "stopped_early": bool(stops),
            "stop_reason": stops[-1] if stops else None,
            "adverse_events": len(view.side_effects),
            "worst_severity": max(severities, key=SEVERITY_ORDER.index) if severities else None,
            "baseline_pain_nrs": view.check_in.baseline_pain_nrs if view.check_in else None,
            "adjuncts_given": joined(given),
            "adjuncts_withheld": sum(not a.recognised for a in adjuncts),
            "discharged": discharged is not None,
            "notes_withheld": chart_text_count(chart),
        }

    def _adverse_events(
        self, session_row: dict[str, Any], view: SessionView
    ) -> list[dict[str, Any]]:
        started = view.dose.started_at
        return [
            {
                "patient_code": session_row["patient_code"],
                "course_number": session_row["course_number"],
                "session_number": session_row["session_number"],
                "event_number": number,
                "minutes_from_start": _minutes(started, effect.at),
                "effect": effect.effect,
                "severity": effect.severity,
                "troublesome": effect.troublesome,
                "cadss6_total": effect.cadss6_total,
                "description_withheld": bool(effect.description.strip()),
            }
            for number, effect in enumerate(view.side_effects, start=1)
        ]

    # -------------------------------------------------------------- assessments

    def _assessments(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = _current(
            self.session.scalars(select(Assessment).where(Assessment.patient_id.in_(self.ids)))
        )
        rows.sort(key=lambda r: (r.patient_id, r.administered_at, r.id))
        contexts = contexts_of(self.session, rows)
        numbers: dict[int, int] = defaultdict(int)
        assessments, scales = [], []
        for row in rows:
            numbers[row.patient_id] += 1
            number = numbers[row.patient_id]
            score = row.score or {}
            context = contexts.get(row.id)
            course = self.courses.get(context.order_id) if context else None
            link = (
                self.session_numbers.get(context.session_id)
                if context and context.session_id
                else None
            )
            assessments.append(
                {
                    "patient_code": self.code(row.patient_id),
                    "assessment_number": number,
                    "instrument_id": row.instrument_id,
                    "day": self.day(row.patient_id, row.administered_at),
                    "course_number": course.number if course else None,
                    "context": context.label if context else None,
                    "timepoint_days": context.timepoint_days if context else None,
                    "session_number": link[1] if link else None,
                    "total": _number(row.total),
                    "band": _text(score.get("band")),
                    "scorable": _flag(score.get("scorable")),
                    "prorated": _flag(score.get("prorated")),
                    "items_answered": _whole(score.get("items_answered")),
                }
            )
            scales += [
                {
                    "patient_code": self.code(row.patient_id),
                    "assessment_number": number,
                    "scale_id": str(scale_id),
                    "value": _number(scale.get("value")),
                    "band": _text(scale.get("band")),
                    "scorable": _flag(scale.get("scorable")),
                }
                for scale_id, scale in (score.get("subscales") or {}).items()
                if isinstance(scale, dict)
            ]
        return assessments, scales

    # -------------------------------------------------------------- diaries

    def _diary(self) -> list[dict[str, Any]]:
        rows = _current(
            self.session.execute(
                select(  # by columns: a registry has a million diary days
                    DiaryEntry.id,
                    DiaryEntry.amends_id,
                    DiaryEntry.patient_id,
                    DiaryEntry.order_id,
                    DiaryEntry.day,
                    DiaryEntry.pain_nrs,
                    DiaryEntry.entry,
                ).where(DiaryEntry.patient_id.in_(self.ids))
            )
        )
        out = []
        for row in rows:
            course = self.courses.get(row.order_id)
            if course is None or row.patient_id not in self.people:
                continue
            entry = row.entry or {}
            effects = [e for e in entry.get("side_effects", []) if isinstance(e, dict)]
            doses = [d for d in entry.get("opioid_doses", []) if isinstance(d, dict)]
            known = [d for d in doses if d.get("recognised")]
            out.append(
                {
                    "patient_code": self.code(row.patient_id),
                    "course_number": course.number,
                    "day": self.day(row.patient_id, row.day),
                    "pain_nrs": row.pain_nrs,
                    "sleep_quality": _whole(entry.get("sleep_quality")),
                    "side_effects": joined(str(e.get("effect", "")) for e in effects),
                    "side_effect_descriptions_withheld": sum(
                        bool(str(e.get("description") or "").strip()) for e in effects
                    ),
                    "opioids": joined(str(o) for d in known for o in d.get("opioids", [])),
                    "opioid_doses": len(known),
                    "opioid_doses_withheld": len(doses) - len(known),
                    "note_withheld": bool(str(entry.get("note") or "").strip()),
                }
            )
        return out

    # -------------------------------------------------------------- safety results

    def _safety(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows = _current(
            self.session.scalars(select(SafetyResult).where(SafetyResult.patient_id.in_(self.ids)))
        )
        rows.sort(key=lambda r: (r.patient_id, r.observed_on, r.id))
        catalogue = safety_checks()
        numbers: dict[int, int] = defaultdict(int)
        results, values = [], []
        for row in rows:
            numbers[row.patient_id] += 1
            code, number = self.code(row.patient_id), numbers[row.patient_id]
            try:
                fields = catalogue.check(row.check_id).fields
            except KeyError:
                fields = ()
            text = int(bool((row.note or "").strip()))
            for spec in fields:
                value = (row.values or {}).get(spec.id)
                if value is None or value == "":
                    continue
                if spec.kind == "text":
                    text += 1
                elif spec.kind == "yes_no" and isinstance(value, bool):
                    values.append(_safety_value(code, number, spec.id, None, "", value))
                elif spec.kind in ("number", "whole") and _number(value) is not None:
                    values.append(_safety_value(code, number, spec.id, _number(value), spec.unit))
            results.append(
                {
                    "patient_code": code,
                    "result_number": number,
                    "check_id": row.check_id,
                    "day": self.day(row.patient_id, row.observed_on),
                    "abnormal": row.abnormal,
                    "text_withheld": text,
                }
            )
        return results, values


# ------------------------------------------------------------------ helpers

# Free-text fields of the patient record (withheld; counted): the record's own, then those of
# each diagnosis, comorbidity, medicine and allergy.
_RECORD_TEXT = ("gp", "referrer")
_ASSESSMENT_TEXT = ("central_sensitisation_evidence", "expectancy", "goals")
_ITEM_TEXT = {
    "diagnoses": ("name", "note"),
    "comorbidities": ("name", "note"),
    "medications": ("frequency", "route", "indication"),
    "allergies": ("reaction",),
}


def free_text_count(document: dict[str, Any]) -> int:
    """How many free-text fields of a patient record hold text (none is exported)."""
    count = sum(bool(str(document.get(name) or "").strip()) for name in _RECORD_TEXT)
    facts = document.get("assessment") or {}
    count += sum(bool(str(facts.get(name) or "").strip()) for name in _ASSESSMENT_TEXT)
    for key, names in _ITEM_TEXT.items():
        for item in document.get(key, []):
            if isinstance(item, dict):
                count += sum(bool(str(item.get(name) or "").strip()) for name in names)
    return count


def patient_row(
    code: str, registered: date, document: dict[str, Any], kb: Knowledge, rules_: SafeHarbor
) -> dict[str, Any]:
    """A patient's row of ``patients``: the record ``document`` de-identified under ``code``,
    ages on the day of registration, the ZIP code by the Safe Harbor rule; vocabulary codes
    only, everything else counted and withheld."""
    diagnoses = [coded_diagnosis(_code(item), kb) for item in document.get("diagnoses", [])]
    comorbid = [coded_diagnosis(_code(item), kb) for item in document.get("comorbidities", [])]
    medicines = [
        coded_medicine(str(m.get("name", "")), kb) for m in document.get("medications", [])
    ]
    allergies = [
        recognise(str(a.get("substance", "")), kb.medicines) for a in document.get("allergies", [])
    ]
    facts = document.get("assessment") or {}
    opioid = facts.get("opioid_context") or {}
    found = [d for d in diagnoses if d is not None]
    return {
        "patient_code": code,
        "sex": document.get("sex"),
        "age_band": age_band(
            age_years_on(document, registered), rules_.age.pooled_from_years, rules_.age.label
        ),
        "registration_year": registered.year,
        "zip3": zip3(
            document.get("zip_code") or None, rules_.zip.restricted_prefixes, rules_.zip.replacement
        ),
        "weight_kg": document.get("weight_kg"),
        "height_cm": document.get("height_cm"),
        "pregnancy": document.get("pregnancy"),
        "consent": document.get("consent"),
        "laterality": document.get("laterality"),
        "purposes": joined(document.get("purpose", [])),
        "diagnoses": joined(d.condition or "" for d in found),
        "diagnoses_icd10cm": joined(c for d in found for c in d.icd10cm),
        "diagnoses_icd11": joined(c for d in found for c in d.icd11),
        "comorbidities": joined(d.condition or "" for d in comorbid if d is not None),
        "medicines": joined("+".join(m.ingredients) for m in medicines if m is not None),
        "medicines_atc": joined(a for m in medicines if m is not None for a in m.atc),
        "allergies": joined(i for a in allergies if a.recognised for i in a.ingredients),
        "central_sensitisation": facts.get("central_sensitisation"),
        "poor_opioid_response": opioid.get("poor_opioid_response"),
        "opioid_side_effects": opioid.get("opioid_side_effects"),
        "drug_seeking_behaviour": opioid.get("drug_seeking_behaviour"),
        "multidisciplinary_care": facts.get("multidisciplinary_care"),
        "diagnoses_withheld": sum(d is None for d in diagnoses),
        "comorbidities_withheld": sum(d is None for d in comorbid),
        "medicines_withheld": sum(m is None for m in medicines),
        "allergies_withheld": sum(not a.recognised for a in allergies),
        "free_text_withheld": free_text_count(document),
    }


# Free text of chart entries besides their note (every entry has a note): a cancellation's
# reason, an escort's name, a physician's reason to discharge against the criteria. (The
# reasons of pauses and stops are coded, and exported.)
_CHART_TEXT = {"cancel": ("reason",), "discharge": ("escort_name", "override_reason")}


def chart_text_count(chart: list[ChartEvent]) -> int:
    """How many texts a session's chart holds (notes, reasons, names; corrections' reasons
    too): none is exported. A side effect's description is counted with the side effect."""
    count = 0
    for event in chart:
        count += bool(event.reason.strip())
        entry = event.entry
        count += bool(entry.note.strip())
        for name in _CHART_TEXT.get(entry.kind, ()):
            value = getattr(entry, name, None)
            count += isinstance(value, str) and bool(value.strip())
    return count


def _code(item: Any) -> str:
    return str(item["code"]) if isinstance(item, dict) else str(item)


def _pauses_and_stops(chart: list[ChartEvent], view: SessionView) -> tuple[list[str], list[str]]:
    """The reasons of the pauses and stops that stand (after corrections, not refused)."""
    refused = {r.seq for r in view.refusals}
    effective, _ = effective_log(chart)
    pauses: list[str] = []
    stops: list[str] = []
    for item in effective:
        if item.entry is None or item.seq in refused:
            continue
        if item.entry.kind == "pause":
            pauses.append(item.entry.reason)
        elif item.entry.kind == "stop":
            stops.append(item.entry.reason)
    return pauses, stops


def _current(rows: Iterable[Any]) -> list[Any]:
    """The rows no other row amends (the current version of each record)."""
    rows = list(rows)
    amended = {r.amends_id for r in rows if r.amends_id is not None}
    return [r for r in rows if r.id not in amended]


def _minutes(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return (end - start).total_seconds() / 60.0


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None


def _positive(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _per_kg(mg: float | None, kg: float | None) -> float | None:
    return mg / kg if mg is not None and kg else None


def _whole(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _safety_value(
    code: str,
    number: int,
    field_id: str,
    value: float | None,
    unit: str,
    yes_no: bool | None = None,
) -> dict[str, Any]:
    return {
        "patient_code": code,
        "result_number": number,
        "field": field_id,
        "number": value,
        "unit": unit or None,
        "yes_no": yes_no,
    }


# The order of each table's rows: by research code first (never by record number, which
# follows registration), then by the numbers counted within the export.
_ORDER: dict[str, tuple[str, ...]] = {
    "patients": (),
    "courses": ("course_number",),
    "sessions": ("course_number", "session_number"),
    "adverse_events": ("course_number", "session_number", "event_number"),
    "assessments": ("assessment_number",),
    "assessment_scales": ("assessment_number", "scale_id"),
    "diary_entries": ("course_number", "day"),
    "course_outcomes": ("course_number",),
    "course_exposure": ("course_number",),
    "safety_results": ("result_number",),
    "safety_values": ("result_number", "field"),
}


def _sorted(rows: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    keys = _ORDER[name]
    return sorted(rows, key=lambda r: (r["patient_code"], *(r[k] for k in keys)))
