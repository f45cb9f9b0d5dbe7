"""Letters after a course (domain/letters.py, reports/letters.py, letter_rules.yaml): what a
letter says is the chart's, unknowns are never 0, and the PDF says what the HTML says."""

from __future__ import annotations

import io
from datetime import date
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from pypdf import PdfReader
from tests.conftest import ChartLog

from ketapath.domain.letters import (
    LETTER_KINDS,
    NOT_RECOGNISED,
    NOT_RECORDED,
    NOT_YET_RECORDED,
    ClinicInput,
    CourseInput,
    DecisionInput,
    LetterFacts,
    OpioidInput,
    OpioidLineInput,
    OpioidPlanInput,
    OpioidRecord,
    OutcomeInput,
    PainScoreInput,
    PatientInput,
    ResultInput,
    SessionInput,
    TaperStepInput,
    assemble,
)
from ketapath.domain.outcomes import follow_up_schedule
from ketapath.domain.session_dose import mg_text
from ketapath.domain.sessions import delivered_fraction
from ketapath.knowledge.base import KnowledgeError, data_path
from ketapath.knowledge.letters import letter_rules, load_letter_rules
from ketapath.reports import letters as rendering
from ketapath.reports.pdf import unicode_font_files

TODAY = date(2026, 12, 10)
CLINIC = ClinicInput("Riverside Pain Clinic", "2 Hospital Road", "Ward 7: 0161 555 0123")


def pdf_text(content: bytes) -> str:
    """The text of every page of a PDF, with its line breaks made spaces."""
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join((page.extract_text() or "").split()) for page in reader.pages)


def paused_session() -> ChartLog:
    """2 h at 20 mg/h with a 10 mg bolus, midazolam, and an hour's pause for nausea."""
    log = ChartLog()
    log.check_in(0)
    log.add("start", 5)
    log.add("bolus", 6, dose_mg=10)
    log.add("adjunct", 7, drug="midazolam", dose=2, unit="mg", route="iv")
    log.add("side_effect", 30, effect="nausea-vomiting", severity="moderate")
    log.add("pause", 31, reason="side_effect")
    log.add("resume", 95)
    log.add("complete", 160)
    return log


def stopped_session() -> ChartLog:
    log = ChartLog()
    log.check_in(0)
    log.add("start", 10)
    log.add("stop", 52, reason="patient_request")
    return log


class Case:
    """A course of three sessions (two given, the third scheduled) and what a letter needs."""

    def __init__(self, **changes: Any) -> None:
        self.logs = [paused_session(), stopped_session()]
        self.sessions = [
            SessionInput(i + 1, date(2026, 12, 1 + 2 * i), log.view(), tuple(log.events))
            for i, log in enumerate(self.logs)
        ]
        self.sessions.append(SessionInput(3, date(2026, 12, 5), ChartLog().view(), ()))
        self.weight: float | None = changes.pop("weight", 70.0)
        self.cancelled: bool = changes.pop("cancelled", False)
        self.patient = PatientInput(
            name=changes.pop("name", "Zoë Ångström"),
            birth_date=date(1970, 1, 2),
            gp=changes.pop("gp", "Dr Grace Hopper, Riverside Surgery"),
            referrer="",
            diagnoses=("Complex regional pain syndrome type 1",),
        )
        self.opioids = changes.pop("opioids", _opioids())
        self.clinic = changes.pop("clinic", CLINIC)
        assert not changes, changes

    def course(self) -> CourseInput:
        return CourseInput(
            order_id=12,
            protocol_name="Mixed neuropathic pain, 2-hour sessions (Kang 2010)",
            route="iv",
            setting="clinic",
            sessions_ordered=3,
            dosing_weight_kg=self.weight,
            weight_basis="actual",
            signed_by="physician",
            signed_on=date(2026, 11, 30),
            cancelled=self.cancelled,
            sessions=tuple(self.sessions),
        )

    def facts(
        self,
        kind: str = "gp_letter",
        outcome: OutcomeInput | None = None,
        decision: DecisionInput | None = None,
    ) -> LetterFacts:
        return assemble(
            kind,  # type: ignore[arg-type]
            patient=self.patient,
            course=self.course(),
            opioids=self.opioids,
            clinic=self.clinic,
            today=TODAY,
            written_by="nurse",
            outcome=outcome,
            decision=decision,
        )


