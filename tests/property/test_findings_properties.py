"""Every finding, whatever the input, leads with words and cites the bibliography (hypothesis).

Screening of random patients (known and unknown diagnoses, interacting medicines, every
consent and pregnancy state), courses of random protocols, weights and settings (including
refused ones, whose hard findings are in the exception), and oral morphine equivalents of
random medicine lists.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ketapath.domain.errors import HardLimitExceeded, InvalidInput
from ketapath.domain.findings import Finding
from ketapath.domain.opioids import oral_morphine_equivalents
from ketapath.domain.patient import Medication, Patient
from ketapath.domain.planning import DosingInputs, PlanOptions, plan
from ketapath.domain.screening import screen
from ketapath.knowledge.clinical import knowledge
from ketapath.knowledge.library import default_library

KB = knowledge()
CONDITION_IDS = [c.id for c in KB.conditions.entries]
MEDICINES = sorted(
    {n for i in KB.medicines.ingredients for n in i.names}
    | {n for p in KB.medicines.products for n in p.names}
)
SETTINGS = dict(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

diagnoses = st.lists(
    st.sampled_from(CONDITION_IDS)
    | st.sampled_from(["G90.511", "E11.9", "Z99.9"])
    | st.text(alphabet="abcdefghij -", min_size=1, max_size=12).filter(str.strip),
    max_size=4,
)
medications = st.lists(
    st.builds(
        Medication,
        name=st.sampled_from(MEDICINES) | st.sampled_from(["Zapain", "unknown pill"]),
        dose=st.none() | st.floats(min_value=0.5, max_value=500),
        unit=st.sampled_from(["mg", "mcg/h"]),
        frequency=st.sampled_from(["", "bd", "prn", "daily", "sometimes"]),
        route=st.sampled_from(["", "oral", "transdermal", "iv"]),
    ),
    max_size=4,
)


def _cited(findings: tuple[Finding, ...] | list[Finding]) -> None:
    for f in findings:
        assert f.message.strip() and f.rule.strip(), f
        assert f.severity in ("hard", "soft", "warning", "info")
        assert f.citations, f
        for c in f.citations:
            assert c.ref in KB.bibliography, c
            assert c.text.startswith(KB.bibliography.get(c.ref).short)
        assert KB.finding_code(f.code)


@settings(**SETTINGS)
@given(
    diagnoses=diagnoses,
    comorbidities=diagnoses,
    medications=medications,
    consent=st.sampled_from(["given", "pending", "refused", "unable"]),
    sex=st.sampled_from(["male", "female"]),
    age=st.integers(min_value=10, max_value=95),
    purpose=st.lists(st.sampled_from(["pain_relief", "opioid_reduction"]), max_size=2),
)
def test_every_screening_finding_cites_a_bibliography_entry(
    diagnoses, comorbidities, medications, consent, sex, age, purpose
) -> None:
    patient = Patient(
        sex=sex,
        age_years=age,
        weight_kg=70,
        diagnoses=[{"code": d} for d in diagnoses],
        comorbidities=[{"code": d} for d in comorbidities],
        medications=medications,
        consent=consent,
        purpose=purpose,
    )
    _cited(screen(patient).findings)


@settings(**SETTINGS)
@given(
    protocol_id=st.sampled_from([p.id for p in KB.protocols.entries]),
    weight=st.floats(min_value=30, max_value=250),
    setting=st.sampled_from(["clinic", "ward", "icu"]),
    basis=st.sampled_from(["actual", "ideal", "adjusted"]),
)
def test_every_order_finding_cites_a_bibliography_entry(protocol_id, weight, setting, basis):
    try:
        course = plan(
            protocol_id,
            DosingInputs(weight, 170, "female"),
            PlanOptions(setting=setting, weight_basis=basis),
            library=default_library(),
        )
    except HardLimitExceeded as refused:
        _cited(list(refused.findings))
        return
    except InvalidInput:
        return
    _cited(course.findings)


@settings(**SETTINGS)
@given(medications=medications)
def test_every_opioid_finding_cites_a_bibliography_entry(medications) -> None:
    result = oral_morphine_equivalents(medications)
    _cited(result.findings)
    for line in result.lines:
        _cited(line.findings)
