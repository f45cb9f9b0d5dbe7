"""The evidence explorer's pages: the filterable table with its dose-versus-relief plot (each
point a link to its study, the others listed with the reason), the CSV of the filtered rows,
and a study's page with its unreadable cells marked; plus the log-log chart itself."""

from __future__ import annotations

import csv
import io
import re

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services.evidence import StudyFilters, all_study_views, filter_studies
from ketapath.services.permissions import ROLES
from ketapath.web.charts import ScatterPoint, Tick, decade_ticks, log_scatter_chart
from ketapath.web.evidence_pages import read_filters

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def _rows(page: str) -> list[str]:
    return re.findall(r'<tr id="row-[^"]+" data-study="([^"]+)"', page)


def test_every_role_finds_the_evidence_page_in_the_navigation(client: TestClient) -> None:
    for role in ROLES:
        client.cookies.clear()
        signed_in(client, role)
        page = client.get("/references").text
        assert '<a href="/evidence">Evidence</a>' in page, role
        response = client.get("/evidence")
        assert response.status_code == 200, role
        assert 'aria-current="page">Evidence</a>' in response.text


def test_the_page_shows_every_study_the_plot_and_the_two_tables(client: TestClient) -> None:
    signed_in(client, "researcher")
    page = client.get("/evidence").text
    views = all_study_views()
    assert _rows(page) == [v.id for v in views]
    assert '<span id="result-count">27</span> of 27 studies' in page
    plotted = [v.id for v in views if not v.not_plotted]
    links = re.findall(r'<a class="point" href="/evidence/([^"]+)"', page)
    assert links == plotted
    listed = re.findall(r'<li id="not-plotted-([^"]+)"', page)
    assert listed == [v.id for v in views if v.not_plotted]
    assert "Sigtermans et al. 2009</a>: not plotted: the row is not in our copy" in page
    assert "not plotted: no relief duration" in page
    assert page.count('<tr id="rec-') == 6
    assert "Grade" in page and "low to moderate" in page
    assert 'id="evidence-levels"' in page and "Mechanism-based reasoning" in page
    assert 'href="/evidence.csv" id="download-csv"' in page


def test_filters_narrow_the_table_the_plot_and_the_csv_link(client: TestClient) -> None:
    signed_in(client, "researcher")
    query = (
        "indication=crps&design=&setting=&cebm_level=&dose_min_mg=&dose_max_mg="
        "&relief_min_days=7&relief_max_days="
    )
    page = client.get(f"/evidence?{query}").text
    wanted = filter_studies(all_study_views(), StudyFilters(indication="crps", relief_min_days=7))
    assert _rows(page) == [v.id for v in wanted]
    assert f'<span id="result-count">{len(wanted)}</span> of 27 studies match' in page
    assert 'href="/evidence.csv?indication=crps&amp;relief_min_days=7"' in page
    assert '<option value="crps" selected>' in page
    assert 'value="7"' in page
    links = re.findall(r'<a class="point" href="/evidence/([^"]+)"', page)
    assert links == ["schwartzman-2009"]


def test_a_filter_that_keeps_nothing_says_so(client: TestClient) -> None:
    signed_in(client, "nurse")
    page = client.get("/evidence?indication=cancer&setting=icu").text
    assert 'id="no-studies"' in page
    assert 'id="plot-empty"' in page


def test_bad_filters_are_shown_beside_their_fields_and_nothing_is_listed(
    client: TestClient,
) -> None:
    signed_in(client, "researcher")
    response = client.get("/evidence?dose_min_mg=lots&relief_min_days=9&relief_max_days=2")
    assert response.status_code == 422
    page = response.text
    assert "Lowest total dose must be a number, not “lots”." in page
    assert "Longest relief must be at least the shortest relief." in page
    assert 'id="dose_min_mg" name="dose_min_mg" type="text"' in page
    assert 'aria-invalid="true"' in page
    assert _rows(page) == []
    for query in (
        "indication=migraine",
        "cebm_level=7",
        "dose_max_mg=1e400",
        "setting=" + "x" * 41,
    ):
        response = client.get(f"/evidence?{query}")
        assert response.status_code == 422, query
        assert 'class="error-summary"' in response.text


def test_the_csv_route_downloads_the_filtered_rows(client: TestClient) -> None:
    signed_in(client, "researcher")
    response = client.get("/evidence.csv?indication=spinal-cord-injury&cebm_level=2")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "ketamine-evidence-filtered.csv" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["id"] for r in rows] == ["eide-1995", "kvarnstrom-2004", "amr-2010"]
    assert rows[2]["text_relief_days"] == "14" and rows[2]["cell_relief"].startswith("unreadable")
    bad = client.get("/evidence.csv?dose_min_mg=9&dose_max_mg=1")
    assert bad.status_code == 422
    assert "text/html" in bad.headers["content-type"]


def test_a_study_s_page_marks_its_unreadable_cells_and_shows_the_arithmetic(
    client: TestClient,
) -> None:
    signed_in(client, "researcher")
    page = client.get("/evidence/tawfic-2014").text
    assert "<h1>Tawfic et al. 2014</h1>" in page
    assert "Maher et al. 2017, Table 2, row Tawfic et al (reference 24)" in page
    size = page[page.index('<tr id="cell-size"') :]
    size = size[: size.index("</tr>")]
    assert 'class="unreadable"' in size and "unreadable</strong>" in size and "თ" in size
    assert "689.5–2117.5 mg" in page and "48-120" in page
    assert "Not stated: The cell gives a time of measurement" in page
    amr = client.get("/evidence/amr-2010").text
    assert 'id="study-text-point"' in amr and "2 weeks of relief" in amr
    assert "Spinal cord injury pain" in amr
    assert "weak evidence to support short-term improvement" in amr  # Table 6 for its indication
    missing = client.get("/evidence/noppers-2011").text
    assert 'id="not-in-copy"' in missing and 'id="study-cells"' not in missing


