"""The assessment form: built from the instruments' definitions, saved through the service."""

from __future__ import annotations

import html
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from tests.unit.web_app import client, database, migrated, signed_in

from ketapath.services.errors import InvalidInput
from ketapath.web.assessment_pages import parse_answers, parse_given_at
from ketapath.web.instrument_forms import InstrumentForm, ItemField, find_form, instrument_forms

__all__ = ["client", "database", "migrated"]  # fixtures used by the tests below

# A made-up two-item form for the parsers (no clinical content needed there).
FORM = InstrumentForm(
    id="test-scale",
    short_name="TS",
    name="Test scale",
    purpose="Testing the form.",
    recall_period="today",
    items=(
        ItemField("first", "1", "First question", "integer", 0, 4, {0: "never", 4: "always"}),
        ItemField("second", "2", "Second question", "yes_no", 0, 1),
    ),
)


def test_every_instrument_of_the_knowledge_base_has_a_form_with_its_items():
    forms = instrument_forms()
    assert forms, "the knowledge base defines instruments"
    for form in forms:
        assert form.items
        for item in form.items:
            values = [value for value, _ in item.choices]
            assert values == list(range(item.minimum, item.maximum + 1))


def test_the_form_shows_every_item_with_a_labelled_choice_for_each_answer(client: TestClient):
    signed_in(client, "nurse")
    nrs = find_form("nrs")
    assert nrs is not None
    page = client.get("/patients/1/assessments/new", params={"instrument_id": "nrs"})
    assert page.status_code == 200
    item = nrs.items[0]
    assert f"<legend>{item.number}. {item.label}</legend>" in page.text
    # every allowed answer, plus "not answered"
    assert page.text.count(f'name="item_{item.id}"') == item.maximum - item.minimum + 2
    for words in item.anchors.values():
        assert words in page.text


def test_a_yes_no_item_is_offered_as_no_and_yes(client: TestClient):
    form = next(f for f in instrument_forms() if any(i.kind == "yes_no" for i in f.items))
    signed_in(client, "nurse")
    page = client.get("/patients/1/assessments/new", params={"instrument_id": form.id})
    assert "<span>No</span>" in page.text and "<span>Yes</span>" in page.text


def test_a_nurse_saves_an_assessment_and_it_is_listed_with_its_score(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={"csrf_token": token, "instrument_id": "nrs", "item_pain": "6"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/patients/1#assessments"
    page = client.get("/patients/1")
    assert "pain 6" in page.text
    assert "Assessment: nrs: 6" in page.text  # the timeline, with the stored total
    assert 'class="chart"' in page.text


def test_a_form_with_no_answer_is_returned_with_the_message(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={"csrf_token": token, "instrument_id": "nrs", "item_pain": ""},
    )
    assert response.status_code == 422
    assert "Answer at least one item." in response.text


def test_a_time_in_the_future_is_refused_naming_the_field(client: TestClient):
    token = signed_in(client, "nurse")
    response = client.post(
        "/patients/1/assessments",
        data={
            "csrf_token": token,
            "instrument_id": "nrs",
            "item_pain": "2",
            "administered_at": "2999-01-01T10:00",
        },
    )
    assert response.status_code == 422
    assert "Given at cannot be in the future (today is " in response.text
    assert 'value="2999-01-01T10:00"' in response.text  # what was typed is kept


def test_a_pharmacist_may_not_open_the_form(client: TestClient):
    signed_in(client, "pharmacist")
    page = client.get("/patients/1/assessments/new")
    assert page.status_code == 403
    assert "'assessment.record' needs the role" in html.unescape(page.text)


def test_a_researcher_may_not_save_an_assessment(client: TestClient):
    token = signed_in(client, "researcher")
    response = client.post(
        "/patients/1/assessments",
        data={"csrf_token": token, "instrument_id": "nrs", "item_pain": "1"},
    )
    assert response.status_code == 403


def test_an_answer_that_is_not_a_whole_number_names_the_item():
    with pytest.raises(InvalidInput) as caught:
        parse_answers(FORM, {"item_first": "2.5"})
    assert caught.value.field == "answers.first"
    assert "item 1 (First question)" in caught.value.message


def test_unanswered_items_are_left_out_not_counted_as_zero():
    assert parse_answers(FORM, {"item_first": "", "item_second": "1"}) == {"second": 1}


def test_the_local_time_of_the_form_is_stored_as_utc():
    given = parse_given_at("2026-03-01T09:30")
    assert given is not None and given.tzinfo is not None
    assert given == datetime(2026, 3, 1, 9, 30).astimezone().astimezone(UTC)
    assert parse_given_at("") is None
    with pytest.raises(InvalidInput):
        parse_given_at("yesterday")
