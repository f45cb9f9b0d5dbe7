"""Exposure summaries of what was given: AUC, peak and time above reference concentrations of
ketamine and norketamine, for one session or a whole course (issue 13 item 2).

A summary is what a registry keeps of a prediction: not the curve, but how much (AUC, in
mg.h/L, over the window and to infinity), how high (peak, mg/L, and when) and how long above
each reference concentration of ``exposure_thresholds.yaml`` (minutes). It is computed
exactly, without a time grid (``ketapath.pk.summary``: closed forms between dose events), from
the doses a session's chart says were given (:class:`~ketapath.domain.exposure.SessionDoses`,
minutes from the first dose), with the model the clinic's rule chooses
(:func:`~ketapath.domain.exposure.choose_model`) and the model's typical parameters.

- **A session** is summarised alone, from its first dose to 6 h after its last, as the
  session's exposure card predicts it.
- **A course** is its sessions on one time axis (each at its first dose's clock time), so
  what remains of one session when the next starts is counted: its peak and time above can
  exceed the sessions' own; its AUC to infinity is the sum of theirs (the model is linear).

Thresholds of one enantiomer meet a model of the other through the analgesia model's
``racemic_to_s_fraction`` (the S-enantiomer is half of racemic ketamine), and the summary says
so; norketamine thresholds apply to the model's metabolite, when it has one.

:func:`inputs_of` is everything a summary depends on, as a canonical document with its
SHA-256: the doses, the covariates, the model (its id and every parameter of its entry, and
the version of ``pk_models.yaml``), the thresholds and this method's version. A stored summary
whose inputs digest differs from the current one is stale and is recomputed.

Pure: no I/O beyond the knowledge files, no framework.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ketapath import pk
from ketapath.domain.errors import InvalidInput
from ketapath.domain.exposure import (
    TAIL_MIN,
    BolusDose,
    InfusionSegment,
    SessionDoses,
    choose_model,
    model_findings,
)
from ketapath.domain.findings import Finding
from ketapath.knowledge.exposure import ExposureThreshold, ExposureThresholdsFile
from ketapath.knowledge.pk_models import pk_models_version
from ketapath.pk.summary import OutputSummary, Schedule, summarise

# Bumped whenever the way a summary is computed changes (then every stored one is stale).
METHOD_VERSION = 1
AnalyteKey = Literal["ketamine", "norketamine"]
MG_MIN_PER_MG_H = 60.0


@dataclass(frozen=True)
class AppliedThreshold:
    """A reference concentration as applied to a model's curve."""

    id: str
    name: str
    analyte: str  # the threshold's own analyte
    basis: Literal["published", "policy"]
    concentration_ng_per_ml: float  # as the source gives it
    applied_mg_per_l: float  # on the model's curve
    converted: str  # how it was converted to the model's analyte ("" if not)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class AnalyteSummary:
    """One analyte's summary over the window."""

    key: AnalyteKey
    label: str
    auc_mg_h_per_l: float
    auc_inf_mg_h_per_l: float
    peak_mg_per_l: float
    peak_at_min: float
    time_above_min: tuple[tuple[AppliedThreshold, float], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "auc_mg_h_per_l": self.auc_mg_h_per_l,
            "auc_inf_mg_h_per_l": self.auc_inf_mg_h_per_l,
            "peak_mg_per_l": self.peak_mg_per_l,
            "peak_at_min": self.peak_at_min,
            "time_above": [
                {**t.as_dict(), "minutes": minutes} for t, minutes in self.time_above_min
            ],
        }