def _opioids(now_complete: bool = True) -> OpioidInput:
    before = OpioidRecord(
        "before the course (record version 1)",
        (OpioidLineInput("oxycodone", 40, "mg/day", 60, True),),
        60,
        True,
    )
    now_lines = (OpioidLineInput("oxycodone", 30, "mg/day", 45, True),)
    if not now_complete:
        now_lines += (OpioidLineInput("wonder drops", None, None, None, False),)
    now = OpioidRecord("taken on 2026-12-08 (recorded)", now_lines, 45, now_complete)
    plan = OpioidPlanInput(
        date(2026, 11, 29),
        "physician",
        "",
        "Taper oxycodone by 10% every 7 days.",
        (
            TaperStepInput(date(2026, 12, 5), 30, "mg", 45.0),
            TaperStepInput(date(2026, 12, 12), 25, "mg", 37.5),
        ),
    )
    return OpioidInput("CDC 2022 table", before, now, plan)


def _stamp(signed: bool = False) -> rendering.Stamp:
    return rendering.Stamp(
        version=2 if signed else 1,
        drafted_by="Nurse (nurse)",
        drafted_at="2026-12-10 10:00 UTC",
        digest="0" * 64,
        signed_by="Dr Physician (physician)" if signed else None,
        signed_at="2026-12-10 11:00 UTC" if signed else None,
    )


# ---------------------------------------------------------------------------- the numbers


def test_each_session_s_dose_is_the_chart_s_exact_delivered_dose_rounded_once() -> None:
    case = Case()
    facts = case.facts()
    exact = [delivered_fraction(s.view) for s in case.sessions[:2]]
    assert [s.ketamine_mg for s in facts.sessions[:2]] == [mg_text(d, 1) for d in exact]
    assert [s.ketamine_mg_exact for s in facts.sessions[:2]] == [mg_text(d) for d in exact]
    assert facts.total_mg == mg_text(sum(exact, Fraction(0)), 1)
    assert facts.total_mg_exact == mg_text(sum(exact, Fraction(0)))
    assert facts.total_mg_per_kg == mg_text(sum(exact, Fraction(0)) / 70, 2)
    # 20 mg/h for 91 min of running (5-31, 95-160) and a 10 mg bolus; 20 mg/h for 42 min
    assert facts.sessions[0].ketamine_mg == "40.3" and facts.sessions[1].ketamine_mg == "14.0"
    assert facts.total_mg == "54.3" and facts.sessions_given == 2


def test_a_session_not_given_says_so_and_never_zero() -> None:
    facts = Case().facts()
    third = facts.sessions[2]
    assert not third.given
    assert third.ketamine_mg == "none given" and third.mg_per_kg == "none given"
    assert "scheduled" in third.ended


def test_an_unknown_dosing_weight_is_not_recognised_never_zero() -> None:
    facts = Case(weight=None).facts()
    assert facts.total_mg_per_kg == NOT_RECOGNISED
    assert facts.sessions[0].mg_per_kg == NOT_RECOGNISED
    assert facts.dosing_weight == NOT_RECOGNISED


def test_pauses_stops_adjuncts_and_side_effects_come_from_the_chart() -> None:
    facts = Case().facts()
    first, second = facts.sessions[:2]
    assert first.pauses == ["09:31 to 10:35, a side effect"]
    assert first.adjuncts == ["midazolam 2 mg IV at 09:07"]
    assert first.ended == "completed as ordered at 11:40"
    assert second.ended == "stopped early at 09:52, for the patient's request"
    assert [(e.session, e.what) for e in facts.adverse_events] == [(1, "Nausea or vomiting")]
    assert facts.adverse_events[0].detail.startswith("moderate, troublesome")


