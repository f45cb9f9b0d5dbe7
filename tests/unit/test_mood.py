"""Mood and self-harm in the screen: PHQ-9 item 9 and severe PHQ-9, GAD-7 and DASS-21 scores,
from the questionnaires recorded for the patient (or written in a patient file)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

import pytest
from tests.conftest import base_patient
from typer.testing import CliRunner

from ketapath.cli import app
from ketapath.domain.instruments import get_instrument, score
from ketapath.domain.mood import (
    SEVERE_BANDS,
    SEVERE_SCALES,
    RecordedScore,
    mood_findings,
)
from ketapath.domain.patient import patient_from_dict
from ketapath.domain.screening import screen
from ketapath.knowledge.clinical import knowledge

DAY = date(2026, 2, 1)


def phq9(*items: int, q9: int | None = 0) -> dict[str, Any]:
    """PHQ-9 answers: items 1-8 as given (zeros for the rest), then item 9."""
    answers: dict[str, Any] = {f"q{i}": 0 for i in range(1, 9)}
    answers.update({f"q{i}": v for i, v in enumerate(items, start=1)})
    answers["q9"] = q9
    return answers


def recorded(instrument: str, answers: dict[str, Any], day: date = DAY) -> RecordedScore:
    return RecordedScore(score(instrument, answers), day, ref="assessment 7")


def codes(*scores: RecordedScore) -> list[tuple[str, str]]:
    return [(f.code, f.severity) for f in mood_findings(list(scores))]


def test_a_positive_item_9_needs_a_physician_whatever_the_total() -> None:
    (found,) = mood_findings([recorded("phq9", phq9(q9=1))])
    assert (found.code, found.severity) == ("mood:phq9-item9", "soft")
    alert = get_instrument("phq9").alerts[0]
    assert alert.message in found.message  # the instrument's own wording
    assert "item 9 answered 1 ('several days')" in found.message
    assert "says so in the override reason" in found.message
    assert "PHQ-9 of 2026-02-01, assessment 7" in found.message
    assert [c.ref for c in found.citations] == ["kroenke-2001-phq9"]


def test_item_9_answered_not_at_all_raises_nothing() -> None:
    assert codes(recorded("phq9", phq9(1, 1, 1, q9=0))) == []


def test_an_unanswered_item_9_is_a_warning_not_a_no() -> None:
    assert codes(recorded("phq9", phq9(1, 1, q9=None))) == [
        ("mood:phq9-item9-unanswered", "warning")
    ]


def test_phq9_severe_band_starts_at_20() -> None:
    moderately_severe = recorded("phq9", phq9(3, 3, 3, 3, 3, 3, 1, 0))  # 19
    severe = recorded("phq9", phq9(3, 3, 3, 3, 3, 3, 2, 0))  # 20
    assert codes(moderately_severe) == []
    (found,) = mood_findings([severe])
    assert (found.code, found.severity) == ("mood:severe-depression", "soft")
    assert "PHQ-9 total 20 of 27, in the severe band (from 20)" in found.message
    refs = [c.ref for c in found.citations]
    assert refs == ["kroenke-2001-phq9", "fpm-anzca-2016-ketamine"]


def gad7(*items: int) -> dict[str, Any]:
    return {f"q{i}": 0 for i in range(1, 8)} | {f"q{i}": v for i, v in enumerate(items, 1)}


def test_gad7_severe_band_starts_at_15() -> None:
    assert codes(recorded("gad7", gad7(3, 3, 3, 3, 2))) == []  # 14: moderate
    (found,) = mood_findings([recorded("gad7", gad7(3, 3, 3, 3, 3))])  # 15: severe
    assert (found.code, found.severity) == ("mood:severe-anxiety", "soft")
    assert "spitzer-2006-gad7" in [c.ref for c in found.citations]


DASS_DEPRESSION = ("q3", "q5", "q10", "q13", "q16", "q17", "q21")
DASS_ANXIETY = ("q2", "q4", "q7", "q9", "q15", "q19", "q20")
DASS_STRESS = ("q1", "q6", "q8", "q11", "q12", "q14", "q18")


def dass(depression: int = 0, anxiety: int = 0, stress: int = 0) -> dict[str, Any]:
    """DASS-21 answers giving these raw subscale sums (each item 0-3, filled in order)."""
    answers: dict[str, Any] = {f"q{i}": 0 for i in range(1, 22)}
    for items, total in ((DASS_DEPRESSION, depression), (DASS_ANXIETY, anxiety)):
        for item in items:
            answers[item] = min(3, total)
            total -= answers[item]
    for item in DASS_STRESS:
        answers[item] = min(3, stress)
        stress -= answers[item]
    return answers


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (dass(depression=10), []),  # 20 after doubling: moderate
        (dass(depression=11), [("mood:severe-depression", "soft")]),  # 22: severe
        (dass(depression=14), [("mood:severe-depression", "soft")]),  # 28: extremely severe
        (dass(anxiety=7), []),  # 14: moderate
        (dass(anxiety=8), [("mood:severe-anxiety", "soft")]),  # 16: severe
        (dass(stress=17), []),  # 34: extremely severe stress is neither depression nor anxiety
    ],
)
def test_dass21_depression_and_anxiety_from_severe_up_are_raised(
    answers: dict[str, Any], expected: list[tuple[str, str]]
) -> None:
    assert codes(recorded("dass21", answers)) == expected


def test_only_the_latest_questionnaire_of_each_instrument_counts() -> None:
    old_positive = recorded("phq9", phq9(q9=2), date(2025, 6, 1))
    new_negative = recorded("phq9", phq9(q9=0), date(2026, 1, 1))
    assert codes(old_positive, new_negative) == []
    assert codes(new_negative, recorded("phq9", phq9(q9=1), date(2026, 1, 2))) == [
        ("mood:phq9-item9", "soft")
    ]


def test_the_bands_the_screen_reports_are_the_instruments_published_ones() -> None:
    for (instrument_id, scale_id), code in SEVERE_SCALES.items():
        scale = get_instrument(instrument_id).scale(scale_id)
        labels = {b.label for b in scale.bands}
        assert labels & SEVERE_BANDS, (instrument_id, scale_id)
        assert scale.bands_source is not None
        assert knowledge().finding_code(code).severities == ("soft",)


def test_the_screen_needs_an_override_for_a_positive_item_9_and_records_what_it_read() -> None:
    patient, _ = patient_from_dict(base_patient())
    assert screen(patient).decision == "eligible"
    result = screen(patient, questionnaires=[recorded("phq9", phq9(q9=1))])
    assert result.decision == "needs_override"
    assert [g.code for g in result.gating] == ["mood:phq9-item9"]
    (read,) = result.to_dict()["questionnaires"]
    assert read == {
        "instrument_id": "phq9",
        "given_on": "2026-02-01",
        "ref": "assessment 7",
        "total": 1.0,
        "band": "minimal",
    }


runner = CliRunner()


def test_screen_reads_the_questionnaires_of_a_patient_file(write_patient) -> None:
    questionnaires = [{"instrument_id": "phq9", "given_on": "2026-01-10", "answers": phq9(q9=1)}]
    path = write_patient(base_patient(questionnaires=questionnaires), ".yaml")
    result = runner.invoke(app, ["screen", str(path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"] == "needs_override"
    assert "mood:phq9-item9" in {f["code"] for f in data["findings"]}
    assert "input:ignored-field" not in {f["code"] for f in data["findings"]}


def test_an_answer_out_of_range_in_a_patient_file_names_the_item(write_patient) -> None:
    questionnaires = [{"instrument_id": "phq9", "given_on": "2026-01-10", "answers": phq9(q9=7)}]
    path = write_patient(base_patient(questionnaires=questionnaires))
    result = runner.invoke(app, ["screen", str(path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stderr)["field"] == "questionnaires[0].answers.q9"


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"instrument_id": "bdi", "given_on": "2026-01-10", "answers": {}}, "instrument_id"),
        ({"instrument_id": "phq9", "answers": {}}, "given_on"),
        ({"instrument_id": "phq9", "given_on": "2999-01-01", "answers": {}}, "given_on"),
    ],
)
def test_a_questionnaire_without_a_known_instrument_or_a_past_date_is_refused(
    write_patient, entry: dict[str, Any], field: str
) -> None:
    path = write_patient(base_patient(questionnaires=[entry]))
    result = runner.invoke(app, ["screen", str(path), "--json"])
    assert result.exit_code == 2
    assert json.loads(result.stderr)["field"] == f"questionnaires[0].{field}"


def test_plan_reads_a_patient_file_with_questionnaires_without_a_warning(write_patient) -> None:
    questionnaires = [{"instrument_id": "gad7", "given_on": "2026-01-10", "answers": {}}]
    path = write_patient(base_patient(questionnaires=questionnaires))
    result = runner.invoke(app, ["plan", "asra-initial", "--patient", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert "questionnaires" not in result.stdout + result.stderr


def test_a_patient_file_may_name_them_assessments_with_the_apis_field_names(
    write_patient,
) -> None:
    entry = {"instrument": "phq9", "administered_at": "2026-01-10T09:30:00Z", "answers": phq9(q9=1)}
    path = write_patient(base_patient(assessments=[entry]))
    result = runner.invoke(app, ["screen", str(path), "--json"])
    assert result.exit_code == 0, result.output
    found = {f["code"]: f for f in json.loads(result.stdout)["findings"]}
    assert "PHQ-9 of 2026-01-10" in found["mood:phq9-item9"]["message"]
    bad = write_patient(base_patient(assessments=[{**entry, "answers": phq9(q9=9)}]))
    refused = runner.invoke(app, ["screen", str(bad), "--json"])
    assert json.loads(refused.stderr)["field"] == "assessments[0].answers.q9"
