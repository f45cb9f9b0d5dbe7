"""Predicted exposure of one infusion session: what an order plans, or what was given.

The PK engine (``ketapath.pk``) predicts concentrations from doses; this module decides which
doses and which model, and turns the engine's arrays into what a clinician reads: plasma,
effect-site and (where the model has it) norketamine concentrations in ng/mL on one time grid,
each curve's peak, time of peak and AUC, the model's identity (name, citation, population,
limitations, verification) and the warnings that apply to this patient as findings.

Doses are a :class:`SessionDoses`: constant-rate infusion segments and boluses, times in
minutes from the start of the session. They come from an order (:func:`session_doses`: one
session of a signed course) or from a delivery log (rate segments between the pump events,
boluses as given). :func:`predict_exposure` predicts one; :func:`as_given_exposure` is the
same for a log written as plain segments; :func:`compare_exposure` predicts a plan and a log on
one grid and gives the differences of peak and AUC.

A session is predicted alone, from its start: what remains of earlier sessions (a day apart:
ketamine is then mostly eliminated, norketamine less so) is not added. The model is the one
asked for, else the clinic's rule (``pk_models.yaml``, ``model_choice``). Predictions use the
model's typical parameters; a given patient may differ.

Pure: no I/O beyond the knowledge files, no framework.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ketapath import pk
from ketapath.domain.errors import InvalidInput, UnknownItem
from ketapath.domain.findings import Finding, citation_text, finding, full_references
from ketapath.knowledge.pk_models import load_model_choice
from ketapath.pk.regimen import check_horizon

FloatArray = NDArray[np.float64]
Route = Literal["iv", "sc"]
CurveKey = Literal["plasma", "effect_site", "norketamine"]
ChosenBy = Literal["request", "clinic rule"]

# The time shown after the last dose, as `ketapath simulate` does: 6 h, by when plasma
# ketamine has fallen to a small fraction of its peak (elimination half-life 2-3 h).
TAIL_MIN = 360.0
# The default grid: the first of these steps giving at most DEFAULT_POINTS intervals.
GRID_STEPS_MIN = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 120.0, 240.0, 360.0, 720.0, 1440.0)
DEFAULT_POINTS = 600
# Computing bounds (not clinical): output times of one prediction, dose events of a session.
MAX_GRID_POINTS = 5000
MAX_DOSE_EVENTS = 1000
NG_PER_ML_PER_MG_PER_L = 1000.0
CURVE_WORDS: dict[CurveKey, str] = {
    "plasma": "plasma",
    "effect_site": "effect site",
    "norketamine": "",
}


# -- doses ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InfusionSegment:
    """A constant rate from ``start_min`` to ``end_min`` (minutes from the session start)."""

    start_min: float
    end_min: float
    rate_mg_per_h: float

    @property
    def amount_mg(self) -> float:
        return self.rate_mg_per_h * (self.end_min - self.start_min) / 60.0


@dataclass(frozen=True)
class BolusDose:
    """A dose given at once, ``time_min`` minutes after the session start."""

    time_min: float
    dose_mg: float


@dataclass(frozen=True)
class SessionDoses:
    """What one session gives (planned or as given): infusion segments and boluses."""

    infusions: tuple[InfusionSegment, ...] = ()
    boluses: tuple[BolusDose, ...] = ()
    route: Route = "iv"

    @property
    def total_mg(self) -> float:
        return sum(b.dose_mg for b in self.boluses) + sum(i.amount_mg for i in self.infusions)

    @property
    def end_min(self) -> float:
        """The last dose event: the end of the last infusion or the last bolus (0 if none)."""
        ends = [i.end_min for i in self.infusions] + [b.time_min for b in self.boluses]
        return max(ends, default=0.0)

    def event_times_min(self) -> list[float]:
        """Every time at which the dosing changes (starts, ends, boluses)."""
        times = [b.time_min for b in self.boluses]
        for segment in self.infusions:
            times += [segment.start_min, segment.end_min]
        return times

    def regimen(self) -> pk.Regimen:
        """The PK engine's regimen; zero-length segments (they give nothing) are left out.

        Raises ``InvalidInput`` naming the dose at fault (a negative time, an end before its
        start, a rate or bolus no infusion device delivers).
        """
        if len(self.infusions) > MAX_DOSE_EVENTS or len(self.boluses) > MAX_DOSE_EVENTS:
            raise InvalidInput(
                f"doses: at most {MAX_DOSE_EVENTS} infusion segments and {MAX_DOSE_EVENTS} "
                "boluses in one session",
                field="doses",
            )
        try:
            infusions = tuple(
                pk.Infusion(float(s.start_min), float(s.end_min), float(s.rate_mg_per_h))
                for s in self.infusions
                if not (s.end_min == s.start_min and math.isfinite(s.start_min))
            )
            boluses = tuple(pk.Bolus(float(b.time_min), float(b.dose_mg)) for b in self.boluses)
        except pk.PkInputError as error:
            raise InvalidInput(str(error), field=error.field) from error
        return pk.Regimen(boluses, infusions, route=self.route)


def session_doses(course: Mapping[str, Any], number: int) -> SessionDoses:
    """The doses session ``number`` (from 1) of a course orders, from the session's start.

    ``course`` is a course as stored with an order or shown by a preview (the data of
    ``ketapath.domain.planning.course_to_dict``): its bolus at the session start, then each
    rate step.
    """
    sessions = list(course.get("sessions") or [])
    if not 1 <= number <= len(sessions):
        raise InvalidInput(
            f"session: the course has {len(sessions)} session(s); choose one from 1 to "
            f"{len(sessions)}, not {number}",
            field="session",
        )
    chosen = sessions[number - 1]
    bolus_mg = float(chosen.get("bolus_mg") or 0.0)
    boluses = (BolusDose(0.0, bolus_mg),) if bolus_mg > 0 else ()
    infusions = tuple(
        InfusionSegment(float(s["start_min"]), float(s["end_min"]), float(s["rate_mg_per_h"]))
        for s in chosen.get("steps") or []
        if float(s["rate_mg_per_h"]) > 0
    )
    route: Route = "sc" if course.get("route") == "sc" else "iv"
    return SessionDoses(infusions, boluses, route)


# -- the model --------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeliveryLog:
    """What a session's chart says was given: the pump's rate segments (``end`` None: still
    running at ``at``) and the boluses, in clock time. The chart's replay
    (``domain.sessions``) gives these; ``doses_given`` turns them into minutes."""

    segments: tuple[tuple[datetime, datetime | None, float], ...]  # start, end, mg/h
    boluses: tuple[tuple[datetime, float], ...]  # at, mg
    at: datetime


def doses_given(log: DeliveryLog, route: Route = "iv") -> tuple[SessionDoses, datetime | None]:
    """The doses of a delivery log as minutes from its first dose (the session's start as
    given: the first pump start or bolus), and that start; nothing given: no doses, None."""
    starts = [start for start, _, _ in log.segments] + [at for at, _ in log.boluses]
    if not starts:
        return SessionDoses(route=route), None
    origin = min(starts)

    def minutes(at: datetime) -> float:
        return (at - origin).total_seconds() / 60.0

    infusions = tuple(
        InfusionSegment(minutes(start), minutes(end if end is not None else log.at), rate)
        for start, end, rate in log.segments
        if rate > 0
    )
    boluses = tuple(BolusDose(minutes(at), mg) for at, mg in log.boluses if mg > 0)
    return SessionDoses(infusions, boluses, route), origin


@dataclass(frozen=True)
class ModelCard:
    """What a reader needs to judge a prediction: which model, from where, built in whom."""

    id: str
    name: str
    analyte: str
    metabolite: str | None
    citation: str
    reference: str
    population: str
    limitations: tuple[str, ...]
    verification: str
    chosen_by: ChosenBy
    choice_rule: str


def model_card(model_id: str, *, chosen_by: ChosenBy = "request") -> ModelCard:
    """The model's identity and its standing limitations (from ``pk_models.yaml``)."""
    model = _model(model_id)
    entry = model.entry
    limitations = [entry.validity.note]
    if entry.dose_fraction < 1.0 and entry.dose_fraction_note:
        limitations.append(entry.dose_fraction_note)
    if not entry.effect_site.published:
        limitations.append(f"Effect site: {entry.effect_site.note}")
    if entry.metabolite is not None:
        limitations.append(entry.metabolite.units_note)
    if entry.sampling != "not stated":
        limitations.append(f"Built from {entry.sampling} samples.")
    limitations.append(entry.route_note)
    limitations.append(
        "The prediction uses the model's typical (population) parameters: a given patient's "
        "concentrations may differ."
    )
    return ModelCard(
        id=entry.id,
        name=entry.name,
        analyte=entry.analyte,
        metabolite=model.metabolite_name,
        citation=citation_text(entry.source),
        reference=full_references(entry.source),
        population=entry.population,
        limitations=tuple(limitations),
        verification=entry.verification,
        chosen_by=chosen_by,
        choice_rule=load_model_choice().rule,
    )


