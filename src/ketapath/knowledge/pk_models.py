"""Schema of ``pk_models.yaml``: published ketamine PK models and the analgesia PD model.

Every model cites its paper in the bibliography (``source``) and carries the population it
was built in, the range of patients it is valid for, and a ``verification`` note saying
exactly which numbers were checked against which stored copy of the source (and which were
not). The engine in ``ketapath.pk`` reads these entries; it holds no clinical numbers of its
own.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import Entry, KnowledgeError, Source, Strict, cites_in, load_entries
from ketapath.knowledge.bibliography import bibliography

PK_MODELS_FILE = "pk_models.yaml"
PK_INPUT_BOUNDS_FILE = "pk_input_bounds.yaml"


class ScaledValue(Strict):
    """A volume or clearance at the reference weight, scaled as (weight / reference) ** exponent.

    Only the central clearance of a model with a hepatic compartment may be 0 (its drug is
    eliminated from the liver compartment instead).
    """

    value: float = Field(ge=0)
    weight_exponent: float = Field(ge=0, le=1.5)


class MicroConstants(Strict):
    """Classic parameterisation: V1 proportional to weight and weight-independent rate constants."""

    v1_l_per_kg: float = Field(gt=0)
    k10_per_min: float = Field(gt=0)
    k12_per_min: float = Field(ge=0)
    k21_per_min: float = Field(ge=0)
    k13_per_min: float = Field(default=0.0, ge=0)
    k31_per_min: float = Field(default=0.0, ge=0)


class Disposition(Strict):
    """Mammillary 1-3 compartment model: volumes (L), clearances (L/h) at a reference weight."""

    reference_weight_kg: float = Field(gt=0)
    volumes_l: list[ScaledValue] = Field(min_length=1, max_length=3)
    clearances_l_per_h: list[ScaledValue] = Field(min_length=1, max_length=3)

    @model_validator(mode="after")
    def _one_clearance_per_volume(self) -> Disposition:
        if len(self.volumes_l) != len(self.clearances_l_per_h):
            raise ValueError(
                "clearances_l_per_h must list CL then one Q per peripheral volume "
                f"({len(self.volumes_l)} volumes, {len(self.clearances_l_per_h)} clearances)"
            )
        return self


class Metabolite(Strict):
    """A metabolite formed from the parent's elimination (fraction ``formation_fraction``)."""

    name: str
    formation_fraction: float = Field(gt=0, le=1)
    disposition: Disposition
    units_note: str

    @model_validator(mode="after")
    def _positive_clearances(self) -> Metabolite:
        if any(c.value <= 0 for c in self.disposition.clearances_l_per_h):
            raise ValueError("metabolite clearances must be above 0")
        return self


class Hepatic(Strict):
    """A hepato-portal compartment exchanging with the central one by hepatic blood flow.

    The parent is eliminated from it (``elimination_per_h``, to other products) and
    metabolised to the metabolite (``metabolism_per_h``).
    """

    volume_l: float = Field(gt=0)
    flow_l_per_h: float = Field(gt=0)
    elimination_per_h: float = Field(ge=0)
    metabolism_per_h: float = Field(ge=0)
    flow_decline_l_per_h_per_year: float = Field(default=0.0, ge=0)
    flow_decline_after_age_years: float = Field(default=0.0, ge=0)


class EffectSite(Strict):
    """Plasma-effect-site equilibration: a given ke0, or one computed from a time to peak."""

    ke0_per_min: float | None = Field(default=None, gt=0)
    time_to_peak_min: float | None = Field(default=None, gt=0)
    published: bool
    note: str

    @model_validator(mode="after")
    def _exactly_one_way(self) -> EffectSite:
        if (self.ke0_per_min is None) == (self.time_to_peak_min is None):
            raise ValueError("give exactly one of ke0_per_min and time_to_peak_min")
        return self


class VariabilityBlock(Strict):
    """Log-normal between-subject variability: covariance of eta for the named parameters."""

    parameters: list[
        Literal[
            "v1",
            "v2",
            "cl",
            "metabolite_v1",
            "metabolite_cl",
            "hepatic_volume",
            "hepatic_flow",
            "hepatic_elimination",
        ]
    ] = Field(min_length=1)
    covariance: list[list[float]]

    @model_validator(mode="after")
    def _square(self) -> VariabilityBlock:
        size = len(self.parameters)
        if len(self.covariance) != size or any(len(row) != size for row in self.covariance):
            raise ValueError(f"covariance must be {size} x {size}")
        return self


class Range(Strict):
    minimum: float | None = None
    maximum: float | None = None


class Validity(Strict):
    age_years: Range = Range()
    weight_kg: Range = Range()
    note: str