# ---------------------------------------------------------------------------- follow-up


def test_follow_up_counts_from_the_last_session_given_and_says_the_course_is_not_finished() -> None:
    facts = Case().facts()
    expected = follow_up_schedule(date(2026, 12, 3))
    assert [(t.label, t.date) for t in facts.follow_up] == [
        (t.label, t.due_on.isoformat()) for t in expected
    ]
    assert "2026-12-03" in facts.follow_up_basis and "may move" in facts.follow_up_basis
    assert "letters:course-not-finished" in {f.code for f in facts.findings}


def test_a_cancelled_course_is_finished_where_it_stopped() -> None:
    facts = Case(cancelled=True).facts()
    assert "letters:course-not-finished" not in {f.code for f in facts.findings}
    assert facts.course_status == "cancelled"


def test_a_course_with_no_session_given_has_no_dose_and_no_follow_up() -> None:
    case = Case()
    case.sessions = [SessionInput(1, date(2026, 12, 1), ChartLog().view(), ())]
    facts = case.facts()
    assert facts.total_mg == "none given" and facts.follow_up == []
    assert "letters:no-session-given" in {f.code for f in facts.findings}


# ---------------------------------------------------------------------------- opioids


def test_the_opioid_change_is_the_difference_of_complete_totals() -> None:
    facts = Case().facts()
    assert facts.opioids.change.startswith("-15 mg OME/day (60 to 45 mg OME per day; -25%")
    assert [s.date for s in facts.opioids.plan_steps] == ["2026-12-12"]  # from today on
    assert facts.opioids.before is not None and facts.opioids.before.total == "60 mg OME/day"


def test_an_opioid_that_cannot_be_converted_makes_the_change_unknown_never_zero() -> None:
    facts = Case(opioids=_opioids(now_complete=False)).facts()
    assert facts.opioids.change.startswith("not known")
    assert NOT_RECOGNISED in facts.opioids.change
    assert facts.opioids.now is not None
    assert facts.opioids.now.lines[1].ome == NOT_RECOGNISED
    assert facts.opioids.now.lines[1].daily_dose == NOT_RECORDED
    assert "letters:opioids-incomplete" in {f.code for f in facts.findings}


# ---------------------------------------------------------------------------- the clinic


def test_a_missing_after_hours_contact_is_said_and_is_a_finding() -> None:
    facts = Case(clinic=ClinicInput()).facts()
    assert facts.after_hours.startswith(NOT_RECORDED)
    assert "KETAPATH_CLINIC_AFTER_HOURS" in facts.after_hours
    codes = {f.code for f in facts.findings}
    assert {"letters:after-hours-not-set", "letters:clinic-not-set"} <= codes
    assert Case().facts().after_hours == CLINIC.after_hours


def test_a_gp_letter_without_a_gp_is_a_finding() -> None:
    facts = Case(gp="").facts("gp_letter")
    assert facts.gp == NOT_RECORDED
    assert "letters:no-gp" in {f.code for f in facts.findings}
    assert "letters:no-gp" not in {f.code for f in Case(gp="").facts("discharge_summary").findings}


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="kind"):
        Case().facts("prescription")


# ---------------------------------------------------------------------------- the wording


def test_the_letter_rules_are_cited_and_name_known_adverse_effects() -> None:
    rules = letter_rules()
    assert sorted(k.id for k in rules.kinds) == sorted(LETTER_KINDS)
    effects = {e.adverse_effect for e in (*rules.side_effects, *rules.later_effects)}
    assert {"psychomimetic", "nausea-vomiting", "headache", "cystitis", "hepatotoxicity"} <= effects
    assert any(h.urgency == "emergency" for h in rules.seek_help)
    facts = Case().facts("patient_information")
    assert all(e.citation for e in facts.side_effects)
    assert "ASRA/AAPM/ASA consensus 2018, Table 4" in facts.side_effects[0].citation


