"""The patient file: what screening and dosing need to know about one patient.

A patient file is JSON or YAML (see docs/patient-file.md). Validation errors name the field
and the problem; unknown top-level fields are reported as warnings, never silently dropped.

Every number is bounded: weight, height, age and medicine amounts by the physiological bounds
of ``knowledge/data/input_bounds.yaml`` (with their sources), dates by ``EARLIEST_DATE`` and
by the clinic's today, text by the columns that store it. Only finite numbers are accepted.

"Today" comes from the caller, never from the computer the code runs on: validate with
``patient_from_dict(raw, today=...)`` or ``Patient.model_validate(data, context={"today":
day})``. Without a today (``Patient.model_validate(data)``, e.g. an API body before the
service sees it) the checks against today are left to whoever validates with one.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ketapath.domain.errors import InvalidInput, OutOfBounds
from ketapath.domain.findings import citation_text
from ketapath.domain.medicines import is_count_unit
from ketapath.domain.units import check_unit, parse_unit
from ketapath.knowledge.base import safe_load
from ketapath.knowledge.bounds import input_bounds

Sex = Literal["male", "female"]
Pregnancy = Literal["pregnant", "not_pregnant", "unknown", "not_applicable"]
Consent = Literal["given", "pending", "refused", "unable"]
Purpose = Literal["pain_relief", "opioid_reduction", "multidisciplinary_plan", "quality_of_life"]
# Side of the painful site or limb: an infusion cannula goes in another limb where it can (a
# CRPS limb is not cannulated), so the nurse and the signing physician need it on the order.
Laterality = Literal["left", "right", "bilateral", "midline", "widespread", "unknown"]

_SEX_ALIASES = {"m": "male", "f": "female", "man": "male", "woman": "female"}

# The earliest date a record accepts (birth dates, assessments, doses): no patient alive was
# born before it, and a date before it is a typing error. A bound of the record, not clinical.
EARLIEST_DATE = date(1900, 1, 1)
# Text lengths. Where a value is also stored in a column, the column's length (store/models.py:
# patient_versions.full_name 200, diagnoses.code 200, medications.name 120, .unit 20,
# .frequency 40, .route 20) is the limit, so that a longer value is refused naming the field
# instead of failing in the database; other free text is limited to what a form can usefully
# hold. Lists are limited so that one request cannot carry an unbounded record.
NAME_LENGTH = 200
CODE_LENGTH = 200  # a diagnosis as the consensus tables word it (docs/patient-file.md)
MEDICINE_NAME_LENGTH = 120
UNIT_LENGTH = 20
FREQUENCY_LENGTH = 40
ROUTE_LENGTH = 20
NOTE_LENGTH = 2000
ZIP_CODE_LENGTH = 10
ZIP_CODE = re.compile(r"[0-9]{5}(-[0-9]{4})?")
MAX_ITEMS = 100
# No medicine amount in any unit reaches a billion; a unit that is neither a mass, a volume nor
# a count (and so has no physiological bound of its own) is held to this.
MAX_ANY_AMOUNT = 1e9

BOUNDS = input_bounds()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


def given_today(info: ValidationInfo) -> date | None:
    """The caller's today from the validation context (``{"today": date}``), if given."""
    context = info.context if isinstance(info.context, dict) else {}
    today = context.get("today")
    return today if isinstance(today, date) else None


def check_day(day: date, today: date | None, what: str, *, birth: date | None = None) -> None:
    """A recorded day (birth, assessment, dose) is not before 1900, nor before the birth date,
    nor after today. Raises ValueError naming the problem."""
    if day < EARLIEST_DATE:
        raise OutOfBounds(
            f"{what} {day.isoformat()} is before {EARLIEST_DATE.isoformat()}",
            kind="before_earliest",
            day=day,
            earliest=EARLIEST_DATE,
        )
    if birth is not None and day < birth:
        raise OutOfBounds(
            f"{what} {day.isoformat()} is before the birth date {birth.isoformat()}",
            kind="before_birth",
            day=day,
            birth=birth,
        )
    if today is not None and day > today:
        raise OutOfBounds(
            f"{what} {day.isoformat()} is in the future (today is {today})",
            kind="in_future",
            day=day,
            today=today,
        )


