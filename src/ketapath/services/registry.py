"""The registry analytics (issue 13, item 3): outcomes by protocol, indication, dose per kg,
infusion duration, adjuncts and exposure; relief-duration curves; responder rates; adverse
events against cumulative dose; the regression of relief duration on dose and duration.

Physicians and researchers read them (``registry.read``). A physician's course rows name the
patient and the order and give the dates (``CourseLink``); a researcher's are de-identified,
as in ``services.research``: the patient's research code and the course's number, coded
values only, no dates (a researcher's date filter is widened to whole years and says so).

Every read first brings the summary table up to date (``services.registry_store.refresh``:
only the patients whose records changed), then reads the summary rows of every course in one
query and computes in memory with the domain's functions (``domain.registry``,
``domain.registry_survival``), so the definitions are those of the rest of ketapath. Every read
is audited with its filters and how many courses it covered.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import select

from ketapath.domain import registry as reg
from ketapath.domain import registry_survival as surv
from ketapath.domain.findings import Finding, cite, finding
from ketapath.domain.research import research_code
from ketapath.knowledge.base import Source
from ketapath.knowledge.registry import registry_rules
from ketapath.services import audit
from ketapath.services.clock import ClinicClock, clinic_clock
from ketapath.services.errors import InvalidInput
from ketapath.services.permissions import Actor
from ketapath.services.registry_store import refresh
from ketapath.services.research import research_key
from ketapath.services.signing import FindingView
from ketapath.services.unit import action, check
from ketapath.store.db import Database
from ketapath.store.models import Patient, RegistryState
from ketapath.store.models import RegistryCourse as SummaryRow

GroupBy = reg.GroupBy
Analysis = Literal["courses", "responders", "relief", "adverse-events", "regression"]
MAX_PAGE = 1000


# ------------------------------------------------------------------ filters


class RegistryFilters(BaseModel):
    """Which courses to analyse: all when nothing is given."""

    protocol: str | None = Field(default=None, max_length=80, description="A protocol id.")
    indication: str | None = Field(
        default=None, max_length=80, description="A condition id (the course's indication)."
    )
    dose_band: str | None = Field(
        default=None, max_length=40, description="A band of total dose per kg, as labelled."
    )
    date_from: date | None = Field(default=None, description="First session on or after.")
    date_to: date | None = Field(default=None, description="First session on or before.")


class AppliedFilters(RegistryFilters):
    """The filters as applied, with what was changed and why."""

    note: str = ""


def _applied(filters: RegistryFilters, actor: Actor) -> AppliedFilters:
    if filters.dose_band is not None and filters.dose_band not in reg.band_order(
        registry_rules().bands.dose_mg_per_kg
    ):
        labels = ", ".join(reg.band_order(registry_rules().bands.dose_mg_per_kg))
        raise InvalidInput(
            f"dose_band: {filters.dose_band!r} is not a band; the bands are {labels}.",
            field="dose_band",
        )
    if filters.date_from and filters.date_to and filters.date_from > filters.date_to:
        raise InvalidInput("date_from: the range starts after it ends.", field="date_from")
    applied = AppliedFilters(**filters.model_dump())
    if not actor.may("registry.identified") and (filters.date_from or filters.date_to):
        # a researcher sees no dates: a range narrower than a year could single a patient out
        applied.date_from = date(filters.date_from.year, 1, 1) if filters.date_from else None
        applied.date_to = date(filters.date_to.year, 12, 31) if filters.date_to else None
        applied.note = (
            "De-identified: the date range was widened to whole calendar years "
            f"({applied.date_from or 'any'} to {applied.date_to or 'any'})."
        )
    return applied


def _selected(course: reg.RegistryCourse, f: AppliedFilters) -> bool:
    rules = registry_rules()
    if f.protocol and course.protocol_id != f.protocol:
        return False
    if f.indication and (course.indication or reg.NOT_RECOGNISED) != f.indication:
        return False
    if f.dose_band and reg.band_of(course.dose_mg_per_kg, rules.bands.dose_mg_per_kg) != (
        f.dose_band
    ):
        return False
    first = course.first_session_on
    if f.date_from and (first is None or first < f.date_from):
        return False
    return not (f.date_to and (first is None or first > f.date_to))


# ------------------------------------------------------------------ views


class MethodView(BaseModel):
    """How a number was computed: the rule in words and its citations."""

    rule: str
    citation: str


def _method(rule: str, source: Source) -> MethodView:
    return MethodView(rule=" ".join(rule.split()), citation="; ".join(c.text for c in cite(source)))


class CourseLink(BaseModel):
    """Physicians only: the patient, the order and the dates of a course."""

    patient_id: int
    order_id: int
    first_session_on: date | None
    last_session_on: date | None


class CourseRow(BaseModel):
    """One course of the registry. ``link`` is none for a researcher (de-identified)."""

    patient_code: str = Field(description="The research code of the patient (as in the export).")
    course_number: int = Field(description="The patient's 1st, 2nd ... course.")
    protocol_id: str
    indication: str = Field(description="Condition id, or 'not recognised: check by hand'.")
    diagnoses: list[str] = Field(description="The recognised diagnoses' condition ids.")
    icd10cm: list[str] = Field(description="Their ICD-10-CM codes.")
    status: str = Field(description="complete, in progress or not given.")
    sessions_planned: int
    sessions_given: int
    weight_kg: float | None
    delivered_mg: float
    dose_mg_per_kg: float | None
    dose_band: str
    infusion_hours: float
    duration_band: str
    adjuncts: str
    side_effects: int
    troublesome_side_effects: int
    stopped_for_side_effect: int
    safety_abnormal: int
    cumulative_mg_per_kg: float | None
    cumulative_band: str
    baseline_nrs: int | None
    follow_up_days: int | None
    follow_up_nrs: int | None
    responder_30: str
    responder_50: str
    relief_status: str
    relief_days: int | None
    relief_ended: bool | None
    auc_status: str
    auc: float | None
    exposure_status: str = Field(description="computed, or 'not computed' (no stored summary).")
    exposure_auc: float | None = Field(
        description="Predicted ketamine AUC to infinity, mg.h/L, of the stored course summary."
    )
    exposure_band: str = Field(description="Its band, or 'not computed'.")
    exposure_peak: float | None = Field(description="Predicted ketamine peak, mg/L.")
    exposure_minutes_above: float | None = Field(
        description="Minutes above the first reference concentration."
    )
    link: CourseLink | None


class CoursesView(BaseModel):
    """Course rows (a page of them) and how many match."""

    filters: AppliedFilters
    identified: bool
    total: int
    offset: int
    limit: int
    courses: list[CourseRow]


class RateView(BaseModel):
    """A rate with its Wilson interval; none (with ``reason``) when no course counts."""

    n: int
    events: int
    unknown: int
    proportion: float | None
    low: float | None
    high: float | None
    reason: str = ""


def _rate(r: reg.Rate) -> RateView:
    reason = "" if r.n else "no course with a known result"
    return RateView(**vars(r), reason=reason)


class LeftOut(BaseModel):
    """Courses matching the filters that no outcome analysis takes, and why."""

    in_progress: int
    not_given: int


class ResponderGroup(BaseModel):
    group: str
    courses: int
    at_30: RateView
    at_50: RateView


class RespondersView(BaseModel):
    filters: AppliedFilters
    group_by: GroupBy
    level: float
    method: MethodView
    interval: MethodView
    groups: list[ResponderGroup]
    left_out: LeftOut


class CurvePointView(BaseModel):
    days: float
    survival: float
    low: float | None
    high: float | None
    at_risk: int
    ended: int
    censored: int


class MedianView(BaseModel):
    days: float | None
    low: float | None
    high: float | None
    reason: str


class ReliefGroup(BaseModel):
    group: str
    courses: int
    ended: int
    censored: int
    never_began: int
    no_data: int
    median: MedianView
    points: list[CurvePointView]
    note: str


class ReliefView(BaseModel):
    filters: AppliedFilters
    group_by: GroupBy | None
    level: float
    method: MethodView
    population: MethodView
    groups: list[ReliefGroup]
    left_out: LeftOut


class AdverseBand(BaseModel):
    band: str
    courses: int
    rates: dict[str, RateView]


class AdverseView(BaseModel):
    filters: AppliedFilters
    level: float
    method: MethodView
    kinds: dict[str, str]
    bands: list[AdverseBand]


class CoefficientView(BaseModel):
    covariate: str
    name: str
    unit: str
    coef: float | None
    hazard_ratio: float | None
    low: float | None
    high: float | None
    p: float | None
    note: str


class RegressionView(BaseModel):
    filters: AppliedFilters
    status: Literal["fitted", "too few data", "not fitted"]
    model: str
    level: float
    courses: int
    events: int
    censored: int
    covariates: list[str]
    min_events: int
    coefficients: list[CoefficientView]
    message: str
    method: MethodView
    findings: list[FindingView]


class Choices(BaseModel):
    """What the filters can take, from the registry itself."""

    protocols: list[str]
    indications: list[str]
    dose_bands: list[str]
    group_bys: dict[str, str]


class Overview(BaseModel):
    """Everything the registry page shows, from one read."""

    filters: AppliedFilters
    identified: bool
    courses_total: int
    courses_analysed: int
    responders: RespondersView
    relief: ReliefView
    adverse: AdverseView
    regression: RegressionView
    choices: Choices
    findings: list[FindingView]


# ------------------------------------------------------------------ reading


# The summary rows as last read, per database: (stamp, courses, registers). The stamp is the
# summary's generation and the time of its last change (registry_store); while it is the same,
# the rows are too, so a page reads one row instead of every course.
_READ: dict[str, tuple[tuple[int, datetime], list[reg.RegistryCourse], Registers]] = {}
_READ_LOCK = threading.Lock()
_FIELDS = [f.name for f in fields(reg.RegistryCourse)]


@dataclass(frozen=True)
class Registers:
    """What a course row needs besides the course: the patient's research code (as in the
    research views and export: a keyed hash of the pseudonym, never the pseudonym clinicians
    search by), and the course's number among the patient's courses (by first session day)."""

    codes: dict[int, str]
    numbers: dict[int, int]


def _numbers(courses: list[reg.RegistryCourse]) -> dict[int, int]:
    ordered = sorted(
        courses, key=lambda c: (c.patient_id, c.first_session_on or date.max, c.order_id)
    )
    counts: dict[int, int] = {}
    numbers = {}
    for c in ordered:
        counts[c.patient_id] = counts.get(c.patient_id, 0) + 1
        numbers[c.order_id] = counts[c.patient_id]
    return numbers


def _load(
    db: Database, actor: Actor, clock: ClinicClock | None
) -> tuple[list[reg.RegistryCourse], Registers]:
    """Every course of the registry, and the patients' research codes and course numbers. Refused
    before anything is read unless the role may; the summary is brought up to date first."""
    check(db, actor, "registry.read", entity="registry")
    refresh(db, clock or clinic_clock())
    with db.read_only() as session:
        state = session.get(RegistryState, 1)
        stamp = (state.generation, state.refreshed_at) if state is not None else (0, datetime.min)
        with _READ_LOCK:
            known = _READ.get(db.url)
        if known is not None and known[0] == stamp:
            return known[1], known[2]
        table = SummaryRow.__table__
        rows = session.execute(select(*(table.c[name] for name in _FIELDS))).all()
        pseudonyms = session.execute(select(Patient.id, Patient.pseudonym)).all()
    courses = [reg.RegistryCourse(*row) for row in rows]
    key = research_key()
    codes = {patient_id: research_code(key, pseudonym) for patient_id, pseudonym in pseudonyms}
    registers = Registers(codes, _numbers(courses))
    with _READ_LOCK:
        _READ[db.url] = (stamp, courses, registers)
    return courses, registers


def _audited(
    db: Database, actor: Actor, name: str, filters: AppliedFilters, count: int, **more: object
) -> None:
    with action(db, actor, "registry.read", entity="registry") as session:
        audit.record(
            session,
            actor,
            f"registry.{name}",
            entity="registry",
            detail={"filters": filters.model_dump(mode="json"), "courses": count, **more},
        )


def _left_out(courses: list[reg.RegistryCourse]) -> LeftOut:
    return LeftOut(
        in_progress=sum(1 for c in courses if c.status == "in progress"),
        not_given=sum(1 for c in courses if c.status == "not given"),
    )


def _chosen(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None,
    clock: ClinicClock | None,
) -> tuple[AppliedFilters, list[reg.RegistryCourse], Registers]:
    applied = _applied(filters or RegistryFilters(), actor)
    everything, registers = _load(db, actor, clock)
    return applied, [c for c in everything if _selected(c, applied)], registers


# ------------------------------------------------------------------ the analyses


def responders_view(
    courses: list[reg.RegistryCourse], applied: AppliedFilters, by: GroupBy
) -> RespondersView:
    rules = registry_rules()
    return RespondersView(
        filters=applied,
        group_by=by,
        level=rules.confidence_level,
        method=_method(rules.responder.rule, rules.responder.source),
        interval=_method(
            "Wilson's score interval, by its formula (Wilson 1927, p. 210).",
            rules.confidence_source,
        ),
        groups=[
            ResponderGroup(
                group=row.group, courses=row.courses, at_30=_rate(row.at_30), at_50=_rate(row.at_50)
            )
            for row in reg.responder_table(courses, by, rules)
        ],
        left_out=_left_out(courses),
    )


def relief_view(
    courses: list[reg.RegistryCourse], applied: AppliedFilters, by: GroupBy | None
) -> ReliefView:
    rules = registry_rules()
    groups = []
    for curve in surv.relief_curves(courses, by, rules):
        groups.append(
            ReliefGroup(
                group=curve.group,
                courses=curve.courses,
                ended=curve.ended,
                censored=curve.censored,
                never_began=curve.never_began,
                no_data=curve.no_data,
                median=MedianView(**vars(curve.median)),
                points=[CurvePointView(**vars(p)) for p in curve.points],
                note=curve.note,
            )
        )
    return ReliefView(
        filters=applied,
        group_by=by,
        level=rules.confidence_level,
        method=_method(rules.kaplan_meier.rule, rules.kaplan_meier.source),
        population=_method(rules.relief.rule, rules.relief.source),
        groups=groups,
        left_out=_left_out(courses),
    )


def adverse_view(courses: list[reg.RegistryCourse], applied: AppliedFilters) -> AdverseView:
    rules = registry_rules()
    return AdverseView(
        filters=applied,
        level=rules.confidence_level,
        method=_method(rules.adverse_events.rule, rules.adverse_events.source),
        kinds=dict(reg.ADVERSE_KINDS),
        bands=[
            AdverseBand(
                band=row.band,
                courses=row.courses,
                rates={k: _rate(v) for k, v in row.rates.items()},
            )
            for row in reg.adverse_events_by_cumulative_dose(courses, rules)
        ],
    )


def regression_view(courses: list[reg.RegistryCourse], applied: AppliedFilters) -> RegressionView:
    rules = registry_rules()
    fitted = surv.relief_regression(courses, rules)
    return RegressionView(
        filters=applied,
        status=fitted.status,
        model=fitted.model,
        level=rules.confidence_level,
        courses=fitted.courses,
        events=fitted.events,
        censored=fitted.censored,
        covariates=list(fitted.covariates),
        min_events=fitted.min_events,
        coefficients=[CoefficientView(**vars(c)) for c in fitted.coefficients],
        message=fitted.message,
        method=_method(rules.regression.rule, rules.regression.source),
        findings=[FindingView.model_validate(f) for f in fitted.findings],
    )


def course_records(
    courses: list[reg.RegistryCourse], registers: Registers, identified: bool
) -> list[dict[str, Any]]:
    """Each course's fields as a ``CourseRow`` holds them (the link's fields under "link",
    None for a researcher), in the order given."""
    bands = registry_rules().bands
    records = []
    for c in courses:
        records.append(
            {
                "patient_code": registers.codes.get(c.patient_id, ""),
                "course_number": registers.numbers.get(c.order_id, 0),
                "protocol_id": c.protocol_id,
                "indication": c.indication or reg.NOT_RECOGNISED,
                "status": c.status,
                "diagnoses": c.diagnoses.split(),
                "icd10cm": c.icd10cm.split(),
                "sessions_planned": c.sessions_planned,
                "sessions_given": c.sessions_given,
                "weight_kg": c.weight_kg,
                "delivered_mg": c.delivered_mg,
                "dose_mg_per_kg": c.dose_mg_per_kg,
                "dose_band": reg.band_of(c.dose_mg_per_kg, bands.dose_mg_per_kg),
                "infusion_hours": c.infusion_hours,
                "duration_band": reg.band_of(c.infusion_hours, bands.infusion_hours),
                "adjuncts": c.adjuncts,
                "side_effects": c.side_effects,
                "troublesome_side_effects": c.troublesome_side_effects,
                "stopped_for_side_effect": c.stopped_for_side_effect,
                "safety_abnormal": c.safety_abnormal,
                "cumulative_mg_per_kg": c.cumulative_mg_per_kg,
                "cumulative_band": reg.band_of(
                    c.cumulative_mg_per_kg, bands.cumulative_dose_mg_per_kg
                ),
                "baseline_nrs": c.baseline_nrs,
                "follow_up_days": c.follow_up_days,
                "follow_up_nrs": c.follow_up_nrs,
                "responder_30": c.responder_30,
                "responder_50": c.responder_50,
                "relief_status": c.relief_status,
                "relief_days": c.relief_days,
                "relief_ended": c.relief_event,
                "auc_status": c.auc_status,
                "auc": c.auc,
                "exposure_status": c.exposure_status,
                "exposure_auc": c.exposure_auc,
                "exposure_band": reg.group_key(c, "exposure"),
                "exposure_peak": c.exposure_peak,
                "exposure_minutes_above": c.exposure_minutes_above,
                "link": {
                    "patient_id": c.patient_id,
                    "order_id": c.order_id,
                    "first_session_on": c.first_session_on,
                    "last_session_on": c.last_session_on,
                }
                if identified
                else None,
            }
        )
    return records


def course_rows(
    courses: list[reg.RegistryCourse], registers: Registers, identified: bool
) -> list[CourseRow]:
    """Course rows in the order given (the patient's course number from ``registers``)."""
    return [
        CourseRow.model_validate(record)
        for record in course_records(courses, registers, identified)
    ]


@dataclass(frozen=True)
class CourseTable:
    """Every matching course as plain records, for a file (not validated again: the values
    are the summary table's, as typed)."""

    filters: AppliedFilters
    identified: bool
    records: list[dict[str, Any]]


# ------------------------------------------------------------------ one function per action


def _ordered(courses: list[reg.RegistryCourse]) -> list[reg.RegistryCourse]:
    return sorted(courses, key=lambda c: (c.patient_id, c.first_session_on or date.max, c.order_id))


def course_table(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    clock: ClinicClock | None = None,
) -> CourseTable:
    """Every course matching ``filters``, for the CSV download."""
    applied, chosen, registers = _chosen(db, actor, filters, clock)
    identified = actor.may("registry.identified")
    records = course_records(_ordered(chosen), registers, identified)
    _audited(db, actor, "courses", applied, len(records), identified=identified, file=True)
    return CourseTable(applied, identified, records)


def courses(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    offset: int = 0,
    limit: int = 100,
    clock: ClinicClock | None = None,
) -> CoursesView:
    """The courses matching ``filters``, ``limit`` from ``offset`` (all with ``limit`` 0)."""
    applied, chosen, registers = _chosen(db, actor, filters, clock)
    identified = actor.may("registry.identified")
    ordered = _ordered(chosen)
    shown = ordered[offset:] if limit == 0 else ordered[offset : offset + limit]
    page = course_rows(shown, registers, identified)
    _audited(db, actor, "courses", applied, len(page), identified=identified)
    return CoursesView(
        filters=applied,
        identified=identified,
        total=len(chosen),
        offset=offset,
        limit=limit,
        courses=page,
    )


def responders(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    by: GroupBy = "protocol",
    clock: ClinicClock | None = None,
) -> RespondersView:
    """Responder rates at 30% and 50% by group, with Wilson 95% intervals."""
    applied, chosen, _ = _chosen(db, actor, filters, clock)
    _audited(db, actor, "responders", applied, len(chosen), group_by=by)
    return responders_view(chosen, applied, by)


def relief(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    by: GroupBy | None = None,
    clock: ClinicClock | None = None,
) -> ReliefView:
    """Kaplan-Meier curves of relief duration (one per group, or one of all)."""
    applied, chosen, _ = _chosen(db, actor, filters, clock)
    _audited(db, actor, "relief", applied, len(chosen), group_by=by)
    return relief_view(chosen, applied, by)


def adverse_events(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    clock: ClinicClock | None = None,
) -> AdverseView:
    """Adverse-event rates by the patient's cumulative dose per kg."""
    applied, chosen, _ = _chosen(db, actor, filters, clock)
    _audited(db, actor, "adverse-events", applied, len(chosen))
    return adverse_view(chosen, applied)


def regression(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    clock: ClinicClock | None = None,
) -> RegressionView:
    """Cox regression of relief duration on dose per kg and infusion hours, or why not."""
    applied, chosen, _ = _chosen(db, actor, filters, clock)
    _audited(db, actor, "regression", applied, len(chosen))
    return regression_view(chosen, applied)


def overview(
    db: Database,
    actor: Actor,
    filters: RegistryFilters | None = None,
    *,
    by: GroupBy = "protocol",
    clock: ClinicClock | None = None,
) -> Overview:
    """Every analysis of the registry page from one read."""
    applied = _applied(filters or RegistryFilters(), actor)
    everything, _ = _load(db, actor, clock)
    chosen = [c for c in everything if _selected(c, applied)]
    _audited(db, actor, "overview", applied, len(chosen), group_by=by)
    rules = registry_rules()
    findings: list[Finding] = []
    left = _left_out(chosen)
    if left.in_progress or left.not_given:
        findings.append(
            finding(
                "registry:courses-left-out",
                f"{left.in_progress} course(s) still in progress and {left.not_given} never "
                "given are counted but not analysed.",
            )
        )
    if any(c.exposure_auc is None for c in chosen):
        findings.append(
            finding(
                "registry:exposure-not-computed",
                f"Predicted exposure is not computed for "
                f"{sum(1 for c in chosen if c.exposure_auc is None)} of these courses: no "
                "stored course exposure summary with current inputs (ketapath exposure "
                "refresh stores them).",
            )
        )
    return Overview(
        filters=applied,
        identified=actor.may("registry.identified"),
        courses_total=len(chosen),
        courses_analysed=sum(1 for c in chosen if c.analysed),
        responders=responders_view(chosen, applied, by),
        relief=relief_view(chosen, applied, by),
        adverse=adverse_view(chosen, applied),
        regression=regression_view(chosen, applied),
        choices=Choices(
            protocols=sorted({c.protocol_id for c in everything}),
            indications=sorted({c.indication or reg.NOT_RECOGNISED for c in everything}),
            dose_bands=list(reg.band_order(rules.bands.dose_mg_per_kg)),
            group_bys=dict(reg.GROUP_LABELS),
        ),
        findings=[FindingView.model_validate(f) for f in findings],
    )
