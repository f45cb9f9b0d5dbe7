"""The drug library: what an infusion pump's drug library holds, for ketamine.

- **Pump types** (``pump.yaml``): the routes and care settings each serves, its rate range
  (minimum and maximum mL/h), its rate and bolus resolution, and the ketamine strengths the
  pharmacy stocks for it (mg/mL), one of them the default.
- **Limits per care setting** (``drug_library.yaml``): the soft and hard limits of the bolus,
  the rate (mg/kg/h and mg/h), the session and course totals, and of each adjunct medicine
  per dose and per session. Where published figures disagree a limit lists them
  (``published``) and says which it follows (``follows``).

The packaged default library is assembled from those two files (:func:`default_library`). A
clinic may load its own: one document (YAML or JSON) with a version, a name, ``pumps`` (the
entries of ``pump.yaml``) and ``settings`` (the entries of ``drug_library.yaml``), validated
by the same models (:func:`parse_library`); ``ketapath library export`` writes the active
library in that form. A library is identified by its version and by the SHA-256 digest of its
content (:meth:`DrugLibrary.digest`), which every signed order records.
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    Source,
    Strict,
    cites_in,
    format_validation_error,
)
from ketapath.knowledge.bibliography import bibliography

if TYPE_CHECKING:
    from ketapath.knowledge.clinical import Knowledge

SettingId = Literal["clinic", "ward", "icu"]
RouteId = Literal["iv", "sc"]
SETTING_IDS: tuple[SettingId, ...] = ("clinic", "ward", "icu")
LIBRARY_KIND: Literal["clinic_drug_library"] = "clinic_drug_library"
DEFAULT_LIBRARY_NAME = "ketapath default drug library"
ID_PATTERN = r"^[a-z][a-z0-9-]*$"
# A library is also a document clinics upload: no infinite or not-a-number value is a limit.
FINITE = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class PublishedRange(Strict):
    """A range a source publishes for the quantity a limit bounds, and where it applies."""

    model_config = FINITE

    low: float | None = Field(default=None, ge=0)
    high: float = Field(gt=0)
    unit: str = Field(min_length=1, max_length=20)
    applies_to: str = Field(min_length=3, max_length=200)
    source: Source

    @model_validator(mode="after")
    def _ordered(self) -> PublishedRange:
        if self.low is not None and self.low > self.high:
            raise ValueError("low is above high")
        return self

    @property
    def text(self) -> str:
        """'0.5-2 mg/kg/h' or 'up to 0.35 mg/kg'."""
        if self.low is None:
            return f"up to {self.high:g} {self.unit}"
        return f"{self.low:g}-{self.high:g} {self.unit}"


class Limit(Entry):
    """A soft and a hard limit for one quantity in one care setting."""

    model_config = FINITE

    soft: float | None = Field(default=None, gt=0)
    hard: float = Field(gt=0)
    soft_source: Source | None = Field(
        default=None, description="Source of the soft limit, if not `source`."
    )
    published: tuple[PublishedRange, ...] = Field(
        default=(), description="Published ranges for this quantity, where sources differ."
    )
    follows: str = Field(
        default="", description="Which published range the limits follow, and why."
    )

    def source_of(self, severity: str) -> Source:
        """The source of the hard limit (`source`) or of the soft one."""
        return self.soft_source if severity == "soft" and self.soft_source else self.source

    @model_validator(mode="after")
    def _consistent(self) -> Limit:
        if not all(math.isfinite(v) for v in (self.hard, self.soft or 0.0)):
            raise ValueError("limits must be finite numbers")
        if self.soft is not None and self.soft > self.hard:
            raise ValueError("the soft limit cannot be above the hard limit")
        if len(self.published) > 1 and not self.follows.strip():
            raise ValueError("published ranges that differ need `follows`: which one, and why")
        return self


class AdjunctLimit(Strict):
    """Limits of one adjunct medicine (by generic name and route) in one care setting."""

    model_config = FINITE

    drug: str = Field(pattern=ID_PATTERN, max_length=60)
    route: str = Field(pattern=ID_PATTERN, max_length=20)
    dose_unit: Literal["mg", "mg/day"] = "mg"
    dose: Limit = Field(description="One dose (mg), or the daily dose of a patch (mg/day).")
    session: Limit = Field(description="All doses of one session together (mg).")


class SettingLimits(Strict):
    """The drug-library entry for ketamine in one care setting, like an infusion pump's.

    Each limit carries its own source.
    """

    model_config = FINITE

    id: SettingId
    bolus_mg_per_kg: Limit
    rate_mg_per_kg_per_h: Limit
    rate_mg_per_h: Limit
    session_total_mg_per_kg: Limit
    course_total_mg_per_kg: Limit
    adjuncts: tuple[AdjunctLimit, ...] = ()

    @model_validator(mode="after")
    def _one_entry_per_adjunct(self) -> SettingLimits:
        keys = [(a.drug, a.route) for a in self.adjuncts]
        twice = sorted({f"{d} ({r})" for d, r in keys if keys.count((d, r)) > 1})
        if twice:
            raise ValueError(f"adjuncts listed twice: {', '.join(twice)}")
        return self

    def adjunct(self, drug: str, route: str) -> AdjunctLimit | None:
        """The limits of an adjunct (by generic name and route), or None if the library has none."""
        for a in self.adjuncts:
            if a.drug == drug.strip().lower() and a.route == route.strip().lower():
                return a
        return None


class PumpType(Entry):
    """A pump the clinic programmes, and the ketamine strengths stocked for it."""

    model_config = FINITE

    id: str = Field(pattern=ID_PATTERN, max_length=60)
    name: str = Field(min_length=3, max_length=120)
    kind: Literal["volumetric", "syringe"]
    routes: tuple[RouteId, ...] = Field(min_length=1)
    settings: tuple[SettingId, ...] = Field(min_length=1)
    min_rate_ml_per_h: float = Field(gt=0)
    max_rate_ml_per_h: float = Field(gt=0)
    rate_resolution_ml_per_h: float = Field(gt=0)
    bolus_resolution_mg: float = Field(gt=0)
    concentrations_mg_per_ml: tuple[float, ...] = Field(
        min_length=1, description="The ketamine strengths stocked for this pump (mg/mL)."
    )
    default_concentration_mg_per_ml: float = Field(gt=0)

    @field_validator("concentrations_mg_per_ml")
    @classmethod
    def _strengths(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if any(not (math.isfinite(c) and c > 0) for c in value):
            raise ValueError("every stocked strength must be a number above 0 mg/mL")
        if list(value) != sorted(set(value)):
            raise ValueError("stocked strengths must be listed once each, weakest first")
        return value

    @model_validator(mode="after")
    def _range(self) -> PumpType:
        numbers = (self.min_rate_ml_per_h, self.max_rate_ml_per_h, self.rate_resolution_ml_per_h)
        if not all(math.isfinite(v) for v in numbers):
            raise ValueError("rates must be finite numbers")
        if self.min_rate_ml_per_h >= self.max_rate_ml_per_h:
            raise ValueError("the minimum rate must be below the maximum rate")
        if self.min_rate_ml_per_h < self.rate_resolution_ml_per_h:
            raise ValueError("the minimum rate cannot be finer than the rate resolution")
        if not self.stocks(self.default_concentration_mg_per_ml):
            raise ValueError("the default strength must be one of the stocked strengths")
        return self

    def stocks(self, concentration_mg_per_ml: float) -> bool:
        """Whether this strength is stocked for the pump (to a millionth of a mg/mL)."""
        return any(
            math.isclose(concentration_mg_per_ml, c, rel_tol=1e-9, abs_tol=1e-9)
            for c in self.concentrations_mg_per_ml
        )

    def serves(self, route: str, setting: str) -> bool:
        return route in self.routes and setting in self.settings


class DrugLibrary(Strict):
    """A whole drug library: pump types with their stocked strengths, and limits per setting.

    ``version`` 0 is the default packaged with ketapath; a clinic's libraries are numbered
    from 1, each load higher than the last.
    """

    model_config = FINITE

    kind: Literal["clinic_drug_library"] = LIBRARY_KIND
    version: int = Field(ge=0, le=2**31 - 1)
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=4000)
    pumps: tuple[PumpType, ...] = Field(min_length=1)
    settings: tuple[SettingLimits, ...]

    @model_validator(mode="after")
    def _complete(self) -> DrugLibrary:
        ids = [s.id for s in self.settings]
        if sorted(ids) != sorted(SETTING_IDS):
            raise ValueError(
                "settings must be exactly clinic, ward and icu, once each (got "
                f"{', '.join(ids) or 'none'})"
            )
        pump_ids = [p.id for p in self.pumps]
        if len(pump_ids) != len(set(pump_ids)):
            raise ValueError("pump ids must be unique")
        return self

    def setting(self, setting_id: str) -> SettingLimits:
        for s in self.settings:
            if s.id == setting_id:
                return s
        raise KeyError(setting_id)

    def pump_for(self, route: str, setting: str) -> PumpType | None:
        """The first pump (in the library's order) that serves this route in this setting."""
        return next((p for p in self.pumps if p.serves(route, setting)), None)

    def stocked_strengths(self, route: str | None = None) -> tuple[float, ...]:
        """Every stocked strength (of the pumps serving ``route``, or of all), weakest first."""
        chosen = [p for p in self.pumps if route is None or route in p.routes]
        return tuple(sorted({c for p in chosen for c in p.concentrations_mg_per_ml}))

    def document(self) -> dict[str, Any]:
        """The library as plain data (sources' internal provenance left out)."""
        data: dict[str, Any] = self.model_dump(mode="json")
        return data

    def digest(self) -> str:
        """SHA-256 of the library's content, canonical JSON (what an order is checked against)."""
        return self.content_digest

    @cached_property
    def content_digest(self) -> str:
        """The digest, computed once per library (it is immutable)."""
        canonical = json.dumps(self.document(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def default_library() -> DrugLibrary:
    """The drug library packaged with ketapath (``pump.yaml`` and ``drug_library.yaml``)."""
    from ketapath.knowledge.clinical import knowledge

    return _default_library(knowledge())


@cache
def _default_library(kb: Knowledge) -> DrugLibrary:
    return DrugLibrary(
        version=0,
        name=DEFAULT_LIBRARY_NAME,
        description=(
            f"The default packaged with ketapath (drug_library.yaml version "
            f"{kb.drug_library.version}, pump.yaml version {kb.pump.version}). "
            + kb.drug_library.description.strip()
        ),
        pumps=tuple(kb.pump.entries),
        settings=tuple(kb.drug_library.entries),
    )


def parse_library(raw: Any, *, origin: str = "library", kb: Knowledge | None = None) -> DrugLibrary:
    """Validate a library document (already parsed from YAML or JSON).

    Raises :class:`KnowledgeError` naming the field at fault: the schema, every citation
    resolving to the bibliography, and a pump for the route of every protocol in each of the
    protocol's settings.
    """
    from ketapath.knowledge.clinical import knowledge

    if not isinstance(raw, dict):
        raise KnowledgeError(f"{origin}: a drug library is a mapping (kind, version, name, ...)")
    try:
        library = DrugLibrary.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{origin}: {format_validation_error(exc, raw)}") from exc
    bibliography().check(cites_in(library), origin)
    problems = coverage_problems(library, kb or knowledge())
    if problems:
        raise KnowledgeError(f"{origin}: " + "; ".join(problems))
    return library


def coverage_problems(library: DrugLibrary, kb: Knowledge) -> list[str]:
    """What the protocols need that the library lacks: a pump for each route and setting."""
    out = []
    for protocol in kb.protocols.entries:
        for setting in protocol.settings:
            if library.pump_for(protocol.route, setting) is None:
                out.append(
                    f"no pump serves {protocol.route.upper()} in the {setting} setting "
                    f"(protocol {protocol.id})"
                )
    return sorted(set(out))


def read_library(path: Path, *, kb: Knowledge | None = None) -> DrugLibrary:
    """Read and validate a library file (.yaml, .yml or .json)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise KnowledgeError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise KnowledgeError(f"{path}: not a text file (not UTF-8)") from exc
    return library_from_text(text, origin=str(path), suffix=path.suffix, kb=kb)


def library_from_text(
    text: str, *, origin: str, suffix: str = ".yaml", kb: Knowledge | None = None
) -> DrugLibrary:
    """A library document given as JSON (``suffix`` .json) or YAML text."""
    try:
        raw = json.loads(text) if suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{origin}: not valid JSON/YAML: {exc}") from exc
    except (ValueError, RecursionError) as exc:
        raise KnowledgeError(f"{origin}: not usable JSON/YAML ({exc})") from exc
    return parse_library(raw, origin=origin, kb=kb)


def library_yaml(library: DrugLibrary) -> str:
    """The library as a YAML document that :func:`parse_library` reads back unchanged."""
    return yaml.safe_dump(library.document(), sort_keys=False, allow_unicode=True, width=96)
