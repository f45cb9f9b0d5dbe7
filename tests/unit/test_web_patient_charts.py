"""What the patient page charts from scored assessments (scores from the instruments module)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ketapath.domain import instruments
from ketapath.services.assessments import AssessmentView
from ketapath.web.patient_pages import assessment_charts

START = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def scored(instrument_id: str, answers: dict[str, Any], day: int) -> AssessmentView:
    score = instruments.score(instrument_id, answers).to_dict()
    return AssessmentView(
        id=day + 1,
        patient_id=1,
        instrument_id=instrument_id,
        answers=answers,
        score=score,
        total=score["total"],
        administered_at=START + timedelta(days=day),
        recorded_at=START + timedelta(days=day),
        recorded_by="nurse",
        amends_id=None,
        reason=None,
    )


def test_an_instrument_with_a_total_gets_one_chart_on_its_published_range():
    charts = assessment_charts([scored("nrs", {"pain": p}, d) for d, p in ((0, 8), (7, 5))])
    assert len(charts) == 1
    assert [r.value for r in charts[0]["readings"]] == [8.0, 5.0]
    svg = str(charts[0]["svg"])
    assert ">10</text>" in svg and ">0</text>" in svg  # the 0-10 range, not just 5-8


def test_an_instrument_without_a_total_is_charted_by_its_scorable_subscales_only():
    bpi = scored("bpi-sf", {"worst": 8, "least": 2, "average": 5, "now": 6}, 0)
    names = [chart["name"] for chart in assessment_charts([bpi])]
    assert any("severity" in name.lower() for name in names)
    assert not any("interference" in name.lower() for name in names)  # 7 of 7 items missing


def test_an_unscored_assessment_is_not_charted():
    view = scored("nrs", {"pain": 3}, 0).model_copy(update={"score": None, "total": None})
    assert assessment_charts([view]) == []
