"""The opioid plan (PRODUCT step 6; FPM (ANZCA) 2016 proposal, section 6): oral morphine
equivalents, conversion to one opioid species, and a taper plan.

- Medicines are recognised by the medicine vocabulary (``knowledge/data/medicines.yaml``,
  :mod:`ketapath.domain.medicines`): brand and generic names, combination products
  ("co-codamol 30/500" is codeine 30 mg + paracetamol 500 mg per tablet), and counts of dose
  forms ("2 tablets"). A name the vocabulary does not know is "not recognised: check by hand";
  it might be an opioid, so a total beside it is incomplete and names it.
- :func:`daily_dose` reads one medicine's daily amount (dose x frequency, a patch's rate, or
  the recorded ``daily_dose``), in the medicine's own unit: mg and mcg are never mixed.
- :func:`oral_morphine_equivalents` converts a patient's opioids with a named published table
  (``knowledge/data/opioid_conversion.yaml``). A medicine that cannot be converted (no factor,
  PRN use, unknown frequency, missing dose or strength) is listed as not converted with the
  reason; it is never counted as zero, and the total is then marked incomplete. When nothing
  converts, or no opioid is recorded, there is no total (``None``), never 0.
- :func:`convert_to_single_opioid` turns a total into a daily dose of one opioid after the
  physician's reduction for incomplete cross-tolerance (no default: the CDC table gives none).
  Conversions a table refuses (to methadone, to transdermal fentanyl) raise
  :class:`ConversionRefused` naming the rule and its source.
- :func:`taper_plan` builds dated reduction steps and checks them against the published taper
  rates in ``knowledge/data/opioid_tapering.yaml``.

Findings are :class:`ketapath.domain.findings.Finding`: ``soft`` needs a named physician and a
reason; ``warning`` needs attention (a medicine left out of the total, for example); ``info`` is
shown.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from ketapath.domain.errors import ConversionRefused, InvalidInput, UnknownItem
from ketapath.domain.findings import Citation, Finding, cite, finding
from ketapath.domain.frequency import parse_frequency
from ketapath.domain.medicines import (
    DoseProblem,
    IngredientAmount,
    Recognition,
    amount_per_dose,
    recognise,
    unit_kind,
)
from ketapath.domain.orders import Override
from ketapath.domain.patient import Medication
from ketapath.domain.units import parse_unit
from ketapath.knowledge.base import Severity, Source
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.opioids import ConversionTable, TaperBasis, TaperRule

Status = Literal["ready", "needs_override"]
TotalStatus = Literal["complete", "incomplete", "not-available", "no-opioids"]
DEFAULT_TABLE = "cdc-2022"
MAX_TAPER_STEPS = 1000

_ROUTES = {
    "oral": "oral",
    "po": "oral",
    "by mouth": "oral",
    "enteral": "oral",
    "transdermal": "transdermal",
    "td": "transdermal",
    "patch": "transdermal",
    "topical patch": "transdermal",
    "transdermal patch": "transdermal",
}


@dataclass(frozen=True)
class DailyDose:
    """A medicine's amount per day (``unit`` such as "mg/day"), or a patch's rate ("mcg/h")."""

    amount: float
    unit: str
    basis: str
    doses_per_day: float | None = None
    is_rate: bool = False


@dataclass(frozen=True)
class OpioidLine:
    """One opioid medicine of the patient, converted or not (with the reason)."""

    medication: str
    index: int
    opioid_id: str
    route: str
    daily_dose: float | None
    unit: str | None
    daily_dose_basis: str
    factor: float | None
    factor_unit: str | None
    dose_in_factor_unit: float | None
    ome_mg_per_day: float | None
    findings: tuple[Finding, ...] = ()
    product: str = ""
    atc: tuple[str, ...] = ()

    @property
    def converted(self) -> bool:
        return self.ome_mg_per_day is not None


@dataclass(frozen=True)
class OmeResult:
    """Oral morphine equivalents of a medication list, by one named table.

    ``total_ome_mg_per_day`` is None when there is no total: no opioid is recorded (and every
    medicine was recognised), or nothing could be converted. It is never 0 for an unknown.
    ``unrecognised`` names the medicines the vocabulary does not know (each might be an
    opioid); ``not_opioids`` those it knows are not opioids.
    """

    table_id: str
    table_name: str
    table_citations: tuple[Citation, ...]
    lines: tuple[OpioidLine, ...]
    total_ome_mg_per_day: float | None
    complete: bool
    findings: tuple[Finding, ...] = ()
    unrecognised: tuple[str, ...] = ()
    not_opioids: tuple[str, ...] = ()

    @property
    def not_converted(self) -> tuple[str, ...]:
        """Every medicine left out of the total: opioids not converted, and unrecognised."""
        left = [line.medication for line in self.lines if not line.converted]
        return tuple(dict.fromkeys([*left, *self.unrecognised]))

    @property
    def total_status(self) -> TotalStatus:
        if not self.lines and not self.unrecognised:
            return "no-opioids"
        if self.total_ome_mg_per_day is None:
            return "not-available"
        return "complete" if self.complete else "incomplete"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for raw, line in zip(data["lines"], self.lines, strict=True):
            raw["converted"] = line.converted
        data["not_converted"] = list(self.not_converted)
        data["total_status"] = self.total_status
        return data


@dataclass(frozen=True)
class Conversion:
    """A total OME turned into a daily dose of one opioid, after the physician's reduction."""

    table_id: str
    table_name: str
    from_ome_mg_per_day: float
    reduce_percent: float
    reduced_ome_mg_per_day: float
    opioid_id: str
    route: str
    factor: float
    daily_dose: float
    unit: str
    findings: tuple[Finding, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ------------------------------------------------------------------ recognising opioids


def opioid_ids_of(medicine_name: str, kb: Knowledge | None = None) -> tuple[str, ...]:
    """The opioid ingredients of a medicine name ("co-codamol 30/500" -> ("codeine",))."""
    kb = kb or knowledge()
    rec = recognise(medicine_name, kb.medicines)
    opioids = set(kb.opioid_ids)
    return tuple(i for i in rec.ingredients if i in opioids) if rec.recognised else ()


def opioid_id_of(medicine_name: str, kb: Knowledge | None = None) -> str | None:
    """The (first) opioid ingredient of a medicine name ("OxyContin 20 mg" -> "oxycodone"),
    or None when the name is not recognised or holds no opioid."""
    found = opioid_ids_of(medicine_name, kb)
    return found[0] if found else None


def normalise_route(text: str) -> str:
    """'po' -> 'oral', 'patch' -> 'transdermal'; other routes are returned in lower case."""
    low = re.sub(r"\s+", " ", text.strip().lower())
    return _ROUTES.get(low, low)


# ------------------------------------------------------------------ daily dose


def _unit_label(unit_text: str) -> str:
    return unit_text.strip().replace("µ", "u").replace("μ", "u")


def daily_dose(med: Medication) -> tuple[DailyDose | None, Finding | None]:
    """The amount taken per day, or a finding saying why it cannot be read.

    A mass (mg, mcg, g) per dose is multiplied by the doses per day read from ``frequency``;
    a rate (mcg/h, a patch) is itself the daily figure, whatever the change interval; a
    recorded ``daily_dose`` (in ``unit`` per day) overrides the frequency.
    """
    if med.unit is None or (med.dose is None and med.daily_dose is None):
        return None, _finding(
            "opioid:dose-missing",
            "warning",
            f"{med.name}: the dose or its unit is not recorded; give the dose and unit "
            "(e.g. 10 mg, or 25 mcg/h for a patch)",
            med.name,
        )
    unit = parse_unit(med.unit)
    label = _unit_label(med.unit)
    if _is_rate(unit):
        if med.daily_dose is not None:
            return None, _finding(
                "opioid:daily-dose-with-rate",
                "warning",
                f"{med.name}: daily_dose is given with the rate unit {label}; a patch's rate is "
                "its daily figure, so give only dose (the rate) and unit",
                med.name,
            )
        assert med.dose is not None
        basis = f"{med.dose:g} {label} delivered continuously"
        return DailyDose(med.dose, label, basis, is_rate=True), None
    if not _is_mass(unit):
        return None, _finding(
            "opioid:unit-not-a-dose",
            "warning",
            f"{med.name}: the unit {label!r} is neither an amount (mg, mcg) nor a rate "
            "(mcg/h); give the dose in mg or mcg",
            med.name,
        )
    if med.daily_dose is not None:
        return DailyDose(med.daily_dose, f"{label}/day", "daily dose as recorded"), None
    assert med.dose is not None
    freq = parse_frequency(med.frequency)
    if freq.kind == "regular" and freq.doses_per_day is not None:
        amount = med.dose * freq.doses_per_day
        basis = f"{med.dose:g} {label} x {freq.doses_per_day:g} a day ({med.frequency.strip()})"
        return DailyDose(amount, f"{label}/day", basis, freq.doses_per_day), None
    return None, _frequency_finding(med, freq.kind, f"{label} per day")


def _frequency_finding(med: Medication, kind: str, per_day: str) -> Finding:
    why = {
        "prn": f"is taken as needed ({med.frequency!r})",
        "missing": "has no frequency recorded",
        "unknown": f"has a frequency that cannot be read ({med.frequency!r})",
    }[kind]
    return _finding(
        "opioid:prn" if kind == "prn" else "opioid:frequency-unknown",
        "warning",
        f"{med.name} {why}: record the actual daily dose (daily_dose, in {per_day})",
        med.name,
    )


def _is_rate(unit: Any) -> bool:
    return bool(unit.dimensionality == parse_unit("mcg/h").dimensionality)


def _is_mass(unit: Any) -> bool:
    return bool(unit.dimensionality == parse_unit("mg").dimensionality)


def _finding(
    code: str,
    severity: Severity,
    message: str,
    medication: str = "",
    source: Source | None = None,
) -> Finding:
    return finding(code, message, severity=severity, source=source, subject=medication)


# ------------------------------------------------------------------ oral morphine equivalents


def _table(table_id: str, kb: Knowledge) -> ConversionTable:
    try:
        return kb.conversion_table(table_id)
    except KeyError as exc:
        raise UnknownItem(str(exc.args[0]), field="table") from exc


def oral_morphine_equivalents(
    medications: list[Medication] | tuple[Medication, ...],
    table_id: str = DEFAULT_TABLE,
    kb: Knowledge | None = None,
) -> OmeResult:
    """OME (mg/day) of every opioid in a medication list by one table, and their total."""
    kb = kb or knowledge()
    table = _table(table_id, kb)
    opioids = set(kb.opioid_ids)
    lines: list[OpioidLine] = []
    unrecognised: list[str] = []
    not_opioids: list[str] = []
    findings: list[Finding] = []
    for index, med in enumerate(medications):
        rec = recognise(med.name, kb.medicines)
        if not rec.recognised:
            unrecognised.append(med.name)
            findings.append(_unrecognised_finding(med.name, rec))
            continue
        found = [i for i in rec.ingredients if i in opioids]
        if not found:
            not_opioids.append(med.name)
        for opioid in found:
            lines.append(_line(med, index, opioid, rec, table, kb))
    converted = [line.ome_mg_per_day for line in lines if line.ome_mg_per_day is not None]
    complete = not unrecognised and len(converted) == len(lines)
    total = math.fsum(converted) if converted else None
    if total is not None and not complete and total <= 0:
        total = None  # a partial total of 0 would read as "no opioid": say it is not available
    findings += _total_findings(table, lines, unrecognised, total, complete)
    return OmeResult(
        table_id=table.id,
        table_name=table.name,
        table_citations=cite(table.source, kb),
        lines=tuple(lines),
        total_ome_mg_per_day=total,
        complete=complete,
        findings=tuple(findings),
        unrecognised=tuple(unrecognised),
        not_opioids=tuple(not_opioids),
    )


def _unrecognised_finding(name: str, rec: Recognition) -> Finding:
    why = rec.problem or "not a medicine name ketapath knows"
    return _finding(
        "opioid:medicine-not-recognised",
        "warning",
        f"{name}: not recognised: check by hand ({why}). ketapath could not check whether "
        f"{name} is an opioid, so the total leaves it out.",
        name,
    )


_PROBLEM_CODES = {
    "strength-unknown": "opioid:strength-unknown",
    "strength-not-listed": "opioid:strength-not-listed",
    "combination-in-mass": "opioid:combination-dose-in-mass",
    "form-mismatch": "opioid:form-mismatch",
}


def _ingredient_daily(
    med: Medication, rec: Recognition, opioid: str, kb: Knowledge
) -> tuple[DailyDose | None, Finding | None]:
    """The daily amount of one opioid ingredient of a medicine, or why it cannot be read."""
    if med.unit is None or (med.dose is None and med.daily_dose is None):
        return daily_dose(med)
    kind = unit_kind(med.unit, kb.medicines)
    single = len(rec.ingredients) == 1
    if kind == "other" or (single and kind in ("mass", "rate")):
        return daily_dose(med)
    given = med.daily_dose if med.daily_dose is not None else med.dose
    assert given is not None
    amounts, problem = amount_per_dose(rec, given, med.unit, kb.medicines)
    mine = next((a for a in amounts if a.ingredient == opioid), None)
    if mine is None or (problem is not None and problem.affects(opioid)):
        return None, _dose_problem_finding(med, problem)
    if mine.unit == "mcg/h":
        if med.daily_dose is not None:
            return daily_dose(med.model_copy(update={"unit": "mcg/h"}))
        basis = f"{mine.basis} delivered continuously"
        return DailyDose(mine.amount, "mcg/h", basis, None, True), None
    return _per_day(med, mine)


def _dose_problem_finding(med: Medication, problem: DoseProblem | None) -> Finding:
    if problem is None:  # pragma: no cover - amount_per_dose names every failure
        problem = DoseProblem("strength-unknown", f"{med.name}: the dose cannot be read")
    return _finding(
        _PROBLEM_CODES[problem.kind],
        "warning",
        problem.message,
        med.name,
    )


def _per_day(med: Medication, per: IngredientAmount) -> tuple[DailyDose | None, Finding | None]:
    """An amount per dose (or per day, when ``daily_dose`` was given) as a daily amount."""
    if med.daily_dose is not None:
        return DailyDose(per.amount, f"{per.unit}/day", f"{per.basis} a day, as recorded"), None
    freq = parse_frequency(med.frequency)
    if freq.kind == "regular" and freq.doses_per_day is not None:
        basis = f"{per.basis} x {freq.doses_per_day:g} a day ({med.frequency.strip()})"
        return (
            DailyDose(
                per.amount * freq.doses_per_day, f"{per.unit}/day", basis, freq.doses_per_day
            ),
            None,
        )
    return None, _frequency_finding(med, freq.kind, f"{med.unit} per day")


def _line(
    med: Medication,
    index: int,
    opioid: str,
    rec: Recognition,
    table: ConversionTable,
    kb: Knowledge,
) -> OpioidLine:
    route = normalise_route(med.route) or (
        normalise_route(rec.product.route) if rec.product is not None else ""
    )
    dose, dose_problem = _ingredient_daily(med, rec, opioid, kb)
    base = OpioidLine(
        medication=med.name,
        index=index,
        opioid_id=opioid,
        route=route,
        daily_dose=dose.amount if dose else None,
        unit=dose.unit if dose else None,
        daily_dose_basis=dose.basis if dose else "",
        factor=None,
        factor_unit=None,
        dose_in_factor_unit=None,
        ome_mg_per_day=None,
        product=rec.product.id if rec.product is not None else "",
        atc=kb.medicines.ingredient(opioid).atc,
    )
    problems = [p for p in (_factor_problem(med, opioid, route, table), dose_problem) if p]
    if problems or dose is None:
        return replace(base, findings=tuple(problems))
    factor = table.factor_for(opioid, route)
    assert factor is not None
    in_factor_unit = _in_unit(dose, factor.dose_unit)
    if in_factor_unit is None or dose.is_rate != (factor.route == "transdermal"):
        return replace(
            base,
            findings=(
                _finding(
                    "opioid:unit-mismatch",
                    "warning",
                    f"{med.name}: {dose.unit} cannot be used with the {table.id} factor for "
                    f"{route} {opioid}, which applies to {factor.dose_unit}",
                    med.name,
                    factor.source,
                ),
            ),
        )
    findings = []
    if factor.caveat:
        caveat = table.caveat_by_id(factor.caveat)
        findings.append(_finding("opioid:caveat", "info", caveat.text, med.name, caveat.source))
    if factor.caveat_text:
        findings.append(
            _finding("opioid:caveat", "info", factor.caveat_text, med.name, factor.source)
        )
    return replace(
        base,
        factor=factor.factor,
        factor_unit=factor.dose_unit,
        dose_in_factor_unit=in_factor_unit,
        ome_mg_per_day=in_factor_unit * factor.factor,
        findings=tuple(findings),
    )


def _factor_problem(
    med: Medication, opioid: str, route: str, table: ConversionTable
) -> Finding | None:
    missing = table.not_converted_reason(opioid)
    if missing is not None:
        return _finding(
            "opioid:no-factor",
            "warning",
            f"{med.name}: not converted: {missing.reason}",
            med.name,
            missing.source,
        )
    routes = table.routes_for(opioid)
    if not routes:
        return _finding(
            "opioid:not-in-table",
            "warning",
            f"{med.name}: {opioid} is not in the {table.id} table; not converted",
            med.name,
            table.source,
        )
    if not route:
        return _finding(
            "opioid:route-missing",
            "warning",
            f"{med.name}: the route is not recorded; the {table.id} table has a factor for "
            f"{opioid} by {', '.join(routes)} only; record the route",
            med.name,
            table.source,
        )
    if route not in routes:
        return _finding(
            "opioid:route-without-factor",
            "warning",
            f"{med.name}: the {table.id} table has no factor for {opioid} by the {route} "
            f"route (only {', '.join(routes)}); not converted",
            med.name,
            table.source,
        )
    return None


def _in_unit(dose: DailyDose, factor_unit: str) -> float | None:
    """The daily dose in the factor's unit (mg/day or mcg/h), or None if it does not fit."""
    import pint  # parse_unit has imported it already; here only for its error type

    have = parse_unit(dose.unit.replace("/day", "/d"))
    want = parse_unit(factor_unit.replace("/day", "/d"))
    try:
        return float((dose.amount * have).to(want).magnitude)
    except pint.errors.DimensionalityError:
        return None


def _total_findings(
    table: ConversionTable,
    lines: list[OpioidLine],
    unrecognised: list[str],
    total: float | None,
    complete: bool,
) -> list[Finding]:
    findings: list[Finding] = []
    left_out = [line.medication for line in lines if not line.converted]
    unknown = [f"{name} (could not check whether it is an opioid)" for name in unrecognised]
    named = ", ".join(dict.fromkeys([*left_out, *unknown]))
    if not lines and not unrecognised:
        findings.append(
            _finding(
                "opioid:no-opioids",
                "info",
                "No opioid is recorded among the medicines: there is no OME total (not 0).",
            )
        )
    elif total is None:
        findings.append(
            _finding(
                "opioid:total-not-available",
                "warning",
                f"No OME total is available: nothing could be converted ({named}). The total is "
                "not 0: check each medicine by hand.",
                source=table.source,
            )
        )
    elif not complete:
        findings.append(
            _finding(
                "opioid:total-incomplete",
                "warning",
                f"The total is incomplete: it leaves out {named} (see each medicine's "
                "finding); the true total may be higher than shown",
                source=table.source,
            )
        )
    for threshold in table.thresholds:
        if total is not None and total >= threshold.at_least_mg_per_day:
            findings.append(
                _finding(
                    f"opioid-threshold:{threshold.id}",
                    "info",
                    threshold.message,
                    "",
                    threshold.source,
                )
            )
    if lines:
        caveat = table.caveat_by_id("estimates-only") if _has(table, "estimates-only") else None
        if caveat is not None:
            findings.append(_finding("opioid:caveat", "info", caveat.text, "", caveat.source))
    return findings


def _has(table: ConversionTable, caveat_id: str) -> bool:
    return any(c.id == caveat_id for c in table.caveats)


# ------------------------------------------------------------------ conversion to one opioid


def convert_to_single_opioid(
    ome_mg_per_day: float,
    opioid_id: str,
    route: str,
    reduce_percent: float,
    table_id: str = DEFAULT_TABLE,
    kb: Knowledge | None = None,
) -> Conversion:
    """The daily dose of one opioid for a total OME, reduced by ``reduce_percent``.

    The reduction for incomplete cross-tolerance is the physician's: the CDC table says the new
    opioid is "typically dosed at a substantially lower dose" without giving a number, so there
    is no default. Raises InvalidInput, UnknownItem, or ConversionRefused (naming the rule).
    """
    kb = kb or knowledge()
    table = _table(table_id, kb)
    if not math.isfinite(ome_mg_per_day) or ome_mg_per_day <= 0:
        raise InvalidInput(
            f"the total to convert must be above 0 mg/day OME (got {ome_mg_per_day:g})",
            field="ome_mg_per_day",
        )
    if not math.isfinite(reduce_percent) or not 0 <= reduce_percent < 100:
        raise InvalidInput(
            "the reduction for incomplete cross-tolerance must be at least 0% and below 100% "
            f"(got {reduce_percent:g}%)",
            field="reduce_percent",
        )
    if opioid_id not in kb.opioid_ids:
        raise UnknownItem(
            f"unknown opioid {opioid_id!r} (an opioid ingredient of the medicine vocabulary, "
            "e.g. morphine)",
            field="opioid",
        )
    route = normalise_route(route)
    factor = table.factor_for(opioid_id, route)
    if factor is None:
        routes = table.routes_for(opioid_id)
        where = f"only by {', '.join(routes)}" if routes else "no factor at all"
        raise InvalidInput(
            f"the {table.id} table has no factor for {opioid_id} by the {route or '(none)'} "
            f"route ({where}); cannot convert to it",
            field="route",
        )
    if factor.convert_to == "refused":
        source = table.caveat_by_id(factor.caveat).source if factor.caveat else factor.source
        citation = "; ".join(c.text for c in cite(source, kb))
        raise ConversionRefused(
            f"refused: conversion to {route} {opioid_id}: {factor.convert_to_rule} [{citation}]",
            rule=factor.convert_to_rule,
            source=citation,
        )
    reduced = ome_mg_per_day * (1 - reduce_percent / 100)
    return Conversion(
        table_id=table.id,
        table_name=table.name,
        from_ome_mg_per_day=ome_mg_per_day,
        reduce_percent=reduce_percent,
        reduced_ome_mg_per_day=reduced,
        opioid_id=opioid_id,
        route=route,
        factor=factor.factor,
        daily_dose=reduced / factor.factor,
        unit=factor.dose_unit,
        findings=tuple(_conversion_findings(table, factor.caveat_text, reduce_percent)),
    )


def _conversion_findings(
    table: ConversionTable, caveat_text: str, reduce_percent: float
) -> list[Finding]:
    findings = []
    if _has(table, "not-for-switching"):
        c = table.caveat_by_id("not-for-switching")
        severity: Severity = "warning" if reduce_percent == 0 else "info"
        prefix = (
            "no reduction was given for incomplete cross-tolerance. " if not reduce_percent else ""
        )
        findings.append(
            _finding("conversion:cross-tolerance", severity, prefix + c.text, source=c.source)
        )
    if caveat_text:
        findings.append(_finding("conversion:caveat", "info", caveat_text, source=table.source))
    return findings


def convert_medications(
    result: OmeResult,
    opioid_id: str,
    route: str,
    reduce_percent: float,
    kb: Knowledge | None = None,
) -> Conversion:
    """Convert a patient's total; refused while a medicine is left out of the total."""
    if not result.lines and not result.unrecognised:
        raise InvalidInput("no opioid is recorded among the medications", field="medications")
    if not result.complete or result.total_ome_mg_per_day is None:
        reasons = [f.message for line in result.lines if not line.converted for f in line.findings]
        reasons += [f"{name}: not recognised: check by hand" for name in result.unrecognised]
        raise InvalidInput(
            "cannot convert an incomplete total: " + "; ".join(reasons), field="medications"
        )
    return convert_to_single_opioid(
        result.total_ome_mg_per_day, opioid_id, route, reduce_percent, result.table_id, kb
    )


# ------------------------------------------------------------------ taper plan


@dataclass(frozen=True)
class TaperRequest:
    """What the physician asks for. ``basis``: the step is a percent of the starting dose
    (``original``: equal steps) or of the dose before the step (``current``: ever smaller
    steps). Doses are rounded down to ``round_to`` (never above the unrounded plan).
    """

    opioid_id: str
    route: str
    start_daily_dose: float
    unit: str
    step_percent: float
    every_days: int
    start_date: date
    round_to: float | None = None
    floor: float = 0.0
    basis: TaperBasis = "original"
    override_by: str | None = None
    override_reason: str | None = None


@dataclass(frozen=True)
class TaperStep:
    step: int
    date: date
    daily_dose: float
    unit: str
    percent_of_start: float
    ome_mg_per_day: float | None = None


@dataclass(frozen=True)
class TaperPlan:
    opioid_id: str
    route: str
    start_daily_dose: float
    unit: str
    step_percent: float
    basis: TaperBasis
    every_days: int
    round_to: float | None
    floor: float
    steps: tuple[TaperStep, ...]
    findings: tuple[Finding, ...]
    table_id: str | None = None
    override: Override | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def status(self) -> Status:
        soft = any(f.severity == "soft" for f in self.findings)
        return "needs_override" if soft and self.override is None else "ready"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status
        return data


def taper_plan(
    request: TaperRequest, table_id: str = DEFAULT_TABLE, kb: Knowledge | None = None
) -> TaperPlan:
    """Dated taper steps from the start dose down to the floor (or zero).

    Each step's dose is the unrounded plan's dose rounded down to ``round_to`` and never below
    the floor, so doses never increase and never go negative. The unrounded plan is checked
    against every published taper rate; a faster plan gets that rule's finding.
    """
    kb = kb or knowledge()
    unit_label, per_day_unit = _taper_unit(request)
    _check_taper(request, kb)
    exact = _unrounded_doses(request)
    doses = [_rounded(d, request) for d in exact]
    _check_last_date(request, len(doses))
    route = normalise_route(request.route)
    table = _table(table_id, kb)
    factor = table.factor_for(request.opioid_id, route)
    steps = []
    for k, dose in enumerate(doses, start=1):
        ome = None
        if factor is not None:
            fit = _in_unit(DailyDose(dose, per_day_unit, ""), factor.dose_unit)
            ome = fit * factor.factor if fit is not None else None
        steps.append(
            TaperStep(
                step=k,
                date=request.start_date + timedelta(days=(k - 1) * request.every_days),
                daily_dose=dose,
                unit=unit_label,
                percent_of_start=dose / request.start_daily_dose * 100,
                ome_mg_per_day=ome,
            )
        )
    findings = _rate_findings(request, exact, kb.opioid_tapering.entries)
    findings += _rounding_findings(request, doses, unit_label)
    plan = TaperPlan(
        opioid_id=request.opioid_id,
        route=route,
        start_daily_dose=request.start_daily_dose,
        unit=unit_label,
        step_percent=request.step_percent,
        basis=request.basis,
        every_days=request.every_days,
        round_to=request.round_to,
        floor=request.floor,
        steps=tuple(steps),
        findings=tuple(findings),
        table_id=table.id if factor is not None else None,
    )
    return _apply_taper_override(plan, request)


def _taper_unit(request: TaperRequest) -> tuple[str, str]:
    """(label shown on each step, unit used for OME): 'mg' -> ('mg/day', 'mg/day')."""
    text = _unit_label(request.unit).replace(" ", "")
    per_day = re.fullmatch(r"([a-z]+)/(?:day|d)", text.lower())
    mass_text = per_day.group(1) if per_day else text
    try:
        unit = parse_unit(mass_text)
    except InvalidInput as exc:
        raise InvalidInput(exc.message, field="unit") from exc
    route = normalise_route(request.route)
    if _is_mass(unit) and route != "transdermal":
        return f"{mass_text}/day", f"{mass_text}/day"
    if _is_rate(unit) and not per_day and route not in ("oral", ""):
        return text, text
    raise InvalidInput(
        f"the unit {request.unit!r} does not fit the {route or '(no)'} route: give an amount "
        "per day (mg, mcg) for oral opioids, or a patch rate (mcg/h) for transdermal ones",
        field="unit",
    )


def _check_last_date(request: TaperRequest, steps: int) -> None:
    """The calendar ends at 9999-12-31: a plan whose last step falls after it is refused."""
    try:
        request.start_date + timedelta(days=(steps - 1) * request.every_days)
    except OverflowError:
        raise InvalidInput(
            f"{steps} steps every {request.every_days} days from {request.start_date} run past "
            "the last date the calendar has (9999-12-31)",
            field="every_days",
        ) from None


def _check_taper(request: TaperRequest, kb: Knowledge) -> None:
    if request.opioid_id not in kb.opioid_ids:
        raise UnknownItem(
            f"unknown opioid {request.opioid_id!r} (an opioid ingredient of the medicine "
            "vocabulary, e.g. morphine)",
            field="opioid",
        )
    numbers = (request.start_daily_dose, request.step_percent, request.floor)
    if not all(math.isfinite(x) for x in numbers):
        raise InvalidInput("doses and percents must be finite numbers", field="daily_dose")
    if request.start_daily_dose <= 0:
        raise InvalidInput(
            f"the starting daily dose must be above 0 (got {request.start_daily_dose:g})",
            field="daily_dose",
        )
    if not 0 < request.step_percent <= 100:
        raise InvalidInput(
            f"the reduction per step must be above 0% and at most 100% "
            f"(got {request.step_percent:g}%)",
            field="step_percent",
        )
    if request.every_days < 1:
        raise InvalidInput(
            f"the step interval must be at least 1 day (got {request.every_days})",
            field="every_days",
        )
    if not 0 <= request.floor < request.start_daily_dose:
        raise InvalidInput(
            f"the floor must be at least 0 and below the starting dose "
            f"{request.start_daily_dose:g} (got {request.floor:g})",
            field="floor",
        )
    if request.round_to is not None and not (
        math.isfinite(request.round_to) and 0 < request.round_to <= request.start_daily_dose
    ):
        raise InvalidInput(
            f"the rounding increment must be above 0 and at most the starting dose "
            f"(got {request.round_to:g})",
            field="round_to",
        )
    if request.basis == "current" and request.floor == 0 and request.round_to is None:
        raise InvalidInput(
            "a taper by a percent of the current dose never reaches zero without rounding: give "
            "a rounding increment or a floor above 0",
            field="round_to",
        )


def _dec(x: float) -> Decimal:
    return Decimal(repr(x))


def _unrounded_doses(request: TaperRequest) -> list[Decimal]:
    """The exact plan, step by step, up to the step whose rounded dose is the floor (or zero)."""
    start, floor = _dec(request.start_daily_dose), _dec(request.floor)
    fraction = _dec(request.step_percent) / 100
    inc = _dec(request.round_to) if request.round_to else None
    doses: list[Decimal] = []
    dose = start
    for k in range(1, MAX_TAPER_STEPS + 1):
        dose = start * (1 - fraction * k) if request.basis == "original" else dose * (1 - fraction)
        if dose <= floor + start * Decimal("1e-12"):
            dose = floor  # within arithmetic noise of the floor: the floor is reached
        dose = max(dose, Decimal(0))
        doses.append(dose)
        if dose <= floor or (inc is not None and _round_down(dose, inc) <= floor):
            return doses
    raise InvalidInput(
        f"the plan does not reach the floor within {MAX_TAPER_STEPS} steps; give a larger "
        "reduction per step or a rounding increment",
        field="step_percent",
    )


def _round_down(value: Decimal, inc: Decimal) -> Decimal:
    return (value / inc).to_integral_value(rounding=ROUND_DOWN) * inc


def _rounded(dose: Decimal, request: TaperRequest) -> float:
    if request.round_to is None:
        return float(dose)
    rounded = _round_down(dose, _dec(request.round_to))
    return float(max(rounded, _dec(request.floor)))


def _rate_findings(
    request: TaperRequest, exact: list[Decimal], rules: list[TaperRule]
) -> list[Finding]:
    """A finding per rule the unrounded plan is faster than, naming its fastest step.

    The rules are for different patients (shorter or long-term use), which the plan does not
    know: a ``soft`` rule fires only at a step that no published rate allows (a step within the
    slower long-term rate is never held against the faster one); an ``info`` rule fires at any
    step faster than it.
    """
    start = _dec(request.start_daily_dose)
    days = _dec(float(request.every_days))
    tolerance = Decimal("1e-9") * start
    findings = []
    for rule in rules:
        worst: tuple[Decimal, int] | None = None
        previous = start
        for k, dose in enumerate(exact, start=1):
            last = k == len(exact)
            cut = previous - dose
            allowed = {r.id: _allowed_reduction(r, previous, start, days, last) for r in rules}
            within_any = any(a < 0 or cut <= a + tolerance for a in allowed.values())
            excess = cut - allowed[rule.id]
            too_fast = allowed[rule.id] >= 0 and excess > tolerance
            gating = too_fast and (rule.severity != "soft" or not within_any)
            if gating and (worst is None or excess > worst[0]):
                worst = (excess, k)
            previous = dose
        if worst is not None:
            findings.append(_rate_finding(request, exact, rule, worst[1]))
    return findings


def _rate_finding(request: TaperRequest, exact: list[Decimal], rule: TaperRule, k: int) -> Finding:
    before = _dec(request.start_daily_dose) if k == 1 else exact[k - 2]
    cut = (before - exact[k - 1]) / before * 100
    return _finding(
        f"taper:{rule.id}",
        rule.severity,
        f"Faster than the published rate for a {rule.name}: step {k} reduces the dose by "
        f"{float(cut):.3g}% of the dose before it, in {request.every_days} day(s). The source: "
        f'"{rule.wording.strip()}"'
        + (f" (ketapath's reading: {rule.reading})" if rule.reading else ""),
        source=rule.source,
    )


def _allowed_reduction(
    rule: TaperRule, previous: Decimal, start: Decimal, days: Decimal, last: bool
) -> Decimal:
    """The most a step of ``days`` may take under the rule; -1 when the rule does not apply."""
    scale = days / _dec(rule.per_days)
    until = rule.until_percent_of_original
    if until is not None and previous <= start * _dec(until) / 100 + Decimal("1e-12"):
        if last:
            return Decimal(-1)  # the stop from the lowest step is outside the rate's wording
        assert rule.then_max_percent is not None and rule.then_of is not None
        base = start if rule.then_of == "original" else previous
        return base * _dec(rule.then_max_percent) / 100 * scale
    base = start if rule.of == "original" else previous
    return base * _dec(rule.max_percent) / 100 * scale


def _rounding_findings(request: TaperRequest, doses: list[float], unit_label: str) -> list[Finding]:
    if request.round_to is None:
        return []
    before = [request.start_daily_dose, *doses[:-1]]
    cuts = [(b - d, b) for b, d in zip(before, doses, strict=True)]
    cut, base = max(cuts)
    return [
        _finding(
            "taper:rounding",
            "info",
            f"doses are rounded down to {request.round_to:g} {unit_label}; the largest single "
            f"reduction is {cut:g} {unit_label} ({cut / base * 100:.3g}% of the dose before it)",
        )
    ]


def _apply_taper_override(plan: TaperPlan, request: TaperRequest) -> TaperPlan:
    by = (request.override_by or "").strip()
    reason = (request.override_reason or "").strip()
    if bool(by) != bool(reason):
        raise InvalidInput(
            "an override needs both the physician's name and a reason",
            field="override_by" if not by else "reason",
        )
    soft = tuple(f.code for f in plan.findings if f.severity == "soft")
    if not by:
        return plan
    if not soft:
        note = (
            f"no taper rate was exceeded; the override by {by} was not needed and is not recorded"
        )
        return replace(plan, notes=(*plan.notes, note))
    return replace(plan, override=Override(physician=by, reason=reason, codes=soft))
