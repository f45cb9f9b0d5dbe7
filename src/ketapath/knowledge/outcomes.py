"""Schema of ``outcome_rules.yaml``: the definitions of what happened after a course.

The file holds the follow-up schedule (timepoints in days after the last session of a course,
and the window in which each is due), the IMMPACT responder thresholds (30% and 50%), when
relief has begun and when it has ended (the relief margin), the 35-day window of the area
under the daily pain curve (Pickering et al. 2020), the PGIC categories that count as
improved (Farrar 2001), which instruments are repeated at follow-up, the safety checks of
repeated courses (the adverse effects of the ASRA/AAPM/ASA consensus 2018, Table 4, with the
clinic's doses and intervals: no publication sets them), and the rule of the repeat proposal.

Every number has a ``*_source`` beside it; a number no publication sets cites the clinic's
policy (``ketapath-outcome-policy``). The file is validated on load: a missing source, a
number out of range, an instrument not in ``instruments.yaml`` or a citation not in the
bibliography is refused with a :class:`~ketapath.knowledge.base.KnowledgeError` naming the
file and the field.
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

FILENAME = "outcome_rules.yaml"
KIND = "outcome_rules"

SafetyCheckId = Literal["liver-enzymes", "urinary-symptoms", "cognition", "misuse-screen"]
SAFETY_CHECK_IDS: tuple[SafetyCheckId, ...] = (
    "liver-enzymes",
    "urinary-symptoms",
    "cognition",
    "misuse-screen",
)
MAX_FOLLOW_UP_DAYS = 3 * 366


class Timepoint(Strict):
    """A follow-up timepoint: days after the last session of a course, and its label."""

    offset_days: int = Field(ge=1, le=MAX_FOLLOW_UP_DAYS)
    label: str = Field(min_length=3, max_length=40)


class FollowUpRules(Strict):
    """The default follow-up timepoints and the window in which each is due."""

    timepoints: tuple[Timepoint, ...] = Field(min_length=1, max_length=20)
    timepoints_source: Source
    due_from_days_before: int = Field(ge=0, le=60)
    due_until_days_after: int = Field(ge=0, le=90)
    window_source: Source

    @model_validator(mode="after")
    def _increasing(self) -> FollowUpRules:
        offsets = [t.offset_days for t in self.timepoints]
        if offsets != sorted(set(offsets)):
            raise ValueError("timepoints must be in increasing order of days, each once")
        labels = [t.label for t in self.timepoints]
        if len(labels) != len(set(labels)):
            raise ValueError("two timepoints have the same label")
        return self


class DefinitionRule(Strict):
    """A definition in words and its source (change from baseline, opioid change)."""

    rule: str = Field(min_length=10)
    source: Source


class ResponderThreshold(Strict):
    """A reduction in pain intensity (percent of baseline) that counts as important."""

    id: Literal["moderate", "substantial"]
    percent: int = Field(gt=0, le=100)
    meaning: str = Field(min_length=10)


class ResponderRules(Strict):
    """The responder thresholds (IMMPACT: 30% moderate, 50% substantial)."""

    thresholds: tuple[ResponderThreshold, ...] = Field(min_length=2, max_length=2)
    rule: str = Field(min_length=10)
    source: Source
    unknown_source: Source

    @model_validator(mode="after")
    def _both(self) -> ResponderRules:
        if sorted(t.id for t in self.thresholds) != ["moderate", "substantial"]:
            raise ValueError("thresholds needs one moderate and one substantial, once each")
        if self.threshold("moderate") >= self.threshold("substantial"):
            raise ValueError("the moderate threshold must be below the substantial one")
        return self

    def threshold(self, threshold_id: str) -> int:
        """The percent of a threshold ('moderate', 'substantial')."""
        return next(t.percent for t in self.thresholds if t.id == threshold_id)

    @property
    def percents(self) -> tuple[int, ...]:
        return tuple(sorted(t.percent for t in self.thresholds))


class ReliefRules(Strict):
    """When relief has begun (onset threshold) and when it has ended (margin of baseline)."""

    margin_nrs: int = Field(ge=0, le=5)
    margin_source: Source
    onset_threshold_percent: int = Field(gt=0, le=100)
    onset_source: Source
    rule: str = Field(min_length=10)
    rule_source: Source


class PainAucRules(Strict):
    """The window of the area under the daily pain curve, and how it is computed."""

    days: int = Field(ge=2, le=366)
    days_source: Source
    rule: str = Field(min_length=10)
    rule_source: Source


class PgicRules(Strict):
    """Which PGIC categories (1 = very much improved ... 7 = very much worse) are improved."""

    responder_categories: tuple[int, ...] = Field(min_length=1)
    rule: str = Field(min_length=10)
    source: Source

    @model_validator(mode="after")
    def _categories(self) -> PgicRules:
        cats = self.responder_categories
        if any(not 1 <= c <= 7 for c in cats) or len(cats) != len(set(cats)):
            raise ValueError("PGIC categories are 1 to 7, each once")
        if 4 in cats:
            raise ValueError("'no change' (4) cannot count as improved")
        return self


class FollowUpInstruments(Strict):
    """The instruments repeated at follow-up (ids of ``instruments.yaml``)."""

    repeated: tuple[str, ...] = Field(min_length=1)
    follow_up_only: tuple[str, ...] = ()
    rule: str = Field(min_length=10)
    source: Source

    @model_validator(mode="after")
    def _once(self) -> FollowUpInstruments:
        ids = list(self.repeated) + list(self.follow_up_only)
        if len(ids) != len(set(ids)):
            raise ValueError("an instrument is listed twice")
        if "nrs" not in self.repeated:
            raise ValueError("the pain score (nrs) must be repeated: outcomes are judged on it")
        return self

    @property
    def all_ids(self) -> tuple[str, ...]:
        return self.repeated + self.follow_up_only


class SafetyCheck(Strict):
    """A check of repeated courses: what it is, the adverse effect it looks for, when due."""

    id: SafetyCheckId
    name: str = Field(min_length=3, max_length=80)
    what: str = Field(min_length=10, max_length=400)
    adverse_effect: str = Field(min_length=3, max_length=80)
    from_course: int = Field(ge=1, le=100, description="Due from this course on (2: repeats).")
    above_mg_per_kg: float | None = Field(
        default=None,
        ge=0,
        le=1000,
        allow_inf_nan=False,
        description="Also due once the cumulative dose passes this; None: no dose trigger.",
    )
    interval_days: int = Field(ge=1, le=3 * 366)
    grace_days: int = Field(ge=0, le=366, description="Overdue this many days after due.")
    source: Source
    numbers_source: Source


class SafetyRules(Strict):
    """The safety checks of repeated courses."""

    rule: str = Field(min_length=10)
    source: Source
    checks: tuple[SafetyCheck, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _every_check(self) -> SafetyRules:
        ids = [c.id for c in self.checks]
        if sorted(ids) != sorted(SAFETY_CHECK_IDS):
            raise ValueError(f"checks needs {', '.join(SAFETY_CHECK_IDS)}, once each")
        return self

    def check(self, check_id: str) -> SafetyCheck:
        """The check with this id (``KeyError`` if none)."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(check_id)


