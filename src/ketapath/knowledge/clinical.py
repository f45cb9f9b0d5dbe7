"""Schemas of the clinical knowledge files, and the loaded, cached knowledge base.

Each schema mirrors one data file in ``knowledge/data``; every entry carries a ``source``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import Field, model_validator

from ketapath.knowledge.base import (
    Entry,
    KnowledgeError,
    KnowledgeFile,
    Severity,
    Source,
    Strict,
    cites_in,
    load_entries,
)
from ketapath.knowledge.bibliography import Bibliography, bibliography
from ketapath.knowledge.findings import FindingCode
from ketapath.knowledge.library import PumpType, SettingLimits
from ketapath.knowledge.medicines import MedicineVocabulary, load_medicines
from ketapath.knowledge.opioids import ConversionTable, TaperRule
from ketapath.knowledge.sessions import SessionRulesFile, SideEffectRule

Grade = Literal["A", "B", "C", "D", "I"]
# How screening treats a finding: `hard` makes a patient not eligible; `soft` needs a
# physician's override with a reason; `info` is shown but does not gate.
FindingSeverity = Severity
RateUnit = Literal["mg/kg/h", "mg/h", "mg/h per 70 kg"]
AmountUnit = Literal["mg/kg", "mg"]


class Condition(Entry):
    """A diagnosis or comorbidity in the vocabulary, with its codes and the words for it.

    ``icd11`` codes identify the condition (a bare code resolves to it, by longest prefix);
    ``icd11_earlier`` are codes of an earlier ICD-11 release that the current one replaced
    (still matched); ``icd11_broader`` are categories that contain the condition without
    singling it out (shown, never matched). ``synonyms`` and ``abbreviations`` are the words
    clinicians write; how text is matched is in ``ketapath.domain.vocabulary``.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    kind: Literal["indication", "comorbidity", "state"]
    icd10cm: list[str] = []
    icd11: list[str] = []
    icd11_earlier: list[str] = []
    icd11_broader: list[str] = []
    snomed_ct: list[str] = []
    synonyms: list[str] = []
    abbreviations: list[str] = []
    codes_note: str = ""

    @model_validator(mode="after")
    def _codes_or_reason(self) -> Condition:
        if not self.icd10cm and "ICD-10-CM" not in self.codes_note:
            raise ValueError("a condition without ICD-10-CM codes must say why in codes_note")
        return self

    @property
    def terms(self) -> tuple[str, ...]:
        """Every text that names the condition: id, name, synonyms, abbreviations."""
        return (self.id, self.name, *self.synonyms, *self.abbreviations)


class AmbiguousMeaning(Strict):
    """One thing an ambiguous word may mean; ``condition`` when the vocabulary has it."""

    meaning: str = Field(min_length=1)
    condition: str = ""


class AmbiguousTerm(Strict):
    """Words or abbreviations that mean more than one thing: never guessed."""

    terms: list[str] = Field(min_length=1)
    meanings: list[AmbiguousMeaning] = Field(min_length=2)
    source: Source


class ConditionsFile(KnowledgeFile[Condition]):
    """conditions.yaml: the entries, and the ambiguous words that are never guessed."""

    ambiguous: list[AmbiguousTerm] = []


class IndicationEvidence(Entry):
    """Evidence grade for ketamine infusion in one indication (ASRA/AAPM/ASA 2018, Table 6)."""

    id: str
    conditions: list[str] = Field(min_length=1)
    grade: Grade
    certainty: str
    benefit: str


class Contraindication(Entry):
    """A contraindication or precaution (ASRA/AAPM/ASA 2018, Table 5) and how it gates."""

    id: str
    category: str
    name: str
    severity: FindingSeverity
    conditions: list[str] = []
    message: str
    severity_note: str = ""


class Interaction(Entry):
    """Interacting medicines, named by the medicine vocabulary's ingredients and classes."""

    id: str
    name: str
    mechanism: str
    effect: str
    severity: FindingSeverity
    ingredients: list[str] = []
    classes: list[str] = []

    @model_validator(mode="after")
    def _names_something(self) -> Interaction:
        if not self.ingredients and not self.classes:
            raise ValueError("an interaction names at least one ingredient or class")
        return self


class AdverseEffect(Entry):
    """An adverse effect of subanaesthetic ketamine (ASRA/AAPM/ASA consensus 2018, Table 4)."""

    id: str
    name: str
    manifestations: list[str]
    comments: list[str]
    key_studies: list[str] = []


