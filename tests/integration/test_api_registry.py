"""The registry through the API and the page, on SQLite and PostgreSQL: typed JSON with no NaN
or infinity, a CSV per analysis, bad filters refused in words (422), only physicians and
researchers, a researcher's rows de-identified in JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import browser_sign_in
from tests.integration.registry_builders import CourseSpec, build_course, relieved

from ketapath.services.permissions import Actor
from ketapath.store.db import Database

API = "/api/v1/registry"
ANALYSES = ["", "/courses", "/responders", "/relief", "/adverse-events", "/regression"]


def strict_json(text: str) -> object:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in the JSON"))


@pytest.fixture
def registry_courses(database: Database, users: dict[str, Actor]) -> list[int]:
    specs = [
        CourseSpec(follow_ups={7: 3}, diary={**relieved(1, 9), 10: 8}),
        CourseSpec(follow_ups={7: 8}, diary={**relieved(1, 4), 5: 8}),
        CourseSpec(follow_ups={14: 5}, diary=relieved(1, 6)),
        # relief never ends: the median is not reached, the band has no bound at the end
        CourseSpec(baseline=None, diary=relieved(1, 3)),
    ]
    return [
        build_course(database, users, replace(spec, name=f"Api Patient {n}"))
        for n, spec in enumerate(specs)
    ]


@pytest.mark.parametrize("path", ANALYSES)
def test_every_analysis_answers_typed_json_without_nan_for_both_roles(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    registry_courses: list[int],
    path: str,
) -> None:
    for role in ("physician", "researcher"):
        response = client.get(API + path, headers=headers[role])
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        strict_json(response.text)
    for role in ("nurse", "pharmacist", "admin"):
        assert client.get(API + path, headers=headers[role]).status_code == 403
    assert client.get(API + path).status_code == 401


@pytest.mark.parametrize("path", ANALYSES[1:])
def test_each_analysis_downloads_as_csv(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    registry_courses: list[int],
    path: str,
) -> None:
    response = client.get(f"{API}{path}?format=csv", headers=headers["physician"])
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    name = path.strip("/")
    assert f'filename="registry-{name}.csv"' in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert len(rows) >= 2 and all(len(r) == len(rows[0]) for r in rows)
    assert "nan" not in response.text.lower().split(",")


def test_a_researchers_course_rows_name_no_one_and_give_no_date(
    client: TestClient, headers: dict[str, dict[str, str]], registry_courses: list[int]
) -> None:
    view = client.get(f"{API}/courses?limit=1000", headers=headers["researcher"]).json()
    assert view["identified"] is False and view["total"] == 4
    assert all(course["link"] is None for course in view["courses"])
    text = json.dumps(view)
    assert "Api Patient" not in text and not re.search(r"\d{4}-\d{2}-\d{2}", text)
    download = client.get(f"{API}/courses?format=csv", headers=headers["researcher"]).text
    header = next(csv.reader(io.StringIO(download)))
    assert not {"patient_id", "order_id", "first_session_on", "last_session_on"} & set(header)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", download) and "Api Patient" not in download
    doctor = client.get(f"{API}/courses?format=csv", headers=headers["physician"]).text
    assert "patient_id" in next(csv.reader(io.StringIO(doctor)))


def test_a_median_never_reached_is_null_with_its_reason(
    client: TestClient, headers: dict[str, dict[str, str]], registry_courses: list[int]
) -> None:
    view = client.get(f"{API}/relief?group_by=protocol", headers=headers["physician"]).json()
    (group,) = view["groups"]
    assert group["median"]["days"] is not None or group["median"]["reason"]
    regression = client.get(f"{API}/regression", headers=headers["physician"]).json()
    assert regression["status"] == "too few data" and regression["coefficients"] == []
    assert regression["message"].startswith("Too few data")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("dose_band=plenty", "dose_band"),
        ("group_by=colour", "group_by"),
        ("date_from=2025-13-01", "date_from"),
        ("date_from=2025-05-01&date_to=2025-01-01", "date_from"),
        ("protocol=" + "x" * 81, "protocol"),
        ("limit=5000", "limit"),
        ("format=pdf", "format"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(
    client: TestClient,
    headers: dict[str, dict[str, str]],
    registry_courses: list[int],
    query: str,
    field: str,
) -> None:
    path = "/responders" if "group_by" in query else "/courses"
    response = client.get(f"{API}{path}?{query}", headers=headers["physician"])
    assert response.status_code == 422, response.text
    assert response.json()["field"] == field


def test_the_page_is_in_the_navigation_of_physicians_and_researchers_only(
    client: TestClient, users: dict[str, Actor], registry_courses: list[int]
) -> None:
    for role in ("physician", "researcher"):
        client.cookies.clear()
        browser_sign_in(client, role)
        page = client.get("/registry?group_by=dose_band")
        assert page.status_code == 200
        assert 'href="/registry"' in page.text and 'id="relief-chart"' in page.text
        assert "Too few data" in page.text
        # the responder card says which timepoint it judges at, and why
        assert 'id="responder-timepoint" data-timepoint="first follow-up"' in page.text
        assert "first follow-up with a pain score" in page.text
        exposure = client.get("/registry?group_by=exposure")
        assert exposure.status_code == 200 and "not computed" in exposure.text
        # a physician's course table links to the patient and the order; a researcher's not
        assert ('href="/patients/' in page.text) is (role == "physician")
        assert ('href="/orders/' in page.text) is (role == "physician")
        bad = client.get("/registry?dose_band=plenty")
        assert bad.status_code == 422 and "is not a band" in bad.text
    client.cookies.clear()
    browser_sign_in(client, "nurse")
    assert 'href="/registry"' not in client.get("/patients").text
    assert client.get("/registry").status_code == 403
