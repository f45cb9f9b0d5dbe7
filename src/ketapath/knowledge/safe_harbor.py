"""Schema of ``safe_harbor.yaml``: how the research export meets the HIPAA Safe Harbor method.

45 CFR 164.514(b)(2)(i) lists 18 kinds of identifier, (A) to (R), that a data set must not
hold for it to count as de-identified. The file maps each to what ketapath does with it:

- ``removed``: ketapath holds it (a name, an e-mail address, the patient's number) and never
  exports it;
- ``not_collected``: ketapath has no field for it; free text, where someone could type it,
  is withheld from every export and only counted;
- ``transformed``: exported only in the form the rule allows (three-digit ZIP areas, dates as
  day numbers with the year of registration, ages pooled from 90, a research code).

It also holds the numbers the export applies: the age from which ages are pooled and the
label of that category, and the three-digit ZIP areas exported as ``000`` (the 17 of the HHS
guidance's table, from the 2000 Census, and any others a clinic adds), each list with its
source and whether it was checked against that source (``verified``).

Validated on load, every citation checked against the bibliography: all 18 letters exactly
once, three-digit prefixes only.
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
from ketapath.knowledge.bibliography import bibliography

FILENAME = "safe_harbor.yaml"
KIND = "safe_harbor"

LETTERS: tuple[str, ...] = tuple("ABCDEFGHIJKLMNOPQR")
Handling = Literal["removed", "not_collected", "transformed"]
HANDLING_WORDS: dict[str, str] = {
    "removed": "held, never exported",
    "not_collected": "not collected; free text withheld",
    "transformed": "exported as the rule allows",
}


class Identifier(Strict):
    """One of the 18 identifiers of 164.514(b)(2)(i), and what ketapath does with it."""

    letter: str = Field(pattern=r"^[A-R]$")
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    identifier: str = Field(min_length=3, max_length=400)
    handling: Handling
    how: str = Field(min_length=10, max_length=1200)
    source: Source


class AgeRule(Strict):
    """Ages from ``pooled_from_years`` on are one category, ``label``."""

    pooled_from_years: int = Field(ge=1, le=130)
    label: str = Field(min_length=3, max_length=40)
    source: Source


class RestrictedList(Strict):
    """Three-digit ZIP areas exported as 000, with where the list comes from."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    prefixes: tuple[str, ...] = Field(min_length=1)
    verified: bool
    verification: str = Field(min_length=10, max_length=1200)
    source: Source

    @model_validator(mode="after")
    def _three_digits(self) -> RestrictedList:
        bad = [p for p in self.prefixes if len(p) != 3 or not p.isdigit()]
        if bad:
            raise ValueError(f"not three-digit ZIP prefixes: {', '.join(bad)}")
        if len(set(self.prefixes)) != len(self.prefixes):
            raise ValueError("a prefix is listed twice")
        return self


class ZipRule(Strict):
    """Keep the first ``keep_digits`` digits of a ZIP code, or ``replacement`` where the
    three-digit area is restricted (20,000 or fewer people)."""

    keep_digits: Literal[3]
    population_threshold: int = Field(ge=1)
    replacement: Literal["000"]
    source: Source
    restricted: tuple[RestrictedList, ...] = Field(min_length=1)

    @property
    def restricted_prefixes(self) -> frozenset[str]:
        """Every prefix of every list: exported as 000."""
        return frozenset(p for group in self.restricted for p in group.prefixes)


class SafeHarbor(Strict):
    """safe_harbor.yaml: the 18 identifiers, the age rule and the ZIP rule."""

    kind: Literal["safe_harbor"]
    version: int = Field(ge=1)
    description: str = Field(default="", max_length=2000)
    identifiers: tuple[Identifier, ...]
    age: AgeRule
    zip: ZipRule

    @model_validator(mode="after")
    def _all_eighteen(self) -> SafeHarbor:
        letters = [i.letter for i in self.identifiers]
        if sorted(letters) != list(LETTERS):
            missing = sorted(set(LETTERS) - set(letters))
            twice = sorted({x for x in letters if letters.count(x) > 1})
            raise ValueError(
                "identifiers must be the 18 letters A-R of 164.514(b)(2)(i), each once "
                f"(missing: {', '.join(missing) or 'none'}; twice: {', '.join(twice) or 'none'})"
            )
        ids = [i.id for i in self.identifiers]
        if len(set(ids)) != len(ids):
            raise ValueError("an identifier id is used twice")
        return self

    def identifier(self, letter: str) -> Identifier:
        """The identifier of this letter (``KeyError`` if there is none)."""
        for item in self.identifiers:
            if item.letter == letter:
                return item
        raise KeyError(letter)


def load_safe_harbor(path: Path) -> SafeHarbor:
    """A Safe Harbor file, validated: ``KnowledgeError`` naming the file and the problem."""
    raw = read_yaml(path)
    try:
        rules = SafeHarbor.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    bibliography().check(cites_in(rules), path.name)
    return rules


@cache
def safe_harbor() -> SafeHarbor:
    """The packaged Safe Harbor rules (``safe_harbor.yaml``), loaded once per process."""
    return load_safe_harbor(data_path(FILENAME))
