"""Schema of ``fhir_codes.yaml``: the LOINC codes and UCUM units a FHIR export gives to
observations (vital signs of the chart, weight and height of the record, instrument scores).

Checked when the file is loaded, so that a typing slip stops the program instead of sending
another observation's code to another system:

- every LOINC code has the right check digit (LOINC's mod-10 rule, the Luhn algorithm);
- every vital sign the chart records (``VitalSigns.values()``: heart rate, systolic,
  diastolic, SpO2, respiratory rate, EtCO2, sedation) has exactly one entry, as itself or as
  a component of a panel (blood pressure);
- a score's key names an instrument scale of ``instruments.yaml``;
- every citation is in the bibliography.

An entry with an empty ``loinc`` says on purpose that no code was verified: the observation is
exported with its name as text only.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import Entry, KnowledgeError, Strict, cites_in, load_entries
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.instruments import load_instruments

FILENAME = "fhir_codes.yaml"
KIND = "fhir_codes"
LOINC_PATTERN = r"^([0-9]{1,7}-[0-9])?$"
# The vital signs a chart entry records (ketapath.domain.session_events.VitalSigns), which the
# knowledge layer may not import: a test checks that the two agree.
CHART_VITALS = (
    "heart_rate",
    "systolic",
    "diastolic",
    "spo2",
    "respiratory_rate",
    "etco2",
    "sedation",
)
BODY_MEASURES = ("weight_kg", "height_cm")

CodeKind = Literal["vital", "body", "score"]


def loinc_check_digit(number: str) -> int:
    """The check digit of a LOINC code's number (the part before the hyphen): LOINC's mod-10
    rule, which is the Luhn algorithm."""
    total = 0
    for position, char in enumerate(reversed(number)):
        digit = int(char)
        if position % 2 == 0:  # the rightmost digit and every second one are doubled
            digit *= 2
            digit = digit // 10 + digit % 10
        total += digit
    return (10 - total % 10) % 10


def is_valid_loinc(code: str) -> bool:
    """Whether ``code`` is a well-formed LOINC code whose check digit is right."""
    number, _, check = code.partition("-")
    if not (number.isdigit() and check.isdigit() and len(check) == 1 and len(number) <= 7):
        return False
    return loinc_check_digit(number) == int(check)


class Unit(Strict):
    """A unit as UCUM codes it (``mm[Hg]``) and as a person reads it (``mmHg``)."""

    ucum: str = Field(min_length=1, max_length=20)
    text: str = Field(min_length=1, max_length=20)


class Component(Strict):
    """One part of a panel (systolic and diastolic pressure of the blood pressure panel)."""

    key: str = Field(min_length=2, max_length=40)
    loinc: str = Field(pattern=LOINC_PATTERN)
    display: str = Field(min_length=3, max_length=200)


class ObservationCode(Entry):
    """The code of one kind of observation: a vital sign (``key``: the chart's vital-sign
    id, or a panel), a measure of the record (``weight_kg``, ``height_cm``) or an instrument
    scale (``key``: ``instrument:scale``)."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    kind: CodeKind
    key: str = Field(min_length=2, max_length=60)
    loinc: str = Field(pattern=LOINC_PATTERN, description="Empty: no code was verified.")
    display: str = Field(min_length=3, max_length=200)
    unit: Unit
    components: tuple[Component, ...] = ()

    @model_validator(mode="after")
    def _check_digits(self) -> ObservationCode:
        codes = [self.loinc, *(c.loinc for c in self.components)]
        wrong = [code for code in codes if code and not is_valid_loinc(code)]
        if wrong:
            raise ValueError(f"{self.id}: LOINC code(s) with a wrong check digit: {wrong}")
        if self.components and not self.loinc:
            raise ValueError(f"{self.id}: a panel needs its own code")
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """The values this entry codes: its components' keys for a panel, else its key."""
        return tuple(c.key for c in self.components) or (self.key,)


class FhirCodes:
    """The loaded file, with lookups by vital sign, body measure and instrument scale."""

    def __init__(self, entries: list[ObservationCode], version: int) -> None:
        self.entries = tuple(entries)
        self.version = version
        self._by_key = {(e.kind, e.key): e for e in self.entries}

    def vital(self, key: str) -> ObservationCode:
        return self._by_key[("vital", key)]

    def body(self, key: str) -> ObservationCode:
        return self._by_key[("body", key)]

    def score(self, instrument_id: str, scale_id: str) -> ObservationCode | None:
        """The code of an instrument scale, or None when none is recorded (text only)."""
        return self._by_key.get(("score", f"{instrument_id}:{scale_id}"))


def _cross_check(entries: list[ObservationCode]) -> None:
    problems: list[str] = []
    vitals = [k for e in entries if e.kind == "vital" for k in e.keys]
    if sorted(vitals) != sorted(CHART_VITALS):
        problems.append(f"vital signs coded {sorted(vitals)}, the chart records {CHART_VITALS}")
    body = sorted(e.key for e in entries if e.kind == "body")
    if body != sorted(BODY_MEASURES):
        problems.append(f"body measures coded {body}, the record holds {BODY_MEASURES}")
    scales = {f"{i.id}:{s.id}" for i in load_instruments() for s in i.scales}
    problems += [
        f"{e.id}: {e.key!r} is not an instrument scale of instruments.yaml"
        for e in entries
        if e.kind == "score" and e.key not in scales
    ]
    keys = [(e.kind, e.key) for e in entries]
    twice = sorted({f"{kind} {key}" for kind, key in keys if keys.count((kind, key)) > 1})
    if twice:
        problems.append(f"coded twice: {', '.join(twice)}")
    if problems:
        raise KnowledgeError(f"{FILENAME}: " + "; ".join(problems))


@cache
def fhir_codes() -> FhirCodes:
    """The observation codes of a FHIR export, validated once per process."""
    parsed = load_entries(FILENAME, ObservationCode, kind=KIND)
    _cross_check(parsed.entries)
    bibliography().check(cites_in(parsed), FILENAME)
    return FhirCodes(parsed.entries, parsed.version)
