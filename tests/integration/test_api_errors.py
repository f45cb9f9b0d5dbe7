"""Every API error has one body (ErrorBody), and the OpenAPI document declares it as sent."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.integration.test_api import a_patient

from ketapath.api.errors import ErrorBody

API = "/api/v1"
ERROR_REF = "#/components/schemas/ErrorBody"


def test_every_declared_error_of_every_operation_is_the_error_body(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    declared = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            errors = {k: v for k, v in operation["responses"].items() if k.startswith("4")}
            assert errors, (method, path)
            for status, response in errors.items():
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
                declared += 1
    assert declared > 100


def test_the_error_body_says_detail_is_text_and_field_is_always_there(client: TestClient) -> None:
    schema = client.get(f"{API}/openapi.json").json()["components"]["schemas"]["ErrorBody"]
    assert schema["properties"]["detail"]["type"] == "string"
    assert sorted(schema["required"]) == ["detail", "field"]
    assert schema["additionalProperties"] is False


def test_errors_as_sent_are_error_bodies_with_their_declared_status(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    nurse, physician = headers["nurse"], headers["physician"]
    patient_id = client.post(f"{API}/patients", json=a_patient(), headers=nurse).json()["id"]
    amend = {"document": a_patient(consent="given"), "reason": "fix", "expected_version": 1}
    client.post(f"{API}/patients/{patient_id}/amendments", json=amend, headers=nurse)
    sent = {
        401: client.get(f"{API}/patients"),
        403: client.get(f"{API}/research/patients", headers=nurse),
        404: client.get(f"{API}/patients/999", headers=nurse),
        409: client.post(f"{API}/patients/{patient_id}/amendments", json=amend, headers=nurse),
        422: client.post(f"{API}/patients", json=a_patient(weight_kg="heavy"), headers=nurse),
    }
    spec = client.get(f"{API}/openapi.json").json()
    operations = {
        401: ("/api/v1/patients", "get"),
        403: ("/api/v1/research/patients", "get"),
        404: ("/api/v1/patients/{patient_id}", "get"),
        409: ("/api/v1/patients/{patient_id}/amendments", "post"),
        422: ("/api/v1/patients", "post"),
    }
    for status, response in sent.items():
        assert response.status_code == status, response.text
        body = ErrorBody.model_validate(response.json())
        assert isinstance(body.detail, str) and body.detail
        path, method = operations[status]
        assert str(status) in spec["paths"][path][method]["responses"]
    assert sent[422].json()["errors"][0]["field"] == "weight_kg"
    # a refusal by a clinical rule carries its codes in the declared fields
    client.post(f"{API}/patients/{patient_id}/screenings", headers=physician)
    refused = client.post(
        f"{API}/patients/{patient_id}/orders",
        json={"protocol_id": "asra-initial"},
        headers=physician,
    )
    assert refused.status_code == 422, refused.text
    assert ErrorBody.model_validate(refused.json()).screening_codes == ["purpose:not-stated"]


def test_an_unknown_api_path_answers_in_the_same_shape(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/no-such-thing", headers=headers["nurse"])
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found", "field": None}
