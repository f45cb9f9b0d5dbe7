"""The evidence explorer's service: typed views of the studies, filters, and the CSV."""

from __future__ import annotations

import csv
import io
import math
from typing import Any, get_args

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ketapath.knowledge.evidence import SETTING_LABELS, evidence
from ketapath.services.evidence import (
    CSV_COLUMNS,
    DesignId,
    IndicationId,
    SettingId,
    StudyFilters,
    StudyView,
    all_study_views,
    csv_filename,
    filter_studies,
    studies_csv,
)
from ketapath.services.permissions import ROLES, roles_for

VIEWS = all_study_views()
IDS = [v.id for v in VIEWS]


def _ids(views: list[StudyView]) -> list[str]:
    return [v.id for v in views]


def test_the_filter_vocabularies_are_the_data_s() -> None:
    data = evidence()
    assert set(get_args(IndicationId)) == {g.id for g in data.indication_groups}
    assert set(get_args(DesignId)) == {d.id for d in data.design_classes}
    assert set(get_args(SettingId)) == set(SETTING_LABELS)


def test_every_signed_in_role_reads_the_evidence() -> None:
    assert roles_for("evidence.read") == frozenset(ROLES)


def test_the_views_are_in_the_file_s_order_and_say_where_each_value_comes_from() -> None:
    assert [s.id for s in evidence().entries] == IDS
    by_id = {v.id: v for v in VIEWS}
    kvarnstrom = by_id["kvarnstrom-2004"]
    assert (kvarnstrom.dose_low_mg, kvarnstrom.dose_from) == (28, "table")
    assert kvarnstrom.relief_days is None and kvarnstrom.relief_from is None
    assert kvarnstrom.not_plotted.startswith("no relief duration: the cell gives relief only")
    amr = by_id["amr-2010"]
    assert (amr.dose_from, amr.relief_from, amr.relief_days) == ("table", "text", 14)
    assert amr.table_relief_days is None and amr.not_plotted == ""
    assert by_id["sigtermans-2009"].not_plotted == "the row is not in our copy of the table."
    assert by_id["kiefer-2008"].n is None and "size" in by_id["kiefer-2008"].unreadable_cells
    assert by_id["kiefer-2008"].cebm_level == 3
    assert by_id["eide-1995"].title == "Eide et al. 1995"
    assert by_id["graven-nielsen-2000-part-2"].title == "Graven-Nielsen et al. 2000, Part 2"
    size = next(c for c in by_id["kiefer-2008"].cells if c.name == "size")
    assert size.unreadable and size.text is None and size.raw == ["50"]


def test_the_plot_has_every_study_with_a_dose_and_a_relief() -> None:
    plotted = {v.id for v in VIEWS if not v.not_plotted}
    assert plotted == {
        "schwartzman-2009",
        "amr-2010",
        "eichenberger-2008",
        "sorensen-1995",
        "mercadante-2000",
    }
    for view in VIEWS:
        if view.not_plotted:
            assert view.not_plotted_brief
            assert view.dose_low_mg is None or view.relief_days is None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            {"indication": "crps"},
            [
                "sigtermans-2009",
                "schwartzman-2009",
                "koffler-2007",
                "kiefer-2008",
                "goldberg-2010",
                "correll-2004",
                "patil-2012",
            ],
        ),
        ({"indication": "postherpetic-neuralgia"}, ["kim-2015", "eide-1994"]),
        ({"design": "randomized-not-placebo-controlled"}, ["kim-2015"]),
        ({"setting": "icu"}, ["koffler-2007", "kiefer-2008", "tawfic-2014"]),
        ({"cebm_level": 4}, ["tawfic-2014", "polomano-2013", "correll-2004", "patil-2012"]),
        (
            {"dose_min_mg": 25, "dose_max_mg": 100},
            ["kvarnstrom-2004", "amr-2010", "eichenberger-2008", "mercadante-2000"],
        ),
        ({"dose_min_mg": 2000}, ["tawfic-2014"]),
        ({"relief_min_days": 100}, ["kiefer-2008", "goldberg-2010", "correll-2004"]),
        ({"relief_max_days": 1}, ["sorensen-1995", "mercadante-2000"]),
        (
            {"indication": "fibromyalgia", "dose_max_mg": 21, "cebm_level": 2},
            ["graven-nielsen-2000-part-1", "graven-nielsen-2000-part-2", "sorensen-1995"],
        ),
    ],
)
def test_each_filter_keeps_the_studies_it_names(
    filters: dict[str, Any], expected: list[str]
) -> None:
    assert _ids(filter_studies(VIEWS, StudyFilters(**filters))) == expected