class RateSpec(Strict):
    source: Source | None = None  # None: the protocol's own source
    value: float = Field(gt=0)
    unit: RateUnit


class AmountSpec(Strict):
    source: Source | None = None  # None: the protocol's own source
    value: float = Field(gt=0)
    unit: AmountUnit


class ProtocolStep(Strict):
    """A constant-rate period: either a rate, or an amount spread evenly over the duration."""

    source: Source | None = None  # None: the protocol's own source
    duration_min: float = Field(gt=0)
    rate: RateSpec | None = None
    amount: AmountSpec | None = None
    fraction_of_previous: float | None = Field(default=None, gt=0, le=1)
    note: str = ""

    @model_validator(mode="after")
    def _one_dose(self) -> ProtocolStep:
        given = [x is not None for x in (self.rate, self.amount, self.fraction_of_previous)]
        if sum(given) != 1:
            raise ValueError("a step needs exactly one of rate, amount, fraction_of_previous")
        return self


class Adjunct(Entry):
    """A medicine given with the infusion: its dose, route and how often in a session.

    ``every_h`` repeats the dose (as needed or scheduled) through the session; ``per_day``
    gives it that many times a day; otherwise it is one dose per session. A dose in mg/day
    (a patch) counts once per day of the session.
    """

    drug: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    dose: float = Field(gt=0)
    dose_max: float | None = None
    unit: Literal["mg", "mg/kg", "mg/day", "mcg/kg/h"]
    route: str
    timing: str
    prn: bool = False
    max_mg: float | None = Field(default=None, gt=0)
    every_h: float | None = Field(default=None, gt=0)
    per_day: int | None = Field(default=None, ge=1, le=24)

    @model_validator(mode="after")
    def _one_schedule(self) -> Adjunct:
        if self.every_h is not None and self.per_day is not None:
            raise ValueError("give every_h or per_day, not both")
        if self.dose_max is not None and self.dose_max < self.dose:
            raise ValueError("dose_max is below dose")
        return self


class LadderStart(Strict):
    """The first session of a dose ladder: the guideline starting dose for this patient.

    The session gives the larger of ``min_mg`` and ``min_mg_per_kg`` x dosing weight, evenly
    over the ladder's session duration (ASRA/AAPM/ASA consensus 2018, Table 6 dosing (3):
    at least 80 mg over more than 2 h; Clark 2020, point 3: doses under about 0.5 mg/kg have
    not reliably shown much effect).
    """

    source: Source | None = None  # None: the ladder's own source
    min_mg: float = Field(gt=0)
    min_mg_per_kg: float = Field(ge=0)


class DoseLadder(Strict):
    """A dose ladder (Clark 2020, point 3): it starts at the guideline starting dose, then each
    session is one rung higher while the last was tolerated and the response is short of the
    goal, up to a ceiling."""

    source: Source | None = None  # None: the protocol's own source
    start: LadderStart
    steps_mg_per_kg_per_h: list[float] = Field(min_length=1)
    ceiling_mg_per_kg_per_h: float = Field(gt=0)
    session_duration_min: float = Field(gt=120)
    interval_days: int = Field(ge=1)
    condition: str


class Caps(Strict):
    source: Source | None = None  # None: the protocol's own source
    max_rate_mg_per_h: float | None = Field(default=None, gt=0)
    max_rate_mg_per_kg_per_h: float | None = Field(default=None, gt=0)