class RepeatRules(DefinitionRule):
    """How the repeat proposal compares the agreed indicators with the outcomes."""


class OutcomeRules(Strict):
    """outcome_rules.yaml: the outcome definitions, follow-up and safety checks."""

    kind: Literal["outcome_rules"]
    version: int = Field(ge=1)
    description: str = Field(default="", max_length=3000)
    follow_up: FollowUpRules
    change: DefinitionRule
    responder: ResponderRules
    relief: ReliefRules
    pain_auc: PainAucRules
    pgic: PgicRules
    opioid_change: DefinitionRule
    follow_up_instruments: FollowUpInstruments
    safety: SafetyRules
    repeat: RepeatRules

    @model_validator(mode="after")
    def _onset_is_a_threshold(self) -> OutcomeRules:
        if self.relief.onset_threshold_percent not in self.responder.percents:
            raise ValueError(
                "relief.onset_threshold_percent must be one of the responder thresholds "
                f"({', '.join(str(p) for p in self.responder.percents)})"
            )
        return self


def load_outcome_rules(path: Path) -> OutcomeRules:
    """An outcome rules file, validated: ``KnowledgeError`` naming the file and what is wrong
    (not YAML, a field out of the schema or out of range, an instrument not in
    instruments.yaml, a citation not in the bibliography)."""
    from ketapath.knowledge.bibliography import bibliography
    from ketapath.knowledge.instruments import load_instruments

    raw = read_yaml(path)
    try:
        rules = OutcomeRules.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    known = {i.id for i in load_instruments()}
    unknown = [i for i in rules.follow_up_instruments.all_ids if i not in known]
    if unknown:
        raise KnowledgeError(
            f"{path.name}: follow_up_instruments: {', '.join(unknown)} "
            f"{'is' if len(unknown) == 1 else 'are'} not in instruments.yaml"
        )
    bibliography().check(cites_in(rules), path.name)
    return rules


@cache
def outcome_rules() -> OutcomeRules:
    """The packaged outcome rules (``outcome_rules.yaml``), loaded and validated once."""
    return load_outcome_rules(data_path(FILENAME))