def test_a_letter_rules_file_with_an_unknown_adverse_effect_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(data_path("letter_rules.yaml").read_text("utf-8"))
    document["side_effects"][0]["adverse_effect"] = "levitation"
    path = tmp_path / "letter_rules.yaml"
    path.write_text(yaml.safe_dump(document), "utf-8")
    with pytest.raises(KnowledgeError, match="levitation"):
        load_letter_rules(path)


def test_a_letter_rules_file_without_an_emergency_rule_is_refused(tmp_path: Path) -> None:
    document = yaml.safe_load(data_path("letter_rules.yaml").read_text("utf-8"))
    document["seek_help"] = [h for h in document["seek_help"] if h["urgency"] != "emergency"]
    path = tmp_path / "letter_rules.yaml"
    path.write_text(yaml.safe_dump(document), "utf-8")
    with pytest.raises(KnowledgeError, match="emergency"):
        load_letter_rules(path)


# ---------------------------------------------------------------------------- the outcome


def known_outcome(**changes: Any) -> OutcomeInput:
    """Pain 7 before the course and 3 at the 28-day follow-up, relief continuing at the last
    diary day (censored at 35 days), PGIC much improved: as the Outcome card gives them."""
    fields: dict[str, Any] = {
        "baseline": PainScoreInput(7, date(2026, 11, 28), "baseline"),
        "compared": PainScoreInput(3, date(2027, 1, 2), "follow-up", 28),
        "change_points": -4.0,
        "change_percent": -400 / 7,
        "change_note": "",
        "change_citation": "IMMPACT (Dworkin et al. 2008)",
        "responder_30": ResultInput(
            "responder",
            "pain 7 to 3: a 57.1% fall from baseline, at least the 30% threshold",
            "IMMPACT (Dworkin et al. 2008)",
        ),
        "responder_50": ResultInput(
            "responder",
            "pain 7 to 3: a 57.1% fall from baseline, at least the 50% threshold",
            "IMMPACT (Dworkin et al. 2008)",
        ),
        "relief": ResultInput(
            "censored",
            "relief continued to the last diary day (2027-01-09), 35 days after the last "
            "session: censored there",
            "ketapath outcome policy (clinic policy)",
        ),
        "relief_days": 35,
        "pgic": ResultInput("improved", "much improved", "Farrar et al. 2001"),
        "pgic_category": 2,
        "pgic_timepoint_days": 28,
    }
    fields.update(changes)
    return OutcomeInput(**fields)


DECISION = DecisionInput(
    decision="change protocol",
    next_protocol="Dose ladder",
    reason="Relief lasted five weeks at 0.5 mg/kg/h; the patient asks for a longer one.",
    decided_on=date(2027, 1, 9),
    decided_by="Dr Lee (dr.lee)",
)
OUTCOME_WORDS = (
    "Pain before the course (NRS 0-10): 7, baseline assessment (2026-11-28)",
    "Pain at the latest follow-up (NRS 0-10): 3, at follow-up 28 days after the last "
    "session (2027-01-02)",
    "Change in pain from baseline: 7 to 3 (-4 points, -57.1%)",
    "Responder at 30%: responder: pain 7 to 3: a 57.1% fall",
    "Responder at 50%: responder: pain 7 to 3: a 57.1% fall",
    "Duration of relief: 35 days so far (censored",
    "Patient's impression of change (PGIC): much improved (2, at 28 days): improved",
    "The physician's decision: change protocol to Dose ladder, decided by Dr Lee (dr.lee) on "
    "2027-01-09.",
    "Reason, as the physician wrote it: Relief lasted five weeks at 0.5 mg/kg/h; the patient "
    "asks for a longer one.",
)


