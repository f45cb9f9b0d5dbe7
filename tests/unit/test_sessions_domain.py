"""The infusion session replayed from its chart: state machine, rules, prompts, dose, discharge."""

from __future__ import annotations

from fractions import Fraction

import pytest
from tests.conftest import ChartLog, baseline_vitals, session_programme

from ketapath.domain.sessions import (
    ChartRefused,
    IllegalTransition,
    delivered_fraction,
    replay,
)


def prompt(view, code: str):  # type: ignore[no-untyped-def]
    return next(p for p in view.prompts if p.code == code)


def codes(view) -> set[str]:  # type: ignore[no-untyped-def]
    return {p.code for p in view.prompts if p.status != "resolved"}


# ------------------------------------------------------------------ the state machine


def test_a_new_session_is_scheduled_and_allows_check_in_cancel_or_did_not_attend() -> None:
    view = ChartLog().view()
    assert view.state == "scheduled"
    assert set(view.allowed_actions) == {"check_in", "cancel", "did_not_attend", "note"}


def test_an_illegal_transition_is_refused_naming_the_state_and_what_is_allowed() -> None:
    log = ChartLog()
    with pytest.raises(IllegalTransition) as refused:
        log.add("start", 0)
    assert "the session is scheduled" in refused.value.message
    assert "Allowed now: check in, cancel the session" in refused.value.message
    assert log.view().state == "scheduled"


def test_check_in_needs_consent_allergies_and_a_complete_baseline() -> None:
    log = ChartLog()
    with pytest.raises(ChartRefused, match="consent"):
        log.check_in(consent_confirmed=False)
    with pytest.raises(ChartRefused, match="allergies"):
        log.check_in(allergies_confirmed=False)
    with pytest.raises(ChartRefused, match=r"missing Respiratory rate"):
        log.check_in(baseline=baseline_vitals(respiratory_rate=None))
    assert log.check_in().state == "checked_in"


def test_a_pregnancy_test_is_needed_unless_the_record_says_not_applicable() -> None:
    with pytest.raises(ChartRefused, match="record the result"):
        ChartLog(sex="female", pregnancy="unknown").check_in(pregnancy_test="not_applicable")
    with pytest.raises(ChartRefused, match="positive pregnancy test"):
        ChartLog().check_in(pregnancy_test="positive")
    assert ChartLog(sex="female", pregnancy="not_applicable").check_in(
        pregnancy_test="not_applicable"
    ).state == ("checked_in")
    assert ChartLog(sex="male").check_in(pregnancy_test="not_applicable").state == "checked_in"


def test_check_in_without_fasting_or_escort_raises_prompts() -> None:
    view = ChartLog().check_in(fasting_confirmed=False, escort_present=False)
    assert {"session:fasting-not-confirmed", "session:no-escort"} <= codes(view)


def test_the_whole_day_from_check_in_to_discharge() -> None:
    log = ChartLog()
    log.running()
    log.add("complete", 125)
    log.add("begin_observation", 126)
    log.add("vitals", 150, **baseline_vitals())
    log.add(
        "discharge_assessment",
        155,
        oriented=True,
        steady_gait=True,
        pain_nausea_vomiting="minimal",
        bleeding="minimal",
        oral_fluids=True,
        voided=True,
    )
    ready = log.view(190)
    assert ready.discharge.ready and ready.discharge.padss.total == 10
    log.now = log.at(190)
    view = log.add("discharge", 190, escort_present=True, emergency_plan_given=True)
    assert view.state == "discharged"
    assert view.allowed_actions == ["note"]


def test_cancel_and_did_not_attend_close_the_session() -> None:
    assert ChartLog().add("did_not_attend", 30).state == "did_not_attend"
    log = ChartLog()
    log.check_in()
    assert log.add("cancel", 10, reason="unwell today").cancelled_reason == "unwell today"
    with pytest.raises(IllegalTransition, match="cancelled"):
        log.add("start", 11)


# ------------------------------------------------------------------ rates


def test_the_pump_starts_at_the_first_step_of_the_order() -> None:
    view = ChartLog().running()
    assert view.running_rate_ml_per_h == 20.0 and view.running_rate_mg_per_h == 20.0


