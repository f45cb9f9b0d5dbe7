"""The outcome definitions, against cases computed by hand."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from ketapath.domain.errors import InvalidInput
from ketapath.domain.outcomes import (
    CourseOutcome,
    SuccessIndicators,
    change_from_baseline,
    follow_up_findings,
    follow_up_schedule,
    opioid_change,
    pain_auc,
    pgic_responder,
    relief_duration,
    repeat_proposal,
    responder,
    safety_checks_due,
    timepoint_status,
)

START = date(2023, 7, 3)  # the last session of the course


def day(k: int) -> date:
    return START + timedelta(days=k)


# ------------------------------------------------------------------ change from baseline


def test_change_from_baseline_gives_points_and_percent_of_baseline() -> None:
    change = change_from_baseline(4, 1)
    assert change.absolute == -3 and change.percent == -75.0
    assert change.definition.citations and "IMMPACT" in change.definition.citation


def test_a_baseline_of_zero_has_no_percentage_and_says_why() -> None:
    change = change_from_baseline(0, 3)
    assert change.absolute == 3 and change.percent is None
    assert "baseline is 0" in change.percent_undefined


def test_a_percentage_too_large_to_express_is_undefined_not_infinite() -> None:
    change = change_from_baseline(5e-324, 1e6)
    assert change.percent is None and "too large" in change.percent_undefined


def test_change_refuses_a_value_that_is_not_a_number() -> None:
    with pytest.raises(InvalidInput):
        change_from_baseline(float("nan"), 3)


# ------------------------------------------------------------------ responder


def test_the_clinic_case_nrs_4_to_2_responds_at_both_thresholds() -> None:
    # The clinic's patient: NRS 4 before the infusion, 1-2 afterwards.
    assert responder(4, 2, 30).status == "responder"
    assert responder(4, 2, 50).status == "responder"
    assert responder(4, 1, 50).reduction_percent == 75.0


def test_a_fall_of_exactly_30_percent_counts_at_30_but_not_at_50() -> None:
    assert responder(10, 7, 30).status == "responder"
    result = responder(10, 7, 50)
    assert result.status == "non-responder" and result.reduction_percent == 30.0
    assert "less than the 50% threshold" in result.reason


def test_a_missing_score_is_unknown_never_a_non_responder() -> None:
    for baseline, value in ((None, 3), (6, None), (None, None)):
        result = responder(baseline, value, 30)
        assert result.status == "unknown" and result.reduction_percent is None
        assert "missing" in result.reason


def test_a_baseline_of_zero_gives_an_unknown_response() -> None:
    result = responder(0, 0, 30)
    assert result.status == "unknown" and "baseline pain is 0" in result.reason


def test_worse_pain_is_a_non_responder_with_a_rise() -> None:
    result = responder(4, 6, 30)
    assert result.status == "non-responder" and result.reduction_percent == -50.0
    assert "50% rise" in result.reason


def test_a_score_outside_0_to_10_is_refused_in_words() -> None:
    with pytest.raises(InvalidInput, match="0 to 10"):
        responder(11, 2, 30)


def test_a_threshold_outside_0_to_100_is_refused() -> None:
    with pytest.raises(InvalidInput):
        responder(5, 2, 0)


# ------------------------------------------------------------------ relief duration


def test_relief_over_six_months_in_the_clinic_case_is_censored_at_the_last_diary_day() -> None:
    # NRS 4 -> 1-2, relief lasting beyond the 6-month follow-up.
    daily = {day(k): (1 if k % 2 else 2) for k in range(1, 183)}
    relief = relief_duration(4, daily, START, day(182))
    assert relief.status == "censored" and not relief.event
    assert relief.days == 182 and relief.censored_at == day(182)


def test_relief_ends_on_the_first_day_within_one_point_of_baseline() -> None:
    # baseline 6: relief while pain <= 4; back within the margin at 5.
    daily = {day(1): 2, day(2): 3, day(3): 4, day(4): 5, day(5): 2}
    relief = relief_duration(6, daily, START, day(30))
    assert relief.status == "ended" and relief.event
    assert relief.days == 4 and relief.event_date == day(4)
    assert relief.last_in_relief == day(3)


def test_with_a_gap_the_event_is_the_first_observed_day_back() -> None:
    daily = {day(1): 2, day(2): 2, day(10): 6}
    relief = relief_duration(6, daily, START, day(30))
    assert relief.status == "ended" and relief.days == 10
    assert relief.last_in_relief == day(2)


def test_relief_never_began_when_the_first_day_is_not_30_percent_lower() -> None:
    daily = {day(1): 5, day(2): 2}
    relief = relief_duration(6, daily, START, day(30))
    assert relief.status == "never began" and relief.days == 0
    assert "never began" in relief.explanation


def test_days_on_or_before_the_last_session_and_after_follow_up_do_not_count() -> None:
    daily = {START: 9, day(1): 1, day(5): 1, day(40): 9}
    relief = relief_duration(6, daily, START, day(30))
    assert relief.status == "censored" and relief.days == 5


def test_no_diary_is_no_data_not_zero_days() -> None:
    relief = relief_duration(6, {}, START, day(30))
    assert relief.status == "no data" and relief.days is None


def test_a_baseline_within_the_margin_of_zero_cannot_be_assessed() -> None:
    relief = relief_duration(1, {day(1): 0}, START, day(30))
    assert relief.status == "not assessable" and relief.days is None


def test_a_wider_margin_ends_relief_sooner() -> None:
    daily = {day(1): 1, day(2): 3, day(3): 5}
    assert relief_duration(6, daily, START, day(30), margin=3).days == 2
    assert relief_duration(6, daily, START, day(30), margin=1).days == 3


def test_follow_up_ending_before_the_last_session_is_refused() -> None:
    with pytest.raises(InvalidInput, match="before the last session"):
        relief_duration(6, {}, START, day(-1))


# ------------------------------------------------------------------ pain AUC


def test_a_constant_pain_over_35_days_gives_34_times_it() -> None:
    result = pain_auc({day(k): 5 for k in range(1, 36)}, START)
    assert result.status == "complete" and result.auc == 170.0
    assert result.mean_daily_pain == 5.0 and result.missing == ()


def test_the_trapezoid_rule_by_hand_on_a_short_window() -> None:
    # days 1-4: 6, 4, 2, 2 -> (6+4)/2 + (4+2)/2 + (2+2)/2 = 5 + 3 + 2 = 10
    result = pain_auc({day(1): 6, day(2): 4, day(3): 2, day(4): 2}, START, days=4)
    assert result.auc == 10.0 and result.mean_daily_pain == 3.5


def test_missing_days_inside_the_window_are_interpolated() -> None:
    # days 1 and 4 only: 6 and 3; interpolated 5 and 4; area = 5.5 + 4.5 + 3.5 = 13.5
    result = pain_auc({day(1): 6, day(4): 3}, START, days=4)
    assert result.status == "complete" and result.auc == 13.5
    assert result.interpolated == (day(2), day(3))
    assert result.mean_daily_pain == 4.5  # of the observed days only


def test_a_missing_first_or_last_day_makes_the_area_incomplete_never_zero() -> None:
    daily = {day(k): 4 for k in range(2, 36)}
    result = pain_auc(daily, START)
    assert result.status == "incomplete" and result.auc is None
    assert result.missing == (day(1),)
    assert "day 1" in result.explanation
    assert result.findings[0].code == "outcomes:auc-incomplete"
    no_end = pain_auc({day(k): 4 for k in range(1, 30)}, START)
    assert no_end.auc is None and len(no_end.missing) == 6
    assert "day 35" in no_end.explanation


def test_an_empty_diary_gives_no_area_and_no_mean() -> None:
    result = pain_auc({}, START)
    assert result.auc is None and result.mean_daily_pain is None
    assert len(result.missing) == 35


def test_the_window_is_pickerings_35_days_by_default() -> None:
    result = pain_auc({}, START)
    assert result.window_days == 35 and result.last_day == day(35)
    assert "Pickering" in result.definition.citation


# ------------------------------------------------------------------ PGIC and opioids


def test_much_or_very_much_improved_is_improved() -> None:
    assert pgic_responder(1).status == "improved"
    assert pgic_responder(2).status == "improved"
    assert pgic_responder(3).status == "not improved"
    assert pgic_responder(None).status == "unknown"
    assert "Farrar" in pgic_responder(2).definition.citation
    with pytest.raises(InvalidInput):
        pgic_responder(8)


def test_opioid_change_in_mg_ome_and_percent() -> None:
    change = opioid_change(90, 45, (True, True))
    assert change.status == "complete" and change.change_mg == -45 and change.percent == -50.0


def test_an_incomplete_opioid_total_gives_an_unknown_change_never_zero() -> None:
    change = opioid_change(90, 90, (True, False))
    assert change.status == "incomplete" and change.change_mg is None and change.percent is None
    assert "current total is incomplete" in change.reason
    assert opioid_change(None, 30, (True, True)).change_mg is None


def test_an_opioid_baseline_of_zero_has_no_percentage() -> None:
    change = opioid_change(0, 20, (True, True))
    assert change.change_mg == 20 and change.percent is None


# ------------------------------------------------------------------ follow-up


def test_the_default_schedule_counts_from_the_last_session() -> None:
    schedule = follow_up_schedule(START)
    assert [t.offset_days for t in schedule] == [7, 14, 28, 56, 84, 182]
    assert schedule[0].label == "1 week" and schedule[-1].label == "6 months"
    assert schedule[0].due_on == day(7)
    assert schedule[0].due_from == day(4) and schedule[0].due_until == day(14)


def test_timepoint_status_through_its_window() -> None:
    week = follow_up_schedule(START)[0]
    assert timepoint_status(week, day(3), False) == "not yet due"
    assert timepoint_status(week, day(4), False) == "due"
    assert timepoint_status(week, day(14), False) == "due"
    assert timepoint_status(week, day(15), False) == "overdue"
    assert timepoint_status(week, day(15), True) == "done"


def test_a_protocol_may_give_its_own_offsets() -> None:
    schedule = follow_up_schedule(START, [3, 21])
    assert [(t.offset_days, t.label) for t in schedule] == [(3, "3 days"), (21, "3 weeks")]
    with pytest.raises(InvalidInput):
        follow_up_schedule(START, [7, 7])


def test_follow_up_findings_name_due_and_overdue_timepoints() -> None:
    found = follow_up_findings(follow_up_schedule(START), day(30), {7: True})
    codes = [(f.code, f.subject) for f in found]
    assert codes == [
        ("outcomes:follow-up-overdue", "2 weeks"),
        ("outcomes:follow-up-due", "4 weeks"),
    ]


# ------------------------------------------------------------------ safety checks


TODAY = date(2024, 6, 1)


def test_no_check_is_due_after_a_first_course_below_the_dose_thresholds() -> None:
    assert safety_checks_due(5.0, {}, TODAY, 1) == []


def test_every_check_is_due_at_the_second_course_when_never_done() -> None:
    found = safety_checks_due(5.0, {}, TODAY, 2)
    assert sorted(f.subject for f in found) == [
        "cognition",
        "liver-enzymes",
        "misuse-screen",
        "urinary-symptoms",
    ]
    assert {f.code for f in found} == {"outcomes:safety-check-due"}
    liver = next(f for f in found if f.subject == "liver-enzymes")
    assert "ASRA/AAPM/ASA consensus 2018" in liver.citation and "clinic policy" in liver.citation


def test_a_high_cumulative_dose_makes_liver_and_bladder_checks_due_in_a_first_course() -> None:
    found = safety_checks_due(12.0, {}, TODAY, 1)
    assert sorted(f.subject for f in found) == ["liver-enzymes", "urinary-symptoms"]
    assert found[0].measure is not None and found[0].measure.limit == 10


def test_a_check_done_recently_is_not_due_then_due_then_overdue() -> None:
    def liver(last: date) -> list[str]:
        done = {"liver-enzymes": last}
        return [f.code for f in safety_checks_due(5.0, done, TODAY, 2) if f.subject in done]

    assert liver(TODAY - timedelta(days=89)) == []
    assert liver(TODAY - timedelta(days=90)) == ["outcomes:safety-check-due"]
    assert liver(TODAY - timedelta(days=120)) == ["outcomes:safety-check-overdue"]


def test_a_check_never_done_a_course_after_it_applied_is_overdue() -> None:
    found = safety_checks_due(5.0, {}, TODAY, 3)
    assert {f.code for f in found} == {"outcomes:safety-check-overdue"}


def test_an_unknown_cumulative_dose_is_never_read_as_zero() -> None:
    found = safety_checks_due(None, {}, TODAY, 1)
    assert [f.code for f in found] == ["outcomes:cumulative-dose-unknown"]


def test_an_unknown_check_or_a_future_date_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown check"):
        safety_checks_due(5.0, {"kidneys": None}, TODAY, 2)
    with pytest.raises(InvalidInput, match="after today"):
        safety_checks_due(5.0, {"cognition": TODAY + timedelta(days=1)}, TODAY, 2)


# ------------------------------------------------------------------ repeat proposal


def test_every_indicator_met_proposes_a_repeat() -> None:
    proposal = repeat_proposal(
        SuccessIndicators(pain_reduction_percent=30, relief_days=28),
        CourseOutcome(pain_reduction_percent=62.5, relief_days=182, tolerated=True),
        None,
    )
    assert proposal.proposal == "repeat"
    assert all(i.status == "met" for i in proposal.indicators)
    assert proposal.findings[0].code == "outcomes:repeat-proposal"


def test_a_course_not_tolerated_proposes_stop() -> None:
    proposal = repeat_proposal(
        SuccessIndicators(pain_reduction_percent=30),
        CourseOutcome(pain_reduction_percent=60, tolerated=False),
        "dose-ladder:2",
    )
    assert proposal.proposal == "stop" and "not tolerated" in proposal.reasons[0]


def test_short_of_the_goal_on_a_ladder_proposes_the_next_step() -> None:
    proposal = repeat_proposal(
        SuccessIndicators(pain_reduction_percent=50),
        CourseOutcome(pain_reduction_percent=20, tolerated=True),
        "dose ladder step 3",
    )
    assert proposal.proposal == "change protocol"
    assert proposal.next_protocol == "dose ladder step 3"


def test_partly_met_proposes_change_and_none_met_proposes_stop() -> None:
    agreed = SuccessIndicators(pain_reduction_percent=30, opioid_reduction_percent=25)
    partly = CourseOutcome(pain_reduction_percent=40, opioid_reduction_percent=0, tolerated=True)
    assert repeat_proposal(agreed, partly, None).proposal == "change protocol"
    none = CourseOutcome(pain_reduction_percent=10, opioid_reduction_percent=0, tolerated=True)
    assert repeat_proposal(agreed, none, None).proposal == "stop"


def test_no_agreed_indicator_or_a_missing_result_gives_no_proposal() -> None:
    outcome = CourseOutcome(pain_reduction_percent=40, tolerated=True)
    nothing = repeat_proposal(SuccessIndicators(), outcome, None)
    assert nothing.proposal == "not enough data"
    assert any(f.code == "outcomes:indicators-missing" for f in nothing.findings)
    missing = repeat_proposal(SuccessIndicators(function_improvement_percent=20), outcome, None)
    assert missing.proposal == "not enough data"


def test_relief_still_continuing_below_the_target_is_not_yet_a_failure() -> None:
    proposal = repeat_proposal(
        SuccessIndicators(relief_days=84),
        CourseOutcome(relief_days=30, relief_censored=True, tolerated=True),
        None,
    )
    assert proposal.proposal == "not enough data"
    assert proposal.indicators[0].status == "unknown"
