"""The REST API on both databases: sign-in, patients, assessments, research views, errors."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.integration.conftest import TEST_PASSWORD, browser_sign_in

from ketapath.config import Settings
from ketapath.services.permissions import Actor

API = "/api/v1"


def a_patient(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "name": "Robin Quill",
        "birth_date": "1961-11-30",
        "sex": "male",
        "weight_kg": 82.0,
        "height_cm": 178.0,
        "diagnoses": ["phantom-limb"],
        "medications": [{"name": "morphine", "dose": 30, "unit": "mg", "frequency": "bd"}],
    }
    document.update(changes)
    return document


def test_a_user_signs_in_and_the_token_says_who_they_are(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/auth/me", headers=headers["nurse"])
    assert response.status_code == 200
    assert response.json()["username"] == "nurse"
    assert response.json()["role"] == "nurse"


def test_a_wrong_password_is_401_with_a_bearer_challenge(
    client: TestClient, users: dict[str, Actor]
) -> None:
    response = client.post(
        f"{API}/auth/token", data={"username": "nurse", "password": "wrong wrong wrong"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_repeated_failures_lock_the_account_with_423(
    client: TestClient, users: dict[str, Actor]
) -> None:
    codes = [
        client.post(
            f"{API}/auth/token", data={"username": "nurse", "password": "wrong wrong wrong"}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [401, 401, 423, 423]


def test_without_a_token_every_patient_endpoint_is_401(client: TestClient) -> None:
    assert client.get(f"{API}/patients").status_code == 401
    assert client.post(f"{API}/patients", json=a_patient()).status_code == 401


def test_a_revoked_token_stops_working(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    assert client.delete(f"{API}/auth/token", headers=headers["nurse"]).status_code == 204
    assert client.get(f"{API}/auth/me", headers=headers["nurse"]).status_code == 401


def test_a_nurse_registers_amends_and_reads_a_patient(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    created = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"])
    assert created.status_code == 201, created.text
    patient_id = created.json()["id"]

    amended = client.post(
        f"{API}/patients/{patient_id}/amendments",
        json={"document": a_patient(weight_kg=80.5), "reason": "re-weighed", "expected_version": 1},
        headers=headers["physician"],
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["version"] == 2

    current = client.get(f"{API}/patients/{patient_id}", headers=headers["nurse"]).json()
    assert current["document"]["weight_kg"] == 80.5
    history = client.get(f"{API}/patients/{patient_id}/history", headers=headers["nurse"]).json()
    assert [(v["version"], v["reason"]) for v in history] == [(1, None), (2, "re-weighed")]

    found = client.get(f"{API}/patients", params={"q": "quill"}, headers=headers["nurse"]).json()
    assert [p["id"] for p in found] == [patient_id]


def test_a_stale_amendment_is_409(client: TestClient, headers: dict[str, dict[str, str]]) -> None:
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()[
        "id"
    ]
    body = {"document": a_patient(), "reason": "fix", "expected_version": 1}
    first = client.post(
        f"{API}/patients/{patient_id}/amendments", json=body, headers=headers["nurse"]
    )
    second = client.post(
        f"{API}/patients/{patient_id}/amendments", json=body, headers=headers["nurse"]
    )
    assert (first.status_code, second.status_code) == (201, 409)
    assert second.json()["field"] == "expected_version"


def test_an_invalid_patient_is_422_naming_the_field(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.post(f"{API}/patients", json=a_patient(weight_kg=0), headers=headers["nurse"])
    assert response.status_code == 422
    assert response.json()["field"] == "weight_kg"
    assert response.json()["detail"].startswith("weight_kg: ")


def test_a_missing_field_in_a_nested_body_is_named_with_its_path(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    document = a_patient()
    del document["sex"]
    response = client.post(
        f"{API}/patients/1/amendments",
        json={"document": document, "reason": "x", "expected_version": 1},
        headers=headers["nurse"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "document.sex"


def test_an_unknown_patient_is_404_naming_the_field(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/patients/999", headers=headers["nurse"])
    assert response.status_code == 404
    assert response.json()["field"] == "patient_id"


def test_assessments_are_recorded_listed_and_amended(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()[
        "id"
    ]
    recorded = client.post(
        f"{API}/patients/{patient_id}/assessments",
        json={"instrument_id": "nrs", "answers": {"pain": 7}},
        headers=headers["nurse"],
    )
    assert recorded.status_code == 201, recorded.text
    amended = client.post(
        f"{API}/assessments/{recorded.json()['id']}/amendments",
        json={"instrument_id": "nrs", "answers": {"pain": 6}, "reason": "misheard"},
        headers=headers["nurse"],
    )
    assert amended.status_code == 201, amended.text
    listed = client.get(
        f"{API}/patients/{patient_id}/assessments", headers=headers["physician"]
    ).json()
    assert [a["answers"] for a in listed] == [{"pain": 6}]
    history = client.get(
        f"{API}/assessments/{recorded.json()['id']}/history", headers=headers["physician"]
    ).json()
    assert [a["answers"]["pain"] for a in history] == [7, 6]


def test_an_assessment_in_the_future_is_refused(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()[
        "id"
    ]
    response = client.post(
        f"{API}/patients/{patient_id}/assessments",
        json={
            "instrument_id": "nrs",
            "answers": {"pain": 7},
            "administered_at": "2999-01-01T00:00:00Z",
        },
        headers=headers["nurse"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "administered_at"


def test_researchers_see_no_names_or_birth_dates(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"])
    response = client.get(f"{API}/research/patients", headers=headers["researcher"])
    assert response.status_code == 200
    (row,) = response.json()
    assert "Quill" not in response.text
    assert "1961" not in response.text
    assert row["age_band"] in {"60-69", "70-79"}
    assert row["patient_code"].startswith("P-") and "KP-" not in response.text
    assert [d["condition"] for d in row["diagnoses"]] == ["phantom-limb"]
    assert row["diagnoses_withheld"] == 0


def test_researchers_never_see_text_typed_into_medicine_or_diagnosis_fields(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient = a_patient()
    patient["diagnoses"] = ["phantom-limb", "ring Jane on 07700 900456"]
    patient["medications"] = [
        {"name": "John Smith 07700 900123"},
        {"name": "Zomorph 30 mg", "dose": 30, "unit": "mg", "frequency": "bd"},
    ]
    assert client.post(f"{API}/patients", json=patient, headers=headers["nurse"]).is_success
    response = client.get(f"{API}/research/patients", headers=headers["researcher"])
    assert response.status_code == 200
    for secret in ("John", "Smith", "07700", "900123", "Jane", "900456", "Zomorph"):
        assert secret not in response.text
    (row,) = response.json()
    assert row["medications"] == [
        {"ingredients": ["morphine"], "atc": ["N02AA01"], "product": "zomorph"}
    ]
    assert row["medicines_withheld"] == 1 and row["diagnoses_withheld"] == 1


def test_every_patient_read_and_write_appears_in_the_audit_log(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()[
        "id"
    ]
    client.get(f"{API}/patients/{patient_id}", headers=headers["physician"])
    entries = client.get(
        f"{API}/audit", params={"patient_id": patient_id}, headers=headers["admin"]
    ).json()
    assert [(e["username"], e["action"]) for e in reversed(entries)] == [
        ("nurse", "patient.create"),
        ("physician", "patient.read"),
    ]
    assert all(e["at"].endswith(("Z", "+00:00")) for e in entries)


def test_a_browser_session_is_a_secure_httponly_samesite_cookie(
    client: TestClient, users: dict[str, Actor]
) -> None:
    response = browser_sign_in(client, "nurse")
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "secure" in cookie
    assert "samesite=lax" in cookie
    assert client.get(f"{API}/auth/me").json()["username"] == "nurse"


def test_a_cookie_session_must_send_its_csrf_token_to_change_anything(
    client: TestClient, users: dict[str, Actor]
) -> None:
    session = browser_sign_in(client, "nurse").json()
    refused = client.post(f"{API}/patients", json=a_patient())
    assert refused.status_code == 403
    assert refused.json()["field"] == "csrf_token"
    wrong = client.post(f"{API}/patients", json=a_patient(), headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    accepted = client.post(
        f"{API}/patients", json=a_patient(), headers={"X-CSRF-Token": session["csrf_token"]}
    )
    assert accepted.status_code == 201


def test_browser_sign_in_without_the_sign_in_token_is_refused_and_sets_no_session(
    client: TestClient, users: dict[str, Actor]
) -> None:
    credentials = {"username": "nurse", "password": TEST_PASSWORD}
    forged = client.post(f"{API}/auth/session", data=credentials)
    assert forged.status_code == 403
    assert forged.json()["field"] == "csrf_token"
    assert "set-cookie" not in forged.headers
    assert client.get(f"{API}/auth/me").status_code == 401


def test_browser_sign_in_with_a_token_that_is_not_the_cookies_is_refused(
    client: TestClient, users: dict[str, Actor]
) -> None:
    client.get(f"{API}/auth/csrf")  # the victim's browser holds a cookie of its own
    refused = client.post(
        f"{API}/auth/session",
        data={"username": "nurse", "password": TEST_PASSWORD},
        headers={"X-CSRF-Token": "attackers-own-token"},
    )
    assert refused.status_code == 403
    client.cookies.clear()  # and an attacker's token without the matching cookie
    token = client.get(f"{API}/auth/csrf").json()["csrf_token"]
    client.cookies.clear()
    without_cookie = client.post(
        f"{API}/auth/session",
        data={"username": "nurse", "password": TEST_PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    assert without_cookie.status_code == 403


def test_the_sign_in_token_comes_in_an_httponly_cookie_and_also_as_a_form_field(
    client: TestClient, users: dict[str, Actor]
) -> None:
    issued = client.get(f"{API}/auth/csrf")
    assert issued.status_code == 200
    cookie = issued.headers["set-cookie"].lower()
    assert "ketapath_csrf=" in cookie
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    token = issued.json()["csrf_token"]
    signed_in = client.post(
        f"{API}/auth/session",
        data={"username": "nurse", "password": TEST_PASSWORD, "csrf_token": token},
    )
    assert signed_in.status_code == 200, signed_in.text
    assert client.get(f"{API}/auth/me").json()["username"] == "nurse"


def test_hsts_is_sent_on_api_and_page_answers_while_cookies_are_secure(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    answers = [
        client.get(f"{API}/auth/me", headers=headers["nurse"]),
        client.get(f"{API}/patients/1", headers=headers["admin"]),  # an error answer too
        client.get(f"{API}/openapi.json"),
        client.get("/login"),
        client.get("/static/app.css"),
    ]
    for answer in answers:
        assert answer.headers.get("strict-transport-security") == "max-age=31536000", (
            answer.request.url
        )


def test_no_hsts_when_cookies_are_not_secure(
    client: TestClient, settings: Settings, headers: dict[str, dict[str, str]]
) -> None:
    client.app.state.settings = settings.model_copy(update={"cookie_secure": False})  # type: ignore[attr-defined]
    for answer in (client.get(f"{API}/auth/me", headers=headers["nurse"]), client.get("/login")):
        assert "strict-transport-security" not in answer.headers


def test_a_forged_session_cookie_is_not_a_session(client: TestClient) -> None:
    client.cookies.set("ketapath_session", "forged-value", domain="testserver")
    assert client.get(f"{API}/auth/me").status_code == 401


def test_signing_out_ends_the_session(client: TestClient, users: dict[str, Actor]) -> None:
    session = browser_sign_in(client, "nurse").json()
    cookie = client.cookies.get("ketapath_session")
    out = client.delete(f"{API}/auth/session", headers={"X-CSRF-Token": session["csrf_token"]})
    assert out.status_code == 204
    client.cookies.set("ketapath_session", cookie or "", domain="testserver")
    assert client.get(f"{API}/auth/me").status_code == 401


def test_the_openapi_document_lists_the_versioned_endpoints(client: TestClient) -> None:
    paths = client.get(f"{API}/openapi.json").json()["paths"]
    assert f"{API}/patients" in paths
    assert all(path.startswith(API) for path in paths)


ELIGIBLE: dict[str, Any] = {
    **a_patient(),
    "pregnancy": "not_applicable",
    "diagnoses": ["crps-1"],
    "consent": "given",
    "assessment": {
        "central_sensitisation": True,
        "opioid_context": {"poor_opioid_response": True},
        "multidisciplinary_care": True,
    },
    "purpose": ["pain_relief"],
}


def test_a_physician_screens_previews_and_signs_over_the_api(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=ELIGIBLE, headers=headers["nurse"]).json()[
        "id"
    ]
    screened = client.post(f"{API}/patients/{patient_id}/screenings", headers=headers["physician"])
    assert screened.status_code == 201, screened.text
    assert screened.json()["decision"] == "eligible"

    body = {"protocol_id": "asra-initial", "setting": "icu"}
    preview = client.post(f"{API}/patients/{patient_id}/plans", json=body, headers=headers["nurse"])
    assert preview.status_code == 200, preview.text
    assert preview.json()["status"] == "needs_override"

    nurse_sign = client.post(
        f"{API}/patients/{patient_id}/orders",
        json={**body, "override_reason": "nurse tries"},
        headers=headers["nurse"],
    )
    assert nurse_sign.status_code == 403

    unreasoned = client.post(
        f"{API}/patients/{patient_id}/orders", json=body, headers=headers["physician"]
    )
    assert unreasoned.status_code == 422
    assert unreasoned.json()["field"] == "override_reason"
    assert unreasoned.json()["soft_codes"] == ["protocol:setting-deviation"]

    signed = client.post(
        f"{API}/patients/{patient_id}/orders",
        json={
            **body,
            "override_reason": "needs a monitored bed",
            "course_digest": preview.json()["digest"],
            "patient_version": preview.json()["patient_version"],
        },
        headers=headers["physician"],
    )
    assert signed.status_code == 201, signed.text
    order = client.get(f"{API}/orders/{signed.json()['id']}", headers=headers["pharmacist"]).json()
    assert order["status"] == "signed"
    assert order["override_reason"] == "needs a monitored bed"
    assert order["course"]["sessions"][0]["steps"][0]["rate_ml_per_h"] > 0


def test_a_hard_limit_is_422_with_its_findings_and_nothing_is_signed(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=ELIGIBLE, headers=headers["nurse"]).json()[
        "id"
    ]
    client.post(f"{API}/patients/{patient_id}/screenings", headers=headers["physician"])
    body = {"protocol_id": "titrate-correll", "setting": "clinic", "override_reason": "please"}
    response = client.post(
        f"{API}/patients/{patient_id}/orders", json=body, headers=headers["physician"]
    )
    assert response.status_code == 422
    assert response.json()["field"] == "limits"
    assert response.json()["findings"]
    assert (
        client.get(f"{API}/patients/{patient_id}/orders", headers=headers["physician"]).json() == []
    )


def test_a_plan_with_a_bad_option_is_422_naming_it(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=ELIGIBLE, headers=headers["nurse"]).json()[
        "id"
    ]
    response = client.post(
        f"{API}/patients/{patient_id}/plans",
        json={"protocol_id": "asra-initial", "setting": "home"},
        headers=headers["physician"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "setting"


def test_an_out_of_range_answer_is_422_naming_the_item(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()[
        "id"
    ]
    response = client.post(
        f"{API}/patients/{patient_id}/assessments",
        json={"instrument_id": "nrs", "answers": {"pain": 12}},
        headers=headers["nurse"],
    )
    assert response.status_code == 422
    assert response.json()["field"] == "answers.pain"
    assert "0 to 10" in response.json()["detail"]


def test_researchers_get_scores_by_research_code_and_day(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    created = client.post(f"{API}/patients", json=a_patient(), headers=headers["nurse"]).json()
    client.post(
        f"{API}/patients/{created['id']}/assessments",
        json={"instrument_id": "nrs", "answers": {"pain": 6}},
        headers=headers["nurse"],
    )
    (row,) = client.get(f"{API}/research/assessments", headers=headers["researcher"]).json()
    (patient,) = client.get(f"{API}/research/patients", headers=headers["researcher"]).json()
    assert row == {
        "patient_code": patient["patient_code"],
        "instrument_id": "nrs",
        "day": 0,
        "total": 6.0,
        "score": row["score"],
    }
    assert row["score"]["band"] == "moderate"
    assert patient["patient_code"] != created["pseudonym"]


def test_the_instrument_catalogue_lists_items_and_sources(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    catalogue = client.get(f"{API}/instruments", headers=headers["nurse"]).json()
    nrs = next(i for i in catalogue if i["id"] == "nrs")
    assert [item["id"] for item in nrs["items"]] == ["pain"]
    assert nrs["source"]["cite"] and "provenance" not in nrs["source"]