def test_a_rate_is_snapped_to_the_order_step_it_names_in_either_unit() -> None:
    programme = session_programme(concentration_mg_per_ml=2.0, steps=[(4.4, 60), (8.8, 60)])
    log = ChartLog(programme)
    log.running()
    view = log.add("rate_change", 30, rate_mg_per_h=17.6)
    assert view.running_rate_ml_per_h == 8.8 and view.running_step == 2
    view = log.add("rate_change", 40, rate_ml_per_h=4.4)
    assert view.running_step == 1


def test_a_rate_outside_the_order_is_refused_naming_the_order_rates() -> None:
    log = ChartLog()
    log.running()
    with pytest.raises(ChartRefused, match=r"not a rate of the signed order.*20 mL/h"):
        log.add("rate_change", 30, rate_ml_per_h=25)
    with pytest.raises(ChartRefused, match="already runs at"):
        log.add("rate_change", 30, rate_ml_per_h=20)


def test_a_rate_outside_the_pump_range_is_refused() -> None:
    programme = session_programme(pump_min_ml_per_h=25.0)
    log = ChartLog(programme)
    log.check_in()
    with pytest.raises(ChartRefused, match="outside the pump's range"):
        log.add("start", 5)


def test_changes_must_be_charted_in_time_order() -> None:
    log = ChartLog()
    log.running(30)
    with pytest.raises(ChartRefused, match="before the last change"):
        log.add("pause", 20, reason="equipment")


def test_a_bolus_is_at_most_the_order_bolus_in_total() -> None:
    log = ChartLog()
    log.check_in()
    log.add("bolus", 2, dose_mg=6)
    with pytest.raises(ChartRefused, match="4 mg left"):
        log.add("bolus", 3, dose_mg=5)
    log.add("bolus", 3, dose_mg=4)
    nothing = ChartLog(session_programme(bolus_mg=0.0))
    nothing.check_in()
    with pytest.raises(ChartRefused, match="no bolus"):
        nothing.add("bolus", 2, dose_mg=1)


# ------------------------------------------------------------------ the delivered dose


def test_the_delivered_dose_is_rate_times_time_plus_boluses_exactly() -> None:
    programme = session_programme(concentration_mg_per_ml=2.0, steps=[(4.4, 60), (8.8, 60)])
    log = ChartLog(programme)
    log.check_in()
    log.add("bolus", 1, dose_mg=10)
    log.add("start", 1)  # 4.4 mL/h x 2 mg/mL = 8.8 mg/h
    log.add("rate_change", 21, rate_ml_per_h=8.8)  # 20 min at 8.8 mg/h
    log.add("pause", 41, reason="equipment")  # 20 min at 17.6 mg/h
    log.add("resume", 50)
    view = log.add("stop", 57, reason="patient_request")  # 7 min at 17.6 mg/h
    expected = 10 + Fraction(88, 10) * Fraction(20, 60) + Fraction(176, 10) * Fraction(27, 60)
    assert delivered_fraction(view) == expected
    assert view.dose.delivered_mg_exact == "20.853333333"
    assert view.dose.paused_minutes == 9
    assert view.dose.running_minutes == 47


def test_a_running_infusion_delivers_until_now_and_a_pause_delivers_nothing() -> None:
    log = ChartLog()
    log.running(0)
    assert log.view(30).dose.infusion_mg == 10.0
    log.add("pause", 30, reason="clinical")
    assert log.view(90).dose.infusion_mg == 10.0


# ------------------------------------------------------------------ FPM (ANZCA) 2016 section 5


def test_a_troublesome_side_effect_asks_to_pause_for_an_hour() -> None:
    log = ChartLog()
    log.running()
    view = log.add("side_effect", 30, effect="nausea-vomiting", severity="moderate")
    pause = prompt(view, "session:pause-for-side-effect")
    assert pause.status == "open" and "pause the infusion for 60 minutes" in pause.message
    assert "FPM (ANZCA)" in pause.citation
    view = log.add("pause", 32, reason="side_effect")
    assert prompt(view, "session:pause-for-side-effect").status == "resolved"


def test_a_mild_side_effect_is_not_troublesome_unless_the_nurse_says_so() -> None:
    log = ChartLog()
    log.running()
    view = log.add("side_effect", 30, effect="headache", severity="mild")
    assert "session:pause-for-side-effect" not in codes(view)
    view = log.add("side_effect", 31, effect="headache", severity="mild", troublesome=True)
    assert "session:pause-for-side-effect" in codes(view)


