"""Schema of ``finding_codes.yaml``: the catalogue of every finding code a rule engine raises.

Each code says what it means in plain words, which engine raises it, the severities it may
carry, the rule behind it in words, and its source. Codes of the form ``family:*`` stand for a
family whose members come from a data file (``contraindication:<id>`` for each entry of
``contraindications.yaml``); their source is the data entry's own (``source_from``), as it
is for a few single codes whose rule is a data entry (the evidence grade of an indication).

:func:`ketapath.domain.findings.finding` refuses a code that is not in the catalogue, so the
catalogue (and ``docs/findings.md``, made from it) lists every code a user can meet.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import Severity, Source, Strict

Engine = Literal[
    "screening",
    "orders",
    "opioids",
    "instruments",
    "input",
    "exposure",
    "sessions",
    "ledger",
    "outcomes",
    "safety",
    "letters",
    "registry",
]
CODE_PATTERN = r"^[a-z][a-z0-9-]*:([a-z0-9][a-z0-9_-]*(:[a-z0-9_-]+)*|\*)$"


class FindingCode(Strict):
    """One code (or family of codes) that findings carry."""

    code: str = Field(pattern=CODE_PATTERN)
    engine: Engine
    severities: tuple[Severity, ...] = Field(min_length=1)
    meaning: str = Field(min_length=10, description="What the finding tells the reader.")
    rule: str = Field(min_length=5, description="The rule in words (shown with the finding).")
    source: Source | None = None
    source_from: str = Field(
        default="", description="The data file whose entries give the source (families)."
    )

    @model_validator(mode="after")
    def _sourced(self) -> FindingCode:
        if (self.source is None) == (not self.source_from):
            raise ValueError("give exactly one of source and source_from")
        if self.is_family and not self.source_from:
            raise ValueError("a family (code ending in ':*') takes its source from a data file")
        return self

    @property
    def is_family(self) -> bool:
        return self.code.endswith(":*")

    @property
    def family(self) -> str:
        """'contraindication' for 'contraindication:*' (the part before the last colon)."""
        return self.code.rsplit(":", 1)[0]
