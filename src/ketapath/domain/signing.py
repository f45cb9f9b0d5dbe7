"""The clinical logic of signing and using an order: the facts a signing physician needs, which
of them enter the dose, what changed since signing, and the consent rule.

**Dosing facts** are the facts of the patient's record that the course computation reads
(``ketapath.domain.planning.build_course`` and the drug-library checks it runs):

- ``weight_kg``, always: the dosing weight is the actual weight, or an ideal or adjusted
  weight that is never above it, and every per-kg dose and limit is divided by it;
- ``height_cm`` and ``sex``, when the course's weight basis is ideal or adjusted (the Devine
  ideal body weight is computed from them); with actual body weight they enter nothing;
- age is checked to be a human age but enters no dose and no limit of any protocol, so it is
  not a dosing fact (a protocol that dosed by age would make it one).

An order records the record version it was computed from; a later version whose dosing facts
are the same (a new GP, a medicine, the consent) does not make the order stale. A version
whose dosing facts differ does, until a physician signs a new course or confirms this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from ketapath.domain.body_size import dosing_weight
from ketapath.domain.findings import Finding, finding
from ketapath.domain.limits import check, measure
from ketapath.domain.orders import RateStep, SessionOrder
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.library import DrugLibrary

FactValue = float | str | None
# whether a changed fact is compared with the value signed or the one a physician last confirmed
Since = Literal["signed", "confirmed"]

# Dosing facts in the order they are shown: (label, unit).
DOSING_FACTS: Mapping[str, tuple[str, str]] = {
    "weight_kg": ("weight", "kg"),
    "height_cm": ("height", "cm"),
    "sex": ("sex", ""),
}
# Weight bases that compute an ideal body weight from height and sex.
BASES_WITH_HEIGHT = ("ideal", "adjusted")
CONSENT_WORDS: Mapping[str, str] = {
    "given": "given",
    "pending": "not yet asked",
    "refused": "refused",
    "unable": "unable to consent",
}


def dosing_facts(
    weight_kg: float, height_cm: float | None, sex: str, weight_basis: str
) -> dict[str, FactValue]:
    """The record's facts that enter the dose of a course on ``weight_basis``."""
    facts: dict[str, FactValue] = {"weight_kg": float(weight_kg)}
    if weight_basis in BASES_WITH_HEIGHT:
        facts["height_cm"] = None if height_cm is None else float(height_cm)
        facts["sex"] = sex
    return facts


def dosing_fact_labels(weight_basis: str) -> tuple[str, ...]:
    """The words for the dosing facts of a course on ``weight_basis`` ('weight', ...)."""
    facts = (
        ("weight_kg", "height_cm", "sex") if weight_basis in BASES_WITH_HEIGHT else ("weight_kg",)
    )
    return tuple(DOSING_FACTS[f][0] for f in facts)


def _shown(fact: str, value: FactValue) -> str:
    label, unit = DOSING_FACTS[fact]
    if value is None:
        return f"no {label} recorded"
    if isinstance(value, float):
        return f"{value:g} {unit}".strip()
    return str(value)


@dataclass(frozen=True)
class FactChange:
    """One dosing fact that differs between the signed order and the current record."""

    fact: str
    label: str
    unit: str
    signed: FactValue
    now: FactValue
    since: Since = "signed"

    @property
    def text(self) -> str:
        """'signed at 68 kg; the record now says 90 kg'."""
        before = _shown(self.fact, self.signed)
        if self.fact == "sex":
            then = f"{self.since} for sex {before}"
        elif self.signed is None:
            then = f"{self.since} with {before}"
        else:
            then = f"{self.since} at {before}"
        return f"{then}; the record now says {_shown(self.fact, self.now)}"


def _same(signed: FactValue, now: FactValue) -> bool:
    if isinstance(signed, int | float) and isinstance(now, int | float):
        return float(signed) == float(now)
    return signed == now


def changed_facts(
    signed: Mapping[str, FactValue], now: Mapping[str, FactValue], *, since: Since = "signed"
) -> tuple[FactChange, ...]:
    """The dosing facts of ``signed`` that ``now`` (the current record) no longer has;
    ``since`` says whether ``signed`` is what was signed or what was last confirmed.

    A fact missing from ``now`` counts as changed (never as unchanged).
    """
    changes = []
    for fact, (label, unit) in DOSING_FACTS.items():
        if fact not in signed:
            continue
        before, after = signed[fact], now.get(fact)
        if not _same(before, after):
            changes.append(FactChange(fact, label, unit, before, after, since))
    return tuple(changes)