def test_a_nurse_resumes_after_the_hour_and_a_physician_may_resume_earlier() -> None:
    log = ChartLog()
    log.running()
    log.add("side_effect", 30, effect="headache", severity="severe")
    log.add("pause", 30, reason="side_effect")
    view = log.view(60)
    assert "resume" not in view.allowed_actions
    assert next(b for b in view.blocked_actions if b.kind == "resume").physician_may
    with pytest.raises(ChartRefused, match="resume from 10:30"):
        log.add("resume", 60)
    assert any(p.code == "session:resume-due" for p in log.view(91).prompts)
    assert log.add("resume", 45, role="physician").state == "running"


def test_a_further_side_effect_after_recommencing_calls_the_physician() -> None:
    log = ChartLog()
    log.running()
    log.add("side_effect", 30, effect="headache", severity="severe")
    log.add("pause", 30, reason="side_effect")
    log.add("resume", 90)
    view = log.add("side_effect", 100, effect="nausea-vomiting", severity="moderate")
    call = prompt(view, "session:call-physician")
    assert call.status == "open"
    assert "session:pause-for-side-effect" not in codes(view)
    with pytest.raises(ChartRefused, match="physician's direction"):
        log.add("acknowledge", 101, prompt_id=call.id)
    view = log.add("acknowledge", 101, prompt_id=call.id, note="Dr Lee: continue, ondansetron")
    assert prompt(view, "session:call-physician").status == "resolved"
    assert prompt(view, "session:call-physician").acknowledgements[0].by == "nurse"


def test_dissociation_asks_to_stop_and_holds_the_pump_until_stopped_or_a_physician_directs() -> (
    None
):
    programme = session_programme(steps=[(20.0, 60), (30.0, 60)])
    log = ChartLog(programme)
    log.running()
    view = log.add("side_effect", 30, effect="dissociation", severity="mild", cadss6_total=5)
    stop = prompt(view, "session:stop-infusion")
    assert stop.severity == "soft" and "stop the infusion" in stop.message
    with pytest.raises(ChartRefused, match="higher rate is held"):
        log.add("rate_change", 31, rate_ml_per_h=30)
    log.add("pause", 32, reason="clinical")
    with pytest.raises(ChartRefused, match="cannot resume"):
        log.add("resume", 40)
    nurse = log.add("acknowledge", 33, prompt_id=stop.id, note="seen")
    assert prompt(nurse, "session:stop-infusion").status == "acknowledged"
    view = log.add("acknowledge", 34, prompt_id=stop.id, role="physician", note="continue")
    assert prompt(view, "session:stop-infusion").status == "resolved"
    assert log.add("resume", 40).state == "running"


def test_stopping_for_dissociation_resolves_the_prompt() -> None:
    log = ChartLog()
    log.running()
    log.add("side_effect", 30, effect="amnesia", severity="moderate")
    view = log.add("stop", 31, reason="amnesia")
    assert prompt(view, "session:stop-infusion").status == "resolved"
    assert view.state == "stopped"


# ------------------------------------------------------------------ observations


def test_vitals_outside_the_thresholds_alert_until_acknowledged_or_back_inside() -> None:
    log = ChartLog()
    log.running()
    view = log.add("vitals", 20, **baseline_vitals(spo2=89, heart_rate=130))
    alerts = [p for p in view.prompts if p.code == "session:vital-alert"]
    assert {a.id for a in alerts} == {"vital-spo2-3", "vital-heart-rate-3"}
    assert all("clinic policy" in a.rule.lower() or "Clinic policy" in a.rule for a in alerts)
    view = log.add("vitals", 25, **baseline_vitals())
    assert all(p.status == "resolved" for p in view.prompts if p.code == "session:vital-alert")


def test_a_high_risk_patient_needs_etco2_in_each_set() -> None:
    log = ChartLog()
    log.check_in(high_respiratory_risk=True)
    view = log.add("vitals", 10, **baseline_vitals())
    assert "session:etco2-missing" in codes(view)
    assert not view.vitals[-1].complete
    view = log.add("vitals", 12, **baseline_vitals(etco2=38))
    assert "session:etco2-missing" not in codes(view)


