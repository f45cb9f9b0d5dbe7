"""Schema of ``letter_rules.yaml``: the clinical wording of the letters after a course.

Every sentence a letter says on the clinic's behalf that is more than a record's value lives
here, cited: what each kind of letter is for; for the patient information sheet, the side
effects to expect in plain words (each tied to an adverse effect of the ASRA/AAPM/ASA
consensus 2018, Table 4, in ``adverse_effects.yaml``), what to do and not do afterwards, and
when to seek help (the emergency and the clinic); for the discharge summary and the GP
letter, the relapse plan, why an after-hours contact is given, what the GP is told about the
opioid plan and what to watch for after repeated courses.

The clinic's after-hours contact itself is a setting (``KETAPATH_CLINIC_AFTER_HOURS``), not
knowledge. Where no publication gives the wording (that chest pain means calling the
emergency services, that a relapse is not treated by raising opioid doses without the pain
clinic) the entry cites the clinic's policy and says so. Validated on load (``ketapath
knowledge check``), with every citation checked against the bibliography and every adverse
effect against ``adverse_effects.yaml``.
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

FILENAME = "letter_rules.yaml"
KIND = "letter_rules"

LetterKind = Literal["discharge_summary", "gp_letter", "patient_information"]
LETTER_KINDS: tuple[LetterKind, ...] = ("discharge_summary", "gp_letter", "patient_information")
ID_PATTERN = r"^[a-z][a-z0-9-]*$"


class Statement(Strict):
    """One sentence or two the letters say, with its source."""

    id: str = Field(pattern=ID_PATTERN, max_length=60)
    text: str = Field(min_length=10, max_length=800)
    source: Source


class KindText(Strict):
    """A kind of letter: its title, who reads it and what it is for."""

    id: LetterKind
    title: str = Field(min_length=5, max_length=120)
    reader: str = Field(min_length=5, max_length=120)
    purpose: str = Field(min_length=10, max_length=600)
    source: Source


class EffectText(Strict):
    """An adverse effect in the patient's words: what it feels like and what to do."""

    id: str = Field(pattern=ID_PATTERN, max_length=60)
    adverse_effect: str = Field(description="The id of the effect in adverse_effects.yaml.")
    plain: str = Field(min_length=5, max_length=600)
    advice: str = Field(min_length=10, max_length=600)
    source: Source


class HelpRule(Strict):
    """When to seek help, and from whom: the emergency services or the clinic."""

    id: str = Field(pattern=ID_PATTERN, max_length=60)
    urgency: Literal["emergency", "clinic"]
    when: tuple[str, ...] = Field(min_length=1, max_length=12)
    action: str = Field(min_length=10, max_length=600)
    source: Source


class LetterRules(Strict):
    """letter_rules.yaml: the wording of the three letters, each part cited."""

    kind: str
    version: int = Field(ge=1)
    description: str = ""
    kinds: tuple[KindText, ...]
    side_effects_intro: Statement
    side_effects: tuple[EffectText, ...] = Field(min_length=1)
    later_effects: tuple[EffectText, ...] = Field(min_length=1)
    after_treatment: tuple[Statement, ...] = Field(min_length=1)
    seek_help: tuple[HelpRule, ...] = Field(min_length=1)
    relapse_plan: tuple[Statement, ...] = Field(min_length=1)
    after_hours: Statement
    opioid_plan: tuple[Statement, ...] = Field(min_length=1)
    repeated_courses: tuple[Statement, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _complete(self) -> LetterRules:
        if sorted(k.id for k in self.kinds) != sorted(LETTER_KINDS):
            raise ValueError(f"kinds: must be {', '.join(LETTER_KINDS)}, each once")
        ids = [
            item.id
            for group in (
                self.side_effects,
                self.later_effects,
                self.after_treatment,
                self.seek_help,
                self.relapse_plan,
                self.opioid_plan,
                self.repeated_courses,
            )
            for item in group
        ]
        if len(ids) != len(set(ids)):
            raise ValueError("an id is used twice")
        if not any(rule.urgency == "emergency" for rule in self.seek_help):
            raise ValueError("seek_help: says when to call the emergency services")
        return self

    def kind_text(self, kind: str) -> KindText:
        """The title and purpose of a kind of letter (``KeyError`` for an unknown kind)."""
        for entry in self.kinds:
            if entry.id == kind:
                return entry
        raise KeyError(kind)


def load_letter_rules(path: Path) -> LetterRules:
    """A letter rules file, validated: ``KnowledgeError`` naming the file and the problem
    (not YAML, outside the schema, an adverse effect not in adverse_effects.yaml, a citation
    not in the bibliography)."""
    from ketapath.knowledge.bibliography import bibliography
    from ketapath.knowledge.clinical import knowledge

    raw = read_yaml(path)
    try:
        rules = LetterRules.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    if rules.kind != KIND:
        raise KnowledgeError(f"{path.name}: kind is {rules.kind!r}, expected {KIND!r}")
    known = {e.id for e in knowledge().adverse_effects.entries}
    unknown = [
        f"{e.id}: {e.adverse_effect!r}"
        for e in (*rules.side_effects, *rules.later_effects)
        if e.adverse_effect not in known
    ]
    if unknown:
        raise KnowledgeError(
            f"{path.name}: adverse effects not in adverse_effects.yaml: {', '.join(unknown)}"
        )
    bibliography().check(cites_in(rules), path.name)
    return rules


@cache
def letter_rules() -> LetterRules:
    """The packaged letter rules (``letter_rules.yaml``), loaded and validated once."""
    return load_letter_rules(data_path(FILENAME))
