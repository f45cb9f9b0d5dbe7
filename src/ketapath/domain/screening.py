"""Eligibility and safety screening (PRODUCT step 3).

The result is a decision with every finding that led to it. ``hard`` findings make a
patient not eligible; ``soft`` findings need a physician to accept them with a written reason;
``warning`` and ``info`` findings are shown but do not gate. Screening supports the physician's
decision; it does not take it. Each finding is a :class:`ketapath.domain.findings.Finding`:
plain words, the rule, and the readable citations of its source.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ketapath.domain.findings import Citation, Finding, cite, finding
from ketapath.domain.medicines import Recognition, recognise
from ketapath.domain.mood import QuestionnaireSeen, RecordedScore, mood_findings, seen
from ketapath.domain.patient import Patient
from ketapath.domain.vocabulary import QUALIFIED, Resolution, explain, resolve
from ketapath.knowledge.clinical import Condition, Contraindication, Knowledge, knowledge

Decision = Literal["eligible", "needs_override", "not_eligible"]


@dataclass(frozen=True)
class IndicationResult:
    """A diagnosis that is an indication, with the evidence grade for ketamine infusion."""

    condition_id: str
    name: str
    given: str
    grade: str
    certainty: str
    benefit: str
    citations: tuple[Citation, ...]

    @property
    def citation(self) -> str:
        return "; ".join(c.text for c in self.citations)


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
    # the questionnaires read for mood and self-harm (the latest of each instrument)
    questionnaires: tuple[QuestionnaireSeen, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["findings"] = [f.to_dict() for f in self.findings]
        for raw, ind in zip(data["indications"], self.indications, strict=True):
            raw["citation"] = ind.citation
        return data

    @property
    def gating(self) -> tuple[Finding, ...]:
        """The findings a physician must accept (or that exclude the patient)."""
        return tuple(f for f in self.findings if f.gates)


def decide(findings: list[Finding]) -> Decision:
    severities = {f.severity for f in findings}
    if "hard" in severities:
        return "not_eligible"
    if "soft" in severities:
        return "needs_override"
    return "eligible"


def screen(
    patient: Patient,
    *,
    input_warnings: list[str] | None = None,
    kb: Knowledge | None = None,
    questionnaires: Sequence[RecordedScore] = (),
) -> ScreeningResult:
    """Screen one patient against the consensus, the position statement and local policy.

    ``questionnaires`` are the patient's recorded PHQ-9, GAD-7 and DASS-21 (the latest of each
    is read for self-harm and severe scores: ``ketapath.domain.mood``).
    """
    kb = kb or knowledge()
    findings: list[Finding] = [
        finding("input:ignored-field", w, kb=kb) for w in input_warnings or []
    ]
    resolutions = [resolve(item.code, kb) for item in (*patient.diagnoses, *patient.comorbidities)]
    conditions = _resolved_conditions(resolutions)
    findings += _unresolved_findings(resolutions, kb)
    findings += _policy_findings(patient, kb)
    findings += _consent_findings(patient, kb)
    findings += _allergy_findings(patient, kb)
    findings += _contraindication_findings(patient, conditions, kb)
    indications = _indications(resolutions, kb)
    findings += _indication_findings(indications, kb)
    medicines = [recognise(m.name, kb.medicines) for m in patient.medications]
    findings += _unrecognised_medicine_findings(medicines, kb)
    opioids = _opioids_taken(patient, kb, medicines)
    findings += _interaction_findings(patient, kb, medicines)
    findings += _selection_findings(patient, opioids, kb, medicines)
    findings += _purpose_findings(patient, opioids, kb)
    findings += mood_findings(questionnaires, kb)
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
            "medicines": kb.medicines.version,
            "policy": kb.policy.version,
            "finding_codes": kb.finding_codes.version,
            "bibliography": kb.bibliography.version,
        },
        questionnaires=seen(questionnaires),
    )


def _resolved_conditions(resolutions: list[Resolution]) -> dict[str, tuple[Condition, str]]:
    out: dict[str, tuple[Condition, str]] = {}
    for r in resolutions:
        if r.condition is not None and r.condition.id not in out:
            out[r.condition.id] = (r.condition, r.given)
    return out


def _unresolved_findings(resolutions: list[Resolution], kb: Knowledge) -> list[Finding]:
    """Every written diagnosis not taken as a condition, with the reason in plain words."""
    out = []
    for r in resolutions:
        if r.resolved:
            continue
        message = explain(r, kb)
        if r.matched_by == "unknown-code":
            out.append(finding("input:unknown-code", message, subject=r.given, kb=kb))
        elif r.matched_by == "ambiguous":
            out.append(finding("input:ambiguous-diagnosis", message, subject=r.given, kb=kb))
        elif r.matched_by in QUALIFIED:
            out.append(finding("input:qualified-diagnosis", message, subject=r.given, kb=kb))
        else:
            out.append(finding("input:unrecognised-diagnosis", message, subject=r.given, kb=kb))
    return out


def _policy_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    rule = kb.policy_rule("minimum-age")
    age = patient.age_on()
    if age < rule.value:
        return [
            finding(
                f"policy:{rule.id}",
                f"{rule.message} (age {age:g} {rule.unit}; minimum {rule.value:g}).",
                severity=rule.severity,
                source=rule.source,
                kb=kb,
            )
        ]
    return []


def _contraindication(kb: Knowledge, ci_id: str) -> Contraindication:
    for ci in kb.contraindications.entries:
        if ci.id == ci_id:
            return ci
    raise KeyError(ci_id)


def _consent_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    ci = _contraindication(kb, "consent-refused-or-unable")
    if patient.consent in ("refused", "unable"):
        return [
            finding(
                f"contraindication:{ci.id}",
                f"{ci.message} (consent: {patient.consent}).",
                severity=ci.severity,
                source=ci.source,
                kb=kb,
            )
        ]
    if patient.consent == "pending":
        return [
            finding(
                "consent:pending",
                "Consent has not yet been recorded; obtain it before an order is signed and "
                "before the infusion.",
                kb=kb,
            )
        ]
    return []


def _allergy_findings(patient: Patient, kb: Knowledge) -> list[Finding]:
    ci = _contraindication(kb, "ketamine-hypersensitivity")
    for allergy in patient.allergies:
        if "ketamine" in _words(allergy.substance):
            return [
                finding(
                    f"contraindication:{ci.id}",
                    ci.message,
                    severity=ci.severity,
                    source=ci.source,
                    subject=allergy.substance,
                    kb=kb,
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
                    finding(
                        f"contraindication:{ci.id}",
                        f"{ci.message} Recorded as {given!r} ({cond.name}).",
                        severity=ci.severity,
                        source=ci.source,
                        subject=given,
                        kb=kb,
                    )
                )
                break
    if patient.pregnancy == "unknown" and patient.sex == "female" and "pregnancy" not in present:
        out.append(
            finding(
                "pregnancy:status-unknown",
                "Pregnancy status is not recorded; confirm it (test where relevant) "
                "at check-in. Pregnancy is a relative contraindication.",
                kb=kb,
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
                        cond.id,
                        cond.name,
                        r.given,
                        ev.grade,
                        ev.certainty,
                        ev.benefit,
                        cite(ev.source, kb),
                    )
                )
                break
    return out


def _indication_findings(indications: list[IndicationResult], kb: Knowledge) -> list[Finding]:
    if not indications:
        return [
            finding(
                "indication:none",
                "No diagnosis is a recognised indication for ketamine infusion; use outside "
                "the consensus indications needs a physician's justification.",
                kb=kb,
            )
        ]
    best = min(indications, key=lambda i: i.grade)
    evidence = next(ev for ev in kb.indications.entries if best.condition_id in ev.conditions)
    return [
        finding(
            "indication:evidence",
            f"Strongest indication: {best.name}, Grade {best.grade} ({best.certainty} "
            f"certainty): {best.benefit}.",
            source=evidence.source,
            subject=best.given,
            kb=kb,
        )
    ]


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z']+", text.lower()) if w}


def _recognised(
    patient: Patient, kb: Knowledge, medicines: list[Recognition] | None
) -> list[Recognition]:
    return medicines or [recognise(m.name, kb.medicines) for m in patient.medications]


def _unrecognised_medicine_findings(medicines: list[Recognition], kb: Knowledge) -> list[Finding]:
    return [
        finding(
            "medicine:not-recognised",
            f"{rec.given!r}: not recognised: check by hand ({rec.problem}). Screening could "
            "not check it for interactions with ketamine or for being an opioid, so a "
            "physician must review it.",
            subject=rec.given,
            kb=kb,
        )
        for rec in medicines
        if not rec.recognised
    ]


def _opioids_taken(
    patient: Patient, kb: Knowledge, medicines: list[Recognition] | None = None
) -> list[str]:
    """The opioid ingredients of the patient's medicines (brand and combination names too)."""
    opioids = set(kb.opioid_ids)
    found: list[str] = []
    for rec in _recognised(patient, kb, medicines):
        for ingredient in rec.ingredients if rec.recognised else ():
            if ingredient in opioids and ingredient not in found:
                found.append(ingredient)
    return found