def test_observations_fall_due_at_the_interval_of_the_state() -> None:
    log = ChartLog()
    log.running(5)
    view = log.view(10)
    assert view.next_observation_due == log.at(15)  # check-in at 0, every 15 min running
    assert "session:observation-due" not in {p.code for p in view.prompts}
    assert prompt(log.view(16), "session:observation-due").severity == "info"
    assert prompt(log.view(21), "session:observation-due").severity == "warning"
    log.add("vitals", 21, **baseline_vitals())
    assert log.view(22).next_observation_due == log.at(36)


def test_an_adjunct_over_the_hard_limit_is_recorded_only_by_a_physician() -> None:
    log = ChartLog()
    log.running()
    with pytest.raises(ChartRefused, match="hard limit of 10 mg"):
        log.add("adjunct", 10, drug="midazolam", dose=12, unit="mg", route="iv")
    view = log.add(
        "adjunct", 10, drug="midazolam", dose=12, unit="mg", route="iv", role="physician"
    )
    assert prompt(view, "session:adjunct-limit").severity == "soft"
    soft = ChartLog()
    soft.running()
    view = soft.add("adjunct", 10, drug="midazolam", dose=6000, unit="mcg", route="iv")
    assert prompt(view, "session:adjunct-limit").severity == "warning"
    view = soft.add("adjunct", 11, drug="clonidine", dose=0.1, unit="mg", route="oral")
    assert "no limit" in prompt(view, "session:adjunct-not-ordered").message


def test_the_ordered_amount_delivered_and_the_next_step_are_prompted() -> None:
    log = ChartLog(session_programme(steps=[(20.0, 60), (30.0, 60)]))
    log.running(0)
    assert prompt(log.view(61), "session:step-due").message.startswith("Step 2")
    log.add("rate_change", 61, rate_ml_per_h=30)
    assert "session:step-due" not in {p.code for p in log.view(62).prompts}
    delivered = prompt(log.view(121), "session:order-delivered")
    assert delivered.severity == "info"
    assert prompt(log.view(140), "session:order-delivered").severity == "warning"


def test_acknowledging_a_prompt_of_the_clock_or_an_unknown_prompt_is_refused() -> None:
    log = ChartLog()
    log.running()
    with pytest.raises(ChartRefused, match="closes by itself"):
        log.add("acknowledge", 20, prompt_id="observation-due")
    with pytest.raises(ChartRefused, match="no prompt"):
        log.add("acknowledge", 20, prompt_id="vital-spo2-99")


# ------------------------------------------------------------------ discharge


def _ended(log: ChartLog) -> None:
    log.running()
    log.add("stop", 60, reason="patient_request")
    log.add("begin_observation", 61)


def test_discharge_waits_for_the_observation_period_and_a_score_of_9() -> None:
    log = ChartLog()
    _ended(log)
    view = log.view(90)
    assert not view.discharge.ready
    messages = " ".join(b.message for b in view.discharge.blockers)
    assert "Observation until 11:00" in messages and "cannot be scored yet" in messages
    with pytest.raises(ChartRefused, match="A physician may discharge"):
        log.add("discharge", 90, escort_present=True, emergency_plan_given=True)
    assert "discharge" in {b.kind for b in view.blocked_actions}


def test_a_physician_discharges_early_with_a_reason_that_is_kept() -> None:
    log = ChartLog()
    _ended(log)
    with pytest.raises(ChartRefused):
        log.add(
            "discharge",
            90,
            escort_present=True,
            emergency_plan_given=True,
            override_reason="well",
            role="nurse",
        )
    view = log.add(
        "discharge",
        90,
        escort_present=False,
        emergency_plan_given=True,
        override_reason="family collects at the door",
        role="physician",
    )
    assert view.discharged.override_reason == "family collects at the door"
    assert {f.code for f in view.discharged.overridden} >= {
        "session:discharge-observation-period",
        "session:discharge-escort",
    }


def test_padss_vital_signs_take_the_largest_change_with_inclusive_boundaries() -> None:
    from ketapath.domain.discharge import vital_sign_points
    from ketapath.domain.session_events import VitalSigns
    from ketapath.knowledge.clinical import knowledge

    rules = knowledge().session_rules.padss
    base = VitalSigns(**baseline_vitals(heart_rate=100, systolic=100, diastolic=50))
    assert (
        vital_sign_points(
            base, VitalSigns(**baseline_vitals(heart_rate=120, systolic=100, diastolic=50)), rules
        )[0]
        == 2
    )
    assert (
        vital_sign_points(
            base, VitalSigns(**baseline_vitals(heart_rate=100, systolic=140, diastolic=50)), rules
        )[0]
        == 1
    )
    assert (
        vital_sign_points(
            base, VitalSigns(**baseline_vitals(heart_rate=100, systolic=100, diastolic=71)), rules
        )[0]
        == 0
    )


