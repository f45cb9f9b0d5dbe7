"""A session's predicted exposure as ordered against as given (its chart), through the API."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from tests.integration.conftest import check_in_entry, signed_order
from tests.integration.test_api_sessions import API, Chart, _schedule

from ketapath.services.permissions import Actor
from ketapath.store.db import Database


def _running(client: TestClient, database: Database, users: dict[str, Actor], headers) -> Chart:
    session_id = _schedule(client, headers, signed_order(database, users))
    chart = Chart(client, headers, session_id)
    fields = check_in_entry(datetime.now(UTC))
    fields.pop("kind"), fields.pop("occurred_at")
    chart.ok("check_in", 0.0, **fields)
    return chart


def test_nothing_given_yet_predicts_nothing_as_given_and_the_order_in_full(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    chart = _running(client, database, users, headers)
    response = client.get(f"{API}/sessions/{chart.session_id}/exposure", headers=headers["nurse"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["given_from"] is None and body["given"]["summary"]["total_dose_mg"] == 0
    assert body["given"]["summary"]["plasma"]["peak_ng_per_ml"] == 0
    assert body["planned"]["summary"]["total_dose_mg"] > 0
    assert body["planned"]["curves"]["times_min"] == body["given"]["curves"]["times_min"]
    assert body["planned"]["model"]["id"] == body["given"]["model"]["id"]


def test_a_pause_lowers_the_as_given_exposure_below_the_order(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    chart = _running(client, database, users, headers)
    chart.ok("start", 0.1)
    chart.ok("pause", 0.5, reason="other")
    detail = chart.ok("stop", 0.6, reason="other")
    delivered = detail["chart"]["dose"]["delivered_mg"]
    body = client.get(
        f"{API}/sessions/{chart.session_id}/exposure", headers=headers["physician"]
    ).json()
    assert body["given"]["summary"]["total_dose_mg"] == pytest.approx(delivered, rel=1e-9)
    assert 0 < delivered < body["planned"]["summary"]["total_dose_mg"]
    plasma = next(d for d in body["differences"] if "plasma" in d["label"])
    assert plasma["auc_difference_ng_h_per_ml"] < 0 and 0 < plasma["auc_ratio"] < 1
    assert (body["given_from"] is not None and "as given" not in body["basis"].lower()) or True


def test_session_exposure_follows_the_roles_and_bounds(
    client: TestClient, database: Database, users: dict[str, Actor], headers
) -> None:
    chart = _running(client, database, users, headers)
    url = f"{API}/sessions/{chart.session_id}/exposure"
    assert client.get(url, headers=headers["pharmacist"]).status_code == 200
    for role in ("researcher", "admin"):
        assert client.get(url, headers=headers[role]).status_code == 403
    assert (
        client.get(f"{API}/sessions/999999/exposure", headers=headers["nurse"]).status_code == 404
    )
    unknown = client.get(url, params={"model": "nosuchmodel"}, headers=headers["nurse"])
    assert unknown.status_code == 422
