"""The predicted exposure on the protocol chooser and the order page: an inline SVG chart of the
plasma, effect-site and norketamine curves with a caption and a table of peaks and AUC, the
model (population, limitations, verification) beside it, and the session and model to show."""

from __future__ import annotations

import html
import re

from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services import auth, orders, screening
from ketapath.services.orders import SignRequest
from ketapath.services.permissions import SYSTEM, Actor
from ketapath.store.db import Database

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

ASRA = {"protocol_id": "asra-initial", "setting": "clinic"}


def _physician(database: Database) -> Actor:
    view = next(u for u in auth.list_users(database, SYSTEM) if u.role == "physician")
    return Actor(view.id, view.username, view.role)


def _order(database: Database, protocol_id: str = "crps-schwartzman-10day") -> int:
    physician = _physician(database)
    screening.run_screening(database, physician, 1)
    request = SignRequest(protocol_id=protocol_id, override_reason="reviewed in the web tests")
    return orders.sign_order(database, physician, 1, request).id


def _panel(page: str) -> str:
    start = page.index('<section class="card exposure"')
    return page[start : page.index("</section>", start)]


def test_the_chooser_shows_the_predicted_curves_for_the_patient_with_the_model(
    client: TestClient,
) -> None:
    signed_in(client, "physician")
    page = client.get("/patients/1/plan", params=ASRA)
    assert page.status_code == 200
    panel = _panel(page.text)
    assert "Predicted exposure: session 1 of 1" in panel
    assert 'role="img"' in panel and panel.count("<polyline") == 3
    assert '<title id="exposure-chart-title">' in panel
    text = html.unescape(panel)
    assert "S-ketamine, plasma: peak" in text  # the chart's description for screen readers
    caption = re.search(r'<figcaption id="exposure-caption">(.*?)</figcaption>', text)
    assert caption and re.search(r"\(72 kg, \d+ years, female, 168 cm\)", caption.group(1))
    assert "S-ketamine in plasma and at the effect site, and S-norketamine" in caption.group(1)
    rows = re.findall(r'<tr><th scope="row">([^<]+)</th>', panel)
    assert rows == ["S-ketamine, plasma", "S-ketamine, effect site", "S-norketamine"]
    assert 'id="exposure-population"' in panel and "Age 18-86 years" in text
    assert "Perez-Ruixo et al. 2021, Table 3" in text
    assert "By the clinic's rule" in text
    assert re.search(r'<ul id="exposure-limitations"><li>', panel)
    assert "seed" not in page.text.lower()


def test_the_chooser_answers_htmx_with_the_exposure_in_the_course_panel(
    client: TestClient,
) -> None:
    signed_in(client, "nurse")
    page = client.get(
        "/patients/1/plan",
        params={**ASRA, "exposure_model": "kamp"},
        headers={"HX-Request": "true", "HX-Target": "course-panel"},
    )
    assert "<html" not in page.text
    panel = _panel(page.text)
    assert panel.count("<polyline") == 2  # kamp has no norketamine
    assert "As asked." in panel
    form = panel[panel.index('<form method="get" action="/patients/1/plan"') :]
    assert 'hx-target="#course-panel"' in form
    assert '<input type="hidden" name="protocol_id" value="asra-initial">' in form
    assert '<option value="kamp" selected>' in form


def test_a_refused_course_has_no_exposure(client: TestClient) -> None:
    signed_in(client, "physician")
    page = client.get(
        "/patients/1/plan",
        params={"protocol_id": "crps-sigtermans-continuous", "setting": "clinic"},
    )
    assert "Refused: hard limit" in page.text
    assert 'id="exposure"' not in page.text


def test_the_order_page_shows_the_first_session_and_lets_one_choose_another(
    client: TestClient, database: Database
) -> None:
    order_id = _order(database)
    signed_in(client, "nurse")
    first = _panel(client.get(f"/orders/{order_id}").text)
    assert "Predicted exposure: session 1 of 10" in first
    assert first.count('<option value="') >= 10 + 7  # sessions, then the rule and each model
    third = client.get(f"/orders/{order_id}", params={"exposure_session": "3"})
    panel = _panel(third.text)
    assert "Predicted exposure: session 3 of 10" in panel
    assert "Session 3 of 10 (day 3) as ordered" in html.unescape(panel)
    assert '<option value="3" selected>Session 3</option>' in panel


def test_a_session_or_model_the_course_does_not_have_is_said_in_the_panel(
    client: TestClient, database: Database
) -> None:
    order_id = _order(database, "asra-initial")
    signed_in(client, "physician")
    page = client.get(f"/orders/{order_id}", params={"exposure_session": "4"})
    assert page.status_code == 200  # the order is still shown
    error = re.search(r'id="exposure-error">(.*?)</p>', html.unescape(page.text))
    assert error and "Session shown: the course has 1 session(s)" in error.group(1)
    odd = client.get(f"/orders/{order_id}", params={"exposure_model": "no-such-model"})
    error = re.search(r'id="exposure-error">(.*?)</p>', html.unescape(odd.text))
    assert error and "PK model: unknown PK model 'no-such-model'" in error.group(1)
    text = client.get(f"/orders/{order_id}", params={"exposure_session": "x1"}).text
    assert "Session shown:" in html.unescape(text) and 'id="order-h"' in text


def test_a_researcher_sees_no_order_page_and_so_no_exposure(
    client: TestClient, database: Database
) -> None:
    order_id = _order(database, "asra-initial")
    signed_in(client, "researcher")
    assert client.get(f"/orders/{order_id}").status_code == 403
