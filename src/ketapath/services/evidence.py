"""The evidence explorer: the published studies of ``knowledge/data/evidence.yaml`` as typed
views, filtered, and as CSV.

- ``list_studies``: the studies that pass every filter given (indication group, design, care
  setting, CEBM level, a dose range and a relief range), in the file's order (by the review's
  reference number); ``get_study``: one study; ``studies_csv``: the filtered studies as CSV.
- ``recommendations`` and ``levels``: Table 6 of the ASRA/AAPM/ASA consensus 2018, and Table 1
  of the review (CEBM levels) with the designs each level covers.

A study's dose and relief for filtering and plotting (``dose_low_mg`` .. ``relief_days``) are
the table's own values where its readable cells give them, else the values the review's text
states for the study (``dose_from`` and ``relief_from`` say which: ``table`` or ``text``),
else none. A dose or relief filter keeps only studies that have the value: a study whose dose
cannot be computed is never taken to be inside a dose range. A dose range matches a study
whose dose range overlaps it.

Published data, readable by every signed-in role (``evidence.read``); reading it writes
nothing and is not audited (it holds no patient's data).
"""

from __future__ import annotations

import csv
import io
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ketapath.domain.findings import citation_text
from ketapath.knowledge.bibliography import bibliography
from ketapath.knowledge.evidence import (
    CELL_HEADINGS,
    CELL_NAMES,
    SETTING_LABELS,
    EvidenceFile,
    Study,
    evidence,
)
from ketapath.services.errors import NotFound
from ketapath.services.permissions import Actor
from ketapath.services.unit import check
from ketapath.store.db import Database

IndicationId = Literal[
    "crps",
    "spinal-cord-injury",
    "phantom-limb",
    "postherpetic-neuralgia",
    "fibromyalgia",
    "cancer",
    "mixed-neuropathic",
    "sickle-cell",
    "combat-limb-injury",
    "headache",
    "low-back-pain",
]
DesignId = Literal[
    "randomized-placebo-controlled",
    "randomized-not-placebo-controlled",
    "prospective-observational",
    "retrospective",
]
SettingId = Literal["icu", "inpatient", "outpatient", "not-reported", "unknown"]
Origin = Literal["table", "text"]
# Bounds of the numbers a filter takes: far beyond any dose or relief a study reports.
MAX_DOSE_MG = 1_000_000.0
MAX_RELIEF_DAYS = 36_500.0
STUDY_ID_PATTERN = r"^[a-z0-9][a-z0-9-]*$"


class StudyFilters(BaseModel):
    """What the studies are filtered by; every filter left out keeps every study."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    indication: IndicationId | None = Field(
        default=None, description="An indication group the study is filed under."
    )
    design: DesignId | None = Field(default=None, description="The study's design class.")
    setting: SettingId | None = Field(
        default=None, description="The care setting (unknown: not readable in our copy)."
    )
    cebm_level: int | None = Field(
        default=None, ge=1, le=5, description="The CEBM level (Table 1) of the study's design."
    )
    dose_min_mg: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DOSE_MG,
        allow_inf_nan=False,
        description="Lowest total dose normalised to 70 kg, mg.",
    )
    dose_max_mg: float | None = Field(
        default=None,
        ge=0,
        le=MAX_DOSE_MG,
        allow_inf_nan=False,
        description="Highest total dose normalised to 70 kg, mg.",
    )
    relief_min_days: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RELIEF_DAYS,
        allow_inf_nan=False,
        description="Shortest relief duration, days.",
    )
    relief_max_days: float | None = Field(
        default=None,
        ge=0,
        le=MAX_RELIEF_DAYS,
        allow_inf_nan=False,
        description="Longest relief duration, days.",
    )

    @model_validator(mode="after")
    def _ranges_in_order(self) -> StudyFilters:
        if (
            self.dose_min_mg is not None
            and self.dose_max_mg is not None
            and self.dose_min_mg > self.dose_max_mg
        ):
            raise ValueError("the lowest dose is above the highest dose")
        if (
            self.relief_min_days is not None
            and self.relief_max_days is not None
            and self.relief_min_days > self.relief_max_days
        ):
            raise ValueError("the shortest relief is above the longest relief")
        return self

    @property
    def active(self) -> bool:
        """Whether any filter is set."""
        return any(getattr(self, name) is not None for name in type(self).model_fields)


class CellView(BaseModel):
    """One cell of the study's Table 2 row: what it says, or that it cannot be read."""

    name: str
    heading: str = Field(description="The column heading of Table 2.")
    text: str | None = Field(description="What the cell says; null when it is unreadable.")
    raw: list[str] = Field(description="The cell exactly as our copy prints it, by line.")
    unreadable: bool
    note: str


