"""The patient file: what screening and dosing need to know about one patient.

A patient file is JSON or YAML (see docs/patient-file.md). Validation errors name the field
and the problem; unknown top-level fields are reported as warnings, never silently dropped.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ketapath.domain.errors import InvalidInput
from ketapath.domain.units import check_unit
from ketapath.knowledge.base import safe_load

Sex = Literal["male", "female"]
Pregnancy = Literal["pregnant", "not_pregnant", "unknown", "not_applicable"]
Consent = Literal["given", "pending", "refused", "unable"]
Purpose = Literal["pain_relief", "opioid_reduction", "multidisciplinary_plan", "quality_of_life"]

_SEX_ALIASES = {"m": "male", "f": "female", "man": "male", "woman": "female"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CodedItem(_Strict):
    """A diagnosis or comorbidity: a vocabulary id or an ICD-10-CM code, with optional text."""

    code: str = Field(min_length=1)
    name: str = ""
    note: str = ""


class Medication(_Strict):
    """A current medicine. `unit` is parsed with the units library (mg, mcg, mcg/h, mL ...).

    ``daily_dose`` is the amount actually taken in a day, in ``unit`` per day; when given it
    is used instead of ``dose`` x ``frequency`` (for example for an as-needed medicine).
    """

    name: str = Field(min_length=1)
    dose: float | None = Field(default=None, ge=0)
    unit: str | None = None
    daily_dose: float | None = Field(default=None, ge=0)
    frequency: str = ""
    route: str = ""
    indication: str = ""

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            check_unit(value)
        except InvalidInput as exc:
            raise ValueError(exc.message) from exc
        return value

    @model_validator(mode="after")
    def _dose_has_unit(self) -> Medication:
        if self.dose is not None and self.unit is None:
            raise ValueError("a dose needs its unit (for example 'mg' or 'mcg/h')")
        if self.daily_dose is not None and self.unit is None:
            raise ValueError("a daily_dose needs its unit (for example 'mg')")
        return self


class Allergy(_Strict):
    substance: str = Field(min_length=1)
    reaction: str = ""


class OpioidContext(_Strict):
    """Seed 004 section 2: the opioid context that may justify a ketamine infusion."""

    poor_opioid_response: bool | None = None
    opioid_side_effects: bool | None = None
    drug_seeking_behaviour: bool | None = None


class Assessment(_Strict):
    """Assessment facts used by the selection criteria (seed 004 sections 2-3)."""

    central_sensitisation: bool | None = None
    central_sensitisation_evidence: str = ""
    opioid_context: OpioidContext = OpioidContext()
    multidisciplinary_care: bool | None = None
    expectancy: str = ""
    goals: str = ""
    intoxicated_today: bool | None = None
    fasted: bool | None = None


class Patient(_Strict):
    """One patient, as the clinical logic sees them. Weights in kg, heights in cm."""

    id: str = ""
    name: str = ""
    birth_date: date | None = None
    age_years: float | None = Field(default=None, ge=0, le=130)
    sex: Sex
    weight_kg: float = Field(gt=0, le=400)
    height_cm: float | None = Field(default=None, gt=30, le=260)
    pregnancy: Pregnancy = "unknown"
    diagnoses: list[CodedItem] = []
    comorbidities: list[CodedItem] = []
    medications: list[Medication] = []
    allergies: list[Allergy] = []
    consent: Consent = "pending"
    assessment: Assessment = Assessment()
    purpose: list[Purpose] = []
    gp: str = ""
    referrer: str = ""

    @field_validator("sex", mode="before")
    @classmethod
    def _sex_alias(cls, value: Any) -> Any:
        if isinstance(value, str):
            low = value.strip().lower()
            return _SEX_ALIASES.get(low, low)
        return value

    @field_validator("diagnoses", "comorbidities", mode="before")
    @classmethod
    def _codes_as_items(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"code": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("allergies", mode="before")
    @classmethod
    def _allergies_as_items(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"substance": v} if isinstance(v, str) else v for v in value]
        return value

    @field_validator("purpose", mode="before")
    @classmethod
    def _purpose_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _age_known(self) -> Patient:
        if self.age_years is None and self.birth_date is None:
            raise ValueError("give age_years or birth_date")
        if self.birth_date is not None and self.birth_date > date.today():
            raise ValueError("birth_date is in the future")
        if self.sex == "male" and self.pregnancy == "pregnant":
            raise ValueError("pregnancy 'pregnant' conflicts with sex 'male'")
        return self

    def age_on(self, day: date | None = None) -> float:
        """Age in whole years on ``day`` (today by default)."""
        if self.birth_date is None:
            assert self.age_years is not None
            return self.age_years
        day = day or date.today()
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return float(day.year - self.birth_date.year - int(before_birthday))


KNOWN_FIELDS = frozenset(Patient.model_fields)
# Accepted spellings of top-level fields, mapped to the documented name.
FIELD_ALIASES = {
    "age": "age_years",
    "weight": "weight_kg",
    "height": "height_cm",
    "dob": "birth_date",
}


def patient_from_dict(raw: Any, *, origin: str = "patient") -> tuple[Patient, list[str]]:
    """Validate a patient document. Returns the patient and warnings for ignored fields.

    Raises ``InvalidInput`` naming every field at fault.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(f"{origin}: a patient file must be an object of fields", field="(file)")
    data: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        name = FIELD_ALIASES.get(str(key), str(key))
        if name in KNOWN_FIELDS:
            data[name] = value
        else:
            warnings.append(f"{origin}: field {key!r} is not part of the patient format; ignored")
    try:
        return Patient.model_validate(data), warnings
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, origin), field=_first_field(exc)) from exc


def load_patient(path: str | Path) -> tuple[Patient, list[str]]:
    """Read a patient file (.json, .yaml or .yml)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read patient file {path}: {exc.strerror}", field="(file)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not a text file (not UTF-8)", field="(file)") from exc
    return patient_from_text(text, origin=str(path), suffix=path.suffix)


def patient_from_text(
    text: str, *, origin: str, suffix: str = ".yaml"
) -> tuple[Patient, list[str]]:
    """A patient document given as JSON (``suffix`` .json) or YAML text."""
    try:
        raw = json.loads(text) if suffix.lower() == ".json" else safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{origin}: not valid JSON/YAML: {exc}", field="(file)") from exc
    except (ValueError, RecursionError) as exc:
        # e.g. an integer of thousands of digits, or nesting deeper than Python's stack
        raise InvalidInput(f"{origin}: not usable JSON/YAML ({exc})", field="(file)") from exc
    return patient_from_dict(raw, origin=origin)


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(file)"


def _first_field(exc: ValidationError) -> str:
    errors = exc.errors()
    return _field_path(tuple(errors[0]["loc"])) if errors else "(file)"


def _describe(exc: ValidationError, origin: str) -> str:
    problems = []
    for err in exc.errors():
        where = _field_path(tuple(err["loc"]))
        msg = str(err["msg"]).removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
        problems.append(f"field '{where}': {msg}{shown}")
    return f"{origin}: " + "; ".join(problems)
