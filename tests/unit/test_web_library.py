"""The drug library in the browser: the chooser offers only stocked strengths and refuses a
crafted one, the order page names the library it was checked against, and the pharmacist's
page shows the library and its history and checks, approves and loads a new version."""

from __future__ import annotations

import html
import json
import re

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.knowledge.library import default_library, library_yaml

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below


def screened(client: TestClient, patient_id: int = 1) -> str:
    token = signed_in(client, "physician")
    response = client.post(f"/patients/{patient_id}/screening", data={"csrf_token": token})
    assert response.status_code == 303
    return token


def strength_options(page: str) -> list[str]:
    select = page[page.index('id="concentration_mg_per_ml"') :]
    select = select[: select.index("</select>")]
    return re.findall(r'<option value="([^"]*)"', select)


def sign_fields(page: str) -> dict[str, str]:
    form = page[page.index('class="form sign-form"') :]
    form = form[: form.index("</form>")]
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))


def library_file(version: int, change: str = "") -> tuple[str, bytes, str]:
    text = library_yaml(default_library()).replace("version: 0", f"version: {version}", 1)
    text = text.replace("name: ketapath default drug library", f"name: Clinic library {version}")
    return (f"library-{version}.yaml", (text + change).encode(), "application/x-yaml")


def test_the_chooser_offers_only_the_strengths_the_library_stocks(client: TestClient) -> None:
    screened(client)
    page = client.get("/patients/1/plan").text
    assert strength_options(page) == ["", "1", "2", "10"]
    sc = client.get(
        "/patients/1/plan",
        params={"protocol_id": "inpatient-sc-anzca"},
        headers={"HX-Request": "true", "HX-Target": "course-panel"},
    ).text
    assert 'hx-swap-oob="true"' in sc
    assert strength_options(sc) == ["", "10"]


def test_a_crafted_strength_in_the_query_string_is_refused_and_cannot_be_signed(
    client: TestClient,
) -> None:
    # issue 8: concentration_mg_per_ml=0.001 gave a signed order at about 23,800 mL/h
    token = screened(client)
    crafted = {"protocol_id": "asra-initial", "concentration_mg_per_ml": "0.001"}
    page = client.get("/patients/1/plan", params=crafted)
    text = html.unescape(page.text)
    assert "Bag concentration: 0.001 mg/mL is not a strength" in text
    assert "1, 2, 10 mg/mL" in text and "Sign the course" not in text
    response = client.post(
        "/patients/1/orders", data={**crafted, "csrf_token": token, "patient_version": "1"}
    )
    assert response.status_code == 422
    assert "not a strength the drug library stocks" in html.unescape(response.text)
    assert "Signed orders" not in client.get("/patients/1/plan").text


def test_the_order_page_names_the_library_version_and_digest_and_each_steps_volume(
    client: TestClient,
) -> None:
    screened(client)
    page = client.get("/patients/1/plan", params={"protocol_id": "asra-initial"})
    assert 'id="course-library"' in page.text and 'id="course-pump"' in page.text
    response = client.post("/patients/1/orders", data=sign_fields(page.text))
    assert response.status_code == 303, response.text
    order = client.get(response.headers["location"]).text
    digest = default_library().digest()
    assert "ketapath default drug library</strong>, version 0" in order
    assert digest[:16] in order
    assert "Volume to be infused, mL" in order and ">80</td>" in order


def test_a_pharmacist_sees_the_library_its_sources_and_its_history(client: TestClient) -> None:
    signed_in(client, "pharmacist")
    page = client.get("/library")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert 'id="library-version">0 (the default packaged with ketapath)' in text
    assert "Volumetric infusion pump (IV line)" in text and "Syringe driver" in text
    assert "0.1-0.5 mg/kg/h for a review's recommendation for outpatients" in text
    assert "Follows:" in text and 'href="/references#cohen-2018-ketamine-consensus"' in text
    assert "midazolam (iv)" in text and 'id="library-history"' in text
    assert "Check the file" in text
    assert "seed" not in text.lower()


def test_a_nurse_reads_the_library_but_gets_no_upload_form(client: TestClient) -> None:
    token = signed_in(client, "nurse")
    page = client.get("/library")
    assert page.status_code == 200 and "Check the file" not in page.text
    response = client.post("/library", data={"csrf_token": token}, files={"file": library_file(1)})
    assert response.status_code == 403
    assert "'library.manage' needs the role admin, pharmacist" in html.unescape(response.text)


def test_a_researcher_may_not_see_the_library(client: TestClient) -> None:
    signed_in(client, "researcher")
    assert client.get("/library").status_code == 403


def test_a_pharmacist_checks_approves_and_loads_a_new_version(client: TestClient) -> None:
    token = signed_in(client, "pharmacist")
    checked = client.post(
        "/library", data={"csrf_token": token, "intent": "check"}, files={"file": library_file(1)}
    )
    assert checked.status_code == 200, checked.text
    assert 'id="check-outcomes"' in checked.text and "asra-initial" in checked.text
    form = checked.text[checked.text.index('name="intent" value="load"') :]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    fields = {k: html.unescape(v) for k, v in fields.items()}
    assert json.loads(fields["document_text"])["version"] == 1
    refused = client.post("/library", data={**fields, "intent": "load", "csrf_token": token})
    assert refused.status_code == 422
    assert "The reason (what changed, and why) is required." in html.unescape(refused.text)
    assert 'aria-describedby="library-reason-error"' in refused.text
    loaded = client.post(
        "/library",
        data={**fields, "intent": "load", "csrf_token": token, "reason": "our own pumps"},
    )
    assert loaded.status_code == 303
    page = html.unescape(client.get(loaded.headers["location"]).text)
    assert "Version 1 is approved and loaded" in page
    assert 'id="library-version">1' in page and "our own pumps" in page
    assert "pharmacist" in page  # the approver


def test_a_file_with_a_version_not_above_the_stored_ones_is_refused(client: TestClient) -> None:
    token = signed_in(client, "pharmacist")
    response = client.post("/library", data={"csrf_token": token}, files={"file": library_file(0)})
    assert response.status_code == 422
    assert "needs a version of at least 1" in html.unescape(response.text)


def test_a_file_that_fails_its_checks_is_refused_naming_the_field(client: TestClient) -> None:
    token = signed_in(client, "pharmacist")
    broken = library_file(1)[1].decode().replace("hard: 0.35", "hard: -1", 1)
    response = client.post(
        "/library",
        data={"csrf_token": token},
        files={"file": ("broken.yaml", broken.encode(), "application/x-yaml")},
    )
    assert response.status_code == 422
    text = html.unescape(response.text)
    assert "bolus_mg_per_kg.hard" in text and 'id="upload-errors"' in text
    assert 'id="library-file-error"' in text


def test_a_library_upload_without_the_csrf_token_is_refused(client: TestClient) -> None:
    signed_in(client, "pharmacist")
    response = client.post("/library", files={"file": library_file(1)})
    assert response.status_code == 403


def test_the_library_downloads_as_a_yaml_file_that_loads_back(client: TestClient) -> None:
    signed_in(client, "pharmacist")
    response = client.get("/library/export")
    assert response.status_code == 200
    assert "drug-library-v0.yaml" in response.headers["content-disposition"]
    assert response.text == library_yaml(default_library())
