"""Schemas of the opioid-plan knowledge files (PRODUCT step 6; FPM (ANZCA) 2016, section 6).

- ``opioid_conversion.yaml``: one entry per published oral morphine equivalent (OME/MME) table:
  each factor with the opioid, route and the dose unit it applies to, the table's cautions,
  the opioids it does not convert (with the reason), routes to which conversion is refused, and
  any dose threshold the table's guideline attaches to the total.
- ``opioid_tapering.yaml``: published taper rates a reduction plan is checked against.

The schemas check the data against itself on load (units a factor can use, caveat references,
one factor per opioid and route); :class:`ketapath.knowledge.clinical.Knowledge` checks that
every opioid id exists in ``opioids.yaml``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import Entry, Source, Strict

OpioidRoute = Literal["oral", "transdermal"]
# The units a factor can apply to: a daily oral amount, or a patch's delivery rate.
DoseUnit = Literal["mg/day", "mcg/h"]
TaperBasis = Literal["original", "current"]
TaperSeverity = Literal["soft", "info"]

ROUTE_UNITS: dict[str, str] = {"oral": "mg/day", "transdermal": "mcg/h"}


class Caveat(Strict):
    """A caution printed with the table, in its words."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    text: str = Field(min_length=10)
    source: Source


class ConversionFactor(Strict):
    """Multiply a daily dose (in ``dose_unit``) by ``factor`` to get OME mg/day."""

    opioid: str
    route: OpioidRoute
    dose_unit: DoseUnit
    factor: float = Field(gt=0)
    source: Source
    caveat: str = Field(default="", description="Id of a table caveat that applies.")
    caveat_text: str = Field(default="", description="A caution specific to this factor.")
    convert_to: Literal["allowed", "refused"] = "allowed"
    convert_to_rule: str = ""

    @model_validator(mode="after")
    def _check(self) -> ConversionFactor:
        if self.dose_unit != ROUTE_UNITS[self.route]:
            raise ValueError(
                f"a {self.route} factor applies to {ROUTE_UNITS[self.route]}, not {self.dose_unit}"
            )
        if (self.convert_to == "refused") != bool(self.convert_to_rule):
            raise ValueError("convert_to_rule is given exactly when convert_to is 'refused'")
        return self


class NotConverted(Strict):
    """An opioid the table has no factor for: reported as not converted, never as zero."""

    opioid: str
    reason: str = Field(min_length=10)
    source: Source


class Threshold(Strict):
    """A total daily OME at or above which the guideline asks for something."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    at_least_mg_per_day: float = Field(gt=0)
    message: str = Field(min_length=10)
    source: Source


class ConversionTable(Entry):
    """One published OME conversion table."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str = Field(min_length=5)
    verified: str = Field(min_length=10, description="What was checked, and against what.")
    caveats: tuple[Caveat, ...] = ()
    factors: tuple[ConversionFactor, ...] = Field(min_length=1)
    not_converted: tuple[NotConverted, ...] = ()
    thresholds: tuple[Threshold, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ConversionTable:
        keys = [(f.opioid, f.route) for f in self.factors]
        twice = sorted({f"{o} {r}" for o, r in keys if keys.count((o, r)) > 1})
        if twice:
            raise ValueError(f"more than one factor for: {', '.join(twice)}")
        caveat_ids = {c.id for c in self.caveats}
        unknown = [f.caveat for f in self.factors if f.caveat and f.caveat not in caveat_ids]
        if unknown:
            raise ValueError(f"factors name unknown caveats: {', '.join(unknown)}")
        both = {f.opioid for f in self.factors} & {n.opioid for n in self.not_converted}
        if both:
            raise ValueError(f"opioids both converted and not converted: {', '.join(both)}")
        return self

    def factor_for(self, opioid: str, route: str) -> ConversionFactor | None:
        for f in self.factors:
            if f.opioid == opioid and f.route == route:
                return f
        return None

    def routes_for(self, opioid: str) -> tuple[str, ...]:
        return tuple(f.route for f in self.factors if f.opioid == opioid)

    def not_converted_reason(self, opioid: str) -> NotConverted | None:
        for n in self.not_converted:
            if n.opioid == opioid:
                return n
        return None

    def caveat_by_id(self, caveat_id: str) -> Caveat:
        for c in self.caveats:
            if c.id == caveat_id:
                return c
        raise KeyError(caveat_id)

    @property
    def opioid_ids(self) -> set[str]:
        return {f.opioid for f in self.factors} | {n.opioid for n in self.not_converted}


class TaperRule(Entry):
    """A published taper rate: at most ``max_percent`` of the ``of`` dose per ``per_days``.

    With ``until_percent_of_original``, the rate holds while the dose is above that percent of
    the original dose; below it, ``then_max_percent`` of the ``then_of`` dose per ``per_days``.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    wording: str = Field(min_length=10, description="The source's words.")
    max_percent: float = Field(gt=0, le=100)
    of: TaperBasis
    per_days: float = Field(gt=0)
    until_percent_of_original: float | None = Field(default=None, gt=0, lt=100)
    then_max_percent: float | None = Field(default=None, gt=0, le=100)
    then_of: TaperBasis | None = None
    reading: str = ""
    severity: TaperSeverity

    @model_validator(mode="after")
    def _check(self) -> TaperRule:
        phase_two = (self.until_percent_of_original, self.then_max_percent, self.then_of)
        if any(v is not None for v in phase_two) and any(v is None for v in phase_two):
            raise ValueError("until_percent_of_original, then_max_percent and then_of go together")
        return self
