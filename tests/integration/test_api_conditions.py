"""The diagnosis vocabulary over the API: the list, and how written diagnoses are read."""

from __future__ import annotations

from fastapi.testclient import TestClient

API = "/api/v1"


def test_the_vocabulary_lists_every_condition_with_its_codes_and_screening_role(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(f"{API}/conditions", headers=headers["researcher"])
    assert response.status_code == 200, response.text
    conditions = {c["id"]: c for c in response.json()}
    assert conditions["crps"]["icd11"] == ["MG30.04"]
    assert conditions["crps"]["screening"].startswith("indication, Grade B")
    assert conditions["raised-iop"]["citation"].count("ASRA/AAPM/ASA consensus 2018, Table 5")
    assert "provenance" not in response.text and "seed" not in response.text.lower()


def test_written_diagnoses_are_read_as_screening_reads_them(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    response = client.get(
        f"{API}/conditions/reading",
        params={
            "text": [
                "Elevated intraocular pressure, acute globe injury, or glaucoma",
                "no history of psychosis",
                "angina",
                "MG30.04",
            ]
        },
        headers=headers["nurse"],
    )
    assert response.status_code == 200, response.text
    table, negated, ambiguous, code = response.json()
    assert table["resolved"] and table["condition"]["id"] == "raised-iop"
    assert table["condition"]["icd10cm"] == ["H40", "H42", "Q15.0", "S05"]
    assert not negated["resolved"] and negated["matched_by"] == "negated"
    assert negated["mentions"] == ["psychosis"] and "check by hand" in negated["explanation"]
    assert ambiguous["matched_by"] == "ambiguous" and len(ambiguous["candidates"]) == 2
    assert code["matched_by"] == "icd11" and code["condition"]["id"] == "crps"


def test_reading_needs_a_text_within_its_bound_and_a_signed_in_user(
    client: TestClient, headers: dict[str, dict[str, str]]
) -> None:
    assert client.get(f"{API}/conditions/reading", headers=headers["nurse"]).status_code == 422
    too_long = client.get(
        f"{API}/conditions/reading", params={"text": "x" * 201}, headers=headers["nurse"]
    )
    assert too_long.status_code == 422
    assert client.get(f"{API}/conditions/reading", params={"text": "CRPS"}).status_code == 401
