"""Physiological bounds on the clinical numbers a record accepts (``input_bounds.yaml``).

The domain refuses a number outside them at the edge, naming the field, so that an impossible
value (5e-324 kg, a dose of 1e300 mg) is never stored and never reaches the arithmetic.
"""

from __future__ import annotations

from functools import cache

from pydantic import Field, model_validator

from ketapath.knowledge.base import Entry, KnowledgeError, cites_in, load_entries
from ketapath.knowledge.bibliography import bibliography

REQUIRED = (
    "weight_kg",
    "height_cm",
    "age_years",
    "medicine_mass_g",
    "medicine_volume_l",
    "medicine_units",
)


class Bound(Entry):
    """The lowest and highest value a clinical number can really have, in ``unit``."""

    id: str
    unit: str
    minimum: float = Field(ge=0, allow_inf_nan=False)
    maximum: float = Field(gt=0, allow_inf_nan=False)
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Bound:
        if self.minimum >= self.maximum:
            raise ValueError("minimum must be below maximum")
        return self

    def contains(self, value: float) -> bool:
        return self.minimum <= value <= self.maximum


class InputBounds:
    """The bounds by id (``bounds.weight_kg.maximum``)."""

    def __init__(self) -> None:
        loaded = load_entries("input_bounds.yaml", Bound, kind="input_bounds")
        bibliography().check(cites_in(loaded), "input_bounds.yaml")
        self.by_id = {entry.id: entry for entry in loaded.entries}
        missing = [name for name in REQUIRED if name not in self.by_id]
        if missing:
            raise KnowledgeError(f"input_bounds.yaml: missing {', '.join(missing)}")
        self.version = loaded.version

    def __getitem__(self, bound_id: str) -> Bound:
        return self.by_id[bound_id]

    @property
    def weight_kg(self) -> Bound:
        return self.by_id["weight_kg"]

    @property
    def height_cm(self) -> Bound:
        return self.by_id["height_cm"]

    @property
    def age_years(self) -> Bound:
        return self.by_id["age_years"]


@cache
def input_bounds() -> InputBounds:
    """The bounds, loaded and validated once per process."""
    return InputBounds()
