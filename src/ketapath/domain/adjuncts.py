"""Adjunct medicines of a course: their orders, their drug-library limits, and a patient's own
benzodiazepine weighed against a benzodiazepine adjunct.

Each adjunct of a protocol becomes an :class:`AdjunctOrder` with its dose for this patient and
the most a session can give (doses per session from the protocol's ``every_h``, ``per_day`` or
one dose). The drug library of the care setting limits each adjunct per dose and per session;
an adjunct the library has no entry for is not recognised and is checked by hand (a warning),
never passed silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from ketapath.domain.findings import Finding, Measure, cite, finding
from ketapath.domain.medicines import recognise
from ketapath.domain.orders import AdjunctOrder
from ketapath.knowledge.base import Severity
from ketapath.knowledge.clinical import Adjunct, Knowledge, Protocol
from ketapath.knowledge.library import AdjunctLimit, Limit, SettingLimits

# The medicine vocabulary's class of the benzodiazepines (medicines.yaml).
BENZODIAZEPINE_CLASS = "benzodiazepine"
_TOLERANCE = 1e-9
HOURS_PER_DAY = 24.0


def benzodiazepines_in(names: Iterable[str], kb: Knowledge) -> list[str]:
    """The medicines among ``names`` that contain a benzodiazepine, as the medicine vocabulary
    recognises them (brand and generic names, combinations)."""
    found = []
    for name in names:
        rec = recognise(name, kb.medicines)
        if rec.recognised and any(
            BENZODIAZEPINE_CLASS in kb.medicines.ingredient(i).classes for i in rec.ingredients
        ):
            found.append(name)
    return found


def _periods(hours: float, length_h: float) -> int:
    """How many periods of ``length_h`` a session of ``hours`` starts (at least one)."""
    return max(1, math.ceil(hours / length_h - _TOLERANCE))


def adjunct_orders(
    protocol: Protocol, weight_kg: float, session_min: float, kb: Knowledge
) -> list[AdjunctOrder]:
    """The protocol's adjuncts for this dosing weight, with the most a session can give."""
    return [_order(a, weight_kg, session_min / 60.0, kb) for a in protocol.adjuncts]


def _order(a: Adjunct, weight_kg: float, hours: float, kb: Knowledge) -> AdjunctOrder:
    if a.unit == "mg/kg":
        dose = round(a.dose * weight_kg, 2)
        dose_max = round(a.dose_max * weight_kg, 2) if a.dose_max is not None else None
        unit, basis = "mg", f"{a.dose:g} mg/kg x {weight_kg:g} kg"
        if a.max_mg is not None and dose > a.max_mg:
            dose, basis = a.max_mg, f"{basis}, capped at {a.max_mg:g} mg"
        if a.max_mg is not None and dose_max is not None:
            dose_max = min(dose_max, a.max_mg)
    else:
        dose, dose_max, unit, basis = a.dose, a.dose_max, a.unit, ""
    largest = dose_max if dose_max is not None else dose
    if unit == "mg/day":
        doses = _periods(hours, HOURS_PER_DAY)
        total, total_unit = largest * doses, "mg"
    elif unit == "mg":
        if a.every_h is not None:
            doses = _periods(hours, a.every_h)
        elif a.per_day is not None:
            doses = a.per_day * _periods(hours, HOURS_PER_DAY)
        else:
            doses = 1
        total, total_unit = largest * doses, "mg"
    else:  # a rate (mcg/kg/h): no per-session amount is computed
        doses, total, total_unit = 1, 0.0, ""
    return AdjunctOrder(
        drug=a.drug,
        dose=dose,
        unit=unit,
        route=a.route,
        timing=a.timing,
        citations=cite(a.source, kb),
        dose_max=dose_max,
        prn=a.prn,
        basis=basis,
        doses_per_session=doses,
        session_total=round(total, 6),
        session_unit=total_unit,
    )