class Protocol(Entry):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    summary: str
    indications: list[str] = []
    route: Literal["iv", "sc"]
    settings: list[Literal["clinic", "ward", "icu"]] = Field(min_length=1)
    weight_basis: Literal["actual", "ideal", "adjusted"] = "actual"
    day_offsets: list[int] = [0]
    session_condition: str = ""
    bolus: AmountSpec | None = None
    steps: list[ProtocolStep] = []
    dose_ladder: DoseLadder | None = None
    caps: Caps | None = None
    observation_min: float = Field(default=0, ge=0)
    adjuncts: list[Adjunct] = []
    monitoring: list[str] = []
    local_defaults: list[str] = []
    notes: list[str] = []
    # The protocol's own follow-up timepoints, in days after the course's last session (the
    # defaults are outcome_rules.yaml's); given only with the source of the choice.
    follow_up_days: list[int] | None = Field(default=None, min_length=1, max_length=20)
    follow_up_source: Source | None = None

    @model_validator(mode="after")
    def _follow_up(self) -> Protocol:
        days = self.follow_up_days
        if days is None:
            if self.follow_up_source is not None:
                raise ValueError("follow_up_source is given without follow_up_days")
            return self
        if self.follow_up_source is None:
            raise ValueError(
                "follow_up_days needs follow_up_source (where the timepoints come from)"
            )
        if any(not 1 <= d <= 3 * 366 for d in days):
            raise ValueError("follow_up_days: days after the last session, 1 to 1098")
        if days != sorted(set(days)):
            raise ValueError("follow_up_days must be increasing, each day once")
        return self

    @model_validator(mode="after")
    def _steps_or_ladder(self) -> Protocol:
        if bool(self.steps) == (self.dose_ladder is not None):
            raise ValueError("a protocol needs either steps or a dose_ladder, not both")
        if self.steps and self.steps[0].fraction_of_previous is not None:
            raise ValueError("the first step cannot be a fraction of a previous step")
        if sorted(set(self.day_offsets)) != self.day_offsets or self.day_offsets[0] < 0:
            raise ValueError("day_offsets must be increasing, distinct and not negative")
        return self


class EffectiveDose(Entry):
    """The smallest session dose with evidence of effect: a session below it gets a finding.

    A session is below it when its total is under ``min_total_mg``, or under
    ``min_total_mg_per_kg`` x dosing weight, or when it runs ``min_duration_min`` or less.
    """

    id: str
    min_total_mg: float = Field(gt=0)
    min_total_mg_per_kg: float = Field(ge=0)
    min_duration_min: float = Field(ge=0)
    severity: Literal["warning", "info"]


class BodySizeFormula(Entry):
    """Coefficients of a body-size scalar (e.g. Devine ideal body weight)."""

    id: str
    sex: Literal["male", "female", "any"]
    base_kg: float = 0
    per_inch_over_60_kg: float = 0
    fraction_of_excess: float = 0


class PolicyRule(Entry):
    """An institutional rule that screening or signing applies (configurable by the clinic)."""

    id: str
    value: float
    unit: str
    severity: FindingSeverity
    message: str


