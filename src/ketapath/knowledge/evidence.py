"""Schema of ``evidence.yaml``: the published evidence on intravenous ketamine for chronic
pain, transcribed as data.

- ``entries``: one study per row of Table 2 of Maher et al. 2017 (26 studies; Graven-Nielsen
  et al. has two rows, Part 1 and Part 2). Each table cell is kept as our text copy of the
  review prints it (``raw``, fragment by fragment) with what it says (``reading``); a cell the
  copy leaves unreadable or ambiguous is ``unreadable`` with its raw text and a note, and is
  never the basis of a number. Seven studies' rows are not in our copy at all
  (``in_our_copy: false``): they have no cells, only what the review's Methods and text say.
- The total dose normalised to 70 kg is computed only from readable cells that give enough to
  compute it (``dose.total``: the terms, the result and the arithmetic in words); otherwise
  ``dose.not_computed`` says why. The relief duration is in days only where the relief cell
  states one (``relief.stated``: the words read and the conversion); otherwise
  ``relief.not_stated`` says why.
- The review's own text sometimes states a study's normalised dose and relief where the table
  does not (``text_point``); that is kept apart from the table's values, quoted, with its
  locator.
- ``levels``: Table 1 of the review (Oxford CEBM levels of evidence); ``design_classes``: the
  review's Methods sorting the 26 studies by design, each class with the Table 1 level that
  its design meets (ketapath's reading: the review gives no level per study).
- ``recommendations``: Table 6 of the ASRA/AAPM/ASA consensus 2018, one row per
  recommendation, with its grade and level of certainty.

The schema checks what can be checked: every number follows from its terms, no number rests
on an unreadable cell, the design classes cover the studies exactly, every citation resolves,
and every study's own reference (``publication``) is complete (authors, year, journal,
volume, pages) and either has its DOI and PMID or says why not (``publication_problems``).
Validated on load (``ketapath knowledge check``).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from ketapath.knowledge.base import (
    Cite,
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
from ketapath.knowledge.bibliography import Bibliography, bibliography

FILENAME = "evidence.yaml"
KIND = "evidence"
REVIEW = "maher-2017-iv-ketamine-review"
CONSENSUS = "cohen-2018-ketamine-consensus"
REFERENCE_WEIGHT_KG = 70.0
# Days in each unit a relief duration is stated in; a month is a mean Gregorian month.
DAYS_PER_UNIT: dict[str, float] = {
    "min": 1 / 1440,
    "h": 1 / 24,
    "d": 1.0,
    "wk": 7.0,
    "mo": 365.25 / 12,
}
# How close a number written in the file must be to what its terms give.
TOLERANCE = 0.001

CellName = Literal[
    "indication",
    "size",
    "design",
    "duration",
    "setting",
    "dose",
    "combination",
    "relief",
    "secondary",
    "side_effects",
]
CELL_NAMES: tuple[CellName, ...] = (
    "indication",
    "size",
    "design",
    "duration",
    "setting",
    "dose",
    "combination",
    "relief",
    "secondary",
    "side_effects",
)
# The column headings of Table 2, as the review prints them.
CELL_HEADINGS: dict[str, str] = {
    "indication": "Clinical Indication",
    "size": "Study Size",
    "design": "Study Design",
    "duration": "Duration of Infusion",
    "setting": "Study Setting",
    "dose": "Dose Range",
    "combination": "Combination Therapy",
    "relief": "Duration of Pain Relief",
    "secondary": "Secondary Outcomes",
    "side_effects": "Side Effects",
}
SettingValue = Literal["icu", "inpatient", "outpatient", "not-reported", "unknown"]
SETTING_LABELS: dict[str, str] = {
    "icu": "intensive care unit",
    "inpatient": "inpatient",
    "outpatient": "outpatient",
    "not-reported": "not reported",
    "unknown": "not readable in our copy",
}
DoseUnit = Literal["mg", "mg/kg", "µg/kg", "mg/h", "mg/kg/h", "µg/kg/h"]
ReliefUnit = Literal["min", "h", "d", "wk", "mo"]
Grade = Literal["A", "B", "C", "D", "I"]
SLUG = r"^[a-z0-9][a-z0-9-]*$"


class Cell(Strict):
    """One cell of Table 2: its text in our copy and what it says.

    ``raw`` holds the cell's text exactly as our copy prints it, one fragment per printed line
    (an empty tuple: the cell is empty in our copy). ``reading`` is what the cell says when
    that differs from the raw text joined (a fragment moved by the extraction, an obvious
    misprint), with ``note`` saying why. An ``unreadable`` cell has no reading, only its raw
    text and a note: it is never guessed and never the basis of a number.
    """

    raw: tuple[str, ...] = ()
    reading: str | None = Field(default=None, min_length=1)
    unreadable: bool = False
    note: str = ""

    @model_validator(mode="after")
    def _readable_or_explained(self) -> Cell:
        if self.unreadable:
            if self.reading is not None:
                raise ValueError("an unreadable cell has no reading")
            if not self.note:
                raise ValueError("an unreadable cell needs a note saying what is wrong")
        elif not self.raw and self.reading is None:
            raise ValueError("an empty cell is unreadable (or needs a reading with a note)")
        elif self.reading is not None and self.reading != self.joined and not self.note:
            raise ValueError("a reading that differs from the raw text needs a note")
        return self

    @property
    def joined(self) -> str:
        """The raw fragments joined by single spaces, stripped."""
        return " ".join(" ".join(part.split()) for part in self.raw).strip()

    @property
    def text(self) -> str | None:
        """What the cell says; None when it is unreadable."""
        if self.unreadable:
            return None
        return self.reading if self.reading is not None else self.joined


class StudyCells(Strict):
    """The ten cells of a study's row (the Reference cell is the study's ``label``)."""

    indication: Cell
    size: Cell
    design: Cell
    duration: Cell
    setting: Cell
    dose: Cell
    combination: Cell
    relief: Cell
    secondary: Cell
    side_effects: Cell

    def cell(self, name: str) -> Cell:
        cell = getattr(self, name)
        assert isinstance(cell, Cell)
        return cell

    @property
    def unreadable(self) -> tuple[str, ...]:
        """The names of the cells that cannot be read, in the table's order."""
        return tuple(name for name in CELL_NAMES if self.cell(name).unreadable)