class MentionView(BaseModel):
    """What the review's text says about the study."""

    quote: str
    at: str
    citation: str


class TextPointView(BaseModel):
    """The normalised dose and relief the review's text states for the study."""

    quote: str
    citation: str
    dose_low_mg: float
    dose_high_mg: float
    relief_days: float
    relief_at_least: bool
    parse: str


class StudyView(BaseModel):
    """One study (one row of Table 2 of Maher et al. 2017), as the explorer shows it."""

    id: str
    reference: int = Field(description="The study's number in the review's reference list.")
    label: str
    part: str
    title: str = Field(description="The study's name: its short citation, and its part.")
    citation: str = Field(description="Where the row is: the review's table and row.")
    publication: str = Field(description="The study itself, as a short citation.")
    publication_ref: str = Field(description="The study's id in the bibliography.")
    publication_full: str = Field(
        description="The study's full reference (Vancouver), with DOI and PMID where known."
    )
    publication_doi: str = Field(description="The study's DOI ('' where none was confirmed).")
    publication_pmid: str = Field(description="The study's PMID ('' where none was confirmed).")
    publication_doi_url: str = Field(description="https://doi.org/<DOI>, or ''.")
    publication_pubmed_url: str = Field(description="The PubMed record's address, or ''.")
    publication_checked: str = Field(
        description="What was checked about the reference, and why a DOI or PMID is missing."
    )
    in_our_copy: bool = Field(description="False: the row is not in our copy of the table.")
    design: str
    design_label: str
    cebm_level: int
    cebm_basis: str
    indications: list[str]
    indication_labels: list[str]
    indications_basis: str
    n: int | None
    n_note: str
    setting: str
    setting_label: str
    setting_basis: str
    cells: list[CellView]
    unreadable_cells: list[str]
    table_dose_low_mg: float | None = Field(
        description="Total dose normalised to 70 kg computed from the table (lowest), mg."
    )
    table_dose_high_mg: float | None
    dose_arithmetic: str
    dose_not_computed: str
    table_relief_days: float | None = Field(description="Relief read from the table, days.")
    table_relief_at_least: bool
    relief_parse: str
    relief_not_stated: str
    text_point: TextPointView | None
    dose_low_mg: float | None = Field(description="The dose filtered and plotted (lowest), mg.")
    dose_high_mg: float | None
    dose_from: Origin | None
    relief_days: float | None = Field(description="The relief filtered and plotted, days.")
    relief_at_least: bool
    relief_from: Origin | None
    not_plotted: str = Field(description="Why the study is not on the plot; empty if it is.")
    not_plotted_brief: str = Field(description="The same in a few words.")
    mentions: list[MentionView]
    note: str


class RecommendationView(BaseModel):
    """One recommendation of Table 6 of the ASRA/AAPM/ASA consensus 2018."""

    id: str
    category: str
    number: int
    recommendation: str
    level_of_evidence: str
    grade: str
    certainty: str
    indications: list[str]
    citation: str
    note: str


class LevelView(BaseModel):
    """One level of Table 1 of the review, with the designs (and studies) it covers here."""

    level: int
    treatment_benefits: str
    treatment_harms: str
    designs: list[str] = Field(description="Labels of the design classes at this level.")
    studies: int = Field(description="How many rows of Table 2 are at this level.")
    citation: str


