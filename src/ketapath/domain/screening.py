"""Eligibility and safety screening (PRODUCT step 3).

The result is a decision with every finding that led to it. ``absolute`` findings make a
patient not eligible; ``relative`` and ``precaution`` findings need a physician to accept them
with a written reason; ``info`` findings are shown but do not gate. Screening supports the
physician's decision; it does not take it.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ketapath.domain.patient import Patient
from ketapath.domain.vocabulary import Resolution, resolve
from ketapath.knowledge.clinical import Condition, FindingSeverity, Knowledge, knowledge

Decision = Literal["eligible", "needs_override", "not_eligible"]

SEED_004_PURPOSE = (
    "seed 004 section 1 (purpose) and Executive Summary 6a (clear articulation of purpose)"
)
SEED_004_SELECTION = "seed 004 section 2 (patient selection)"


@dataclass(frozen=True)
class Finding:
    """One reason screening gives, with its rule and source."""

    code: str
    severity: FindingSeverity
    message: str
    source: str
    item: str = ""


@dataclass(frozen=True)
class IndicationResult:
    """A diagnosis that is an indication, with the evidence grade for ketamine infusion."""

    condition_id: str
    name: str
    given: str
    grade: str
    certainty: str
    benefit: str
    source: str


@dataclass(frozen=True)
class ScreeningResult:
    decision: Decision
    purpose: tuple[str, ...]
    indications: tuple[IndicationResult, ...]
    findings: tuple[Finding, ...]
    opioids: tuple[str, ...] = ()
    patient_id: str = ""
    age_years: float | None = None
    sex: str = ""
    weight_kg: float | None = None
    rule_base: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def gating(self) -> tuple[Finding, ...]:
        """The findings a physician must accept (or that exclude the patient)."""
        return tuple(f for f in self.findings if f.severity != "info")


def decide(findings: list[Finding]) -> Decision:
    severities = {f.severity for f in findings}
    if "absolute" in severities:
        return "not_eligible"
    if severities & {"relative", "precaution"}:
        return "needs_override"
    return "eligible"


def screen(
    patient: Patient, *, input_warnings: list[str] | None = None, kb: Knowledge | None = None
) -> ScreeningResult:
    """Screen one patient against the consensus, the position statement and local policy."""
    kb = kb or knowledge()
    findings: list[Finding] = [
        Finding(
            "input:ignored-field", "info", w, "ketapath patient file format (docs/patient-file.md)"
        )
        for w in input_warnings or []
    ]
    resolutions = [resolve(item.code, kb) for item in (*patient.diagnoses, *patient.comorbidities)]
    conditions = _resolved_conditions(resolutions)
    findings += _unresolved_findings(resolutions)
    findings += _policy_findings(patient, kb)
    findings += _consent_findings(patient, kb)
    findings += _allergy_findings(patient, kb)
    findings += _contraindication_findings(patient, conditions, kb)
    indications = _indications(resolutions, kb)
    findings += _indication_findings(indications, kb)
    opioids = _opioids_taken(patient, kb)
    findings += _interaction_findings(patient, kb)
    findings += _selection_findings(patient, opioids)
    findings += _purpose_findings(patient, opioids)
    return ScreeningResult(
        decision=decide(findings),
        purpose=tuple(patient.purpose),
        indications=tuple(indications),
        findings=tuple(_dedupe(findings)),
        opioids=tuple(opioids),
        patient_id=patient.id,
        age_years=patient.age_on(),
        sex=patient.sex,
        weight_kg=patient.weight_kg,
        rule_base={
            "conditions": kb.conditions.version,
            "indications": kb.indications.version,
            "contraindications": kb.contraindications.version,
            "interactions": kb.interactions.version,
            "policy": kb.policy.version,
        },
    )


def _resolved_conditions(resolutions: list[Resolution]) -> dict[str, tuple[Condition, str]]:
    out: dict[str, tuple[Condition, str]] = {}
    for r in resolutions:
        if r.condition is not None and r.condition.id not in out:
            out[r.condition.id] = (r.condition, r.given)
    return out


def _unresolved_findings(resolutions: list[Resolution]) -> list[Finding]:
    out = []
    for r in resolutions:
        if r.matched_by == "unknown-code":
            out.append(
                Finding(
                    "input:unknown-code",
                    "info",
                    f"ICD-10-CM code {r.given!r} is not in the ketapath vocabulary; no rule "
                    "applies to it. Every contraindication of seed 000 Table 5 is in the "
                    "vocabulary, but check this diagnosis by hand.",
                    "ketapath conditions vocabulary (knowledge/data/conditions.yaml)",
                    r.given,
                )
            )
        elif r.matched_by == "unrecognised":
            out.append(
                Finding(
                    "input:unrecognised-diagnosis",
                    "precaution",
                    f"{r.given!r} is neither a vocabulary id, a known name nor an ICD-10-CM code; "
                    "screening could not check it. A physician must review it.",
                    "ketapath conditions vocabulary (knowledge/data/conditions.yaml)",
                    r.given,
                )
            )
    return out


def _policy_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    rule = kb.policy_rule("minimum-age")
    age = patient.age_on()
    if age < rule.value:
        return [
            Finding(
                f"policy:{rule.id}",
                rule.severity,
                f"{rule.message} (age {age:g} {rule.unit}; minimum {rule.value:g}).",
                rule.source,
            )
        ]
    return []


def _contraindication(kb: Knowledge, ci_id: str) -> Any:
    for ci in kb.contraindications.entries:
        if ci.id == ci_id:
            return ci
    raise KeyError(ci_id)


def _consent_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    ci = _contraindication(kb, "consent-refused-or-unable")
    if patient.consent in ("refused", "unable"):
        return [
            Finding(
                f"contraindication:{ci.id}",
                ci.severity,
                f"{ci.message} (consent: {patient.consent}).",
                ci.source,
            )
        ]
    if patient.consent == "pending":
        return [
            Finding(
                "consent:pending",
                "info",
                "Consent has not yet been recorded; obtain it before the infusion.",
                ci.source,
            )
        ]
    return []


def _allergy_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    ci = _contraindication(kb, "ketamine-hypersensitivity")
    for allergy in patient.allergies:
        if "ketamine" in _words(allergy.substance):
            return [
                Finding(
                    f"contraindication:{ci.id}",
                    ci.severity,
                    ci.message,
                    ci.source,
                    allergy.substance,
                )
            ]
    return []


def _contraindication_findings(
    patient: Patient, conditions: dict[str, tuple[Condition, str]], kb: Knowledge
) -> list[Finding]:
    present = dict(conditions)
    # Facts recorded outside the diagnosis list count as the same conditions.
    if patient.pregnancy == "pregnant":
        present.setdefault("pregnancy", (kb.condition("pregnancy"), "pregnancy: pregnant"))
    if patient.assessment.intoxicated_today:
        present.setdefault("intoxication", (kb.condition("intoxication"), "intoxicated today"))
    if patient.assessment.fasted is False:
        present.setdefault("aspiration-risk", (kb.condition("aspiration-risk"), "not fasted"))
    out: list[Finding] = []
    for ci in kb.contraindications.entries:
        for cid in ci.conditions:
            if cid in present:
                cond, given = present[cid]
                out.append(
                    Finding(
                        f"contraindication:{ci.id}",
                        ci.severity,
                        f"{ci.message} Recorded as {given!r} ({cond.name}).",
                        ci.source,
                        given,
                    )
                )
                break
    if patient.pregnancy == "unknown" and patient.sex == "female" and "pregnancy" not in present:
        out.append(
            Finding(
                "pregnancy:status-unknown",
                "info",
                "Pregnancy status is not recorded; confirm it (test where relevant) "
                "at check-in. Pregnancy is a relative contraindication.",
                "seed 000 Table 5 (pregnancy)",
            )
        )
    return out


def _indications(resolutions: list[Resolution], kb: Knowledge) -> list[IndicationResult]:
    out: list[IndicationResult] = []
    seen: set[str] = set()
    for r in resolutions:
        cond = r.condition
        if cond is None or cond.kind != "indication" or cond.id in seen:
            continue
        seen.add(cond.id)
        for ev in kb.indications.entries:
            if cond.id in ev.conditions:
                out.append(
                    IndicationResult(
                        cond.id, cond.name, r.given, ev.grade, ev.certainty, ev.benefit, ev.source
                    )
                )
                break
    return out


def _indication_findings(indications: list[IndicationResult], kb: Knowledge) -> list[Finding]:
    if not indications:
        return [
            Finding(
                "indication:none",
                "precaution",
                "No diagnosis is a recognised indication for ketamine infusion; use outside "
                "the consensus indications needs a physician's justification.",
                "seed 000 Table 6 (indications); seed 001",
            )
        ]
    best = min(indications, key=lambda i: i.grade)
    return [
        Finding(
            "indication:evidence",
            "info",
            f"Strongest indication: {best.name}, Grade {best.grade} ({best.certainty} "
            f"certainty): {best.benefit}.",
            best.source,
            best.given,
        )
    ]


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z']+", text.lower()) if w}


def _matches(medicine_name: str, generic: str) -> bool:
    words = _words(medicine_name)
    wanted = generic.lower().split()
    if len(wanted) == 1:
        return wanted[0] in words
    return generic.lower() in medicine_name.lower()


def _opioids_taken(patient: Patient, kb: Knowledge) -> list[str]:
    found: list[str] = []
    for med in patient.medications:
        for op in kb.opioids.entries:
            if any(_matches(med.name, n) for n in op.names) and op.id not in found:
                found.append(op.id)
    return found


def _interaction_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    out: list[Finding] = []
    for inter in kb.interactions.entries:
        hits = [
            m.name for m in patient.medications if any(_matches(m.name, g) for g in inter.medicines)
        ]
        if hits:
            out.append(
                Finding(
                    f"interaction:{inter.id}",
                    inter.severity,
                    f"{', '.join(hits)}: {inter.name} ({inter.mechanism}); {inter.effect}.",
                    inter.source,
                    ", ".join(hits),
                )
            )
    return out


def _selection_findings(patient: Patient, opioids: list[str]) -> list[Finding]:
    a = patient.assessment
    out: list[Finding] = []
    if a.central_sensitisation is False:
        out.append(
            Finding(
                "selection:no-central-sensitisation",
                "precaution",
                "The assessment records no clear clinical evidence of central "
                "sensitisation, which seed 004 requires for selection.",
                SEED_004_SELECTION,
            )
        )
    elif a.central_sensitisation is None:
        out.append(
            Finding(
                "selection:central-sensitisation-not-assessed",
                "info",
                "Evidence of central sensitisation is not recorded (seed 004 selection criterion).",
                SEED_004_SELECTION,
            )
        )
    ctx = a.opioid_context
    if opioids and not (
        ctx.poor_opioid_response or ctx.opioid_side_effects or ctx.drug_seeking_behaviour
    ):
        out.append(
            Finding(
                "selection:opioid-context-not-documented",
                "info",
                f"Taking opioids ({', '.join(opioids)}) but no poor opioid response, "
                "significant side effects or drug-seeking behaviour is recorded.",
                SEED_004_SELECTION,
            )
        )
    if not opioids:
        out.append(
            Finding(
                "selection:no-opioids",
                "info",
                "Not taking opioids: seed 004 selects patients in an opioid context; the "
                "ASRA/AAPM/ASA consensus does not require one.",
                f"{SEED_004_SELECTION}; seed 000 Table 6",
            )
        )
    return out


def _purpose_findings(patient: Patient, opioids: list[str]) -> list[Finding]:
    if not patient.purpose:
        return [
            Finding(
                "purpose:not-stated",
                "precaution",
                "The purpose of the infusion is not stated (pain relief, opioid reduction, "
                "enabling a multidisciplinary plan, quality of life).",
                SEED_004_PURPOSE,
            )
        ]
    if "opioid_reduction" in patient.purpose and not opioids:
        return [
            Finding(
                "purpose:opioid-reduction-without-opioids",
                "precaution",
                "The stated purpose is opioid reduction but no opioid is recorded among "
                "the current medicines.",
                SEED_004_PURPOSE,
            )
        ]
    return []


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.item)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