def adjunct_findings(
    adjuncts: Sequence[AdjunctOrder],
    limits: SettingLimits,
    setting_words: str,
    medicines: Sequence[str] | None,
    kb: Knowledge,
) -> list[Finding]:
    """Each adjunct against the drug library of the setting, and benzodiazepines together."""
    out: list[Finding] = []
    groups: dict[tuple[str, str], list[AdjunctOrder]] = {}
    for a in adjuncts:
        groups.setdefault((a.drug, a.route.strip().lower()), []).append(a)
    for (drug, route), orders in groups.items():
        limit = limits.adjunct(drug, route)
        if limit is None or any(not _fits(o, limit) for o in orders):
            out.append(_unlisted(drug, route, orders, setting_words, kb))
            continue
        largest = max(o.dose_max if o.dose_max is not None else o.dose for o in orders)
        per_session = sum(o.session_total for o in orders)
        out += _over(limit, limit.dose, largest, limit.dose_unit, "dose", setting_words, kb)
        out += _over(limit, limit.session, per_session, "mg", "session", setting_words, kb)
    out += _benzodiazepine_findings(adjuncts, medicines, kb)
    return out


def _fits(order: AdjunctOrder, limit: AdjunctLimit) -> bool:
    """Whether the order's dose is in the unit the library limits it in."""
    return order.unit == limit.dose_unit and order.session_unit == "mg"


def _unlisted(
    drug: str, route: str, orders: list[AdjunctOrder], where: str, kb: Knowledge
) -> Finding:
    units = ", ".join(sorted({o.unit for o in orders}))
    return finding(
        "adjunct:no-limit",
        f"{drug} ({route}, {units}) is not recognised by the {where} drug library: it has no "
        "limits to check this dose against. Check the dose by hand.",
        subject=drug,
        kb=kb,
    )


def _over(
    entry: AdjunctLimit,
    limit: Limit,
    value: float,
    unit: str,
    what: str,
    where: str,
    kb: Knowledge,
) -> list[Finding]:
    label = "dose" if what == "dose" else "total for one session"
    checks: tuple[tuple[Severity, float | None], ...] = (("hard", limit.hard), ("soft", limit.soft))
    for severity, bound in checks:
        if bound is None or not value > bound * (1 + _TOLERANCE):
            continue
        name = f"{entry.drug}-{entry.route}_{what}"
        return [
            finding(
                f"limit:{name}:{severity}",
                f"The {entry.drug} ({entry.route}) {label} of {value:.4g} {unit} is above the "
                f"{where} {severity} limit of {bound:g} {unit}.",
                severity=severity,
                source=limit.source_of(severity),
                rule=(
                    f"Drug library, {where}: {entry.drug} ({entry.route}) {label} {severity} "
                    f"limit {bound:g} {unit}"
                ),
                subject=entry.drug,
                measure=Measure(
                    value=value, limit=bound, unit=unit, limit_name=f"{name} {severity}"
                ),
                kb=kb,
            )
        ]
    return []


def _benzodiazepine_findings(
    adjuncts: Sequence[AdjunctOrder], medicines: Sequence[str] | None, kb: Knowledge
) -> list[Finding]:
    given = sorted(set(benzodiazepines_in((a.drug for a in adjuncts), kb)))
    if not given:
        return []
    if medicines is None:
        return [
            finding(
                "adjunct:medicines-unknown",
                f"The patient's medicines were not given, so whether they already take a "
                f"benzodiazepine was not checked against the {', '.join(given)} of this "
                "protocol. Check the medicine list by hand.",
                subject=", ".join(given),
                kb=kb,
            )
        ]
    taken = benzodiazepines_in(medicines, kb)
    if not taken:
        return []
    return [
        finding(
            "adjunct:benzodiazepine-already-taken",
            f"The patient already takes {', '.join(taken)} (a benzodiazepine) and the protocol "
            f"adds {', '.join(given)}: their sedation and respiratory depression add up. Give "
            f"a lower {', '.join(given)} dose, or none, and monitor closely.",
            subject=", ".join(taken),
            kb=kb,
        )
    ]