def choose_model(patient: pk.Covariates, model_id: str | None = None) -> tuple[str, ChosenBy]:
    """The model asked for, else the first of the clinic's preference whose study range of
    age and weight contains the patient (the first one when none does)."""
    if model_id:
        return _model(model_id).id, "request"
    preference = load_model_choice().preference
    for candidate in preference:
        if not _model(candidate).warnings(patient):
            return candidate, "clinic rule"
    return preference[0], "clinic rule"


def _model(model_id: str) -> pk.PkModel:
    try:
        return pk.get_model(model_id)
    except pk.UnknownModelError as error:
        raise UnknownItem(f"model: {error}", field="model") from error


# -- predictions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Curve:
    """One predicted concentration-time curve (ng/mL on the exposure's grid)."""

    key: CurveKey
    label: str
    concentrations_ng_per_ml: FloatArray
    peak_ng_per_ml: float
    peak_at_min: float
    auc_ng_h_per_ml: float
    auc_exact: bool = False


@dataclass(frozen=True)
class Exposure:
    """Predicted concentrations of one session for one patient, with the model and warnings.

    ``times_min`` are minutes from the session start; every curve has one value per time.
    The plasma AUC is exact (integrated with the concentrations); the others are by the
    trapezoidal rule on the grid. Peaks are the highest value on the grid, which holds every
    dose event so that no dose's peak falls between two points.
    """

    model: ModelCard
    patient: pk.Covariates
    doses: SessionDoses
    times_min: FloatArray
    curves: tuple[Curve, ...]
    findings: tuple[Finding, ...] = field(default=())

    def curve(self, key: CurveKey) -> Curve | None:
        return next((c for c in self.curves if c.key == key), None)

    @property
    def plasma(self) -> Curve:
        found = self.curve("plasma")
        assert found is not None
        return found

    @property
    def effect_site(self) -> Curve:
        found = self.curve("effect_site")
        assert found is not None
        return found

    @property
    def norketamine(self) -> Curve | None:
        return self.curve("norketamine")