def test_no_filter_keeps_every_study() -> None:
    assert _ids(filter_studies(VIEWS, StudyFilters())) == IDS
    assert not StudyFilters().active and StudyFilters(cebm_level=2).active
    assert csv_filename(StudyFilters()) == "ketamine-evidence.csv"
    assert csv_filename(StudyFilters(setting="icu")) == "ketamine-evidence-filtered.csv"


@pytest.mark.parametrize(
    "bad",
    [
        {"dose_min_mg": 100, "dose_max_mg": 10},
        {"relief_min_days": 5, "relief_max_days": 1},
        {"dose_min_mg": -1},
        {"dose_max_mg": math.inf},
        {"relief_min_days": math.nan},
        {"dose_max_mg": 1e7},
        {"cebm_level": 6},
        {"indication": "migraine"},
        {"setting": "home"},
        {"colour": "blue"},
    ],
)
def test_filters_out_of_bounds_or_in_the_wrong_order_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        StudyFilters(**bad)


# -- properties of the filters -------------------------------------------------------------
bounds = st.one_of(
    st.none(), st.floats(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False)
)


@st.composite
def study_filters(draw: st.DrawFn) -> StudyFilters:
    dose = sorted(draw(st.lists(bounds, min_size=2, max_size=2)), key=lambda v: (v is None, v))
    relief = sorted(draw(st.lists(bounds, min_size=2, max_size=2)), key=lambda v: (v is None, v))
    return StudyFilters(
        indication=draw(st.one_of(st.none(), st.sampled_from(get_args(IndicationId)))),
        design=draw(st.one_of(st.none(), st.sampled_from(get_args(DesignId)))),
        setting=draw(st.one_of(st.none(), st.sampled_from(get_args(SettingId)))),
        cebm_level=draw(st.one_of(st.none(), st.integers(min_value=1, max_value=5))),
        dose_min_mg=dose[0],
        dose_max_mg=dose[1],
        relief_min_days=relief[0],
        relief_max_days=relief[1],
    )


@settings(max_examples=200)
@given(filters=study_filters())
def test_a_filtered_list_is_a_subset_in_the_original_order(filters: StudyFilters) -> None:
    kept = _ids(filter_studies(VIEWS, filters))
    assert set(kept) <= set(IDS)
    positions = [IDS.index(i) for i in kept]
    assert positions == sorted(positions)
    assert len(kept) == len(set(kept))
    # filtering again, or filtering a shuffled list, changes nothing but the order given
    assert _ids(filter_studies(filter_studies(VIEWS, filters), filters)) == kept
    reversed_kept = _ids(filter_studies(list(reversed(VIEWS)), filters))
    assert reversed_kept == list(reversed(kept))


@settings(max_examples=200)
@given(filters=study_filters())
def test_the_filters_together_keep_exactly_what_each_keeps_alone(filters: StudyFilters) -> None:
    together = set(_ids(filter_studies(VIEWS, filters)))
    alone = set(IDS)
    for name in ("indication", "design", "setting", "cebm_level"):
        value = getattr(filters, name)
        if value is not None:
            alone &= set(_ids(filter_studies(VIEWS, StudyFilters(**{name: value}))))
    for low, high in (("dose_min_mg", "dose_max_mg"), ("relief_min_days", "relief_max_days")):
        given_range = {k: v for k in (low, high) if (v := getattr(filters, k)) is not None}
        if given_range:
            alone &= set(_ids(filter_studies(VIEWS, StudyFilters(**given_range))))
    assert together == alone


@settings(max_examples=200)
@given(filters=study_filters())
def test_a_dose_or_relief_filter_keeps_only_studies_with_that_value_inside_it(
    filters: StudyFilters,
) -> None:
    for view in filter_studies(VIEWS, filters):
        if filters.dose_min_mg is not None or filters.dose_max_mg is not None:
            assert view.dose_low_mg is not None and view.dose_high_mg is not None
            if filters.dose_min_mg is not None:
                assert view.dose_high_mg >= filters.dose_min_mg
            if filters.dose_max_mg is not None:
                assert view.dose_low_mg <= filters.dose_max_mg
        if filters.relief_min_days is not None or filters.relief_max_days is not None:
            assert view.relief_days is not None
            assert filters.relief_min_days is None or view.relief_days >= filters.relief_min_days
            assert filters.relief_max_days is None or view.relief_days <= filters.relief_max_days


