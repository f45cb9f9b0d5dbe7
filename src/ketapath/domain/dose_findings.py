"""Dose findings: a session below the dose with evidence of effect is told so.

The rule (``dose_evidence.yaml``): a session gives at least 80 mg over more than 2 h
(ASRA/AAPM/ASA consensus 2018, Table 6, dosing (3)) and not under about 0.5 mg/kg (Clark 2020,
point 3). It is a warning, not a limit: it does not gate the order, because the evidence is of
low certainty and a physician may give a small dose on purpose; it makes sure nobody expects
relief from a session that small without being told.
"""

from __future__ import annotations

from collections.abc import Sequence

from ketapath.domain.findings import Finding, Measure, finding
from ketapath.domain.orders import SessionOrder
from ketapath.knowledge.clinical import Knowledge

_TOLERANCE = 1e-9


def session_threshold_mg(dosing_weight_kg: float, kb: Knowledge) -> float:
    """The smallest session total (mg) with evidence of effect for this dosing weight."""
    rule = kb.effective_dose
    return max(rule.min_total_mg, rule.min_total_mg_per_kg * dosing_weight_kg)


def below_evidence(
    sessions: Sequence[SessionOrder], dosing_weight_kg: float, kb: Knowledge
) -> list[Finding]:
    """One finding naming every session below the dose with evidence of effect, if any."""
    rule = kb.effective_dose
    threshold = session_threshold_mg(dosing_weight_kg, kb)
    below = [
        s
        for s in sessions
        if s.total_mg < threshold * (1 - _TOLERANCE)
        or s.duration_min <= rule.min_duration_min * (1 + _TOLERANCE)
    ]
    if not below:
        return []
    smallest = min(below, key=lambda s: (s.total_mg, s.duration_min))
    numbers = [s.number for s in below]
    which = f"Session{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))}"
    hours = smallest.duration_min / 60.0
    return [
        finding(
            "dose:below-evidence",
            f"{which} {'give' if len(numbers) > 1 else 'gives'} "
            f"{'as little as ' if len(numbers) > 1 else ''}{smallest.total_mg:.3g} mg "
            f"({smallest.total_mg / dosing_weight_kg:.2g} mg/kg) over {hours:.3g} h: below the "
            f"dose with evidence of effect, at least {rule.min_total_mg:g} mg over more than "
            f"{rule.min_duration_min / 60:g} h, and not under about "
            f"{rule.min_total_mg_per_kg:g} mg/kg ({threshold:.3g} mg at a "
            f"{dosing_weight_kg:g} kg dosing weight). Such a session may give little or no "
            "relief.",
            severity=rule.severity,
            source=rule.source,
            measure=Measure(
                value=smallest.total_mg,
                limit=threshold,
                unit="mg",
                limit_name="session dose with evidence of effect",
                sessions=tuple(numbers),
            ),
            kb=kb,
        )
    ]