@dataclass(frozen=True)
class ExposureSummary:
    """A summary of doses for one patient, with the model that made it."""

    model_id: str
    model_name: str
    analyte: str
    metabolite: str | None
    window_min: float
    total_mg: float
    ketamine: AnalyteSummary
    norketamine: AnalyteSummary | None
    findings: tuple[Finding, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """The summary as stored (JSON): finite numbers only."""
        return {
            "model_id": self.model_id,
            "model_name": self.model_name,
            "analyte": self.analyte,
            "metabolite": self.metabolite,
            "window_min": self.window_min,
            "total_mg": self.total_mg,
            "ketamine": self.ketamine.as_dict(),
            "norketamine": None if self.norketamine is None else self.norketamine.as_dict(),
        }


# -- thresholds on a model ------------------------------------------------------------------
def applied_thresholds(
    model: pk.PkModel, thresholds: ExposureThresholdsFile
) -> tuple[tuple[AppliedThreshold, ...], tuple[AppliedThreshold, ...]]:
    """The thresholds on the model's plasma curve and on its metabolite curve (none without
    one), each converted to the model's analyte where it is the other enantiomer."""
    fraction = _s_fraction(model)
    plasma: list[AppliedThreshold] = []
    metabolite: list[AppliedThreshold] = []
    for entry in thresholds.entries:
        if entry.analyte == "norketamine":
            if model.has_metabolite:
                metabolite.append(_applied(entry, entry.concentration_mg_per_l, ""))
            continue
        if entry.analyte == model.analyte:
            plasma.append(_applied(entry, entry.concentration_mg_per_l, ""))
        elif model.analyte == "S-ketamine":  # a racemic threshold on an S-ketamine curve
            plasma.append(
                _applied(
                    entry,
                    entry.concentration_mg_per_l * fraction,
                    f"racemic {entry.concentration_ng_per_ml:g} ng/mL as S-ketamine "
                    f"{entry.concentration_ng_per_ml * fraction:g} ng/mL (the S-enantiomer "
                    f"taken as {fraction:g} of racemic ketamine)",
                )
            )
        else:  # an S-ketamine threshold on a racemic curve
            plasma.append(
                _applied(
                    entry,
                    entry.concentration_mg_per_l / fraction,
                    f"S-ketamine {entry.concentration_ng_per_ml:g} ng/mL as racemic "
                    f"{entry.concentration_ng_per_ml / fraction:g} ng/mL (the S-enantiomer "
                    f"taken as {fraction:g} of racemic ketamine)",
                )
            )
    return tuple(plasma), tuple(metabolite)


def _applied(entry: ExposureThreshold, mg_per_l: float, converted: str) -> AppliedThreshold:
    return AppliedThreshold(
        id=entry.id,
        name=entry.name,
        analyte=entry.analyte,
        basis=entry.basis,
        concentration_ng_per_ml=entry.concentration_ng_per_ml,
        applied_mg_per_l=mg_per_l,
        converted=converted,
    )


def _s_fraction(model: pk.PkModel) -> float:
    """The share of racemic ketamine taken to be the S-enantiomer (pk_models.yaml)."""
    if model.analgesia is None:
        return 0.5
    return model.analgesia.racemic_to_s_fraction


# -- summaries ------------------------------------------------------------------------------
def summarise_doses(
    patient: pk.Covariates,
    doses: SessionDoses,
    thresholds: ExposureThresholdsFile,
    *,
    model_id: str | None = None,
) -> ExposureSummary:
    """The summary of ``doses`` (minutes from the first dose) for ``patient``, from 0 to 6 h
    after the last dose; the model asked for, else the clinic's rule. ``InvalidInput`` when
    a dose is out of the engine's bounds."""
    return summarise_many([patient], [doses], thresholds, model_ids=[model_id])[0]


def summarise_course(
    patient: pk.Covariates,
    sessions: Sequence[tuple[float, SessionDoses]],
    thresholds: ExposureThresholdsFile,
    *,
    model_id: str | None = None,
) -> ExposureSummary:
    """The summary of a course: each session's doses (minutes from its own first dose) placed
    ``offset`` minutes after the course's first dose, on one time axis."""
    return summarise_doses(patient, course_doses(sessions), thresholds, model_id=model_id)


def course_doses(sessions: Sequence[tuple[float, SessionDoses]]) -> SessionDoses:
    """The doses of several sessions on one axis (``offset`` minutes each; the route is SC if
    any session's is)."""
    infusions: list[InfusionSegment] = []
    boluses: list[BolusDose] = []
    route: Literal["iv", "sc"] = "iv"
    for offset, doses in sessions:
        if not math.isfinite(offset) or offset < 0:
            raise InvalidInput(
                f"sessions: an offset must be a finite number of minutes from 0, not {offset}",
                field="sessions",
            )
        infusions += [
            InfusionSegment(s.start_min + offset, s.end_min + offset, s.rate_mg_per_h)
            for s in doses.infusions
        ]
        boluses += [BolusDose(b.time_min + offset, b.dose_mg) for b in doses.boluses]
        if doses.route == "sc":
            route = "sc"
    return SessionDoses(tuple(infusions), tuple(boluses), route)


def summarise_many(
    patients: Sequence[pk.Covariates],
    doses: Sequence[SessionDoses],
    thresholds: ExposureThresholdsFile,
    *,
    model_ids: Sequence[str | None] | None = None,
) -> list[ExposureSummary]:
    """Summaries of many patients' doses at once: grouped by model, each group in one
    vectorised pass of the engine (``pk.summary``)."""
    if len(patients) != len(doses):
        raise InvalidInput("doses: one dose list per patient", field="doses")
    wanted = list(model_ids) if model_ids is not None else [None] * len(patients)
    chosen = [choose_model(p, m)[0] for p, m in zip(patients, wanted, strict=True)]
    for d in doses:
        d.regimen()  # every dose within the engine's bounds, or InvalidInput naming it
    out: list[ExposureSummary | None] = [None] * len(patients)
    for model_id in sorted(set(chosen)):
        group = [i for i, m in enumerate(chosen) if m == model_id]
        for i, summary in zip(
            group,
            _summarise_group(
                model_id, [patients[i] for i in group], [doses[i] for i in group], thresholds
            ),
            strict=True,
        ):
            out[i] = summary
    return [s for s in out if s is not None]


def _summarise_group(
    model_id: str,
    patients: list[pk.Covariates],
    doses: list[SessionDoses],
    thresholds: ExposureThresholdsFile,
) -> list[ExposureSummary]:
    model = pk.get_model(model_id)
    plasma_t, metabolite_t = applied_thresholds(model, thresholds)
    i_who, i_start, i_end, i_rate, b_who, b_time, b_mg = [], [], [], [], [], [], []
    ends = []
    for who, d in enumerate(doses):
        for s in d.infusions:
            if s.end_min > s.start_min and s.rate_mg_per_h > 0:
                i_who.append(who)
                i_start.append(s.start_min)
                i_end.append(s.end_min)
                i_rate.append(s.rate_mg_per_h)
        for b in d.boluses:
            if b.dose_mg > 0:
                b_who.append(who)
                b_time.append(b.time_min)
                b_mg.append(b.dose_mg)
        ends.append(d.end_min + TAIL_MIN)
    schedule = Schedule.from_events(
        len(doses),
        end_min=ends,
        infusion_patient=i_who,
        infusion_start_min=i_start,
        infusion_end_min=i_end,
        infusion_rate_mg_per_h=i_rate,
        bolus_patient=b_who,
        bolus_time_min=b_time,
        bolus_mg=b_mg,
    )
    result = summarise(
        model,
        model.parameters(patients),
        schedule,
        plasma_thresholds_mg_per_l=[t.applied_mg_per_l for t in plasma_t],
        metabolite_thresholds_mg_per_l=[t.applied_mg_per_l for t in metabolite_t],
    )
    analyte = "S-ketamine" if model.analyte == "S-ketamine" else "ketamine"
    out = []
    for i, (patient, d) in enumerate(zip(patients, doses, strict=True)):
        ketamine = _analyte("ketamine", f"{analyte}, plasma", result.plasma, i, plasma_t)
        norketamine = None
        if result.metabolite is not None:
            norketamine = _analyte(
                "norketamine",
                model.metabolite_name or "norketamine",
                result.metabolite,
                i,
                metabolite_t,
            )
        out.append(
            ExposureSummary(
                model_id=model.id,
                model_name=model.name,
                analyte=model.analyte,
                metabolite=model.metabolite_name,
                window_min=float(result.window_min[i]),
                total_mg=d.total_mg,
                ketamine=ketamine,
                norketamine=norketamine,
                findings=model_findings(model, patient, d.route),
            )
        )
    return out


def _analyte(
    key: AnalyteKey,
    label: str,
    output: OutputSummary,
    i: int,
    thresholds: tuple[AppliedThreshold, ...],
) -> AnalyteSummary:
    numbers = [
        float(output.auc_mg_min_per_l[i]),
        float(output.auc_inf_mg_min_per_l[i]),
        float(output.peak_mg_per_l[i]),
        float(output.peak_at_min[i]),
        *(float(v) for v in output.time_above_min[i]),
    ]
    if not all(math.isfinite(v) for v in numbers):
        raise InvalidInput(
            "doses: the summary is not a finite number for these doses and this patient",
            field="doses",
        )
    return AnalyteSummary(
        key=key,
        label=label,
        # rounding leaves about -1e-18 where the exact answer is 0
        auc_mg_h_per_l=max(numbers[0], 0.0) / MG_MIN_PER_MG_H,
        auc_inf_mg_h_per_l=max(numbers[1], 0.0) / MG_MIN_PER_MG_H,
        peak_mg_per_l=max(numbers[2], 0.0),
        peak_at_min=numbers[3],
        time_above_min=tuple(
            (t, max(float(output.time_above_min[i, k]), 0.0)) for k, t in enumerate(thresholds)
        ),
    )


# -- what a summary depends on --------------------------------------------------------------
@dataclass(frozen=True)
class SummaryInputs:
    """Everything a summary depends on, and its SHA-256 (the inputs digest)."""

    document: dict[str, Any]
    digest: str
    model_id: str
    model_version: int
    thresholds_version: int

    def changed_since(self, stored: dict[str, Any]) -> list[str]:
        """What differs from a stored summary's inputs, in words (for its reason)."""
        words = []
        for part, word in (
            ("doses", "the doses charted"),
            ("covariates", "the patient's weight, age, sex or height"),
            ("model", "the model or its parameters"),
            ("thresholds", "the reference concentrations"),
            ("method", "the method"),
        ):
            if stored.get(part) != self.document.get(part):
                words.append(word)
        return words or ["the inputs"]


def inputs_of(
    patient: pk.Covariates,
    doses: SessionDoses,
    thresholds: ExposureThresholdsFile,
    *,
    model_id: str | None = None,
    extra: dict[str, Any] | None = None,
) -> SummaryInputs:
    """The canonical inputs of the summary of ``doses`` (see the module docstring)."""
    chosen, _ = choose_model(patient, model_id)
    model = pk.get_model(chosen)
    entry = model.entry.model_dump(mode="json")
    if model.analgesia is not None:  # the enantiomer fraction converts thresholds
        entry["racemic_to_s_fraction"] = model.analgesia.racemic_to_s_fraction
    document: dict[str, Any] = {
        "method": {"version": METHOD_VERSION, "tail_min": TAIL_MIN},
        "model": {
            "id": chosen,
            "pk_models_version": pk_models_version(),
            "entry_sha256": _sha256(entry),
        },
        "thresholds": {"version": thresholds.version, "sha256": thresholds.digest()},
        "covariates": {
            "weight_kg": patient.weight_kg,
            "age_years": patient.age_years,
            "sex": patient.sex,
            "height_cm": patient.height_cm,
        },
        "doses": {
            "route": doses.route,
            "infusions": [[s.start_min, s.end_min, s.rate_mg_per_h] for s in doses.infusions],
            "boluses": [[b.time_min, b.dose_mg] for b in doses.boluses],
        },
        **(extra or {}),
    }
    return SummaryInputs(
        document=document,
        digest=_sha256(document),
        model_id=chosen,
        model_version=pk_models_version(),
        thresholds_version=thresholds.version,
    )


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
