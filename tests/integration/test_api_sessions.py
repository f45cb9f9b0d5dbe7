"""The infusion day through the API (real clock, clinic time zone of the settings): a session
from scheduling to discharge with the section-5 prompts, refusals with their status codes, and
replays of posted logs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import baseline_vitals
from tests.integration.conftest import check_in_entry, signed_order

from ketapath.services.clock import clinic_clock
from ketapath.services.permissions import Actor
from ketapath.store.db import Database

API = "/api/v1"


class Chart:
    """Posts entries to one session through the API, at increasing times up to now."""

    def __init__(self, client: TestClient, headers: dict[str, dict[str, str]], session_id: int):
        self.client, self.headers, self.session_id = client, headers, session_id
        self.seen = 0
        clock = clinic_clock()
        now = clock.now()
        # entries up to an hour ago, never before the clinic's midnight
        self.base = max(now - timedelta(hours=1), clock.start_of(clock.today()))
        self.span = now - self.base

    def at(self, fraction: float) -> str:
        return (self.base + self.span * fraction).isoformat()

    def post(self, kind: str, fraction: float, role: str = "nurse", **fields: Any) -> Any:
        body = {
            "expected_seq": self.seen,
            "entry": {"kind": kind, "occurred_at": self.at(fraction), **fields},
        }
        return self.client.post(
            f"{API}/sessions/{self.session_id}/entries", json=body, headers=self.headers[role]
        )

    def ok(self, kind: str, fraction: float, role: str = "nurse", **fields: Any) -> dict[str, Any]:
        response = self.post(kind, fraction, role, **fields)
        assert response.status_code == 201, response.text
        detail: dict[str, Any] = response.json()
        self.seen = detail["chart"]["last_seq"]
        return detail


def _schedule(
    client: TestClient, headers: dict[str, dict[str, str]], order_id: int, chair: str = "Chair 3"
) -> int:
    response = client.post(
        f"{API}/orders/{order_id}/sessions",
        json={"first_date": clinic_clock().today().isoformat(), "chair": chair},
        headers=headers["nurse"],
    )
    assert response.status_code == 201, response.text
    return int(response.json()[0]["id"])


def _prompt(detail: dict[str, Any], code: str) -> dict[str, Any]:
    return next(p for p in detail["chart"]["prompts"] if p["code"] == code)


def test_a_session_from_the_worklist_to_discharge_with_the_section_5_prompts(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    session_id = _schedule(client, headers, signed_order(database, users))
    worklist = client.get(f"{API}/sessions", headers=headers["nurse"]).json()
    assert [s["id"] for s in worklist] == [session_id]
    chart = Chart(client, headers, session_id)
    fields = check_in_entry(datetime.now(UTC))
    fields.pop("kind"), fields.pop("occurred_at")
    detail = chart.ok("check_in", 0.0, **fields)
    assert detail["chart"]["programme"]["concentration_mg_per_ml"] > 0
    chart.ok("start", 0.05)
    detail = chart.ok("side_effect", 0.1, effect="headache", severity="severe")
    assert _prompt(detail, "session:pause-for-side-effect")["status"] == "open"
    chart.ok("pause", 0.12, reason="side_effect")
    assert chart.post("resume", 0.2).status_code == 422  # a nurse waits the hour
    chart.ok("resume", 0.2, role="physician")
    detail = chart.ok("side_effect", 0.3, effect="nausea-vomiting", severity="moderate")
    call = _prompt(detail, "session:call-physician")
    detail = chart.ok("acknowledge", 0.31, prompt_id=call["id"], note="Dr Ray: continue")
    ack = _prompt(detail, "session:call-physician")
    assert ack["status"] == "resolved" and ack["acknowledgements"][0]["by"] == "nurse"
    detail = chart.ok(
        "side_effect", 0.4, effect="dissociation", severity="moderate", cadss6_total=9
    )
    assert _prompt(detail, "session:stop-infusion")["severity"] == "soft"
    detail = chart.ok("stop", 0.41, reason="dissociation")
    assert detail["chart"]["state"] == "stopped"
    assert detail["chart"]["dose"]["delivered_mg"] > 0
    chart.ok("begin_observation", 0.42)
    chart.ok("vitals", 0.6, **baseline_vitals())
    chart.ok(
        "discharge_assessment",
        0.7,
        oriented=True,
        steady_gait=True,
        pain_nausea_vomiting="minimal",
        bleeding="minimal",
        oral_fluids=True,
        voided=True,
    )
    early = chart.post("discharge", 0.8, escort_present=True, emergency_plan_given=True)
    assert early.status_code == 422 and "Observation until" in early.json()["detail"]
    detail = chart.ok(
        "discharge",
        0.8,
        role="physician",
        escort_present=True,
        emergency_plan_given=True,
        override_reason="reviewed; stable; escort here",
    )
    assert detail["chart"]["state"] == "discharged"
    entries = client.get(f"{API}/sessions/{session_id}/entries", headers=headers["pharmacist"])
    assert len(entries.json()) == chart.seen
    dose = client.get(f"{API}/patients/{detail['patient_id']}/sessions", headers=headers["nurse"])
    assert dose.json()["lifetime_delivered_mg"] == pytest.approx(
        detail["chart"]["dose"]["delivered_mg"]
    )


def test_refusals_have_their_status_codes(
    client: TestClient,
    database: Database,
    users: dict[str, Actor],
    headers: dict[str, dict[str, str]],
) -> None:
    session_id = _schedule(client, headers, signed_order(database, users))
    chart = Chart(client, headers, session_id)
    illegal = chart.post("start", 0.5)
    assert illegal.status_code == 409 and "the session is scheduled" in illegal.json()["detail"]
    bad = chart.post("vitals", 0.5, spo2=140)
    assert bad.status_code == 422 and bad.json()["field"] == "entry.vitals.spo2"
    future = chart.post("note", 0.5, note="x")
    assert future.status_code == 201
    ahead = client.post(
        f"{API}/sessions/{session_id}/entries",
        json={
            "expected_seq": 1,
            "entry": {
                "kind": "note",
                "note": "x",
                "occurred_at": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            },
        },
        headers=headers["nurse"],
    )
    assert ahead.status_code == 422 and "in the future" in ahead.json()["detail"]
    missing = client.get(f"{API}/sessions/999999", headers=headers["nurse"])
    assert missing.status_code == 404
    order_id = client.get(f"{API}/sessions/{session_id}", headers=headers["nurse"]).json()[
        "order_id"
    ]
    twice = client.post(
        f"{API}/orders/{order_id}/sessions",
        json={"first_date": clinic_clock().today().isoformat(), "chair": "Chair 3"},
        headers=headers["nurse"],
    )
    assert twice.status_code == 409


def test_a_posted_log_replays_against_a_posted_programme(
    client: TestClient, headers: dict[str, dict[str, str]], users: dict[str, Actor]
) -> None:
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def at(minutes: float) -> str:
        return (t0 + timedelta(minutes=minutes)).isoformat()

    programme = {
        "concentration_mg_per_ml": 2,
        "bolus_mg": 10,
        "steps": [
            {
                "number": 1,
                "rate_ml_per_h": 4.4,
                "rate_mg_per_h": 8.8,
                "duration_min": 60,
                "volume_ml": 4.4,
            },
            {
                "number": 2,
                "rate_ml_per_h": 8.8,
                "rate_mg_per_h": 17.6,
                "duration_min": 60,
                "volume_ml": 8.8,
            },
        ],
        "total_mg": 36.4,
        "volume_to_be_infused_ml": 13.2,
    }
    check_in = check_in_entry(t0)
    events = [
        {"entry": check_in},
        {"entry": {"kind": "bolus", "occurred_at": at(1), "dose_mg": 10}},
        {"entry": {"kind": "start", "occurred_at": at(1)}},
        {"entry": {"kind": "rate_change", "occurred_at": at(21), "rate_mg_per_h": 17.6}},
        {"entry": {"kind": "pause", "occurred_at": at(41), "reason": "equipment"}},
        {"entry": {"kind": "resume", "occurred_at": at(50)}},
        {"entry": {"kind": "stop", "occurred_at": at(57), "reason": "patient_request"}},
        {"entry": {"kind": "resume", "occurred_at": at(58)}},
    ]
    response = client.post(
        f"{API}/sessions/replay",
        json={
            "programme": programme,
            "patient": {"sex": "female", "pregnancy": "not_pregnant"},
            "events": events,
        },
        headers=headers["pharmacist"],
    )
    assert response.status_code == 200, response.text
    view = response.json()
    assert view["dose"]["delivered_mg_exact"] == "20.853333333"
    assert view["delivered_mg_fraction"] == "1564/75"
    assert view["state"] == "stopped"
    assert [(r["seq"], r["kind"]) for r in view["refusals"]] == [(8, "resume")]
    assert "begin_observation" in view["allowed_actions"]
