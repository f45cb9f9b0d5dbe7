"""The evidence data (evidence.yaml): Table 2 of Maher et al. 2017 transcribed cell by cell,
Table 1's CEBM levels, and Table 6 of the ASRA/AAPM/ASA consensus 2018."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from ketapath.knowledge.base import KnowledgeError, data_path
from ketapath.knowledge.bibliography import Bibliography, Reference, bibliography
from ketapath.knowledge.evidence import (
    CONSENSUS,
    DAYS_PER_UNIT,
    REVIEW,
    DoseTerm,
    ReliefStated,
    evidence,
    load_evidence,
    publication_problems,
)

# The review's Methods: 26 articles, by design and reference number.
RANDOMIZED_PLACEBO = {3, 4, 8, 9, 10, 11, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23}
OBSERVATIONAL = {5, 6, 7, 18, 38}
RETROSPECTIVE = {24, 25, 26, 27}
RANDOMIZED_OTHER = {12}
# Rows of Table 2 that our copy of the review does not have (its first page, and one page
# between Sörensen et al and Tawfic et al).
NOT_IN_OUR_COPY = {3, 4, 5, 16, 17, 18, 19}


def _raw() -> dict[str, Any]:
    loaded = yaml.safe_load(data_path("evidence.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def _write(tmp_path: Path, raw: dict[str, Any]) -> Path:
    path = tmp_path / "evidence.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return path


def _entry(raw: dict[str, Any], study_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(e for e in raw["entries"] if e["id"] == study_id)
    return found


# -- counts match the table -----------------------------------------------------------------
def test_one_row_per_study_of_table_2_and_the_26_articles_of_the_methods() -> None:
    studies = evidence().entries
    references = [s.reference for s in studies]
    assert len(studies) == 27  # Graven-Nielsen et al has two rows (Part 1 and Part 2)
    assert set(references) == set(range(3, 28)) | {38}
    assert len(set(references)) == 26
    assert references == sorted(references, key=lambda r: (r == 38, r))
    parts = [s.part for s in studies if s.reference == 14]
    assert parts == ["Part 1", "Part 2"]


def test_the_design_classes_match_the_methods_counts() -> None:
    data = evidence()
    by_class = {d.id: set(d.references) for d in data.design_classes}
    assert by_class == {
        "randomized-placebo-controlled": RANDOMIZED_PLACEBO,
        "randomized-not-placebo-controlled": RANDOMIZED_OTHER,
        "prospective-observational": OBSERVATIONAL,
        "retrospective": RETROSPECTIVE,
    }
    assert [len(by_class[k]) for k in by_class] == [16, 1, 5, 4]
    for study in data.entries:
        assert study.reference in by_class[study.design_class], study.id


def test_the_cebm_level_of_each_design_is_a_level_of_table_1() -> None:
    data = evidence()
    assert [level.level for level in data.levels] == [1, 2, 3, 4, 5]
    assert data.levels[1].treatment_benefits.startswith("Randomized trial")
    levels = {d.id: d.cebm_level for d in data.design_classes}
    assert levels == {
        "randomized-placebo-controlled": 2,
        "randomized-not-placebo-controlled": 2,
        "prospective-observational": 3,
        "retrospective": 4,
    }
    for design in data.design_classes:
        assert f"Level {design.cebm_level}" in design.cebm_basis
        assert "ketapath's reading" in design.cebm_basis
    assert data.cebm_level(data.study("kiefer-2008")) == 3


def test_the_rows_not_in_our_copy_have_no_cells_and_no_numbers_from_the_table() -> None:
    data = evidence()
    missing = {s.reference for s in data.entries if not s.in_our_copy}
    assert missing == NOT_IN_OUR_COPY
    for study in data.entries:
        if study.in_our_copy:
            assert study.cells is not None, study.id
            continue
        assert study.cells is None
        assert study.n is None and study.dose.total is None and study.relief.stated is None
        assert "not in our copy" in study.source.cite[0].at


# -- every row cites -----------------------------------------------------------------------
def test_every_row_cites_its_row_of_table_2_and_its_study() -> None:
    refs = bibliography()
    for study in evidence().entries:
        first = study.source.cite[0]
        assert first.ref == REVIEW
        assert first.at.startswith(f"Table 2, row {study.label}"), study.id
        assert f"(reference {study.reference})" in first.at
        assert study.publication.ref in refs
        publication = refs.get(study.publication.ref)
        assert publication.kind == "article" and publication.year is not None
        assert publication.title and publication.container, study.id
        for mention in study.mentions:
            assert mention.at and mention.quote
        if study.text_point is not None:
            assert study.text_point.at.startswith("Results")


# -- the studies' own references ------------------------------------------------------------
# The DOI and PMID each study's reference carries, as the records read on 2026-12-01 print
# them ("" where no record read printed one; docs/evidence.md has the sources).
IDENTIFIERS: dict[str, tuple[str, str]] = {
    "sigtermans-2009-crps": ("10.1016/j.pain.2009.06.023", "19604642"),
    "schwartzman-2009-crps": ("10.1016/j.pain.2009.08.015", "19783371"),
    "koffler-2007-crps": ("", ""),
    "kiefer-2008-crps": ("", ""),
    "goldberg-2010-crps": ("10.36076/ppj.2010/13/379", ""),
    "eide-1995-sci": ("", ""),
    "kvarnstrom-2004-sci": ("10.1111/j.1399-6576.2003.00330.x", ""),
    "amr-2010-sci": ("", "20495588"),
    "eichenberger-2008-phantom": ("", ""),
    "kim-2015-phn": ("10.1016/j.jclinane.2015.02.006", ""),
    "eide-1994-phn": ("10.1016/0304-3959(94)90129-5", ""),
    "graven-nielsen-2000-fibromyalgia": ("10.1016/S0304-3959(99)00308-5", "10781923"),
    "sorensen-1995-fibromyalgia": ("10.3109/03009749509095181", "8610220"),
    "noppers-2011-fibromyalgia": ("", ""),
    "mercadante-2000-cancer": ("10.1016/s0885-3924(00)00194-9", "11027905"),
    "jackson-2001-cancer": ("10.1016/S0885-3924(01)00340-2", "11576800"),
    "salas-2012-cancer": ("10.1089/jpm.2011.0353", "22335487"),
    "leung-2001-neuropathic": ("10.1016/s0304-3959(00)00433-4", ""),
    "max-1995-posttraumatic": ("", "8665549"),
    "felsby-1996-neuropathic": ("", ""),
    "jorum-2003-neuropathic": ("", "12583865"),
    "tawfic-2014-sickle-cell": ("10.1016/j.jpainsymman.2013.03.012", ""),
    "polomano-2013-combat": ("10.1111/pme.12094", ""),
    "correll-2004-crps": ("", ""),
    "patil-2012-outpatient": ("10.1111/j.1526-4637.2011.01241.x", "21939497"),
    "kang-2010-neuropathic": ("", ""),
}


def test_every_study_s_reference_carries_the_doi_and_pmid_its_records_print() -> None:
    refs = bibliography()
    cited = {s.publication.ref for s in evidence().entries}
    assert cited == set(IDENTIFIERS)
    for ref_id, (doi, pmid) in IDENTIFIERS.items():
        ref = refs.get(ref_id)
        assert (ref.doi, ref.pmid) == (doi, pmid), ref_id
        for value, name in ((doi, "DOI"), (pmid, "PMID")):
            if not value:
                assert name in ref.verified, ref_id


def test_every_study_s_reference_is_complete_and_says_what_was_checked() -> None:
    assert publication_problems(evidence(), bibliography()) == []
    for study in evidence().entries:
        ref = bibliography().get(study.publication.ref)
        assert ref.authors and ref.volume and ref.pages, study.id
        assert "Maher et al. 2017 reference list" in ref.verified, study.id
        assert "seed" not in ref.verified.lower(), study.id


def _with(ref_id: str, **changes: Any) -> Bibliography:
    refs = bibliography()
    changed: list[Reference] = [
        r.model_copy(update=changes) if r.id == ref_id else r for r in refs.references
    ]
    return Bibliography(changed, refs.version)


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"volume": ""}, "lacks its volume"),
        ({"pages": "", "container": ""}, "lacks its journal, pages"),
        ({"doi": "", "verified": "Checked against the journal page."}, "no DOI"),
        ({"pmid": "", "verified": "Checked against the journal page, with its DOI."}, "no PMID"),
        ({"authors": ("Someone X",)}, "first author 'Someone X'"),
        ({"year": 2011}, "year 2011"),
        ({"kind": "guideline"}, "is a guideline"),
    ],
)
def test_an_incomplete_or_unexplained_study_reference_is_a_problem(
    changes: dict[str, Any], problem: str
) -> None:
    problems = publication_problems(evidence(), _with("patil-2012-outpatient", **changes))
    assert len(problems) == 1
    assert problems[0].startswith("patil-2012: publication patil-2012-outpatient")
    assert problem in problems[0]


def test_the_loader_refuses_a_study_citing_another_study_s_article(tmp_path: Path) -> None:
    raw = _raw()
    _entry(raw, "kim-2015")["publication"]["ref"] = "eide-1994-phn"
    with pytest.raises(KnowledgeError, match="kim-2015: publication eide-1994-phn"):
        load_evidence(_write(tmp_path, raw))


def test_every_recommendation_of_table_6_is_a_row_with_its_grade_and_certainty() -> None:
    recs = evidence().recommendations
    assert [(r.category, r.number) for r in recs] == [
        ("Indications", 1),
        ("Indications", 2),
        ("Indications", 3),
        ("Dosing range and dose response", 1),
        ("Dosing range and dose response", 2),
        ("Dosing range and dose response", 3),
    ]
    assert [r.grade for r in recs] == ["C", "B", "D", "C", "C", "C"]
    assert [r.certainty for r in recs] == [
        "low",
        "low to moderate",
        "low",
        "low",
        "low",
        "low",
    ]
    for r in recs:
        assert r.source.cite[0].ref == CONSENSUS
        assert r.source.cite[0].at.startswith("Table 6")
    assert "at least 80 mg infused over a period of >2 h" in recs[5].recommendation


# -- unreadable cells are never numbers ----------------------------------------------------
def test_an_unreadable_cell_keeps_its_raw_text_and_a_note_and_gives_no_number() -> None:
    seen = 0
    for study in evidence().entries:
        if study.cells is None:
            continue
        for name in study.unreadable_cells:
            cell = study.cells.cell(name)
            seen += 1
            assert cell.text is None and cell.reading is None
            assert cell.note, (study.id, name)
        if "size" in study.unreadable_cells:
            assert study.n is None, study.id
        if study.dose.total is not None:
            assert not set(study.dose.total.cells) & set(study.unreadable_cells), study.id
        if "relief" in study.unreadable_cells:
            assert study.relief.stated is None, study.id
    assert seen >= 40


@pytest.mark.parametrize(
    ("study_id", "cell", "raw"),
    [
        ("kiefer-2008", "size", ("50",)),  # the relief cell counts 6/20 patients
        ("eide-1995", "size", ("0",)),
        ("kim-2015", "indication", ("NHA",)),
        ("amr-2010", "relief", ("n of pain tely after and 2 infusion. ence in pain 4 wk after",)),
        ("polomano-2013", "duration", ("ი თ",)),
        ("jorum-2003", "dose", ("60 µg/kg over 5 min, 6 µg/ kg/h infusion.",)),
        ("patil-2012", "size", ()),
    ],
)
def test_known_garbled_cells_are_marked_unreadable_with_the_raw_text(
    study_id: str, cell: str, raw: tuple[str, ...]
) -> None:
    study = evidence().study(study_id)
    assert study.cells is not None
    assert study.cells.cell(cell).unreadable
    assert study.cells.cell(cell).raw == raw


def test_a_size_on_an_unreadable_cell_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    _entry(raw, "kiefer-2008")["n"] = 50
    with pytest.raises(KnowledgeError, match="Study Size"):
        load_evidence(_write(tmp_path, raw))


def test_a_dose_resting_on_an_unreadable_cell_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    entry = _entry(raw, "polomano-2013")
    entry["dose"] = {
        "total": {
            "cells": ["dose", "duration"],
            "terms": [{"what": "infusion", "low": 120, "unit": "µg/kg/h", "hours_low": 72}],
            "low_mg": 604.8,
            "high_mg": 604.8,
            "arithmetic": "120 µg/kg/h x 70 kg x 72 h = 604.8 mg",
        }
    }
    with pytest.raises(KnowledgeError, match="unreadable duration cell"):
        load_evidence(_write(tmp_path, raw))


def test_a_total_that_does_not_follow_from_its_terms_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    _entry(raw, "tawfic-2014")["dose"]["total"]["high_mg"] = 2100
    with pytest.raises(KnowledgeError, match="do not follow from the terms"):
        load_evidence(_write(tmp_path, raw))


def test_relief_days_not_in_the_cell_or_not_its_days_are_refused(tmp_path: Path) -> None:
    raw = _raw()
    _entry(raw, "kang-2010")["relief"]["stated"]["quote"] = "3 wk after treatment"
    with pytest.raises(KnowledgeError, match="not in the readable relief cell"):
        load_evidence(_write(tmp_path, raw))
    raw = _raw()
    _entry(raw, "kang-2010")["relief"]["days"] = 15
    with pytest.raises(KnowledgeError, match="days 15"):
        load_evidence(_write(tmp_path, raw))


def test_an_unreadable_cell_with_a_reading_or_without_a_note_is_refused(tmp_path: Path) -> None:
    raw = _raw()
    _entry(raw, "eide-1995")["cells"]["size"]["reading"] = "9"
    with pytest.raises(KnowledgeError, match="an unreadable cell has no reading"):
        load_evidence(_write(tmp_path, raw))
    raw = _raw()
    del _entry(raw, "eide-1995")["cells"]["size"]["note"]
    with pytest.raises(KnowledgeError, match="needs a note"):
        load_evidence(_write(tmp_path, raw))


def test_a_row_missing_from_the_design_classes_or_citing_elsewhere_is_refused(
    tmp_path: Path,
) -> None:
    raw = _raw()
    raw["design_classes"][0]["references"].remove(3)
    with pytest.raises(KnowledgeError, match="design classes"):
        load_evidence(_write(tmp_path, raw))
    raw = _raw()
    _entry(raw, "amr-2010")["source"]["cite"][0]["at"] = "Table 3"
    with pytest.raises(KnowledgeError, match="Table 2"):
        load_evidence(_write(tmp_path, raw))
    raw = _raw()
    _entry(raw, "amr-2010")["publication"]["ref"] = "no-such-work-2010"
    with pytest.raises(KnowledgeError, match="no-such-work-2010"):
        load_evidence(_write(tmp_path, raw))


# -- transcription and arithmetic ----------------------------------------------------------
@pytest.mark.parametrize(
    ("study_id", "low_mg", "high_mg"),
    [
        ("kvarnstrom-2004", 28, 28),
        ("amr-2010", 80, 80),
        ("eichenberger-2008", 28, 28),
        ("eide-1994", 10.5, 10.5),
        ("graven-nielsen-2000-part-1", 21, 21),
        ("sorensen-1995", 21, 21),
        ("tawfic-2014", 689.5, 2117.5),
    ],
)
def test_the_computed_totals_at_70_kg(study_id: str, low_mg: float, high_mg: float) -> None:
    total = evidence().study(study_id).dose.total
    assert total is not None
    assert (total.low_mg, total.high_mg) == (low_mg, high_mg)
    assert "70 kg" in total.arithmetic


def test_every_study_without_a_total_says_why() -> None:
    without = [s for s in evidence().entries if s.dose.total is None]
    assert len(without) == 27 - 8  # the eight rows whose readable cells give a total
    for study in without:
        assert len(study.dose.not_computed) > 15, study.id


@pytest.mark.parametrize(
    ("study_id", "days", "at_least"),
    [
        ("kiefer-2008", 182.625, False),
        ("goldberg-2010", 182.625, False),
        ("correll-2004", 287.33, False),
        ("eichenberger-2008", 2, False),
        ("kim-2015", 14, False),
        ("sorensen-1995", 80 / 1440, False),
        ("kang-2010", 14, False),
        ("patil-2012", 21, True),
    ],
)
def test_the_relief_durations_read_from_the_table(
    study_id: str, days: float, at_least: bool
) -> None:
    relief = evidence().study(study_id).relief
    assert relief.stated is not None and relief.days is not None
    assert relief.days == pytest.approx(days, abs=1e-3)
    assert relief.stated.at_least is at_least
    assert relief.parse


def test_the_review_s_text_points_are_kept_apart_from_the_table() -> None:
    points = {s.id: s.text_point for s in evidence().entries if s.text_point is not None}
    assert set(points) == {"schwartzman-2009", "amr-2010", "mercadante-2000"}
    schwartzman = points["schwartzman-2009"]
    assert schwartzman is not None
    assert (schwartzman.dose_low_mg, schwartzman.relief_days) == (1000, 84)
    mercadante = points["mercadante-2000"]
    assert mercadante is not None
    assert (mercadante.dose_low_mg, mercadante.dose_high_mg) == (17.5, 35)
    assert mercadante.relief_days == pytest.approx(3 / 24)


def test_the_setting_comes_from_a_cell_or_the_review_s_text_and_says_which() -> None:
    for study in evidence().entries:
        assert study.setting_basis, study.id
        if study.setting == "unknown":
            continue
        basis = study.setting_basis
        assert "cell" in basis or "review's text" in basis, study.id
    settings = {s.id: s.setting for s in evidence().entries if s.setting != "unknown"}
    assert settings == {
        "schwartzman-2009": "outpatient",
        "koffler-2007": "icu",
        "kiefer-2008": "icu",
        "goldberg-2010": "inpatient",
        "kvarnstrom-2004": "not-reported",
        "kim-2015": "inpatient",
        "sorensen-1995": "not-reported",
        "tawfic-2014": "icu",
        "correll-2004": "outpatient",
        "patil-2012": "outpatient",
    }


# -- property tests of the calculators -----------------------------------------------------
amounts = st.floats(min_value=0.001, max_value=1000, allow_nan=False, allow_infinity=False)


@given(
    low=amounts,
    extra=st.floats(min_value=0, max_value=10, allow_nan=False),
    hours=st.floats(min_value=0.01, max_value=240, allow_nan=False),
    more_hours=st.floats(min_value=0, max_value=240, allow_nan=False),
    times=st.integers(min_value=1, max_value=20),
    unit=st.sampled_from(["mg/h", "mg/kg/h", "µg/kg/h"]),
)
def test_a_rate_term_gives_low_at_most_high_and_scales_with_hours_and_times(
    low: float, extra: float, hours: float, more_hours: float, times: int, unit: str
) -> None:
    term = DoseTerm.model_validate(
        {
            "what": "infusion",
            "low": low,
            "high": low + extra,
            "unit": unit,
            "hours_low": hours,
            "hours_high": hours + more_hours,
            "times": times,
        }
    )
    lowest, highest = term.mg_for_70_kg()
    assert 0 < lowest <= highest
    once = DoseTerm.model_validate({**term.model_dump(), "times": 1}).mg_for_70_kg()
    assert lowest == pytest.approx(once[0] * times)
    per_kg = {"mg/h": 1.0, "mg/kg/h": 70.0, "µg/kg/h": 0.07}[unit]
    assert lowest == pytest.approx(low * per_kg * hours * times)


@given(amount=amounts, unit=st.sampled_from(["mg", "mg/kg", "µg/kg"]))
def test_an_amount_term_needs_no_hours_and_is_weighted_by_70_kg(amount: float, unit: str) -> None:
    term = DoseTerm(what="bolus", low=amount, unit=unit)  # type: ignore[arg-type]
    factor = {"mg": 1.0, "mg/kg": 70.0, "µg/kg": 0.07}[unit]
    assert term.mg_for_70_kg() == pytest.approx((amount * factor, amount * factor))
    with pytest.raises(ValueError, match="hours"):
        DoseTerm(what="bolus", low=amount, unit=unit, hours_low=1)  # type: ignore[arg-type]


@given(
    amount=st.floats(min_value=0.01, max_value=1000, allow_nan=False),
    unit=st.sampled_from(list(DAYS_PER_UNIT)),
)
def test_relief_in_days_is_the_amount_times_the_unit_s_days(amount: float, unit: str) -> None:
    stated = ReliefStated.model_validate({"quote": "as stated", "amount": amount, "unit": unit})
    assert stated.days == pytest.approx(amount * DAYS_PER_UNIT[unit])
    assert DAYS_PER_UNIT["mo"] == 365.25 / 12 and DAYS_PER_UNIT["wk"] == 7


def test_the_file_on_disk_is_what_loads(tmp_path: Path) -> None:
    raw = _raw()
    loaded = load_evidence(_write(tmp_path, copy.deepcopy(raw)))
    assert loaded == evidence()