class DoseTerm(Strict):
    """One part of a dose (a bolus, an infusion), per the table: an amount or a rate (``low``
    to ``high`` where the table gives a range), for ``hours_low`` to ``hours_high`` hours when
    it is a rate, ``times`` times."""

    what: str = Field(min_length=2, max_length=80)
    low: float = Field(gt=0, allow_inf_nan=False)
    high: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    unit: DoseUnit
    hours_low: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    hours_high: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    times: int = Field(default=1, ge=1, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> DoseTerm:
        if self.high is not None and self.high < self.low:
            raise ValueError("high is below low")
        per_hour = self.unit.endswith("/h")
        if per_hour != (self.hours_low is not None):
            raise ValueError("a rate needs its hours, and only a rate has hours")
        if self.hours_high is not None and (
            self.hours_low is None or self.hours_high < self.hours_low
        ):
            raise ValueError("hours_high needs hours_low below it")
        return self

    def mg_for_70_kg(self) -> tuple[float, float]:
        """The term's amount in mg for a 70 kg patient: (lowest, highest)."""
        scale = {"mg": 1.0, "mg/kg": REFERENCE_WEIGHT_KG, "µg/kg": REFERENCE_WEIGHT_KG / 1000}
        base = self.unit.removesuffix("/h")
        factor = scale[base] * self.times
        hours_low = self.hours_low if self.hours_low is not None else 1.0
        hours_high = self.hours_high if self.hours_high is not None else hours_low
        high = self.high if self.high is not None else self.low
        return (self.low * factor * hours_low, high * factor * hours_high)


class TotalDose(Strict):
    """The total dose normalised to 70 kg, computed from the table: terms, result, words.

    ``cells`` names the cells the arithmetic reads (none of them may be unreadable).
    """

    cells: tuple[CellName, ...] = Field(min_length=1)
    terms: tuple[DoseTerm, ...] = Field(min_length=1)
    low_mg: float = Field(gt=0, allow_inf_nan=False)
    high_mg: float = Field(gt=0, allow_inf_nan=False)
    arithmetic: str = Field(min_length=10, max_length=600)

    @model_validator(mode="after")
    def _follows_from_terms(self) -> TotalDose:
        low = sum(term.mg_for_70_kg()[0] for term in self.terms)
        high = sum(term.mg_for_70_kg()[1] for term in self.terms)
        if abs(low - self.low_mg) > TOLERANCE or abs(high - self.high_mg) > TOLERANCE:
            raise ValueError(
                f"low_mg/high_mg {self.low_mg}/{self.high_mg} do not follow from the terms "
                f"({low:g}/{high:g} mg)"
            )
        return self


class Dose(Strict):
    """Either the computed total (``total``) or why it cannot be computed (``not_computed``)."""

    total: TotalDose | None = None
    not_computed: str = Field(default="", max_length=600)

    @model_validator(mode="after")
    def _one(self) -> Dose:
        if (self.total is None) == (not self.not_computed):
            raise ValueError("give the total or the reason it is not computed, not both")
        return self


class ReliefStated(Strict):
    """A duration as the source states it (``quote``), as an amount of a unit.

    ``at_least``: the source says "more than" (the duration is a lower bound).
    """

    quote: str = Field(min_length=2, max_length=200)
    amount: float = Field(gt=0, allow_inf_nan=False)
    unit: ReliefUnit
    at_least: bool = False

    @property
    def days(self) -> float:
        return self.amount * DAYS_PER_UNIT[self.unit]


class Relief(Strict):
    """The relief duration in days read from the relief cell (``stated``, ``days``, how it
    was read in ``parse``), or why there is none (``not_stated``)."""

    stated: ReliefStated | None = None
    days: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    parse: str = Field(default="", max_length=600)
    not_stated: str = Field(default="", max_length=600)

    @model_validator(mode="after")
    def _consistent(self) -> Relief:
        if self.stated is None:
            if self.days is not None or self.parse or not self.not_stated:
                raise ValueError("without a stated duration: no days, and a reason")
            return self
        if self.not_stated or not self.parse or self.days is None:
            raise ValueError("a stated duration needs its days and how it was read")
        if abs(self.days - self.stated.days) > TOLERANCE:
            raise ValueError(f"days {self.days} is not {self.stated.days:g}")
        return self


class TextPoint(Strict):
    """A study's normalised dose and relief as the review's text states them (not the
    table's): the quote, where it is, and the numbers it gives."""

    quote: str = Field(min_length=20, max_length=600)
    at: str = Field(min_length=3, max_length=200)
    dose_low_mg: float = Field(gt=0, allow_inf_nan=False)
    dose_high_mg: float = Field(gt=0, allow_inf_nan=False)
    relief: ReliefStated
    relief_days: float = Field(gt=0, allow_inf_nan=False)
    parse: str = Field(min_length=10, max_length=600)

    @model_validator(mode="after")
    def _consistent(self) -> TextPoint:
        if self.dose_high_mg < self.dose_low_mg:
            raise ValueError("dose_high_mg is below dose_low_mg")
        if abs(self.relief_days - self.relief.days) > TOLERANCE:
            raise ValueError(f"relief_days {self.relief_days} is not {self.relief.days:g}")
        if self.relief.quote not in self.quote:
            raise ValueError("the relief's words are not in the quote")
        return self


class Mention(Strict):
    """What the review's text says about the study, quoted, with where it says it."""

    quote: str = Field(min_length=10, max_length=800)
    at: str = Field(min_length=3, max_length=200)


class Study(Entry):
    """One row of Table 2 of Maher et al. 2017 (one study, or one part of a study)."""

    id: str = Field(pattern=SLUG, max_length=60)
    reference: int = Field(ge=1, le=100, description="Its number in the review's references.")
    label: str = Field(min_length=2, max_length=80, description="The row's Reference cell.")
    part: str = Field(default="", max_length=20)
    publication: Cite
    in_our_copy: bool
    design_class: str = Field(pattern=SLUG)
    indications: tuple[str, ...] = ()
    indications_basis: str = Field(min_length=5, max_length=400)
    cells: StudyCells | None = None
    n: int | None = Field(default=None, ge=1, le=100_000)
    n_note: str = Field(default="", max_length=400)
    setting: SettingValue
    setting_basis: str = Field(min_length=5, max_length=400)
    dose: Dose
    relief: Relief
    text_point: TextPoint | None = None
    mentions: tuple[Mention, ...] = ()
    note: str = Field(default="", max_length=1200)

    @model_validator(mode="after")
    def _numbers_rest_on_readable_cells(self) -> Study:
        if self.in_our_copy != (self.cells is not None):
            raise ValueError("a row in our copy has its cells, and only such a row")
        if self.source.cite[0].ref != REVIEW or not self.source.cite[0].at.startswith("Table 2"):
            raise ValueError(f"the first citation is the review's Table 2 ({REVIEW})")
        cells = self.cells
        if cells is None:
            if self.n is not None or self.dose.total or self.relief.stated:
                raise ValueError("a row not in our copy has no numbers from the table")
            return self
        if self.n is None and not self.n_note:
            raise ValueError("a study without its size needs n_note saying why")
        if self.n is not None:
            size = cells.size.text
            if size is None or str(self.n) not in size.split():
                raise ValueError("n must be the number the readable Study Size cell gives")
        if self.dose.total is not None:
            for name in self.dose.total.cells:
                if cells.cell(name).unreadable:
                    raise ValueError(f"the dose rests on the unreadable {name} cell")
        if self.relief.stated is not None:
            relief = cells.relief.text
            if relief is None or self.relief.stated.quote not in relief:
                raise ValueError("the relief's words are not in the readable relief cell")
        return self

    @property
    def unreadable_cells(self) -> tuple[str, ...]:
        return self.cells.unreadable if self.cells is not None else ()


class CebmLevel(Strict):
    """One level of Table 1 of the review (Oxford CEBM levels of evidence)."""

    level: int = Field(ge=1, le=5)
    treatment_benefits: str = Field(min_length=5)
    treatment_harms: str = Field(min_length=5)


class DesignClass(Strict):
    """One design of the review's Methods, the studies it names (by reference number), and
    the Table 1 level such a design meets for treatment benefits."""

    id: str = Field(pattern=SLUG)
    label: str = Field(min_length=5, max_length=120)
    references: tuple[int, ...] = Field(min_length=1)
    cebm_level: int = Field(ge=1, le=5)
    cebm_basis: str = Field(min_length=20, max_length=600)
    source: Source


class IndicationGroup(Strict):
    """A group of indications the studies and the consensus recommendations are filed under."""

    id: str = Field(pattern=SLUG)
    label: str = Field(min_length=3, max_length=80)


class Recommendation(Strict):
    """One recommendation of Table 6 of the ASRA/AAPM/ASA consensus 2018."""

    id: str = Field(pattern=SLUG)
    category: str = Field(min_length=3, max_length=80)
    number: int = Field(ge=1, le=20)
    recommendation: str = Field(min_length=10, max_length=600)
    level_of_evidence: str = Field(min_length=5, max_length=80, description="As printed.")
    grade: Grade
    certainty: str = Field(min_length=3, max_length=40)
    indications: tuple[str, ...] = ()
    source: Source

    @model_validator(mode="after")
    def _as_printed(self) -> Recommendation:
        if f"Grade {self.grade}, {self.certainty} certainty" not in self.level_of_evidence:
            raise ValueError("grade and certainty must be those of level_of_evidence")
        return self


class Conventions(Strict):
    """The fixed numbers every computed value uses (written in the file so a reader sees
    them; the code refuses a file whose numbers differ from its own)."""

    reference_weight_kg: float
    days_per_month: float
    note: str = Field(min_length=20)

    @model_validator(mode="after")
    def _ours(self) -> Conventions:
        if self.reference_weight_kg != REFERENCE_WEIGHT_KG:
            raise ValueError(f"reference_weight_kg must be {REFERENCE_WEIGHT_KG:g}")
        if abs(self.days_per_month - DAYS_PER_UNIT["mo"]) > 1e-9:
            raise ValueError(f"days_per_month must be {DAYS_PER_UNIT['mo']}")
        return self


class EvidenceFile(KnowledgeFile[Study]):
    """evidence.yaml: the studies (``entries``) with the tables they are read against."""

    conventions: Conventions
    table_source: Source
    levels: tuple[CebmLevel, ...]
    levels_source: Source
    design_classes: tuple[DesignClass, ...]
    indication_groups: tuple[IndicationGroup, ...]
    recommendations: tuple[Recommendation, ...]

    @model_validator(mode="after")
    def _consistent(self) -> EvidenceFile:
        if [level.level for level in self.levels] != [1, 2, 3, 4, 5]:
            raise ValueError("levels must be Table 1's levels 1 to 5, in order")
        classes = {c.id: c for c in self.design_classes}
        named = [r for c in self.design_classes for r in c.references]
        if len(named) != len(set(named)):
            raise ValueError("a reference is in two design classes")
        studied = {s.reference for s in self.entries}
        if set(named) != studied:
            raise ValueError("the design classes must name exactly the studies' references")
        groups = {g.id for g in self.indication_groups}
        for study in self.entries:
            if study.design_class not in classes:
                raise ValueError(f"{study.id}: unknown design class {study.design_class}")
            if study.reference not in classes[study.design_class].references:
                raise ValueError(f"{study.id}: its design class does not name it")
            unknown = set(study.indications) - groups
            if unknown:
                raise ValueError(f"{study.id}: unknown indications {sorted(unknown)}")
        for rec in self.recommendations:
            unknown = set(rec.indications) - groups
            if unknown:
                raise ValueError(f"{rec.id}: unknown indications {sorted(unknown)}")
        if len({r.id for r in self.recommendations}) != len(self.recommendations):
            raise ValueError("two recommendations share an id")
        return self

    def study(self, study_id: str) -> Study:
        """The study with this id (``KeyError`` if there is none)."""
        for study in self.entries:
            if study.id == study_id:
                return study
        raise KeyError(study_id)

    def design_class(self, class_id: str) -> DesignClass:
        for design in self.design_classes:
            if design.id == class_id:
                return design
        raise KeyError(class_id)

    def cebm_level(self, study: Study) -> int:
        """The Table 1 level of the study's design (ketapath's reading of the review)."""
        return self.design_class(study.design_class).cebm_level

    def group_label(self, group_id: str) -> str:
        for group in self.indication_groups:
            if group.id == group_id:
                return group.label
        raise KeyError(group_id)


def publication_problems(data: EvidenceFile, refs: Bibliography) -> list[str]:
    """What is wrong with the studies' own references (``publication``), one line each.

    Each study cites its article in the bibliography with the details a reader needs to find
    it: authors (the first one's surname is the row's first word), the year in the study's
    id, title, journal, volume and pages. A DOI or PMID is never guessed: where one is
    empty, the entry's ``verified`` must say so (name "DOI" or "PMID" and why it is empty).
    """
    problems: list[str] = []
    for study in data.entries:
        if study.publication.ref not in refs:
            continue  # reported by Bibliography.check with every other unknown cite
        ref = refs.get(study.publication.ref)
        where = f"{study.id}: publication {ref.id}"
        if ref.kind not in ("article", "review"):
            problems.append(f"{where} is a {ref.kind}, not an article")
        missing = [
            name
            for name, value in (
                ("authors", ref.authors),
                ("year", ref.year),
                ("journal", ref.container),
                ("volume", ref.volume),
                ("pages", ref.pages),
            )
            if not value
        ]
        if missing:
            problems.append(f"{where} lacks its {', '.join(missing)}")
        if ref.authors and study.label.split()[0] != ref.authors[0].rsplit(" ", 1)[0]:
            problems.append(f"{where}: first author {ref.authors[0]!r} is not {study.label!r}")
        if ref.year is not None and f"-{ref.year}" not in study.id:
            problems.append(f"{where}: year {ref.year} is not the study's")
        for field, name in ((ref.doi, "DOI"), (ref.pmid, "PMID")):
            if not field and name not in ref.verified:
                problems.append(f"{where} has no {name} and its 'verified' does not say why")
    return problems


def load_evidence(path: Path) -> EvidenceFile:
    """An evidence file, validated: ``KnowledgeError`` naming the file and the problem."""
    raw = read_yaml(path)
    try:
        evidence = EvidenceFile.model_validate(raw)
    except ValidationError as exc:
        raise KnowledgeError(f"{path.name}: {format_validation_error(exc, raw)}") from exc
    if evidence.kind != KIND:
        raise KnowledgeError(f"{path.name}: kind is {evidence.kind!r}, expected {KIND!r}")
    ids = [s.id for s in evidence.entries]
    if len(ids) != len(set(ids)):
        raise KnowledgeError(f"{path.name}: two studies share an id")
    refs = bibliography()
    refs.check(cites_in(evidence), path.name)
    problems = publication_problems(evidence, refs)
    if problems:
        raise KnowledgeError(f"{path.name}: {'; '.join(problems)}")
    return evidence


@cache
def evidence() -> EvidenceFile:
    """The packaged evidence (``evidence.yaml``), loaded once per process."""
    return load_evidence(data_path(FILENAME))
