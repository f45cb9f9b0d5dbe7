"""The API of issue 12's course context: assessments tied to a course, indicators of success,
safety follow-up results. Bad input is a 422 in words naming the field, and writes nothing."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from tests.integration.conftest import signed_order

from ketapath.services.permissions import Actor
from ketapath.store.db import Database
from ketapath.store.models import Order

API = "/api/v1"
NRS = {"instrument_id": "nrs", "answers": {"pain": 5}}


def _patient(database: Database, order_id: int) -> int:
    with database.transaction() as s:
        order = s.get(Order, order_id)
        assert order is not None
        return order.patient_id


def _post(client: TestClient, url: str, body: dict[str, Any], who: dict[str, str]) -> Any:
    return client.post(f"{API}{url}", json=body, headers=who)


def test_a_course_assessment_is_listed_under_its_order_and_old_bodies_still_work(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    order_id = signed_order(database, users)
    patient_id = _patient(database, order_id)
    nurse = headers["nurse"]
    url = f"/patients/{patient_id}/assessments"
    plain = _post(client, url, NRS, nurse)
    assert plain.status_code == 201 and plain.json()["context"] is None
    body = {**NRS, "order_id": order_id, "label": "follow-up", "timepoint_days": 28}
    made = _post(client, url, body, nurse)
    assert made.status_code == 201, made.text
    assert made.json()["context"]["timepoint_days"] == 28
    course = client.get(f"{API}/orders/{order_id}/assessments", headers=headers["physician"])
    assert course.status_code == 200
    assert [a["id"] for a in course.json()["follow_up"]] == [made.json()["id"]]
    assert course.json()["timepoints_days"] == [28]
    denied = client.get(f"{API}/orders/{order_id}/assessments", headers=headers["researcher"])
    assert denied.status_code == 403


def test_another_patient_s_order_and_bad_labels_are_422_in_words_and_write_nothing(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    mine = signed_order(database, users, name="Mine")
    theirs = signed_order(database, users, name="Theirs")
    patient_id = _patient(database, mine)
    nurse = headers["nurse"]
    url = f"/patients/{patient_id}/assessments"
    wrong = _post(client, url, {**NRS, "order_id": theirs, "label": "baseline"}, nurse)
    assert wrong.status_code == 422
    assert wrong.json()["field"] == "order_id"
    assert "not a course of patient" in wrong.json()["detail"]
    for bad in (
        {"order_id": mine, "label": "follow-up"},
        {"order_id": mine, "label": "follow-up", "timepoint_days": 0},
        {"order_id": mine, "label": "sometime"},
        {"label": "baseline"},
    ):
        answer = _post(client, url, {**NRS, **bad}, nurse)
        assert answer.status_code == 422, (bad, answer.text)
    assert client.get(f"{API}{url}", headers=nurse).json() == []
    first = _post(client, url, {**NRS, "order_id": mine, "label": "baseline"}, nurse).json()
    amended = _post(
        client,
        f"/assessments/{first['id']}/amendments",
        {**NRS, "reason": "re-asked", "order_id": mine, "label": "baseline"},
        nurse,
    )
    assert amended.status_code == 422 and amended.json()["field"] == "order_id"


def test_indicators_of_success_are_recorded_read_and_amended(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    order_id = signed_order(database, users)
    patient_id = _patient(database, order_id)
    nurse = headers["nurse"]
    url = f"/patients/{patient_id}/indicators"
    bad = _post(
        client, url, {"order_id": order_id, "indicators": {"pain_reduction_percent": 101}}, nurse
    )
    assert bad.status_code == 422 and "pain_reduction_percent" in bad.json()["field"]
    empty = _post(client, url, {"order_id": order_id, "indicators": {}}, nurse)
    assert empty.status_code == 422
    assert "at least one" in empty.json()["detail"]
    assert client.get(f"{API}/orders/{order_id}/indicators", headers=nurse).json() is None
    body = {"order_id": order_id, "indicators": {"pain_reduction_percent": 30, "sleep_goal": "6 h"}}
    made = _post(client, url, body, nurse)
    assert made.status_code == 201, made.text
    again = _post(client, url, body, nurse)
    assert again.status_code == 409
    changed = _post(
        client,
        f"/indicators/{made.json()['id']}/amendments",
        {"indicators": {"pain_reduction_percent": 50}, "reason": "agreed again"},
        headers["physician"],
    )
    assert changed.status_code == 201
    read = client.get(f"{API}/orders/{order_id}/indicators", headers=headers["pharmacist"])
    assert read.json()["indicators"]["pain_reduction_percent"] == 50
    assert client.get(f"{API}{url}", headers=headers["researcher"]).status_code == 403


def test_a_safety_result_is_judged_and_bad_values_are_422_naming_the_field(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    from tests.integration.conftest import clinic_noon

    patient_id = _patient(database, signed_order(database, users))
    nurse = headers["nurse"]
    url = f"/patients/{patient_id}/safety-results"
    today = clinic_noon().today().isoformat()
    bad = _post(
        client,
        url,
        {"check_id": "cognition", "observed_on": today, "values": {"moca_score": 40}},
        nurse,
    )
    assert bad.status_code == 422 and bad.json()["field"] == "values.moca_score"
    assert "between 0 and 30" in bad.json()["detail"]
    typed = _post(
        client,
        url,
        {
            "check_id": "cognition",
            "observed_on": today,
            "values": {"moca_score": 27},
            "abnormal": True,
        },
        nurse,
    )
    assert typed.status_code == 422
    assert client.get(f"{API}{url}", headers=nurse).json() == []
    made = _post(
        client,
        url,
        {"check_id": "cognition", "observed_on": today, "values": {"moca_score": 22}},
        nurse,
    )
    assert made.status_code == 201, made.text
    assert made.json()["abnormal"] is True
    assert made.json()["findings"][0]["code"] == "safety:cognition-below-cut-off"
    checks = client.get(f"{API}/safety-checks", headers=nurse).json()
    assert [c["id"] for c in checks] == [
        "liver-enzymes",
        "urinary-symptoms",
        "cognition",
        "misuse-screen",
    ]
    assert client.get(f"{API}{url}", headers=headers["researcher"]).status_code == 403
    assert (
        _post(
            client,
            url,
            {"check_id": "cognition", "observed_on": today, "values": {"moca_score": 22}},
            headers["pharmacist"],
        ).status_code
        == 403
    )