def changes_text(changes: Iterable[FactChange]) -> str:
    """'signed at 68 kg; the record now says 90 kg' for each change, joined."""
    return "; ".join(c.text for c in changes)


def stale_finding(changes: Sequence[FactChange], kb: Knowledge | None = None) -> Finding:
    """The finding that marks an order stale: what changed, and what to do."""
    return finding(
        "order:stale",
        f"The dosing facts changed after signing ({changes_text(changes)}). Do not use this "
        "order: sign a new course from the current record, or a physician confirms this one "
        "with a reason.",
        subject=", ".join(c.label for c in changes),
        kb=kb,
    )


def weight_age_days(measured_on: date | None, today: date) -> int | None:
    """Whole days between the weighing and ``today`` (None when the date is not recorded)."""
    return None if measured_on is None else max(0, (today - measured_on).days)


def weight_findings(
    measured_on: date | None, today: date, kb: Knowledge | None = None
) -> list[Finding]:
    """A warning when the dosing weight's date is not recorded, or older than the policy."""
    kb = kb or knowledge()
    if measured_on is None:
        return [
            finding(
                "order:weight-date-not-recorded",
                "The record does not say when the weight was measured: weigh the patient (or "
                "record the date of the last weighing) before the infusion.",
                kb=kb,
            )
        ]
    rule = kb.policy_rule("weight-max-age")
    days = weight_age_days(measured_on, today)
    if days is not None and days > rule.value:
        return [
            finding(
                "order:weight-out-of-date",
                f"The dosing weight was measured on {measured_on.isoformat()}, {days} days "
                f"before {today.isoformat()} (clinic policy: at most {rule.value:g} "
                f"{rule.unit}); weigh the patient again before the infusion and amend the "
                "record if it changed.",
                source=rule.source,
                kb=kb,
            )
        ]
    return []


def consent_finding(consent: str, kb: Knowledge | None = None) -> Finding | None:
    """The hard finding that stops signing (and use) while consent is not recorded as given."""
    if consent == "given":
        return None
    words = CONSENT_WORDS.get(consent, consent)
    return finding(
        "order:consent-not-given",
        f"Consent to the infusion is recorded as '{words}', not as given: record the "
        "patient's consent on the patient record (Amend record, 'Consent to infusion') "
        "before an order is signed or used.",
        subject=consent,
        kb=kb,
    )


def sessions_from_course(course: Mapping[str, Any]) -> tuple[SessionOrder, ...]:
    """The sessions of a signed course as stored (``planning.course_to_dict``), read back."""
    return tuple(
        SessionOrder(
            number=int(raw["session"]),
            day=int(raw["day"]),
            start_offset_min=float(raw["start_offset_min"]),
            bolus_mg=float(raw["bolus_mg"]),
            bolus_ml=float(raw["bolus_ml"]),
            steps=tuple(
                RateStep(
                    start_min=float(step["start_min"]),
                    end_min=float(step["end_min"]),
                    rate_mg_per_h=float(step["rate_mg_per_h"]),
                    rate_ml_per_h=float(step["rate_ml_per_h"]),
                    rate_mg_per_kg_per_h=float(step["rate_mg_per_kg_per_h"]),
                    volume_ml=float(step.get("volume_ml") or 0.0),
                    note=str(step.get("note") or ""),
                )
                for step in raw["steps"]
            ),
            total_mg=float(raw["total_mg"]),
            infusion_volume_ml=float(raw.get("infusion_volume_ml") or 0.0),
            condition=str(raw.get("condition") or ""),
        )
        for raw in course["sessions"]
    )


def limits_now(
    course: Mapping[str, Any],
    weight_kg: float,
    height_cm: float | None,
    sex: str,
    library: DrugLibrary,
    kb: Knowledge | None = None,
) -> list[Finding]:
    """The drug-library findings of a signed course's doses at the record's current facts,
    checked against ``library`` (the clinic's active drug library).

    A stale order keeps its doses (mg, mg/h); at the record's new weight they are other mg/kg,
    so a confirmation checks them again, in the course's setting and on its weight basis: a
    hard limit cannot be confirmed. Raises ``InvalidInput`` when the record no longer has what
    the weight basis needs (height and sex for an ideal or adjusted weight).
    """
    kb = kb or knowledge()
    weight = dosing_weight(weight_kg, course["weight_basis"], kb, height_cm=height_cm, sex=sex)
    measured = measure(sessions_from_course(course), weight.weight_kg, course["course_total_mg"])
    return check(measured, library.setting(course["setting"]), kb)