# -- views ----------------------------------------------------------------------------------
def _title(study: Study) -> str:
    """The study's name as shown: its short citation ('Eide et al. 1995'), and its part."""
    short = bibliography().get(study.publication.ref).short
    return f"{short}, {study.part}" if study.part else short


def _cells(study: Study) -> list[CellView]:
    if study.cells is None:
        return []
    views = []
    for name in CELL_NAMES:
        cell = study.cells.cell(name)
        views.append(
            CellView(
                name=name,
                heading=CELL_HEADINGS[name],
                text=cell.text,
                raw=list(cell.raw),
                unreadable=cell.unreadable,
                note=cell.note,
            )
        )
    return views


def _lower(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[:1].lower() + text[1:] if text[1:2].islower() else text


def _not_plotted(dose_from: str | None, relief_from: str | None, study: Study) -> str:
    """Why the study is not on the plot, in full (empty when it is)."""
    if dose_from and relief_from:
        return ""
    if not study.in_our_copy and not dose_from and not relief_from:
        return "the row is not in our copy of the table."
    reasons = []
    if not dose_from:
        reasons.append("no total dose: " + _lower(study.dose.not_computed))
    if not relief_from:
        reasons.append("no relief duration: " + _lower(study.relief.not_stated))
    return "; ".join(reasons) + "."


def _not_plotted_brief(dose_from: str | None, relief_from: str | None, study: Study) -> str:
    """The same in a few words, for the list beside the plot."""
    if dose_from and relief_from:
        return ""
    if not study.in_our_copy and not dose_from and not relief_from:
        return "the row is not in our copy"
    missing = [
        words
        for words, have in (("no total dose", dose_from), ("no relief duration", relief_from))
        if not have
    ]
    return " and ".join(missing)


def study_view(study: Study, data: EvidenceFile | None = None) -> StudyView:
    """The typed view of one study."""
    data = data or evidence()
    refs = bibliography()
    design = data.design_class(study.design_class)
    total, relief, point = study.dose.total, study.relief, study.text_point
    dose: tuple[float, float] | None = None
    dose_from: Origin | None = None
    if total is not None:
        dose, dose_from = (total.low_mg, total.high_mg), "table"
    elif point is not None:
        dose, dose_from = (point.dose_low_mg, point.dose_high_mg), "text"
    relief_days: float | None = None
    relief_at_least = False
    relief_from: Origin | None = None
    if relief.stated is not None and relief.days is not None:
        relief_days, relief_at_least, relief_from = relief.days, relief.stated.at_least, "table"
    elif point is not None:
        relief_days, relief_at_least = point.relief_days, point.relief.at_least
        relief_from = "text"
    publication = refs.get(study.publication.ref)
    return StudyView(
        id=study.id,
        reference=study.reference,
        label=study.label,
        part=study.part,
        title=_title(study),
        citation=citation_text(study.source),
        publication=publication.short,
        publication_ref=publication.id,
        publication_full=publication.full(),
        publication_doi=publication.doi,
        publication_pmid=publication.pmid,
        publication_doi_url=publication.doi_url,
        publication_pubmed_url=publication.pubmed_url,
        publication_checked=publication.verified,
        in_our_copy=study.in_our_copy,
        design=design.id,
        design_label=design.label,
        cebm_level=design.cebm_level,
        cebm_basis=design.cebm_basis,
        indications=list(study.indications),
        indication_labels=[data.group_label(g) for g in study.indications],
        indications_basis=study.indications_basis,
        n=study.n,
        n_note=study.n_note,
        setting=study.setting,
        setting_label=SETTING_LABELS[study.setting],
        setting_basis=study.setting_basis,
        cells=_cells(study),
        unreadable_cells=list(study.unreadable_cells),
        table_dose_low_mg=total.low_mg if total else None,
        table_dose_high_mg=total.high_mg if total else None,
        dose_arithmetic=total.arithmetic if total else "",
        dose_not_computed=study.dose.not_computed,
        table_relief_days=relief.days,
        table_relief_at_least=relief.stated.at_least if relief.stated else False,
        relief_parse=relief.parse,
        relief_not_stated=relief.not_stated,
        text_point=(
            TextPointView(
                quote=point.quote,
                citation=f"{refs.get(study.source.cite[0].ref).short}, {point.at}",
                dose_low_mg=point.dose_low_mg,
                dose_high_mg=point.dose_high_mg,
                relief_days=point.relief_days,
                relief_at_least=point.relief.at_least,
                parse=point.parse,
            )
            if point is not None
            else None
        ),
        dose_low_mg=dose[0] if dose else None,
        dose_high_mg=dose[1] if dose else None,
        dose_from=dose_from,
        relief_days=relief_days,
        relief_at_least=relief_at_least,
        relief_from=relief_from,
        not_plotted=_not_plotted(dose_from, relief_from, study),
        not_plotted_brief=_not_plotted_brief(dose_from, relief_from, study),
        mentions=[
            MentionView(
                quote=m.quote,
                at=m.at,
                citation=f"{refs.get(study.source.cite[0].ref).short}, {m.at}",
            )
            for m in study.mentions
        ],
        note=study.note,
    )


# -- filtering ------------------------------------------------------------------------------
def _overlaps(low: float | None, high: float | None, lo: float | None, hi: float | None) -> bool:
    """Whether the value range [low, high] meets the filter range [lo, hi] (None: open)."""
    if lo is None and hi is None:
        return True
    if low is None or high is None:
        return False
    return (lo is None or high >= lo) and (hi is None or low <= hi)


def matches(view: StudyView, filters: StudyFilters) -> bool:
    """Whether a study passes every filter given."""
    if filters.indication is not None and filters.indication not in view.indications:
        return False
    if filters.design is not None and view.design != filters.design:
        return False
    if filters.setting is not None and view.setting != filters.setting:
        return False
    if filters.cebm_level is not None and view.cebm_level != filters.cebm_level:
        return False
    if not _overlaps(view.dose_low_mg, view.dose_high_mg, filters.dose_min_mg, filters.dose_max_mg):
        return False
    return _overlaps(
        view.relief_days, view.relief_days, filters.relief_min_days, filters.relief_max_days
    )


def filter_studies(views: list[StudyView], filters: StudyFilters) -> list[StudyView]:
    """The views that pass the filters, in the order given."""
    return [view for view in views if matches(view, filters)]


def all_study_views() -> list[StudyView]:
    """Every study, in the file's order (by the review's reference number)."""
    data = evidence()
    return [study_view(study, data) for study in data.entries]


# -- use cases ------------------------------------------------------------------------------
def list_studies(db: Database, actor: Actor, filters: StudyFilters) -> list[StudyView]:
    """The studies that pass the filters, in the file's order."""
    check(db, actor, "evidence.read", entity="evidence")
    return filter_studies(all_study_views(), filters)


def get_study(db: Database, actor: Actor, study_id: str) -> StudyView:
    """One study by its id (``NotFound`` if there is none)."""
    check(db, actor, "evidence.read", entity="evidence", study_id=study_id)
    data = evidence()
    try:
        return study_view(data.study(study_id), data)
    except KeyError:
        raise NotFound(f"study_id: no study {study_id!r}.", field="study_id") from None


def recommendations(db: Database, actor: Actor) -> list[RecommendationView]:
    """Table 6 of the ASRA/AAPM/ASA consensus 2018, one row per recommendation."""
    check(db, actor, "evidence.read", entity="evidence")
    return [
        RecommendationView(
            id=r.id,
            category=r.category,
            number=r.number,
            recommendation=r.recommendation,
            level_of_evidence=r.level_of_evidence,
            grade=r.grade,
            certainty=r.certainty,
            indications=list(r.indications),
            citation=citation_text(r.source),
            note=r.source.note,
        )
        for r in evidence().recommendations
    ]


def levels(db: Database, actor: Actor) -> list[LevelView]:
    """Table 1 of the review (CEBM levels), with the designs and rows at each level."""
    check(db, actor, "evidence.read", entity="evidence")
    data = evidence()
    citation = citation_text(data.levels_source)
    views = []
    for level in data.levels:
        designs = [d for d in data.design_classes if d.cebm_level == level.level]
        ids = {d.id for d in designs}
        views.append(
            LevelView(
                level=level.level,
                treatment_benefits=level.treatment_benefits,
                treatment_harms=level.treatment_harms,
                designs=[d.label for d in designs],
                studies=sum(1 for s in data.entries if s.design_class in ids),
                citation=citation,
            )
        )
    return views


# -- CSV ------------------------------------------------------------------------------------
CSV_COLUMNS: tuple[str, ...] = (
    "id",
    "reference",
    "study",
    "publication",
    "publication_doi",
    "publication_pmid",
    "in_our_copy",
    "design_class",
    "cebm_level",
    "indication_groups",
    "n",
    "care_setting",
    *(f"cell_{name}" for name in CELL_NAMES),
    "unreadable_cells",
    "table_dose_70kg_low_mg",
    "table_dose_70kg_high_mg",
    "dose_arithmetic",
    "dose_not_computed",
    "table_relief_days",
    "relief_at_least",
    "relief_parse",
    "relief_not_stated",
    "text_dose_70kg_low_mg",
    "text_dose_70kg_high_mg",
    "text_relief_days",
    "text_locator",
    "citation",
)


def _number(value: float | int | None) -> str:
    if value is None:
        return ""
    text = f"{float(value):.4f}".rstrip("0").rstrip(".")
    return text or "0"


def _spreadsheet_safe(text: str) -> str:
    """Text a spreadsheet will not run as a formula (a leading =, +, - or @ is quoted)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def _cell_text(view: StudyView, name: str) -> str:
    for cell in view.cells:
        if cell.name == name:
            if cell.unreadable:
                return "unreadable: " + " / ".join(cell.raw)
            return cell.text or ""
    return "" if view.in_our_copy else "not in our copy"


def csv_row(view: StudyView) -> dict[str, str]:
    """One study as a CSV row (column -> text)."""
    point = view.text_point
    row = {
        "id": view.id,
        "reference": str(view.reference),
        "study": view.title,
        "publication": view.publication,
        "publication_doi": view.publication_doi,
        "publication_pmid": view.publication_pmid,
        "in_our_copy": "yes" if view.in_our_copy else "no",
        "design_class": view.design_label,
        "cebm_level": str(view.cebm_level),
        "indication_groups": "; ".join(view.indication_labels),
        "n": _number(view.n),
        "care_setting": view.setting_label,
        **{f"cell_{name}": _cell_text(view, name) for name in CELL_NAMES},
        "unreadable_cells": "; ".join(view.unreadable_cells),
        "table_dose_70kg_low_mg": _number(view.table_dose_low_mg),
        "table_dose_70kg_high_mg": _number(view.table_dose_high_mg),
        "dose_arithmetic": view.dose_arithmetic,
        "dose_not_computed": view.dose_not_computed,
        "table_relief_days": _number(view.table_relief_days),
        "relief_at_least": "yes" if view.table_relief_at_least else "",
        "relief_parse": view.relief_parse,
        "relief_not_stated": view.relief_not_stated,
        "text_dose_70kg_low_mg": _number(point.dose_low_mg if point else None),
        "text_dose_70kg_high_mg": _number(point.dose_high_mg if point else None),
        "text_relief_days": _number(point.relief_days if point else None),
        "text_locator": point.citation if point else "",
        "citation": view.citation,
    }
    return {key: _spreadsheet_safe(value) for key, value in row.items()}


def studies_csv(views: list[StudyView]) -> str:
    """The studies as CSV: one header row, one row per study (RFC 4180 quoting, CRLF)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS)
    writer.writeheader()
    for view in views:
        writer.writerow(csv_row(view))
    return out.getvalue()


def csv_filename(filters: StudyFilters) -> str:
    """The download's file name: ``ketamine-evidence.csv``, or ``...-filtered.csv``."""
    return "ketamine-evidence-filtered.csv" if filters.active else "ketamine-evidence.csv"