class PkModelEntry(Entry):
    """One published pharmacokinetic model."""

    type: Literal["pk_model"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    analyte: Literal["racemic ketamine", "S-ketamine"]
    dose_fraction: float = Field(
        gt=0,
        le=1,
        description="Share of an administered racemic ketamine dose that the model sees.",
    )
    dose_fraction_note: str = ""
    population: str
    sampling: Literal["arterial", "venous", "not stated"]
    micro: MicroConstants | None = None
    disposition: Disposition | None = None
    metabolite: Metabolite | None = None
    hepatic: Hepatic | None = None
    effect_site: EffectSite
    variability: list[VariabilityBlock] = Field(default_factory=list)
    variability_note: str = ""
    validity: Validity
    routes: list[Literal["iv"]]
    route_note: str
    verification: str = Field(min_length=10)
    opentiva_class: str | None = None

    @model_validator(mode="after")
    def _one_parameterisation(self) -> PkModelEntry:
        if (self.micro is None) == (self.disposition is None):
            raise ValueError("give exactly one of micro and disposition")
        if self.variability and self.disposition is None:
            raise ValueError("variability is only supported with the disposition parameterisation")
        if self.hepatic is not None and self.disposition is None:
            raise ValueError("a hepatic compartment needs the disposition parameterisation")
        central = self.disposition.clearances_l_per_h[0].value if self.disposition else 1.0
        if (central == 0) != (self.hepatic is not None):
            raise ValueError(
                "the central clearance is 0 exactly when a hepatic compartment eliminates the drug"
            )
        if self.disposition is not None and any(
            c.value <= 0 for c in self.disposition.clearances_l_per_h[1:]
        ):
            raise ValueError("intercompartmental clearances must be above 0")
        return self


class AnalgesiaEntry(Entry):
    """A slow effect compartment for chronic pain relief (Dahan 2011)."""

    type: Literal["analgesia_model"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    population: str
    driver: str
    c50_ng_per_ml: float = Field(gt=0)
    half_life_days: float = Field(gt=0)
    hill: float = Field(gt=0)
    hill_note: str
    responder_probability: float = Field(ge=0, le=1)
    placebo_responder_probability: float = Field(ge=0, le=1)
    racemic_to_s_fraction: float = Field(gt=0, le=1)
    racemic_note: str
    verification: str = Field(min_length=10)


class ModelChoiceEntry(Entry):
    """Which model predicts exposure in the clinic when nobody names one.

    The first model of ``preference`` whose validity range (age, weight) contains the patient
    is used; when none does, the first one, with its out-of-range warning. ``rule`` says this,
    with the reason for the order, in words shown beside the prediction.
    """

    type: Literal["model_choice"]
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    preference: list[str] = Field(min_length=1)
    rule: str = Field(min_length=10)


PkKnowledgeEntry = Annotated[
    PkModelEntry | AnalgesiaEntry | ModelChoiceEntry, Field(discriminator="type")
]


@lru_cache(maxsize=1)
def _pk_entries() -> tuple[PkModelEntry | AnalgesiaEntry | ModelChoiceEntry, ...]:
    parsed: Any = load_entries(
        PK_MODELS_FILE,
        PkKnowledgeEntry,  # type: ignore[arg-type]
        kind="pk_models",
    )
    bibliography().check(cites_in(parsed), PK_MODELS_FILE)
    entries = tuple(parsed.entries)
    model_ids = {e.id for e in entries if isinstance(e, PkModelEntry)}
    choices = [e for e in entries if isinstance(e, ModelChoiceEntry)]
    if len(choices) != 1:
        raise KnowledgeError(f"{PK_MODELS_FILE}: expected one model_choice entry")
    unknown = [m for m in choices[0].preference if m not in model_ids]
    if unknown:
        raise KnowledgeError(
            f"{PK_MODELS_FILE}: model_choice names unknown models: {', '.join(unknown)}"
        )
    return entries


@lru_cache(maxsize=1)
def load_pk_knowledge() -> tuple[tuple[PkModelEntry, ...], tuple[AnalgesiaEntry, ...]]:
    """All PK models and analgesia models in the knowledge base (validated, cached)."""
    entries = _pk_entries()
    models = tuple(e for e in entries if isinstance(e, PkModelEntry))
    analgesia = tuple(e for e in entries if isinstance(e, AnalgesiaEntry))
    return models, analgesia


@lru_cache(maxsize=1)
def pk_models_version() -> int:
    """The version of ``pk_models.yaml`` (bumped on every change of a model): stored exposure
    summaries record it."""
    parsed: Any = load_entries(
        PK_MODELS_FILE,
        PkKnowledgeEntry,  # type: ignore[arg-type]
        kind="pk_models",
    )
    version: int = parsed.version
    return version


def load_model_choice() -> ModelChoiceEntry:
    """The rule choosing the model of a prediction shown in the clinic (one entry)."""
    return next(e for e in _pk_entries() if isinstance(e, ModelChoiceEntry))


class Bounds(Strict):
    """An inclusive range."""

    minimum: float = Field(ge=0)
    maximum: float = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Bounds:
        if self.minimum >= self.maximum:
            raise ValueError(f"minimum {self.minimum:g} must be below maximum {self.maximum:g}")
        return self


class PkInputBounds(Entry):
    """What the PK engine accepts: a human body and an infusion device, not clinical limits."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    weight_kg: Bounds
    weight_source: Source
    age_years: Bounds
    age_source: Source
    height_cm: Bounds
    height_source: Source
    max_rate_mg_per_h: float = Field(gt=0)
    rate_source: Source
    max_bolus_mg: float = Field(gt=0)
    bolus_source: Source
    max_time_min: float = Field(gt=0)
    time_source: Source


@lru_cache(maxsize=1)
def load_pk_input_bounds() -> PkInputBounds:
    """The PK engine's input bounds (``pk_input_bounds.yaml``; one entry)."""
    parsed: Any = load_entries(PK_INPUT_BOUNDS_FILE, PkInputBounds, kind="pk_input_bounds")
    if len(parsed.entries) != 1:
        raise KnowledgeError(f"{PK_INPUT_BOUNDS_FILE}: expected one entry")
    bibliography().check(cites_in(parsed), PK_INPUT_BOUNDS_FILE)
    bounds: PkInputBounds = parsed.entries[0]
    return bounds