def exposure_grid(
    doses: Iterable[SessionDoses], *, until_min: float | None = None, step_min: float | None = None
) -> FloatArray:
    """Output times from 0 to ``until_min`` (default: the last dose + 6 h) every ``step_min``
    (default: a round step giving at most 600 intervals), plus every dose event before the end.
    """
    doses = list(doses)
    end = (
        max((d.end_min for d in doses), default=0.0) + TAIL_MIN if until_min is None else until_min
    )
    if not math.isfinite(end) or end <= 0:
        raise InvalidInput(
            f"until_min: must be a finite number of minutes above 0, not {end}", field="until_min"
        )
    try:
        check_horizon("until_min", end)
    except pk.PkInputError as error:
        raise InvalidInput(str(error), field="until_min") from error
    if step_min is None:
        step = next((s for s in GRID_STEPS_MIN if end / s <= DEFAULT_POINTS), GRID_STEPS_MIN[-1])
    else:
        step = step_min
        if not math.isfinite(step) or step <= 0:
            raise InvalidInput(
                f"step_min: must be a finite number of minutes above 0, not {step}",
                field="step_min",
            )
        if not end / step + 1 <= MAX_GRID_POINTS:
            raise InvalidInput(
                f"step_min: every {step:g} min up to {end:g} min is more than "
                f"{MAX_GRID_POINTS:,} output times; give a larger step",
                field="step_min",
            )
    count = math.floor(end / step + 1e-9) + 1
    grid = np.arange(count, dtype=np.float64) * step
    events = [t for d in doses for t in d.event_times_min() if 0.0 <= t <= end]
    times: FloatArray = np.union1d(np.append(grid, end), np.asarray(events, dtype=np.float64))
    return times