class Knowledge:
    """All clinical knowledge, validated and cross-checked, loaded once."""

    FILES = (
        "conditions",
        "indications",
        "contraindications",
        "interactions",
        "adverse_effects",
        "medicines",
        "protocols",
        "drug_library",
        "pump",
        "dose_evidence",
        "body_size",
        "policy",
        "opioid_conversion",
        "opioid_tapering",
        "session_rules",
        "finding_codes",
    )

    def __init__(self) -> None:
        self.bibliography: Bibliography = bibliography()
        self.conditions: ConditionsFile = load_entries(  # type: ignore[assignment]
            "conditions.yaml", Condition, kind="conditions", file_model=ConditionsFile
        )
        self.indications = load_entries("indications.yaml", IndicationEvidence, kind="indications")
        self.contraindications = load_entries(
            "contraindications.yaml", Contraindication, kind="contraindications"
        )
        self.interactions = load_entries("interactions.yaml", Interaction, kind="interactions")
        self.adverse_effects = load_entries(
            "adverse_effects.yaml", AdverseEffect, kind="adverse_effects"
        )
        self.medicines: MedicineVocabulary = load_medicines()
        self.protocols = load_entries("protocols.yaml", Protocol, kind="protocols")
        self.drug_library = load_entries("drug_library.yaml", SettingLimits, kind="drug_library")
        self.pump = load_entries("pump.yaml", PumpType, kind="pump")
        self.dose_evidence = load_entries("dose_evidence.yaml", EffectiveDose, kind="dose_evidence")
        self.body_size = load_entries("body_size.yaml", BodySizeFormula, kind="body_size")
        self.policy = load_entries("policy.yaml", PolicyRule, kind="policy")
        self.opioid_conversion = load_entries(
            "opioid_conversion.yaml", ConversionTable, kind="opioid_conversion"
        )
        self.opioid_tapering = load_entries(
            "opioid_tapering.yaml", TaperRule, kind="opioid_tapering"
        )
        self.session_rules: SessionRulesFile = load_entries(  # type: ignore[assignment]
            "session_rules.yaml",
            SideEffectRule,
            kind="session_rules",
            file_model=SessionRulesFile,
        )
        self.finding_codes = load_entries(
            "finding_codes.yaml", FindingCode, kind="finding_codes", id_field="code"
        )
        self._codes = {c.code: c for c in self.finding_codes.entries}
        self._cross_check()

    def _cross_check(self) -> None:
        for name in self.FILES:
            self.bibliography.check(cites_in(getattr(self, name)), f"{name}.yaml")
        files = {f"{name}.yaml" for name in self.FILES}
        bad_from = [
            f"finding_codes.yaml {c.code}: source_from {c.source_from!r} is not a knowledge file"
            for c in self.finding_codes.entries
            if c.source_from
            and c.source_from
            not in files | {"instruments.yaml", "ledger_rules.yaml", "outcome_rules.yaml"}
        ]
        if bad_from:
            raise KnowledgeError("; ".join(bad_from))
        known = {c.id for c in self.conditions.entries}
        refs: list[tuple[str, str]] = []
        for ind in self.indications.entries:
            refs += [(f"indications.yaml {ind.id}", c) for c in ind.conditions]
        for ci in self.contraindications.entries:
            refs += [(f"contraindications.yaml {ci.id}", c) for c in ci.conditions]
        for p in self.protocols.entries:
            refs += [(f"protocols.yaml {p.id}", c) for c in p.indications]
        for amb in self.conditions.ambiguous:
            refs += [
                (f"conditions.yaml ambiguous {amb.terms[0]!r}", m.condition)
                for m in amb.meanings
                if m.condition
            ]
        missing = [f"{where}: unknown condition {cid!r}" for where, cid in refs if cid not in known]
        if missing:
            raise KnowledgeError("; ".join(missing))
        settings = {s.id for s in self.drug_library.entries}
        if settings != {"clinic", "ward", "icu"}:
            raise KnowledgeError("drug_library.yaml: needs exactly the settings clinic, ward, icu")
        self._check_medicine_references()

    def _check_medicine_references(self) -> None:
        opioid_ids = {i.id for i in self.medicines.in_class("opioid")}
        problems = [
            f"opioid_conversion.yaml {table.id}: {oid!r} is not an opioid of medicines.yaml"
            for table in self.opioid_conversion.entries
            for oid in sorted(table.opioid_ids - opioid_ids)
        ]
        ingredients = {i.id for i in self.medicines.ingredients}
        classes = {c.id for c in self.medicines.classes}
        for inter in self.interactions.entries:
            problems += [
                f"interactions.yaml {inter.id}: unknown ingredient {i!r} (not in medicines.yaml)"
                for i in inter.ingredients
                if i not in ingredients
            ]
            problems += [
                f"interactions.yaml {inter.id}: unknown class {c!r} (not in medicines.yaml)"
                for c in inter.classes
                if c not in classes
            ]
        if problems:
            raise KnowledgeError("; ".join(problems))

    @property
    def opioid_ids(self) -> tuple[str, ...]:
        """The ingredient ids of every opioid in the medicine vocabulary."""
        return tuple(i.id for i in self.medicines.in_class("opioid"))

    def condition(self, condition_id: str) -> Condition:
        for c in self.conditions.entries:
            if c.id == condition_id:
                return c
        raise KeyError(condition_id)

    def protocol(self, protocol_id: str) -> Protocol:
        for p in self.protocols.entries:
            if p.id == protocol_id:
                return p
        known = ", ".join(p.id for p in self.protocols.entries)
        raise KeyError(f"unknown protocol {protocol_id!r}; known protocols: {known}")

    @property
    def effective_dose(self) -> EffectiveDose:
        """The rule for a session below the dose with evidence of effect."""
        return self.dose_evidence.entries[0]

    def policy_rule(self, rule_id: str) -> PolicyRule:
        for r in self.policy.entries:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)

    def conversion_table(self, table_id: str) -> ConversionTable:
        for t in self.opioid_conversion.entries:
            if t.id == table_id:
                return t
        known = ", ".join(t.id for t in self.opioid_conversion.entries)
        raise KeyError(f"unknown conversion table {table_id!r}; known tables: {known}")

    def finding_code(self, code: str) -> FindingCode:
        """The catalogue entry of a finding code: exact, else its family ('family:*')."""
        entry = self._codes.get(code) or self._codes.get(code.split(":", 1)[0] + ":*")
        if entry is None:
            raise KeyError(f"finding code {code!r} is not in finding_codes.yaml")
        return entry


@cache
def knowledge() -> Knowledge:
    """The knowledge base, loaded and validated once per process."""
    return Knowledge()