@pytest.mark.parametrize("kind", ["discharge_summary", "gp_letter"])
def test_the_clinicians_letters_give_the_outcome_and_the_decision_in_the_pdf(kind: str) -> None:
    facts = Case().facts(kind, known_outcome(), DECISION)
    html, pdf = rendering.render(facts, _stamp())
    text = pdf_text(pdf)
    for words in OUTCOME_WORDS:
        assert words in text, words
    assert "Judged at the latest follow-up score (28 days after the last session)" in text
    assert "Relief lasted five weeks" in html and "Dose ladder" in html


def test_the_patient_information_sheet_gives_neither_outcome_nor_decision() -> None:
    facts = Case().facts("patient_information", known_outcome(), DECISION)
    assert facts.outcome is None and facts.repeat_decision is None
    text = pdf_text(rendering.pdf(facts, _stamp()))
    assert "Responder" not in text and "Relief lasted" not in text


def test_an_outcome_not_known_yet_is_not_yet_recorded_never_zero() -> None:
    facts = Case().facts("gp_letter")
    assert facts.outcome is not None and facts.repeat_decision is not None
    for line in facts.outcome.lines:
        assert line.result.startswith(NOT_YET_RECORDED), line
        assert not any(ch == "0" for ch in line.result.split()), line
    assert facts.repeat_decision.decision == NOT_YET_RECORDED
    text = pdf_text(rendering.pdf(facts, _stamp()))
    assert "Duration of relief: not yet recorded" in text
    assert "PGIC): not yet recorded" in text
    assert "(repeat the course, change protocol or stop): not yet recorded." in text


def test_a_score_after_a_session_is_named_when_no_follow_up_is_recorded_yet() -> None:
    outcome = known_outcome(
        compared=PainScoreInput(5, date(2026, 12, 3), "post-session"),
        change_points=-2.0,
        change_percent=-200 / 7,
        relief=ResultInput("no data", "no diary entry after the last session", "policy"),
        relief_days=None,
        pgic=ResultInput("unknown", "not answered", "Farrar et al. 2001"),
        pgic_category=None,
        pgic_timepoint_days=None,
    )
    facts = Case().facts("discharge_summary", outcome)
    assert facts.outcome is not None
    lines = {line.what: line.result for line in facts.outcome.lines}
    assert lines["Pain at the latest follow-up (NRS 0-10)"].startswith(
        "not yet recorded (the latest score after a session, 5, post-session assessment"
    )
    assert lines["Duration of relief"] == (
        "not yet recorded: no diary entry after the last session"
    )
    assert "latest post-session score (no follow-up score" in facts.outcome.judged_at


def test_a_baseline_of_0_gives_an_unknown_response_with_its_reason() -> None:
    reason = "the baseline pain is 0, so no percentage fall can be taken"
    outcome = known_outcome(
        baseline=PainScoreInput(0, date(2026, 11, 28), "baseline"),
        change_points=3.0,
        change_percent=None,
        change_note="a baseline of 0 has no percentage",
        responder_30=ResultInput("unknown", reason, "IMMPACT"),
        responder_50=ResultInput("unknown", reason, "IMMPACT"),
    )
    facts = Case().facts("gp_letter", outcome)
    assert facts.outcome is not None
    lines = {line.what: line.result for line in facts.outcome.lines}
    assert (
        lines["Change in pain from baseline"]
        == "0 to 3 (3 points; a baseline of 0 has no percentage)"
    )
    assert lines["Responder at 30%"] == f"unknown: {reason}"


def test_a_version_stored_before_letters_gave_the_outcome_keeps_its_facts() -> None:
    """Its facts read back and stored again (as signing does) are the same, key for key, so
    its digest does not change; its letter has no outcome section."""
    facts = Case().facts("gp_letter", known_outcome(), DECISION)
    older = facts.model_dump(mode="json")
    del older["outcome"], older["repeat_decision"]
    again = LetterFacts.model_validate(older)
    assert again.stored() == older
    assert "Outcome of the course" not in rendering.body(again, _stamp())
    assert "outcome" in facts.stored() and "repeat_decision" in facts.stored()


