from __future__ import annotations

import pytest
from tests.conftest import base_patient

from ketapath.domain.patient import patient_from_dict
from ketapath.domain.screening import ScreeningResult, screen


def run(**changes) -> ScreeningResult:
    patient, warnings = patient_from_dict(base_patient(**changes))
    return screen(patient, input_warnings=warnings)


def codes(result: ScreeningResult) -> set[str]:
    return {f.code for f in result.findings}


def test_a_crps_patient_with_nothing_against_is_eligible() -> None:
    result = run()
    assert result.decision == "eligible", result.gating
    assert result.purpose == ("pain_relief", "opioid_reduction")


@pytest.mark.parametrize(
    ("diagnosis", "grade", "certainty"),
    [
        ("G90.50", "B", "low to moderate"),
        ("crps-2", "B", "low to moderate"),
        ("S14.109S", "C", "low"),
        ("M79.7", "D", "low"),
        ("G43.709", "D", "low"),
        ("G54.6", "D", "low"),
        ("B02.29", "D", "low"),
        ("G89.3", "D", "low"),
        ("I70.221", "D", "low"),
        ("G50.0", "D", "low"),
    ],
)
def test_each_indication_carries_its_evidence_grade(diagnosis, grade, certainty) -> None:
    result = run(diagnoses=[diagnosis])
    assert [(i.grade, i.certainty) for i in result.indications] == [(grade, certainty)]
    citation = result.indications[0].citation
    assert "ASRA/AAPM/ASA consensus 2018, Table 6" in citation or "Goordeen" in citation


@pytest.mark.parametrize(
    ("code", "finding"),
    [
        ("I20.0", "contraindication:unstable-angina"),
        ("I16.0", "contraindication:poorly-controlled-hypertension"),
        ("I25.10", "contraindication:high-risk-coronary-disease"),
        ("G93.2", "contraindication:raised-intracranial-pressure"),
        ("S06.0X0A", "contraindication:raised-intracranial-pressure"),
        ("H40.11X0", "contraindication:raised-intraocular-pressure"),
        ("E05.90", "contraindication:hyperthyroidism"),
        ("E27.5", "contraindication:phaeochromocytoma"),
        ("K72.10", "contraindication:severe-liver-disease"),
        ("K31.84", "contraindication:aspiration-risk"),
        ("Z33.1", "contraindication:pregnancy"),
        ("F10.129", "contraindication:intoxication"),
        ("F11.20", "contraindication:active-substance-misuse"),
        ("F05", "contraindication:delirium"),
        ("F20.9", "contraindication:psychosis"),
    ],
)
def test_each_table_5_condition_needs_a_physicians_override(code, finding) -> None:
    result = run(comorbidities=[code])
    assert finding in codes(result)
    assert result.decision == "needs_override"
    hit = next(f for f in result.findings if f.code == finding)
    assert hit.severity == "soft"
    assert "ASRA/AAPM/ASA consensus 2018, Table 5" in hit.citation


@pytest.mark.parametrize("consent", ["refused", "unable"])
def test_refusal_or_inability_to_consent_makes_a_patient_not_eligible(consent) -> None:
    result = run(consent=consent)
    assert result.decision == "not_eligible"
    assert "contraindication:consent-refused-or-unable" in codes(result)


def test_a_ketamine_allergy_makes_a_patient_not_eligible() -> None:
    result = run(allergies=[{"substance": "Ketamine", "reaction": "rash"}])
    assert result.decision == "not_eligible"


def test_a_child_is_excluded_by_institutional_policy() -> None:
    result = run(age_years=16)
    assert result.decision == "not_eligible"
    assert "policy:minimum-age" in codes(result)


def test_pregnancy_recorded_in_the_pregnancy_field_counts() -> None:
    result = run(pregnancy="pregnant")
    assert "contraindication:pregnancy" in codes(result)


def test_a_not_fasted_patient_has_an_aspiration_risk() -> None:
    result = run(
        assessment={
            "central_sensitisation": True,
            "fasted": False,
            "opioid_context": {"poor_opioid_response": True},
        }
    )
    assert "contraindication:aspiration-risk" in codes(result)


@pytest.mark.parametrize(
    ("medicine", "finding"),
    [
        ("Clarithromycin 500 mg", "interaction:cyp3a4-inhibitors"),
        ("carbamazepine", "interaction:cyp-inducers"),
        ("Rifampicin", "interaction:cyp-inducers"),
        ("ticlopidine", "interaction:cyp2b6-inhibitors"),
        ("lorazepam", "interaction:benzodiazepines"),
        ("lamotrigine", "interaction:lamotrigine"),
        ("pseudoephedrine", "interaction:sympathomimetics"),
        ("phenelzine", "interaction:maois"),
        ("theophylline", "interaction:theophylline"),
    ],
)
def test_interacting_medicines_need_a_physicians_override(medicine, finding) -> None:
    meds = [{"name": "oxycodone", "dose": 20, "unit": "mg"}, {"name": medicine}]
    result = run(medications=meds)
    assert finding in codes(result)
    assert result.decision == "needs_override"


def test_a_medicine_is_not_matched_inside_another_word() -> None:
    # "promethazine" contains no listed generic as a word; itraconazole is deliberately absent.
    result = run(
        medications=[{"name": "oxycodone"}, {"name": "itraconazole"}, {"name": "promethazine"}]
    )
    assert not any(c.startswith("interaction:") for c in codes(result))


def test_opioids_are_recognised_by_generic_and_brand_names() -> None:
    result = run(
        medications=[{"name": "OxyContin"}, {"name": "fentanyl patch", "dose": 25, "unit": "mcg/h"}]
    )
    assert set(result.opioids) == {"oxycodone", "fentanyl"}


def test_a_missing_purpose_needs_a_physicians_override() -> None:
    result = run(purpose=[])
    assert "purpose:not-stated" in codes(result)
    assert result.decision == "needs_override"


def test_opioid_reduction_without_an_opioid_is_flagged() -> None:
    result = run(medications=[], purpose=["opioid_reduction"])
    assert "purpose:opioid-reduction-without-opioids" in codes(result)


def test_no_evidence_of_central_sensitisation_is_a_precaution() -> None:
    result = run(assessment={"central_sensitisation": False})
    assert "selection:no-central-sensitisation" in codes(result)
    assert result.decision == "needs_override"


def test_no_recognised_indication_needs_justification() -> None:
    result = run(diagnoses=["F32.A"])
    assert "indication:none" in codes(result)
    assert result.decision == "needs_override"


def test_unknown_codes_are_reported_not_ignored() -> None:
    result = run(diagnoses=["G90.50", "Q99.9", "something odd"])
    assert "input:unknown-code" in codes(result)
    assert "input:unrecognised-diagnosis" in codes(result)
    assert result.decision == "needs_override"


def test_unknown_fields_appear_among_the_findings() -> None:
    result = run(shoe_size=42)
    assert "input:ignored-field" in codes(result)


def test_high_respiratory_risk_asks_for_end_tidal_co2_without_gating() -> None:
    result = run(comorbidities=["G47.33"])
    assert "contraindication:high-respiratory-risk" in codes(result)
    assert result.decision == "eligible"


def test_every_finding_names_its_source_and_severity() -> None:
    result = run(
        comorbidities=["I20.0", "F20.9", "Z33.1"],
        medications=[{"name": "lorazepam"}],
        consent="pending",
        purpose=[],
    )
    for f in result.findings:
        assert f.citations and f.message and f.code and f.rule
        assert f.severity in {"hard", "soft", "warning", "info"}