class CodedItem(_Strict):
    """A diagnosis or comorbidity: a vocabulary id or an ICD-10-CM code, with optional text."""

    code: str = Field(min_length=1, max_length=CODE_LENGTH)
    name: str = Field(default="", max_length=NAME_LENGTH)
    note: str = Field(default="", max_length=NOTE_LENGTH)


class Medication(_Strict):
    """A current medicine. `unit` is parsed with the units library (mg, mcg, mcg/h, mL ...),
    or counts units of a dose form ("tablets", "caps", "patch": docs/patient-file.md); what
    a count means is read from the product's strength by the medicine vocabulary.

    ``daily_dose`` is the amount actually taken in a day, in ``unit`` per day; when given it
    is used instead of ``dose`` x ``frequency`` (for example for an as-needed medicine).
    """

    name: str = Field(min_length=1, max_length=MEDICINE_NAME_LENGTH)
    dose: float | None = Field(default=None, ge=0)
    unit: str | None = Field(default=None, max_length=UNIT_LENGTH)
    daily_dose: float | None = Field(default=None, ge=0)
    frequency: str = Field(default="", max_length=FREQUENCY_LENGTH)
    route: str = Field(default="", max_length=ROUTE_LENGTH)
    indication: str = Field(default="", max_length=NAME_LENGTH)

    @field_validator("unit")
    @classmethod
    def _known_unit(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            check_unit(value)
        except InvalidInput as exc:
            if is_count_unit(value):  # "tablets", "caps", "patch": read with the product
                return value
            raise ValueError(
                f"{exc.message}: give an amount (mg, mcg, g), a patch rate (mcg/h), a volume "
                "(mL) or a count of a dose form (tablets, capsules, patches)"
            ) from exc
        return value

    @model_validator(mode="after")
    def _dose_has_unit(self) -> Medication:
        if self.dose is not None and self.unit is None:
            raise OutOfBounds(
                "a dose needs its unit (for example 'mg' or 'mcg/h')",
                kind="amount_without_unit",
                field="unit",
            )
        if self.daily_dose is not None and self.unit is None:
            raise OutOfBounds(
                "a daily_dose needs its unit (for example 'mg')",
                kind="amount_without_unit",
                field="unit",
            )
        for what, amount in (("dose", self.dose), ("daily_dose", self.daily_dose)):
            if amount is not None and self.unit is not None:
                problem = implausible_amount(amount, self.unit)
                if problem:
                    raise OutOfBounds(
                        f"{what} {amount:g} {self.unit}: {problem}",
                        kind="implausible_amount",
                        field=what,
                        amount=amount,
                        unit=self.unit,
                        problem=problem,
                    )
        return self


# (bound id, unit the bound is in, pint unit to convert an amount to)
# unit -> (bound, shown unit, factor to it); the same conversions pint makes (a test checks)
_COMMON_AMOUNTS: dict[str, tuple[str, str, float]] = {
    "kg": ("medicine_mass_g", "g", 1e3),
    "g": ("medicine_mass_g", "g", 1.0),
    "mg": ("medicine_mass_g", "g", 1e-3),
    "mcg": ("medicine_mass_g", "g", 1e-6),
    "ug": ("medicine_mass_g", "g", 1e-6),
    "ng": ("medicine_mass_g", "g", 1e-9),
    "mg/h": ("medicine_mass_g", "g/day", 24e-3),
    "mcg/h": ("medicine_mass_g", "g/day", 24e-6),
    "ug/h": ("medicine_mass_g", "g/day", 24e-6),
    "mg/d": ("medicine_mass_g", "g/day", 1e-3),
    "mg/day": ("medicine_mass_g", "g/day", 1e-3),
    "mcg/d": ("medicine_mass_g", "g/day", 1e-6),
    "mcg/day": ("medicine_mass_g", "g/day", 1e-6),
    "L": ("medicine_volume_l", "L", 1.0),
    "l": ("medicine_volume_l", "L", 1.0),
    "mL": ("medicine_volume_l", "L", 1e-3),
    "ml": ("medicine_volume_l", "L", 1e-3),
    "unit": ("medicine_units", "units", 1.0),
    "units": ("medicine_units", "units", 1.0),
    "U": ("medicine_units", "units", 1.0),
}
_AMOUNT_BOUNDS = (
    ("medicine_mass_g", "g", "g"),
    ("medicine_mass_g", "g/day", "g/day"),
    ("medicine_volume_l", "L", "L"),
    ("medicine_volume_l", "L/day", "L/day"),
    ("medicine_units", "units", "dimensionless"),
)


def implausible_amount(amount: float, unit: str) -> str:
    """Why ``amount`` in ``unit`` cannot be a medicine's dose (empty if it can be).

    Masses (mg, mcg, g) and mass rates (mcg/h, taken over a day) are held to the mass bound,
    volumes to the volume bound, counts (units) to the unit bound of ``input_bounds.yaml``.
    """
    common = _COMMON_AMOUNTS.get(unit.strip().replace("µ", "u").replace("μ", "u"))
    if common is not None:  # the usual units, without building pint's registry (slow start)
        bound_id, shown, factor = common
        bound = BOUNDS[bound_id]
        value = amount * factor
        if not math.isfinite(value) or value > bound.maximum:
            return (
                f"more than {bound.maximum:g} {shown}, above any medicine dose; "
                f"check the number and the unit (source: {citation_text(bound.source)})"
            )
        return ""
    if is_count_unit(unit):  # tablets, capsules, patches: the product gives the amount
        if amount > MAX_ANY_AMOUNT:
            return f"more than {MAX_ANY_AMOUNT:g} {unit}; check the number and the unit"
        return ""
    try:
        quantity = amount * parse_unit(unit)
    except Exception:  # pint refuses arithmetic with offset units (degC, dB), any such error
        return f"{unit!r} does not measure an amount of medicine"
    for bound_id, shown, target in _AMOUNT_BOUNDS:
        if quantity.is_compatible_with(target):
            bound = BOUNDS[bound_id]
            value = float(quantity.to(target).magnitude)
            if not math.isfinite(value) or value > bound.maximum:
                return (
                    f"more than {bound.maximum:g} {shown}, above any medicine dose; "
                    f"check the number and the unit (source: {citation_text(bound.source)})"
                )
            return ""
    if amount > MAX_ANY_AMOUNT:
        return f"more than {MAX_ANY_AMOUNT:g} in any unit; check the number and the unit"
    return ""


class Allergy(_Strict):
    substance: str = Field(min_length=1, max_length=MEDICINE_NAME_LENGTH)
    reaction: str = Field(default="", max_length=NAME_LENGTH)


class OpioidContext(_Strict):
    """The opioid context that may justify a ketamine infusion (FPM (ANZCA) 2016, section 2)."""

    poor_opioid_response: bool | None = None
    opioid_side_effects: bool | None = None
    drug_seeking_behaviour: bool | None = None


class Assessment(_Strict):
    """Assessment facts used by the selection criteria (FPM (ANZCA) 2016 proposal, sections 2-3)."""

    central_sensitisation: bool | None = None
    central_sensitisation_evidence: str = Field(default="", max_length=NOTE_LENGTH)
    opioid_context: OpioidContext = OpioidContext()
    multidisciplinary_care: bool | None = None
    expectancy: str = Field(default="", max_length=NOTE_LENGTH)
    goals: str = Field(default="", max_length=NOTE_LENGTH)
    intoxicated_today: bool | None = None
    fasted: bool | None = None


class Patient(_Strict):
    """One patient, as the clinical logic sees them. Weights in kg, heights in cm.

    Validated with a today (see the module docstring), the birth date is checked against it
    and ``age_on()`` counts from it.
    """

    id: str = Field(default="", max_length=40)
    name: str = Field(default="", max_length=NAME_LENGTH)
    birth_date: date | None = None
    # the bounds show in the JSON schema (and so in the OpenAPI document)
    age_years: float | None = Field(
        default=None, ge=BOUNDS.age_years.minimum, le=BOUNDS.age_years.maximum
    )
    sex: Sex
    weight_kg: float = Field(ge=BOUNDS.weight_kg.minimum, le=BOUNDS.weight_kg.maximum)
    height_cm: float | None = Field(
        default=None, ge=BOUNDS.height_cm.minimum, le=BOUNDS.height_cm.maximum
    )
    pregnancy: Pregnancy = "unknown"
    diagnoses: list[CodedItem] = Field(default=[], max_length=MAX_ITEMS)
    comorbidities: list[CodedItem] = Field(default=[], max_length=MAX_ITEMS)
    medications: list[Medication] = Field(default=[], max_length=MAX_ITEMS)
    allergies: list[Allergy] = Field(default=[], max_length=MAX_ITEMS)
    consent: Consent = "pending"
    assessment: Assessment = Assessment()
    purpose: list[Purpose] = Field(default=[], max_length=MAX_ITEMS)
    gp: str = Field(default="", max_length=NAME_LENGTH)
    referrer: str = Field(default="", max_length=NAME_LENGTH)
    # What a signing physician needs besides the dose (docs/clinical-core.md, signing rules):
    # when the weight was measured (its age is checked against the clinic's policy), and the
    # side of the painful site or limb.
    weight_measured_on: date | None = None
    laterality: Laterality = "unknown"
    # The US ZIP code of the patient's home (5 digits or ZIP+4; empty: not recorded). The one
    # geographic field of the record: a research export keeps at most its first three digits
    # (HIPAA Safe Harbor, knowledge/data/safe_harbor.yaml).
    zip_code: str = Field(default="", max_length=ZIP_CODE_LENGTH)

    _today: date | None = PrivateAttr(default=None)

    @field_validator("zip_code")
    @classmethod
    def _us_zip_code(cls, value: str) -> str:
        if value and not ZIP_CODE.fullmatch(value):
            raise ValueError("a US ZIP code is 5 digits or ZIP+4 (12345 or 12345-6789)")
        return value

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

    @field_validator("birth_date")
    @classmethod
    def _birth_date_bounded(cls, value: date | None, info: ValidationInfo) -> date | None:
        if value is not None:
            check_day(value, given_today(info), "birth_date")
        return value

    @model_validator(mode="after")
    def _age_known(self, info: ValidationInfo) -> Patient:
        if self.age_years is None and self.birth_date is None:
            raise OutOfBounds("give age_years or birth_date", kind="no_age", field="birth_date")
        if self.sex == "male" and self.pregnancy == "pregnant":
            raise OutOfBounds(
                "pregnancy 'pregnant' conflicts with sex 'male'",
                kind="pregnant_male",
                field="pregnancy",
            )
        today = given_today(info)
        if today is not None and self.birth_date is not None:
            oldest = BOUNDS.age_years
            if self.age_on(today) > oldest.maximum:
                raise OutOfBounds(
                    f"birth_date {self.birth_date.isoformat()} gives an age above "
                    f"{oldest.maximum:g} years, longer than any verified human life "
                    f"(source: {citation_text(oldest.source)})",
                    kind="age_above",
                    field="birth_date",
                    day=self.birth_date,
                    maximum=oldest.maximum,
                )
        self._check_weight_date(today)
        self._today = today
        return self

    def _check_weight_date(self, today: date | None) -> None:
        measured = self.weight_measured_on
        if measured is None:
            return
        field = "weight_measured_on"
        if measured < EARLIEST_DATE:
            raise OutOfBounds(
                f"weight_measured_on is before {EARLIEST_DATE.isoformat()}",
                kind="before_earliest",
                field=field,
                day=measured,
                earliest=EARLIEST_DATE,
            )
        if today is not None and measured > today:
            raise OutOfBounds(
                "weight_measured_on is in the future",
                kind="in_future",
                field=field,
                day=measured,
                today=today,
            )
        if self.birth_date is not None and measured < self.birth_date:
            raise OutOfBounds(
                "weight_measured_on is before the birth date",
                kind="before_birth",
                field=field,
                day=measured,
                birth=self.birth_date,
            )

    def as_of(self, today: date) -> Patient:
        """The same patient with ages counted on ``today`` (a stored record read again: its
        birth date was checked when it was recorded)."""
        copy = self.model_copy()
        copy._today = today
        return copy

    def age_on(self, day: date | None = None) -> float:
        """Age in whole years on ``day``; by default on the today the patient was validated
        against (the clinic's), else on this computer's date (the command line)."""
        if self.birth_date is None:
            assert self.age_years is not None
            return self.age_years
        day = day or self._today or date.today()
        before_birthday = (day.month, day.day) < (self.birth_date.month, self.birth_date.day)
        return float(day.year - self.birth_date.year - int(before_birthday))


KNOWN_FIELDS = frozenset(Patient.model_fields)
# Fields of the patient file that are not part of the record: the questionnaires the screen
# reads (``ketapath.domain.mood``); the record's own come from the clinic's assessments.
SCREENING_FIELDS = frozenset({"questionnaires", "assessments"})
# Accepted spellings of top-level fields, mapped to the documented name.
FIELD_ALIASES = {
    "age": "age_years",
    "weight": "weight_kg",
    "height": "height_cm",
    "dob": "birth_date",
}


def patient_from_dict(
    raw: Any, *, origin: str = "patient", today: date | None = None
) -> tuple[Patient, list[str]]:
    """Validate a patient document. Returns the patient and warnings for ignored fields.

    ``today`` is the caller's date (the clinic's on a server); by default this computer's
    date, which is right for the command line. Raises ``InvalidInput`` naming every field at
    fault.
    """
    if not isinstance(raw, dict):
        raise InvalidInput(f"{origin}: a patient file must be an object of fields", field="(file)")
    data: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in raw.items():
        name = FIELD_ALIASES.get(str(key), str(key))
        if name in KNOWN_FIELDS:
            data[name] = value
        elif name in SCREENING_FIELDS:
            continue
        else:
            warnings.append(f"{origin}: field {key!r} is not part of the patient format; ignored")
    try:
        context = {"today": today or date.today()}
        return Patient.model_validate(data, context=context), warnings
    except ValidationError as exc:
        raise InvalidInput(_describe(exc, origin), field=_first_field(exc)) from exc


def load_patient(path: str | Path, *, today: date | None = None) -> tuple[Patient, list[str]]:
    """Read a patient file (.json, .yaml or .yml); ``today`` as in ``patient_from_dict``."""
    return patient_from_dict(read_patient_file(path), origin=str(path), today=today)


def read_patient_file(path: str | Path) -> Any:
    """The document of a patient file (.json, .yaml or .yml), read but not yet validated."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            f"cannot read patient file {path}: {exc.strerror}", field="(file)"
        ) from exc
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path}: not a text file (not UTF-8)", field="(file)") from exc
    return document_from_text(text, origin=str(path), suffix=path.suffix)


def patient_from_text(
    text: str, *, origin: str, suffix: str = ".yaml", today: date | None = None
) -> tuple[Patient, list[str]]:
    """A patient document given as JSON (``suffix`` .json) or YAML text."""
    return patient_from_dict(
        document_from_text(text, origin=origin, suffix=suffix), origin=origin, today=today
    )


def document_from_text(text: str, *, origin: str, suffix: str = ".yaml") -> Any:
    """The document of a patient file's text (JSON for ``suffix`` .json, else YAML), read but
    not yet validated."""
    try:
        raw = json.loads(text) if suffix.lower() == ".json" else safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InvalidInput(f"{origin}: not valid JSON/YAML: {exc}", field="(file)") from exc
    except (ValueError, RecursionError) as exc:
        # e.g. an integer of thousands of digits, or nesting deeper than Python's stack
        raise InvalidInput(f"{origin}: not usable JSON/YAML ({exc})", field="(file)") from exc
    return raw


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