def predict_exposure(
    patient: pk.Covariates,
    doses: SessionDoses,
    *,
    model_id: str | None = None,
    until_min: float | None = None,
    step_min: float | None = None,
) -> Exposure:
    """The predicted exposure of ``doses`` for ``patient`` (see :class:`Exposure`), on the
    grid of :func:`exposure_grid`.

    Raises ``InvalidInput`` (a dose or the grid out of bounds, naming it) or ``UnknownItem``
    (no such model).
    """
    chosen, chosen_by = choose_model(patient, model_id)
    times = exposure_grid([doses], until_min=until_min, step_min=step_min)
    return _predict(patient, doses, chosen, chosen_by, times)


def _predict(
    patient: pk.Covariates,
    doses: SessionDoses,
    model_id: str,
    chosen_by: ChosenBy,
    times_min: FloatArray,
) -> Exposure:
    model = _model(model_id)
    regimen = doses.regimen()
    try:
        prediction = pk.predict(model, patient, regimen, times_min, analgesia=False)
    except pk.PkInputError as error:
        raise InvalidInput(str(error), field=error.field) from error
    card = model_card(model_id, chosen_by=chosen_by)
    return Exposure(
        model=card,
        patient=patient,
        doses=doses,
        times_min=prediction.times_min,
        curves=_curves(prediction, card),
        findings=_findings(model, patient, doses.route),
    )


def as_given_exposure(
    patient: pk.Covariates,
    infusions: Sequence[InfusionSegment],
    boluses: Sequence[BolusDose] = (),
    *,
    model_id: str | None = None,
    route: Route = "iv",
    until_min: float | None = None,
    step_min: float | None = None,
) -> Exposure:
    """The predicted exposure of what a delivery log says was given in one session.

    ``infusions`` are the constant-rate segments between pump events (a pause is a gap, or a
    segment at 0 mg/h), ``boluses`` the doses given at once; times in minutes from the session
    start. The same as ``predict_exposure(patient, SessionDoses(infusions, boluses, route))``.
    """
    doses = SessionDoses(tuple(infusions), tuple(boluses), route)
    return predict_exposure(
        patient, doses, model_id=model_id, until_min=until_min, step_min=step_min
    )


@dataclass(frozen=True)
class CurveDifference:
    """As given minus planned, for one curve: peak and AUC (and their ratios, when defined)."""

    key: CurveKey
    label: str
    peak_difference_ng_per_ml: float
    peak_ratio: float | None
    auc_difference_ng_h_per_ml: float
    auc_ratio: float | None


@dataclass(frozen=True)
class ExposureComparison:
    """A plan and what was given, predicted with one model on one grid."""

    planned: Exposure
    given: Exposure
    differences: tuple[CurveDifference, ...]

    @property
    def times_min(self) -> FloatArray:
        return self.planned.times_min


