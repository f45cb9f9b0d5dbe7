"""Stored exposure summaries through the API: a session's and a course's, their history after
a chart correction, the roles, and bad ids."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient
from tests.integration.conftest import check_in_entry, signed_order
from tests.integration.test_api_sessions import API, Chart, _schedule

from ketapath.services.permissions import Actor
from ketapath.store.db import Database


def _given(client: TestClient, database: Database, users: dict[str, Actor], headers) -> Chart:
    """A session checked in, started, paused and stopped through the API."""
    session_id = _schedule(client, headers, signed_order(database, users))
    chart = Chart(client, headers, session_id)
    fields = check_in_entry(datetime.now(UTC))
    fields.pop("kind"), fields.pop("occurred_at")
    chart.ok("check_in", 0.0, **fields)
    chart.ok("start", 0.1)
    chart.ok("pause", 0.4, reason="patient_request")
    chart.ok("stop", 0.6, reason="other")
    return chart


def test_a_sessions_summary_is_stored_and_a_correction_adds_to_its_history(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    chart = _given(client, database, users, headers)
    url = f"{API}/sessions/{chart.session_id}/exposure-summary"
    response = client.get(url, headers=headers["nurse"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "stored" and body["subject"] == f"session:{chart.session_id}"
    assert body["record"]["reason"] == "first computed" and body["history"] == []
    ketamine = body["ketamine"]
    assert ketamine["auc_mg_h_per_l"] > 0 and ketamine["peak_mg_per_l"] > 0
    assert ketamine["auc_inf_mg_h_per_l"] >= ketamine["auc_mg_h_per_l"]
    assert {t["basis"] for t in ketamine["time_above"]} == {"published"}
    assert {t["basis"] for t in body["norketamine"]["time_above"]} == {"policy"}
    assert len(body["record"]["inputs_digest"]) == 64
    # the pause is corrected: it began earlier, so less was given
    entries = client.get(f"{API}/sessions/{chart.session_id}/entries", headers=headers["nurse"])
    pause = next(e for e in entries.json() if e["kind"] == "pause")
    corrected = client.post(
        f"{API}/sessions/{chart.session_id}/entries/{pause['seq']}/correction",
        json={
            "expected_seq": chart.seen,
            "reason": "time misread",
            "entry": {"kind": "pause", "occurred_at": chart.at(0.3), "reason": "patient_request"},
        },
        headers=headers["nurse"],
    )
    assert corrected.status_code == 201, corrected.text
    after = client.get(url, headers=headers["physician"]).json()
    assert after["record"]["reason"] == "recomputed: the doses charted changed"
    assert [h["id"] for h in after["history"]] == [body["record"]["id"]]
    assert after["total_mg"] < body["total_mg"]


def test_a_courses_summary_lists_its_sessions(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    chart = _given(client, database, users, headers)
    session = client.get(f"{API}/sessions/{chart.session_id}", headers=headers["nurse"]).json()
    response = client.get(
        f"{API}/courses/{session['order_id']}/exposure-summary", headers=headers["pharmacist"]
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scope"] == "course" and body["status"] == "stored"
    assert body["sessions"][0]["session_id"] == chart.session_id
    assert body["sessions"][0]["offset_min"] == 0
    assert body["ketamine"]["auc_inf_mg_h_per_l"] > 0


def test_the_summaries_follow_the_roles_and_refuse_ids_no_record_has(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    order_id = signed_order(database, users)
    session_id = _schedule(client, headers, order_id)
    for url in (
        f"{API}/sessions/{session_id}/exposure-summary",
        f"{API}/courses/{order_id}/exposure-summary",
    ):
        nothing = client.get(url, headers=headers["nurse"])
        assert nothing.status_code == 200 and nothing.json()["status"] == "nothing given"
        for role in ("researcher", "admin"):
            assert client.get(url, headers=headers[role]).status_code == 403
        assert client.get(url).status_code == 401
    for url in (
        f"{API}/sessions/999999/exposure-summary",
        f"{API}/courses/999999/exposure-summary",
    ):
        assert client.get(url, headers=headers["nurse"]).status_code == 404
    assert (
        client.get(f"{API}/sessions/0/exposure-summary", headers=headers["nurse"]).status_code
        == 422
    )