def test_a_study_s_page_shows_its_reference_with_doi_and_pubmed_links(client: TestClient) -> None:
    signed_in(client, "researcher")
    page = client.get("/evidence/jackson-2001").text  # a row not in our copy: its reference still
    publication = page[page.index('id="study-publication"') :]
    assert publication.index("Jackson K, Ashby M, Martin P, Pisasale M, Brumley D, Hayes B.") > 0
    assert "J Pain Symptom Manage. 2001;22(4):834-42." in publication
    ids = page[page.index('id="study-identifiers"') :]
    ids = ids[: ids.index("</p>")]
    assert '<a href="https://doi.org/10.1016/S0885-3924(01)00340-2"' in ids
    assert '<a href="https://pubmed.ncbi.nlm.nih.gov/11576800/"' in ids
    assert "Checked: " in ids and "ncbi.nlm.nih.gov/pubmed/11576800" in ids
    felsby = client.get("/evidence/felsby-1996").text
    ids = felsby[felsby.index('id="study-identifiers"') :]
    ids = ids[: ids.index("</p>")]
    assert "No DOI confirmed" in ids and "no PMID confirmed" in ids
    assert "doi.org" not in ids and "pubmed.ncbi" not in ids


def test_the_table_links_each_study_s_doi_and_pubmed_record(client: TestClient) -> None:
    signed_in(client, "researcher")
    page = client.get("/evidence").text
    row = page[page.index('<tr id="row-patil-2012"') :]
    row = row[: row.index("</tr>")]
    assert 'href="https://doi.org/10.1111/j.1526-4637.2011.01241.x"' in row
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/21939497/"' in row
    row = page[page.index('<tr id="row-kang-2010"') :]
    row = row[: row.index("</tr>")]
    assert "doi.org" not in row and "pubmed" not in row
    references = client.get("/references").text
    entry = references[references.index('<li id="salas-2012-cancer"') :]
    entry = entry[: entry.index("</li>")]
    assert '<a href="https://pubmed.ncbi.nlm.nih.gov/22335487/"' in entry
    assert "PubMed 22335487</a>" in entry


def test_an_unknown_or_impossible_study_is_a_page_not_a_crash(client: TestClient) -> None:
    signed_in(client, "researcher")
    assert client.get("/evidence/smith-1999").status_code == 404
    assert client.get("/evidence/NOT%20AN%20ID").status_code == 422


def test_signed_out_the_pages_ask_for_a_sign_in(client: TestClient) -> None:
    for path in ("/evidence", "/evidence.csv", "/evidence/amr-2010"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_empty_fields_are_no_filter() -> None:
    filters, errors, form = read_filters({"indication": "", "dose_min_mg": "  ", "setting": "icu"})
    assert filters == StudyFilters(setting="icu") and not errors
    assert form["setting"] == "icu"
    filters, errors, _ = read_filters({"dose_min_mg": "12,5"})
    assert filters == StudyFilters(dose_min_mg=12.5)


# -- the chart ------------------------------------------------------------------------------
def test_the_chart_links_each_point_and_escapes_its_words() -> None:
    points = [
        ScatterPoint(10, 20, 2, "A <b>", "/evidence/a", "a tip & more"),
        ScatterPoint(500, 500, 100, "B", "/evidence/b", "b", marker=1, at_least=True),
    ]
    svg = str(
        log_scatter_chart(
            points,
            title="t",
            description="d",
            x_label="x",
            y_label="y",
            x_ticks=decade_ticks(1, 1000),
            y_ticks=[Tick(1, "1 d"), Tick(30, "1 mo")],
            legend=[(0, "table"), (1, "text")],
        )
    )
    assert svg.count('<a class="point"') == 2
    assert 'href="/evidence/a"' in svg and "A &lt;b&gt;" in svg and "a tip &amp; more" in svg
    assert svg.count('class="range"') == 4  # a bar with two ends, and an arrow
    assert 'class="dot marker-1"' in svg
    assert (
        str(
            log_scatter_chart(
                [], title="t", description="d", x_label="x", y_label="y", x_ticks=[], y_ticks=[]
            )
        )
        == ""
    )


@given(
    st.lists(
        st.tuples(
            st.floats(min_value=0.01, max_value=1e5, allow_nan=False),
            st.floats(min_value=1, max_value=10, allow_nan=False),
            st.floats(min_value=1e-4, max_value=1e4, allow_nan=False),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_every_point_lies_inside_the_log_plot_and_keeps_its_order(
    values: list[tuple[float, float, float]],
) -> None:
    points = [
        ScatterPoint(x, x * widen, y, f"p{i}", f"/evidence/p{i}", f"p{i}")
        for i, (x, widen, y) in enumerate(values)
    ]
    svg = str(
        log_scatter_chart(
            points,
            title="t",
            description="d",
            x_label="x",
            y_label="y",
            x_ticks=decade_ticks(10, 1000),
            y_ticks=[Tick(1, "1 d")],
        )
    )
    markers = re.findall(r'<circle class="dot marker-0" cx="([-\d.]+)" cy="([-\d.]+)"', svg)
    assert len(markers) == len(points)
    for cx, cy in markers:
        assert 64 - 0.1 <= float(cx) <= 640 - 16 - 90 + 0.1
        assert 16 - 0.1 <= float(cy) <= 320 - 48 + 0.1
    # a larger y is drawn higher (the scale is monotone)
    order = sorted(range(len(points)), key=lambda i: values[i][2])
    heights = [float(markers[i][1]) for i in order]
    assert heights == sorted(heights, reverse=True)
