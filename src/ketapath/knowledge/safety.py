"""Schema of ``safety_checks.yaml``: the safety follow-up of repeated ketamine courses.

The ASRA/AAPM/ASA consensus 2018 (Table 4) lists the harms of subanaesthetic ketamine that a
clinic looks for when courses are repeated: hepatic toxicity (elevated liver enzymes) and
cystitis (painful haematuria, dysuria, frequency), both mostly in people who misuse ketamine.
The file is a closed set of four checks (``CHECK_IDS``); each says what is recorded (its
fields, every number bounded, every text bounded, nothing else accepted) and which results
are abnormal (its rules, each with its finding code and source):

- ``liver-enzymes``: ALT, AST, GGT, ALP in U/L, each with the laboratory's upper limit of
  normal; abnormal when ALT or AST is above the limit given;
- ``urinary-symptoms``: a checklist (frequency, urgency, dysuria, haematuria, pelvic pain)
  and whether a urine test was done; abnormal when any symptom is present;
- ``cognition``: a MoCA score (0-30), or another instrument's score with its maximum, or
  words; abnormal when the MoCA is below 26 (Nasreddine et al. 2005); another instrument or
  words alone are not judged by a rule (a clinician reads them);
- ``misuse-screen``: yes/no questions; abnormal when any answer is yes.

Where no publication gives a rule (the questions of the misuse screen, the bounds of a
laboratory value) the entry cites the clinic's policy (``ketapath-safety-follow-up``) and
says so. Validated on load (``ketapath knowledge check``), with every citation checked
against the bibliography.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    KnowledgeFile,
    Source,
    Strict,
    cites_in,
    data_path,
    format_validation_error,
    read_yaml,
)
from ketapath.knowledge.bibliography import bibliography

FILENAME = "safety_checks.yaml"
KIND = "safety_checks"

CheckId = Literal["liver-enzymes", "urinary-symptoms", "cognition", "misuse-screen"]
CHECK_IDS: tuple[CheckId, ...] = ("liver-enzymes", "urinary-symptoms", "cognition", "misuse-screen")
FieldKind = Literal["number", "whole", "yes_no", "text"]
RuleKind = Literal["above_limit", "any_yes", "below"]
# The longest text any field of a safety result takes (a free-text field says less).
TEXT_LENGTH = 2000


class SafetyField(Strict):
    """One thing a safety check records: a bounded number, a yes/no answer or bounded text."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)
    label: str = Field(min_length=2, max_length=120)
    kind: FieldKind
    unit: str = Field(default="", max_length=20)
    minimum: float | None = Field(default=None, allow_inf_nan=False)
    maximum: float | None = Field(default=None, allow_inf_nan=False)
    max_length: int | None = Field(default=None, ge=1, le=TEXT_LENGTH)
    required: bool = False
    limit_field: str = Field(
        default="",
        description="The field holding this value's upper limit of normal, which must be "
        "given with it (liver enzymes).",
    )

    @model_validator(mode="after")
    def _bounded(self) -> SafetyField:
        if self.kind in ("number", "whole"):
            if self.minimum is None or self.maximum is None or self.minimum >= self.maximum:
                raise ValueError(f"{self.id}: a number needs a minimum below its maximum")
        elif self.minimum is not None or self.maximum is not None:
            raise ValueError(f"{self.id}: only numbers have bounds")
        if self.kind == "text" and self.max_length is None:
            raise ValueError(f"{self.id}: a text needs its max_length")
        return self


class AbnormalRule(Strict):
    """When a result of the check is abnormal, in words and as data, with its finding code.

    ``above_limit``: a value of ``fields`` above the upper limit given with it;
    ``any_yes``: any of ``fields`` answered yes; ``below``: the one field of ``fields``
    below ``threshold``.
    """

    kind: RuleKind
    code: str = Field(pattern=r"^safety:[a-z0-9-]+$")
    fields: tuple[str, ...] = Field(min_length=1)
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    rule: str = Field(min_length=10, max_length=400)
    source: Source

    @model_validator(mode="after")
    def _shape(self) -> AbnormalRule:
        if (self.kind == "below") != (self.threshold is not None):
            raise ValueError("a threshold goes with a 'below' rule, and only with it")
        if self.kind == "below" and len(self.fields) != 1:
            raise ValueError("a 'below' rule reads one field")
        return self


class SafetyCheck(Entry):
    """One safety check: what is recorded and which results are abnormal."""

    id: CheckId
    name: str = Field(min_length=3, max_length=80)
    records: str = Field(min_length=10, max_length=600, description="What is recorded, in words.")
    fields: tuple[SafetyField, ...] = Field(min_length=1)
    needs_one_of: tuple[str, ...] = Field(
        default=(), description="At least one of these fields must be given."
    )
    abnormal: tuple[AbnormalRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> SafetyCheck:
        kinds = {f.id: f.kind for f in self.fields}
        if len(kinds) != len(self.fields):
            raise ValueError("a field is listed twice")
        for f in self.fields:
            if f.limit_field and kinds.get(f.limit_field) not in ("number", "whole"):
                raise ValueError(f"{f.id}: its limit_field is not a number of the check")
        unknown = [name for name in self.needs_one_of if name not in kinds]
        wanted = {"above_limit": ("number", "whole"), "any_yes": ("yes_no",)}
        wanted["below"] = ("number", "whole")
        for rule in self.abnormal:
            for name in rule.fields:
                if kinds.get(name) not in wanted[rule.kind]:
                    unknown.append(name)
                elif rule.kind == "above_limit" and not self.field(name).limit_field:
                    raise ValueError(f"{name}: an above_limit rule needs the field's limit_field")
        if unknown:
            raise ValueError(f"unknown or wrong-kind fields: {', '.join(unknown)}")
        return self

    def field(self, field_id: str) -> SafetyField:
        """The field with this id (``KeyError`` if the check has none)."""
        for f in self.fields:
            if f.id == field_id:
                return f
        raise KeyError(field_id)


class SafetyChecksFile(KnowledgeFile[SafetyCheck]):
    """safety_checks.yaml: the four safety checks, each once."""

    @model_validator(mode="after")
    def _complete(self) -> SafetyChecksFile:
        have = sorted(e.id for e in self.entries)
        if have != sorted(CHECK_IDS):
            raise ValueError(f"the checks must be {', '.join(CHECK_IDS)}, each once")
        codes = [r.code for e in self.entries for r in e.abnormal]
        if len(codes) != len(set(codes)):
            raise ValueError("a finding code is used by two rules")
        return self

    def check(self, check_id: str) -> SafetyCheck:
        """The check with this id (``KeyError`` if there is none)."""
        for entry in self.entries:
            if entry.id == check_id:
                return entry
        raise KeyError(check_id)


def load_safety_checks(path: Path) -> SafetyChecksFile:
    """A safety checks file, validated: ``KnowledgeError`` naming the file and the problem."""
    raw = read_yaml(path)
    try:
        checks = SafetyChecksFile.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    if checks.kind != KIND:
        raise KnowledgeError(f"{path.name}: kind is {checks.kind!r}, expected {KIND!r}")
    bibliography().check(cites_in(checks), path.name)
    return checks


@cache
def safety_checks() -> SafetyChecksFile:
    """The packaged safety checks (``safety_checks.yaml``), loaded once per process."""
    return load_safety_checks(data_path(FILENAME))