def compare_exposure(
    patient: pk.Covariates,
    planned: SessionDoses,
    given: SessionDoses,
    *,
    model_id: str | None = None,
    until_min: float | None = None,
    step_min: float | None = None,
) -> ExposureComparison:
    """Predict ``planned`` (from the order) and ``given`` (from the log) on one grid, with one
    model, and give as-given minus planned for each curve's peak and AUC."""
    chosen, chosen_by = choose_model(patient, model_id)
    times = exposure_grid([planned, given], until_min=until_min, step_min=step_min)
    plan = _predict(patient, planned, chosen, chosen_by, times)
    log = _predict(patient, given, chosen, chosen_by, times)
    differences = tuple(
        _difference(a, b) for a in plan.curves for b in log.curves if a.key == b.key
    )
    return ExposureComparison(plan, log, differences)


def _difference(planned: Curve, given: Curve) -> CurveDifference:
    return CurveDifference(
        key=planned.key,
        label=planned.label,
        peak_difference_ng_per_ml=given.peak_ng_per_ml - planned.peak_ng_per_ml,
        peak_ratio=_ratio(given.peak_ng_per_ml, planned.peak_ng_per_ml),
        auc_difference_ng_h_per_ml=given.auc_ng_h_per_ml - planned.auc_ng_h_per_ml,
        auc_ratio=_ratio(given.auc_ng_h_per_ml, planned.auc_ng_h_per_ml),
    )


def _ratio(given: float, planned: float) -> float | None:
    return given / planned if planned > 0 else None


def _curves(prediction: pk.Prediction, card: ModelCard) -> tuple[Curve, ...]:
    times = prediction.times_min
    auc = prediction.auc_mg_min_per_l
    exact_auc_ng_h = float(auc[-1] - auc[0]) * NG_PER_ML_PER_MG_PER_L / 60.0
    series: list[tuple[CurveKey, FloatArray]] = [
        ("plasma", prediction.plasma_mg_per_l),
        ("effect_site", prediction.effect_site_mg_per_l),
    ]
    if prediction.norketamine_mg_per_l is not None:
        series.append(("norketamine", prediction.norketamine_mg_per_l))
    curves = []
    for key, values_mg_per_l in series:
        # Rounding leaves values of about -1e-18 where the exact answer is 0.
        values = np.maximum(values_mg_per_l * NG_PER_ML_PER_MG_PER_L, 0.0)
        if not np.all(np.isfinite(values)) or not math.isfinite(exact_auc_ng_h):
            raise InvalidInput(
                "doses: the prediction is not a finite number for these doses and this patient",
                field="doses",
            )
        peak = int(np.argmax(values))
        exact = key == "plasma"
        curves.append(
            Curve(
                key=key,
                label=_label(key, card),
                concentrations_ng_per_ml=values,
                peak_ng_per_ml=float(values[peak]),
                peak_at_min=float(times[peak]),
                auc_ng_h_per_ml=exact_auc_ng_h if exact else _trapezoid_h(values, times),
                auc_exact=exact,
            )
        )
    return tuple(curves)


def _trapezoid_h(values: FloatArray, times_min: FloatArray) -> float:
    if len(times_min) < 2:
        return 0.0
    return float(np.trapezoid(values, times_min)) / 60.0


def _label(key: CurveKey, card: ModelCard) -> str:
    if key == "norketamine":
        return card.metabolite or "norketamine"
    analyte = "S-ketamine" if card.analyte == "S-ketamine" else "ketamine"
    return f"{analyte}, {CURVE_WORDS[key]}"


def model_findings(model: pk.PkModel, patient: pk.Covariates, route: Route) -> tuple[Finding, ...]:
    """The warnings of a prediction with ``model`` for ``patient``: outside the model's study
    range (or a covariate not given), and a route without a published absorption model."""
    return _findings(model, patient, route)


def _findings(model: pk.PkModel, patient: pk.Covariates, route: Route) -> tuple[Finding, ...]:
    out = [
        finding(
            "exposure:outside-model-range",
            message,
            source=model.entry.source,
            subject=model.id,
        )
        for message in model.warnings(patient)
    ]
    if route != "iv":
        out.append(
            finding(
                "exposure:route-not-modelled",
                f"Route {route.upper()}: {model.entry.route_note} The prediction treats the "
                "doses as intravenous, which overstates early peaks.",
                subject=route,
            )
        )
    return tuple(out)
