"""What the outcomes of a course add to the definitions: the cumulative dose of several
courses and the finding a repeat course is signed with, the dose ladder's next rung, the
definitions of results that cannot be given, a protocol's own follow-up days, and the pain
chart of the Outcome card."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from pydantic import ValidationError

from ketapath.domain.errors import InvalidInput
from ketapath.domain.outcomes import (
    change_definition,
    change_from_baseline,
    cumulative_dose_finding,
    cumulative_mg_per_kg,
    ladder_next_step,
    pain_auc,
    pain_auc_definition,
    relief_definition,
    relief_duration,
)
from ketapath.knowledge.clinical import Protocol, knowledge
from ketapath.web.charts import DayBand, DayMarker, DayPoint, DaySeries, Level, days_chart

START = date(2024, 5, 6)
LADDER = (0.25, 0.35, 0.5, 0.75, 1.0)


# ------------------------------------------------------------------ cumulative dose


def test_the_cumulative_dose_is_each_session_on_its_own_weight_summed_exactly() -> None:
    # 80 mg at 70 kg and 160 mg at 80 kg: 8/7 + 2 = 22/7 mg/kg
    assert cumulative_mg_per_kg([(80, 70), (Fraction(160), 80.0)]) == Fraction(22, 7)


def test_no_session_is_a_measured_zero_and_an_unknown_weight_makes_it_unknown() -> None:
    assert cumulative_mg_per_kg([]) == 0
    assert cumulative_mg_per_kg([(80, 70), (40, None)]) is None


def test_a_negative_dose_or_a_weight_of_zero_is_refused() -> None:
    with pytest.raises(InvalidInput):
        cumulative_mg_per_kg([(-1, 70)])
    with pytest.raises(InvalidInput):
        cumulative_mg_per_kg([(80, 0)])


def test_a_first_course_has_no_cumulative_finding() -> None:
    assert cumulative_dose_finding(0, 0, 1.1) is None


def test_below_every_check_s_dose_the_finding_is_information() -> None:
    found = cumulative_dose_finding(2, 1, 1.1)
    assert found is not None and found.severity == "info"
    assert found.code == "outcomes:cumulative-dose"
    assert "would be 3.1 mg/kg" in found.message
    assert found.citations


def test_past_a_check_s_dose_it_is_a_warning_naming_the_checks() -> None:
    found = cumulative_dose_finding(19.5, 2, 1.1)
    assert found is not None and found.severity == "warning"
    assert "liver enzymes and urinary symptoms (ketamine cystitis) are checked" in found.message
    assert "20 mg/kg, from which cognition" in found.message
    assert found.measure is not None and found.measure.limit == 10


def test_an_unknown_earlier_dose_is_never_read_as_zero() -> None:
    found = cumulative_dose_finding(None, 1, 1.1)
    assert found is not None and found.code == "outcomes:cumulative-dose-unknown"


# ------------------------------------------------------------------ the ladder


def test_the_next_rung_is_the_lowest_step_above_the_highest_rate_given() -> None:
    assert ladder_next_step(LADDER, 1.0, 0.35) == 0.5
    assert ladder_next_step(LADDER, 1.0, 0.3) == 0.35  # a starting dose between steps


def test_at_the_ceiling_or_with_nothing_given_there_is_no_next_rung() -> None:
    assert ladder_next_step(LADDER, 1.0, 1.0) is None
    assert ladder_next_step(LADDER, 0.5, 0.5) is None  # the steps above the ceiling are not
    assert ladder_next_step(LADDER, 1.0, None) is None


# ------------------------------------------------------------------ definitions


def test_the_definitions_of_results_that_cannot_be_given_are_the_results_own() -> None:
    assert change_definition() == change_from_baseline(5, 3).definition
    relief = relief_duration(6, {START + timedelta(days=1): 2}, START, START + timedelta(days=9))
    assert relief_definition() == relief.definition
    assert pain_auc_definition() == pain_auc({}, START).definition
    assert "margin used here is 2" in relief_definition(2).rule


# ------------------------------------------------------------------ a protocol's follow-up days


def _protocol(**changes: object) -> dict[str, object]:
    data = knowledge().protocol("asra-initial").model_dump()
    data.update(changes)
    return data


def test_a_protocol_may_give_its_own_follow_up_days_with_their_source() -> None:
    source = {"cite": [{"ref": "ketapath-outcome-policy", "at": "protocol follow-up"}]}
    protocol = Protocol.model_validate(
        _protocol(follow_up_days=[3, 10, 30], follow_up_source=source)
    )
    assert protocol.follow_up_days == [3, 10, 30]


@pytest.mark.parametrize(
    "changes",
    [
        {"follow_up_days": [7, 14]},  # no source
        {"follow_up_days": [14, 7], "follow_up_source": {"cite": [{"ref": "x"}]}},
        {"follow_up_days": [0], "follow_up_source": {"cite": [{"ref": "x"}]}},
        {"follow_up_source": {"cite": [{"ref": "x"}]}},  # a source without days
    ],
)
def test_follow_up_days_out_of_order_out_of_range_or_without_source_are_refused(
    changes: dict[str, object],
) -> None:
    with pytest.raises(ValidationError):
        Protocol.model_validate(_protocol(**changes))


def test_the_schedule_follows_a_protocol_s_own_days(monkeypatch: pytest.MonkeyPatch) -> None:
    from ketapath.services import outcomes

    source = {"cite": [{"ref": "ketapath-outcome-policy", "at": "protocol follow-up"}]}
    own = Protocol.model_validate(_protocol(follow_up_days=[3, 10], follow_up_source=source))

    class Knowledge:
        def protocol(self, protocol_id: str) -> Protocol:
            return own

    monkeypatch.setattr(outcomes, "knowledge", lambda: Knowledge())
    schedule, origin = outcomes.schedule_for("asra-initial", START)
    assert origin == "protocol"
    assert [t.due_on for t in schedule] == [START + timedelta(days=3), START + timedelta(days=10)]
    monkeypatch.undo()
    default, origin = outcomes.schedule_for("asra-initial", START)
    assert origin == "outcome rules" and [t.offset_days for t in default][-1] == 182


# ------------------------------------------------------------------ the chart


def test_a_chart_without_points_is_nothing() -> None:
    assert str(days_chart([], title="t", y_label="y", description="d", y_min=0, y_max=10)) == ""


def test_the_pain_chart_leaves_diary_gaps_open_and_marks_sessions_relief_and_baseline() -> None:
    diary = tuple(DayPoint(START + timedelta(days=k), 3) for k in (1, 2, 3, 7, 8))
    svg = str(
        days_chart(
            [DaySeries("Diary", diary), DaySeries("Assessments", (DayPoint(START, 8),), False)],
            title="Pain <over> time",
            y_label="NRS",
            description="the numbers",
            y_min=0,
            y_max=10,
            markers=[DayMarker(START, "S1")],
            bands=[DayBand(START, START + timedelta(days=8), "relief 8 days (censored)")],
            levels=[Level(8, "baseline 8")],
        )
    )
    assert svg.count("<polyline") == 2  # days 1-3 and 7-8: the gap is not drawn over
    assert "Pain &lt;over&gt; time" in svg and "<over>" not in svg
    assert 'class="marker"' in svg and ">S1<" in svg
    assert "relief 8 days (censored)" in svg and "baseline 8" in svg
    assert svg.count('class="dot') == 6 + 2  # every point, and one per legend entry