def test_the_score_waits_for_a_complete_set_after_the_infusion() -> None:
    log = ChartLog()
    _ended(log)
    log.add(
        "discharge_assessment",
        70,
        oriented=True,
        steady_gait=False,
        pain_nausea_vomiting="moderate",
        bleeding="minimal",
        oral_fluids=True,
        voided=True,
    )
    assert log.view(80).discharge.padss.total is None
    log.add("vitals", 75, **baseline_vitals())
    padss = log.view(80).discharge.padss
    assert padss.total == 8 and not padss.met


# ------------------------------------------------------------------ corrections


def test_a_correction_replaces_the_entry_and_the_original_stays_in_the_log() -> None:
    log = ChartLog()
    log.running()
    log.add("vitals", 20, **baseline_vitals(spo2=80))
    view = log.add("vitals", 20, amends=3, why="probe off the finger", **baseline_vitals())
    assert [v.spo2 for v in view.vitals] == [98]
    assert view.vitals[0].corrected
    assert len(log.events) == 4
    assert all(p.code != "session:vital-alert" for p in view.prompts)


def test_a_correction_has_the_same_kind_a_reason_and_corrects_the_latest_version() -> None:
    log = ChartLog()
    log.running()
    log.add("vitals", 20, **baseline_vitals())
    with pytest.raises(ChartRefused, match="same kind"):
        log.add("note", 21, amends=3, why="x", note="oops")
    with pytest.raises(ChartRefused, match="say why"):
        log.add("vitals", 20, amends=3, **baseline_vitals())
    log.add("vitals", 20, amends=3, why="typo", **baseline_vitals(heart_rate=70))
    with pytest.raises(ChartRefused, match="already corrected by entry 4"):
        log.add("vitals", 20, amends=3, why="again", **baseline_vitals(heart_rate=71))


def test_an_observation_entered_in_error_is_voided_but_a_pump_change_is_not() -> None:
    log = ChartLog()
    log.running()
    log.add("side_effect", 30, effect="headache", severity="severe")
    view = log.add("void", 31, amends=3, why="wrong patient")
    assert view.side_effects == [] and "session:pause-for-side-effect" not in codes(view)
    with pytest.raises(ChartRefused, match="cannot be voided"):
        log.add("void", 32, amends=2, why="x")


def test_a_correction_that_breaks_the_log_is_refused() -> None:
    log = ChartLog()
    log.running(10)
    log.add("pause", 30, reason="clinical")
    with pytest.raises(ChartRefused, match="before the last change"):
        log.add("pause", 5, amends=3, why="earlier", reason="clinical")
    view = log.add("pause", 25, amends=3, why="it was 09:25", reason="clinical")
    assert view.dose.infusion_mg == pytest.approx(20 * 15 / 60)


# ------------------------------------------------------------------ time


def test_entries_in_the_future_or_before_the_session_day_are_refused() -> None:
    from datetime import timedelta

    from ketapath.domain.session_events import ChartEvent
    from ketapath.domain.sessions import SessionContext, check_append

    log = ChartLog(now_min=60)
    event = ChartEvent(seq=1, entry=log.entry("note", 70, note="later"))
    with pytest.raises(ChartRefused, match="in the future"):
        check_append([], event, log.now, log.context, ahead=timedelta(minutes=2))
    context = SessionContext(programme=log.context.programme, earliest=log.at(0))
    early = ChartEvent(seq=1, entry=log.entry("note", -1, note="yesterday"))
    with pytest.raises(ChartRefused, match="before the day"):
        check_append([], early, log.now, context)


def test_replay_is_deterministic_and_lists_refused_entries_without_applying_them() -> None:
    from ketapath.domain.session_events import ChartEvent

    log = ChartLog()
    log.running()
    bad = ChartEvent(
        seq=3, entry=log.entry("discharge", 10, escort_present=True, emergency_plan_given=True)
    )
    events = [*log.events, bad]
    first = replay(events, log.now, log.context)
    again = replay(events, log.now, log.context)
    assert first == again
    assert first.state == "running"
    assert [r.seq for r in first.refusals] == [3]
