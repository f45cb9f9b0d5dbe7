"""The covariates a PK model needs from a patient."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from ketapath.knowledge.pk_models import Bounds, load_pk_input_bounds
from ketapath.pk.errors import PkInputError

Sex = Literal["male", "female"]


@dataclass(frozen=True)
class Covariates:
    """Weight (required), age, sex and height of one patient.

    Each must be a number a human body can have (``pk_input_bounds.yaml``): outside that, no
    model gives a meaningful prediction (a weight of 5e-324 kg gives NaN).
    """

    weight_kg: float
    age_years: float | None = None
    sex: Sex | None = None
    height_cm: float | None = None

    def __post_init__(self) -> None:
        bounds = load_pk_input_bounds()
        _positive("weight_kg", self.weight_kg)
        _human("weight_kg", self.weight_kg, bounds.weight_kg, "kg", "what a human weighs")
        if self.age_years is not None:
            _positive("age_years", self.age_years, allow_zero=True)
            _human("age_years", self.age_years, bounds.age_years, "years", "a human age")
        if self.height_cm is not None:
            _positive("height_cm", self.height_cm)
            _human("height_cm", self.height_cm, bounds.height_cm, "cm", "a human height")
        if self.sex is not None and self.sex not in ("male", "female"):
            raise PkInputError("sex", f"must be 'male' or 'female', not {self.sex!r}")

    @classmethod
    def from_patient(cls, patient: Any) -> Covariates:
        """Covariates from any object with ``weight_kg`` (and optionally age, sex, height)."""
        try:
            weight = patient.weight_kg
        except AttributeError as exc:
            raise PkInputError("weight_kg", "the patient record has no weight") from exc
        age = getattr(patient, "age_years", None)
        if age is None and callable(getattr(patient, "age_on", None)):
            age = patient.age_on()  # a patient file may give a birth date instead of an age
        return cls(
            weight_kg=float(weight),
            age_years=_optional_float(age),
            sex=getattr(patient, "sex", None),
            height_cm=_optional_float(getattr(patient, "height_cm", None)),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise PkInputError(field, f"must be a finite number, not {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise PkInputError(field, f"must be greater than zero, not {value}")


def _human(field: str, value: float, bounds: Bounds, unit: str, what: str) -> None:
    if not bounds.minimum <= value <= bounds.maximum:
        raise PkInputError(
            field,
            f"{value:g} {unit} is outside {what} ({bounds.minimum:g}-{bounds.maximum:g} {unit})",
        )