@settings(max_examples=100)
@given(
    low=st.floats(min_value=0, max_value=5000, allow_nan=False),
    widen=st.floats(min_value=0, max_value=5000, allow_nan=False),
)
def test_widening_a_dose_range_never_drops_a_study(low: float, widen: float) -> None:
    narrow = set(_ids(filter_studies(VIEWS, StudyFilters(dose_min_mg=low, dose_max_mg=low))))
    wide = StudyFilters(dose_min_mg=max(0.0, low - widen), dose_max_mg=low + widen)
    assert narrow <= set(_ids(filter_studies(VIEWS, wide)))


# -- CSV -----------------------------------------------------------------------------------
def test_the_csv_has_one_row_per_study_with_unique_columns() -> None:
    assert len(CSV_COLUMNS) == len(set(CSV_COLUMNS))
    text = studies_csv(VIEWS)
    assert text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == IDS
    assert list(rows[0]) == list(CSV_COLUMNS)
    by_id = {r["id"]: r for r in rows}
    assert by_id["tawfic-2014"]["table_dose_70kg_low_mg"] == "689.5"
    assert by_id["tawfic-2014"]["table_dose_70kg_high_mg"] == "2117.5"
    assert by_id["tawfic-2014"]["cell_size"] == "unreadable: თ"
    assert by_id["sigtermans-2009"]["cell_dose"] == "not in our copy"
    assert by_id["sigtermans-2009"]["in_our_copy"] == "no"
    assert by_id["mercadante-2000"]["text_dose_70kg_high_mg"] == "35"
    assert by_id["mercadante-2000"]["text_relief_days"] == "0.125"
    assert by_id["patil-2012"]["relief_at_least"] == "yes"
    assert by_id["kiefer-2008"]["citation"].startswith("Maher et al. 2017, Table 2, row Kiefer")
    assert by_id["patil-2012"]["publication_doi"] == "10.1111/j.1526-4637.2011.01241.x"
    assert by_id["patil-2012"]["publication_pmid"] == "21939497"
    assert by_id["max-1995"]["publication_doi"] == ""
    assert by_id["max-1995"]["publication_pmid"] == "8665549"
    assert (by_id["felsby-1996"]["publication_doi"], by_id["felsby-1996"]["publication_pmid"]) == (
        "",
        "",
    )


def test_each_view_carries_its_study_s_reference_with_doi_and_pmid_links() -> None:
    by_id = {v.id: v for v in VIEWS}
    sorensen = by_id["sorensen-1995"]
    assert sorensen.publication == "Sörensen et al. 1995"
    assert sorensen.publication_full.startswith("Sörensen J, Bengtsson A, Bäckman E,")
    assert "Scand J Rheumatol. 1995;24(6):360-5." in sorensen.publication_full
    assert sorensen.publication_doi_url == "https://doi.org/10.3109/03009749509095181"
    assert sorensen.publication_pubmed_url == "https://pubmed.ncbi.nlm.nih.gov/8610220/"
    assert "suppr.wilddata.cn" in sorensen.publication_checked
    felsby = by_id["felsby-1996"]
    assert (felsby.publication_doi_url, felsby.publication_pubmed_url) == ("", "")
    assert "DOI and PMID are left empty" in felsby.publication_checked
    # Both rows of Graven-Nielsen et al. cite the one article.
    parts = [v for v in VIEWS if v.id.startswith("graven-nielsen-2000")]
    assert {v.publication_pmid for v in parts} == {"10781923"}


def test_the_csv_of_no_study_is_its_header_alone() -> None:
    rows = list(csv.reader(io.StringIO(studies_csv([]))))
    assert rows == [list(CSV_COLUMNS)]


def test_no_csv_text_starts_like_a_spreadsheet_formula() -> None:
    for row in csv.DictReader(io.StringIO(studies_csv(VIEWS))):
        for value in row.values():
            assert value[:1] not in ("=", "+", "-", "@"), value