# ---------------------------------------------------------------------------- HTML and PDF


@pytest.mark.parametrize("kind", LETTER_KINDS)
def test_the_pdf_says_what_the_html_says(kind: str) -> None:
    facts = Case().facts(kind)
    html, pdf = rendering.render(facts, _stamp())
    text = pdf_text(pdf)
    assert pdf[:5] == b"%PDF-"
    for value in (facts.total_mg, facts.first_session, facts.last_session, CLINIC.after_hours):
        assert value in html and value in text, value
    for session in facts.sessions[:2]:
        assert session.date in text and session.ketamine_mg in text
    if kind != "patient_information":
        assert facts.total_mg_per_kg in text and facts.total_mg_exact in text
    for timepoint in facts.follow_up:
        assert timepoint.date in html and timepoint.date in text
    assert "DRAFT, version 1" in text and "Not signed" in text


def test_a_signed_letter_names_its_signer_and_no_longer_says_draft() -> None:
    html, pdf = rendering.render(Case().facts(), _stamp(signed=True))
    text = pdf_text(pdf)
    assert "Signed by Dr Physician (physician) on 2026-12-10 11:00 UTC" in text
    assert "DRAFT" not in text and "DRAFT" not in html


def test_names_beyond_latin_1_survive_in_the_pdf_when_dejavu_is_installed() -> None:
    facts = Case(name="Zoë Ångström-Łukasiewicz").facts()
    text = pdf_text(rendering.pdf(facts, _stamp()))
    if unicode_font_files() is None:
        assert "Zoë Ångström-?ukasiewicz" in text  # the documented latin-1 fallback
    else:
        assert "Zoë Ångström-Łukasiewicz" in text


def test_the_stored_document_gives_back_the_body_the_pdf_was_laid_out_from() -> None:
    facts = Case().facts()
    stamp = _stamp()
    document, _ = rendering.render(facts, stamp)
    assert rendering.body_of(document) == rendering.body(facts, stamp)
    assert document.startswith("<!doctype html>")
    assert rendering.filename(facts, stamp, "pdf") == "gp-letter-order-12-v1.pdf"


def test_the_longest_texts_a_chart_holds_still_make_a_pdf_and_say_where_the_rest_is() -> None:
    """A table row of the PDF must fit on one page: cells are cut, and say so."""
    log = ChartLog()
    log.check_in(0)
    log.add("start", 5)
    for minute in range(10, 22):
        log.add("side_effect", minute, effect="other", severity="mild", description="x" * 500)
    for minute in range(22, 34):
        log.add("adjunct", minute, drug="ondansetron", dose=4, unit="mg", route="iv")
    log.add("stop", 100, reason="other", note="a long reason " * 140)
    case = Case(name="N" * 200)
    case.sessions = [SessionInput(1, date(2026, 12, 1), log.view(), tuple(log.events))]
    facts = case.facts("discharge_summary")
    assert facts.sessions[0].ended.endswith("[cut: in full in the chart]")
    assert len(facts.sessions[0].ended) <= 240
    assert facts.sessions[0].adjuncts[-1] == "and 4 more (see the chart)"
    assert all(len(e.detail) <= 240 for e in facts.adverse_events)
    pdf = rendering.pdf(facts, _stamp())
    assert "[cut: in full in the chart]" in pdf_text(pdf)


def test_a_character_the_font_lacks_is_a_question_mark_in_the_pdf_never_a_blank() -> None:
    facts = Case(name="李 Ωmega").facts()
    text = pdf_text(rendering.pdf(facts, _stamp()))
    assert ("? Ωmega" if unicode_font_files() else "? ?mega") in text
    assert "李 Ωmega" in rendering.body(facts, _stamp())  # the HTML keeps it
