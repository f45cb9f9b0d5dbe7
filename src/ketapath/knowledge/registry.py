"""Schema of ``registry_rules.yaml``: how the registry analytics read the clinic's courses.

The file holds the confidence level, which courses enter each analysis (the responder status
at the first follow-up, relief duration among courses in which relief began, in a 6-month
window), the Kaplan-Meier method, the bands of total dose per kg, infusion hours and cumulative
dose, what counts as an adverse event of a course, and the regression of relief duration with
the least number of events per covariate it needs (Peduzzi et al. 1995). The outcome
definitions are outcome_rules.yaml's, used unchanged.

Every number has a source beside it. The file is validated on load: a band whose edges do not
increase, a level outside (0, 1), a covariate the registry does not have or a citation not in
the bibliography is refused with a :class:`~ketapath.knowledge.base.KnowledgeError` naming the
file and the field.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    KnowledgeError,
    Source,
    Strict,
    cites_in,
    data_path,
    format_validation_error,
    read_yaml,
)

FILENAME = "registry_rules.yaml"
KIND = "registry_rules"

Covariate = Literal["dose_mg_per_kg", "infusion_hours"]
COVARIATES: tuple[Covariate, ...] = ("dose_mg_per_kg", "infusion_hours")
MAX_EDGES = 20


class Rule(Strict):
    """A rule in words and its source."""

    rule: str = Field(min_length=10)
    source: Source


class ReliefRules(Rule):
    """The window of relief follow-up (days after the last session)."""

    follow_up_days: int = Field(ge=7, le=3 * 366)


class Bands(Strict):
    """Half-open bands [edge, next edge) with one below the first edge and one from the last."""

    edges: tuple[float, ...] = Field(min_length=1, max_length=MAX_EDGES)
    unit: str = Field(min_length=1, max_length=20)
    source: Source

    @model_validator(mode="after")
    def _increasing(self) -> Bands:
        edges = list(self.edges)
        if any(e <= 0 for e in edges) or edges != sorted(set(edges)):
            raise ValueError("edges must be positive and strictly increasing")
        return self


class BandRules(Strict):
    """The bands of the course's dose per kg, infusion hours, the cumulative dose and the
    predicted ketamine exposure (AUC to infinity of the stored course summary)."""

    dose_mg_per_kg: Bands
    infusion_hours: Bands
    cumulative_dose_mg_per_kg: Bands
    exposure_auc_mg_h_per_l: Bands


class RegressionRules(Rule):
    """The regression of relief duration, its covariates and the events it needs."""

    model: Literal["cox"]
    covariates: tuple[Covariate, ...] = Field(min_length=1, max_length=len(COVARIATES))
    min_events_per_variable: int = Field(ge=1, le=100)

    @model_validator(mode="after")
    def _once(self) -> RegressionRules:
        if len(set(self.covariates)) != len(self.covariates):
            raise ValueError("a covariate is listed twice")
        return self


class RegistryRules(Strict):
    """The whole file."""

    kind: Literal["registry_rules"]
    version: int = Field(ge=1)
    description: str = ""
    confidence_level: float = Field(gt=0.5, lt=1)
    confidence_source: Source
    responder: Rule
    relief: ReliefRules
    kaplan_meier: Rule
    bands: BandRules
    adverse_events: Rule
    regression: RegressionRules


def load_registry_rules(path: Path) -> RegistryRules:
    """A registry rules file, validated: ``KnowledgeError`` naming the file and what is wrong
    (not YAML, a field out of the schema or out of range, a citation not in the bibliography)."""
    from ketapath.knowledge.bibliography import bibliography

    raw = read_yaml(path)
    try:
        rules = RegistryRules.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    bibliography().check(cites_in(rules), path.name)
    return rules


@cache
def registry_rules() -> RegistryRules:
    """The packaged registry rules (``registry_rules.yaml``), loaded and validated once."""
    return load_registry_rules(data_path(FILENAME))
