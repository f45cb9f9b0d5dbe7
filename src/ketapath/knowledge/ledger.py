"""Schema of ``ledger_rules.yaml``: the rules and regulations the controlled-drug ledger follows.

Ketamine is a controlled drug: Schedule III (non-narcotic) in the United States (21 CFR
1308.13) and Schedule 2 under the UK Misuse of Drugs Regulations 2001 since 1 June 2015. The
file holds what the ledger needs from that: the drug's schedule in each jurisdiction; the
clinic's numbers (the reconciliation tolerance, when stock is near expiry, how often stock is
counted and by how many people), each cited, as clinic policy where no publication sets it;
who witnesses waste and how a loss is reported; and the three reports the ledger prints, each
with the regulation's requirements in plain words and the paragraph that sets each one:

- ``us_biennial_inventory``: the DEA inventory (21 CFR 1304.11);
- ``us_dispensing_records``: the DEA records of a dispenser (21 CFR 1304.22(c), 1304.04);
- ``uk_register``: a controlled drugs register (Misuse of Drugs Regulations 2001, regulations
  19 and 20).

Everything is validated on load (``ketapath knowledge check``): a missing source, a number out
of range, a report without requirements or a citation not in the bibliography is refused with
a :class:`~ketapath.knowledge.base.KnowledgeError` naming the file and the field.
"""

from __future__ import annotations

from decimal import Decimal
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

FILENAME = "ledger_rules.yaml"
KIND = "ledger_rules"

Jurisdiction = Literal["US", "UK"]
JURISDICTIONS: tuple[Jurisdiction, ...] = ("US", "UK")
ReportId = Literal["us_biennial_inventory", "us_dispensing_records", "uk_register"]
REPORT_IDS: tuple[ReportId, ...] = ("us_biennial_inventory", "us_dispensing_records", "uk_register")


class Control(Strict):
    """How one jurisdiction controls the drug ("Schedule III", "Schedule 2 (Class B)")."""

    jurisdiction: Jurisdiction
    schedule: str = Field(min_length=3, max_length=80)
    source: Source


class Requirement(Strict):
    """One thing a regulation asks of a report, in words a pharmacist reads on the page."""

    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$", max_length=40)
    text: str = Field(min_length=10, max_length=400)
    source: Source


class LedgerReport(Strict):
    """A report the ledger prints, and what the regulation behind it requires."""

    id: ReportId
    title: str = Field(min_length=5, max_length=120)
    jurisdiction: Jurisdiction
    source: Source
    requirements: tuple[Requirement, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_requirements(self) -> LedgerReport:
        ids = [r.id for r in self.requirements]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"requirements listed twice: {', '.join(twice)}")
        return self

    def requirement(self, requirement_id: str) -> Requirement:
        """The requirement with this id (``KeyError`` if the report has none)."""
        for requirement in self.requirements:
            if requirement.id == requirement_id:
                return requirement
        raise KeyError(requirement_id)


class LedgerRules(Strict):
    """ledger_rules.yaml: the controlled-drug ledger's rules, numbers and reports."""

    kind: Literal["ledger_rules"]
    version: int = Field(ge=1)
    description: str = Field(default="", max_length=2000)
    drug: Literal["ketamine"]
    controls: tuple[Control, ...] = Field(min_length=1)
    reconciliation_tolerance_mg: Decimal = Field(
        gt=0,
        lt=Decimal("0.1"),
        description="A session reconciles when |dispensed - administered - wasted| is below "
        "this many mg (0.05: the difference shows as 0.0 mg at one decimal).",
    )
    reconciliation_tolerance_source: Source
    near_expiry_days: int = Field(ge=1, le=3650)
    near_expiry_source: Source
    count_interval_days: int = Field(ge=1, le=366)
    count_interval_source: Source
    count_people: int = Field(ge=2, le=5)
    count_people_source: Source
    waste_witness: Source
    loss_report: Source
    reports: dict[ReportId, LedgerReport]

    @model_validator(mode="after")
    def _complete(self) -> LedgerRules:
        have = [c.jurisdiction for c in self.controls]
        if sorted(have) != sorted(JURISDICTIONS):
            raise ValueError("controls needs one entry for each of US and UK, once each")
        missing = [r for r in REPORT_IDS if r not in self.reports]
        if missing:
            raise ValueError(f"reports lacks {', '.join(missing)}")
        wrong = [key for key, report in self.reports.items() if report.id != key]
        if wrong:
            raise ValueError(f"report filed under another id: {', '.join(wrong)}")
        return self

    def control(self, jurisdiction: Jurisdiction) -> Control:
        """The drug's control in one jurisdiction."""
        return next(c for c in self.controls if c.jurisdiction == jurisdiction)

    def reconciles(self, difference_mg: Decimal) -> bool:
        """True when a session's difference (dispensed - administered - wasted, in mg) is
        within the tolerance: strictly below it in absolute value."""
        return abs(difference_mg) < self.reconciliation_tolerance_mg


def load_ledger_rules(path: Path) -> LedgerRules:
    """A ledger rules file, validated: ``KnowledgeError`` naming the file and what is wrong (not
    YAML, a field out of the schema or out of range, a citation not in the bibliography)."""
    raw = read_yaml(path)
    try:
        rules = LedgerRules.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    bibliography().check(cites_in(rules), path.name)
    return rules


@cache
def ledger_rules() -> LedgerRules:
    """The packaged ledger rules (``ledger_rules.yaml``), loaded and validated once per process."""
    return load_ledger_rules(data_path(FILENAME))
