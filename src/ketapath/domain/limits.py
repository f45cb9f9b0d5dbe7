"""Drug-library limit checks, like an infusion pump's (PRODUCT step 4).

Each quantity of a course is compared with the soft and hard limits of the care setting.
A value equal to a limit passes. One finding is made per limit and severity, carrying the
worst value and the sessions where it occurs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ketapath.domain.findings import Finding, Measure, finding
from ketapath.domain.orders import SessionOrder
from ketapath.knowledge.base import Severity
from ketapath.knowledge.clinical import Knowledge
from ketapath.knowledge.library import Limit, SettingLimits

# Relative tolerance so that a value computed as exactly the limit (0.35 mg/kg/h x 70 kg / 70 kg)
# is not reported over it because of binary rounding.
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Measured:
    """One measured quantity of the course, before comparison with its limit."""

    limit_name: str
    label: str
    unit: str
    value: float
    session: int | None


def measure(
    sessions: Iterable[SessionOrder], dosing_weight_kg: float, course_total_mg: float
) -> list[Measured]:
    out: list[Measured] = []
    for s in sessions:
        if s.bolus_mg > 0:
            out.append(
                Measured(
                    "bolus_mg_per_kg", "bolus", "mg/kg", s.bolus_mg / dosing_weight_kg, s.number
                )
            )
        for step in s.steps:
            out.append(
                Measured(
                    "rate_mg_per_kg_per_h",
                    "rate",
                    "mg/kg/h",
                    step.rate_mg_per_h / dosing_weight_kg,
                    s.number,
                )
            )
            out.append(Measured("rate_mg_per_h", "rate", "mg/h", step.rate_mg_per_h, s.number))
        out.append(
            Measured(
                "session_total_mg_per_kg",
                "session total",
                "mg/kg",
                s.total_mg / dosing_weight_kg,
                s.number,
            )
        )
    out.append(
        Measured(
            "course_total_mg_per_kg",
            "course total",
            "mg/kg",
            course_total_mg / dosing_weight_kg,
            None,
        )
    )
    return out


def _over(value: float, limit: float) -> bool:
    return value > limit * (1 + _TOLERANCE)


SETTING_WORDS = {"clinic": "day clinic", "ward": "ward", "icu": "intensive care"}


def check(measured: list[Measured], limits: SettingLimits, kb: Knowledge) -> list[Finding]:
    """Compare every measured quantity with its limits; the worst per limit and severity."""
    worst: dict[tuple[str, Severity], tuple[Measured, float, list[int]]] = {}
    for m in measured:
        limit: Limit = getattr(limits, m.limit_name)
        checks: tuple[tuple[Severity, float | None], ...] = (
            ("hard", limit.hard),
            ("soft", limit.soft),
        )
        for severity, bound in checks:
            if bound is None or not _over(m.value, bound):
                continue
            key = (m.limit_name, severity)
            sessions = worst[key][2] if key in worst else []
            if m.session is not None and m.session not in sessions:
                sessions.append(m.session)
            if key not in worst or m.value > worst[key][0].value:
                worst[key] = (m, bound, sessions)
            else:
                worst[key] = (worst[key][0], worst[key][1], sessions)
            break  # a value over the hard limit is not also reported against the soft one
    findings = []
    where_words = SETTING_WORDS[limits.id]
    for (name, severity), (m, bound, sessions) in worst.items():
        limit = getattr(limits, name)
        where = f" (session{'s' if len(sessions) > 1 else ''} {', '.join(map(str, sessions))})"
        findings.append(
            finding(
                f"limit:{name}:{severity}",
                f"The {m.label} of {m.value:.4g} {m.unit} is above the {where_words} "
                f"{severity} limit of {bound:g} {m.unit}{where if sessions else ''}.",
                severity=severity,
                source=limit.source_of(severity),
                rule=f"Drug library, {where_words}: {m.label} {severity} limit {bound:g} {m.unit}",
                measure=Measure(
                    value=m.value,
                    limit=bound,
                    unit=m.unit,
                    limit_name=f"{limits.id} {name} {severity}",
                    sessions=tuple(sessions),
                ),
                kb=kb,
            )
        )
    findings.sort(key=lambda f: (f.severity != "hard", f.code))
    return findings