def _interaction_findings(
    patient: Patient, kb: Knowledge, medicines: list[Recognition] | None = None
) -> list[Finding]:
    """One finding per interaction entry, naming each medicine and the ingredient that
    interacts ("Xanax (alprazolam)")."""
    recs = _recognised(patient, kb, medicines)
    out: list[Finding] = []
    for inter in kb.interactions.entries:
        hits: list[str] = []
        for rec in recs:
            if not rec.recognised:
                continue
            named = [
                i
                for i in rec.ingredients
                if i in inter.ingredients
                or set(kb.medicines.ingredient(i).classes) & set(inter.classes)
            ]
            if named:
                same = len(named) == 1 and rec.given.lower().startswith(named[0])
                hits.append(rec.given if same else f"{rec.given} ({', '.join(named)})")
        if hits:
            out.append(
                finding(
                    f"interaction:{inter.id}",
                    f"{', '.join(hits)}: {inter.name} ({inter.mechanism}); {inter.effect}.",
                    severity=inter.severity,
                    source=inter.source,
                    subject=", ".join(hits),
                    kb=kb,
                )
            )
    return out


def _selection_findings(
    patient: Patient,
    opioids: list[str],
    kb: Knowledge,
    medicines: list[Recognition] | None = None,
) -> list[Finding]:
    a = patient.assessment
    out: list[Finding] = []
    if a.central_sensitisation is False:
        out.append(
            finding(
                "selection:no-central-sensitisation",
                "The assessment records no clear clinical evidence of central "
                "sensitisation, which the position statement requires for selection.",
                kb=kb,
            )
        )
    elif a.central_sensitisation is None:
        out.append(
            finding(
                "selection:central-sensitisation-not-assessed",
                "Evidence of central sensitisation is not recorded (a selection criterion).",
                kb=kb,
            )
        )
    ctx = a.opioid_context
    if opioids and not (
        ctx.poor_opioid_response or ctx.opioid_side_effects or ctx.drug_seeking_behaviour
    ):
        out.append(
            finding(
                "selection:opioid-context-not-documented",
                f"Taking opioids ({', '.join(opioids)}) but no poor opioid response, "
                "significant side effects or drug-seeking behaviour is recorded.",
                kb=kb,
            )
        )
    unknown = [r.given for r in medicines or [] if not r.recognised]
    if not opioids:
        maybe = (
            f" ({', '.join(unknown)} not recognised: it could be an opioid; check by hand)"
            if unknown
            else ""
        )
        out.append(
            finding(
                "selection:no-opioids",
                f"No recognised opioid among the medicines{maybe}: the position statement "
                "selects patients in an opioid context; the ASRA/AAPM/ASA consensus does not "
                "require one.",
                kb=kb,
            )
        )
    return out


def _purpose_findings(patient: Patient, opioids: list[str], kb: Knowledge) -> list[Finding]:
    if not patient.purpose:
        return [
            finding(
                "purpose:not-stated",
                "The purpose of the infusion is not stated (pain relief, opioid reduction, "
                "enabling a multidisciplinary plan, quality of life).",
                kb=kb,
            )
        ]
    if "opioid_reduction" in patient.purpose and not opioids:
        return [
            finding(
                "purpose:opioid-reduction-without-opioids",
                "The stated purpose is opioid reduction but no opioid is recorded among "
                "the current medicines.",
                kb=kb,
            )
        ]
    return []


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    out = []
    for f in findings:
        key = (f.code, f.subject)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out
