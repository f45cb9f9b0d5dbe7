"""From a protocol and a patient to a course of limit-checked pump orders (PRODUCT step 4).

The order of work is the order of a careful pharmacist: dosing weight, the protocol's rate for
each step, the protocol's own caps, the pump the drug library has for the route and care
setting (a stocked strength, and every step inside the pump's rate range, rounded down to its
resolution so an order never exceeds what was prescribed), then the drug-library limits of the
care setting (ketamine and each adjunct), then the dose findings. A course over a hard limit
is refused (``HardLimitExceeded``): nothing is produced. A course over a soft limit is returned
with ``status == "needs_override"`` until a named physician accepts it with a reason.

The drug library is a parameter (``library``): the services pass the clinic's active library,
the command line the packaged default or a file; planning never reads one by itself.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from ketapath.domain.adjuncts import adjunct_findings, adjunct_orders
from ketapath.domain.body_size import DosingWeight, dosing_weight
from ketapath.domain.dose_findings import below_evidence
from ketapath.domain.errors import HardLimitExceeded, InvalidInput, UnknownItem
from ketapath.domain.findings import Finding, cite, finding
from ketapath.domain.limits import SETTING_WORDS, check, measure
from ketapath.domain.orders import (
    Course,
    LibraryStamp,
    Override,
    RateStep,
    SessionOrder,
    Setting,
    WeightBasis,
)
from ketapath.knowledge.clinical import Knowledge, Protocol, ProtocolStep, RateSpec, knowledge
from ketapath.knowledge.library import DrugLibrary, PumpType, SettingLimits

SETTINGS: tuple[Setting, ...] = ("clinic", "ward", "icu")
WEIGHT_BASES: tuple[WeightBasis, ...] = ("actual", "ideal", "adjusted")
REFERENCE_WEIGHT_KG = 70.0  # "mg/h per 70 kg" rates (Sigtermans et al. 2009)
MINUTES_PER_DAY = 1440
Status = Literal["ready", "needs_override"]
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class DosingInputs:
    """The patient facts that dosing uses.

    ``medicines`` are the names of the medicines the patient takes (a benzodiazepine adjunct
    is weighed against them); None means they were not given, which is said, not assumed.
    """

    weight_kg: float
    height_cm: float | None = None
    sex: str | None = None
    age_years: float | None = None
    medicines: tuple[str, ...] | None = None


@dataclass(frozen=True)
class PlanOptions:
    setting: Setting | None = None
    weight_basis: WeightBasis | None = None
    concentration_mg_per_ml: float | None = None
    ladder_steps_mg_per_kg_per_h: tuple[float, ...] | None = None
    ladder_ceiling_mg_per_kg_per_h: float | None = None
    override_by: str | None = None
    override_reason: str | None = None


def status(course: Course) -> Status:
    """`needs_override` while a soft-limit finding has no physician's override."""
    soft = any(f.severity == "soft" for f in course.findings)
    return "needs_override" if soft and course.override is None else "ready"


def plan(
    protocol_id: str,
    dosing: DosingInputs,
    options: PlanOptions | None = None,
    kb: Knowledge | None = None,
    *,
    library: DrugLibrary,
) -> Course:
    """Build the course for a protocol id against ``library``; see ``build_course``."""
    kb = kb or knowledge()
    try:
        protocol = kb.protocol(protocol_id)
    except KeyError as exc:
        raise UnknownItem(str(exc.args[0]), field="protocol_id") from exc
    return build_course(protocol, dosing, options or PlanOptions(), kb, library)


@dataclass(frozen=True)
class _StepPlan:
    duration_min: float
    prescribed_mg_per_h: float
    amount_mg: float | None
    note: str


@dataclass(frozen=True)
class _SessionPlan:
    number: int
    day: int
    bolus_mg: float
    steps: tuple[_StepPlan, ...]
    condition: str


def build_course(
    protocol: Protocol,
    dosing: DosingInputs,
    options: PlanOptions,
    kb: Knowledge,
    library: DrugLibrary,
) -> Course:
    """The limit-checked course. Raises HardLimitExceeded, InvalidInput."""
    setting = _setting(protocol, options)
    pump = _pump(library, protocol, setting)
    basis: WeightBasis = options.weight_basis or protocol.weight_basis
    if basis not in WEIGHT_BASES:
        raise InvalidInput(
            f"weight basis must be one of {', '.join(WEIGHT_BASES)}", field="weight_basis"
        )
    _check_patient(dosing)
    weight = dosing_weight(dosing.weight_kg, basis, kb, height_cm=dosing.height_cm, sex=dosing.sex)
    limits = library.setting(setting)
    caps_applied: list[str] = []
    adjusted: list[str] = []  # what planning changed, and why (dose ladder, bag strength)
    plans = _session_plans(
        protocol, options, weight.weight_kg, limits, pump, caps_applied, adjusted
    )
    concentration = _concentration(protocol, options, pump, plans, adjusted, kb)
    sessions = [_session(p, concentration, weight.weight_kg, pump) for p in plans]
    total = _round_total(sum(s.total_mg for s in sessions))
    longest = max((s.duration_min for s in sessions), default=0.0)
    adjuncts = adjunct_orders(protocol, weight.weight_kg, longest, kb)
    findings = _protocol_findings(protocol, setting, caps_applied, weight, kb)
    findings += _adjustment_findings(protocol, pump, adjusted, kb)
    findings += check(measure(sessions, weight.weight_kg, total), limits, kb)
    findings += adjunct_findings(adjuncts, limits, SETTING_WORDS[setting], dosing.medicines, kb)
    findings += below_evidence(sessions, weight.weight_kg, kb)
    _refuse_hard(protocol, weight.weight_kg, setting, findings)
    course = Course(
        protocol_id=protocol.id,
        protocol_name=protocol.name,
        route=protocol.route,
        setting=setting,
        concentration_mg_per_ml=concentration,
        dosing_weight_kg=weight.weight_kg,
        weight_basis=basis,
        actual_weight_kg=weight.actual_weight_kg,
        sessions=tuple(sessions),
        course_total_mg=total,
        adjuncts=tuple(adjuncts),
        findings=tuple(findings),
        caps_applied=tuple(caps_applied),
        notes=tuple(
            [
                weight.note,
                *protocol.notes,
                *(f"local default: {d}" for d in protocol.local_defaults),
                *(
                    [f"observe for {protocol.observation_min:g} min after the infusion stops"]
                    if protocol.observation_min
                    else []
                ),
            ]
        ),
        citations=cite(protocol.source, kb) + (cite(weight.source, kb) if weight.source else ()),
        pump_id=pump.id,
        pump_name=pump.name,
        library=LibraryStamp(library.name, library.version, library.digest()),
    )
    return _apply_override(course, options)


def _refuse_hard(
    protocol: Protocol, weight_kg: float, setting: str, findings: list[Finding]
) -> None:
    hard = [f for f in findings if f.severity == "hard"]
    if hard:
        raise HardLimitExceeded(
            f"refused: {protocol.name} for a {weight_kg:g} kg dosing weight in the "
            f"{setting} setting passes a hard limit, which no override can pass: "
            + "; ".join(f"{f.message} [{f.rule}; {f.citation}]" for f in hard),
            findings=tuple(hard),
        )


def _setting(protocol: Protocol, options: PlanOptions) -> Setting:
    setting = options.setting or protocol.settings[0]
    if setting not in SETTINGS:
        raise InvalidInput(
            f"setting must be one of {', '.join(SETTINGS)} (got {setting!r})", field="setting"
        )
    return setting


def _pump(library: DrugLibrary, protocol: Protocol, setting: str) -> PumpType:
    pump = library.pump_for(protocol.route, setting)
    if pump is None:
        raise InvalidInput(
            f"the drug library ({library.name}, version {library.version}) has no pump for "
            f"{protocol.route.upper()} infusions in the {SETTING_WORDS.get(setting, setting)} "
            "setting",
            field="setting",
        )
    return pump


def _strengths(values: tuple[float, ...]) -> str:
    return ", ".join(f"{c:g}" for c in values) + " mg/mL"


def _concentration(
    protocol: Protocol,
    options: PlanOptions,
    pump: PumpType,
    plans: list[_SessionPlan],
    adjusted: list[str],
    kb: Knowledge,
) -> float:
    """The bag strength: a stocked one whose rates all fit the pump.

    A strength that was asked for must be stocked for the pump (else refused, listing the
    stocked ones) and must fit (else refused, naming the strengths that would). Without one,
    the pump's default is used if it fits, else the weakest stocked strength that does.
    """
    chosen = options.concentration_mg_per_ml
    stocked = pump.concentrations_mg_per_ml
    if chosen is not None:
        if not (math.isfinite(chosen) and pump.stocks(chosen)):
            raise InvalidInput(
                f"{chosen:g} mg/mL is not a strength the drug library stocks for the "
                f"{pump.name}; choose one of {_strengths(stocked)}",
                field="concentration_mg_per_ml",
            )
        candidate = next(c for c in stocked if math.isclose(c, chosen, rel_tol=1e-9))
    else:
        candidate = pump.default_concentration_mg_per_ml
    problems = _pump_findings(plans, pump, candidate, kb)
    if not problems:
        return candidate
    fitting = [c for c in stocked if not _pump_findings(plans, pump, c, kb)]
    if chosen is None and fitting:
        adjusted.append(
            f"bag strength: at the default {candidate:g} mg/mL a rate would be outside the "
            f"{pump.name}'s range ({pump.min_rate_ml_per_h:g}-{pump.max_rate_ml_per_h:g} "
            f"mL/h); the {fitting[0]:g} mg/mL bag is used"
        )
        return fitting[0]
    advice = (
        f"A stocked strength that would work: {_strengths(tuple(fitting))}."
        if fitting
        else f"No stocked strength fits every step (stocked: {_strengths(stocked)})."
    )
    raise HardLimitExceeded(
        f"refused: {protocol.name} at {candidate:g} mg/mL cannot run on the {pump.name}: "
        + "; ".join(f.message for f in problems)
        + f" {advice}",
        findings=tuple(problems),
    )


def _pump_findings(
    plans: list[_SessionPlan], pump: PumpType, concentration: float, kb: Knowledge
) -> list[Finding]:
    """The steps whose rate in mL/h (rounded down) falls outside the pump's range."""
    worst: dict[str, tuple[float, list[int]]] = {}
    for plan_ in plans:
        for step in plan_.steps:
            rate = _round_down(
                step.prescribed_mg_per_h / concentration, pump.rate_resolution_ml_per_h
            )
            if rate < pump.min_rate_ml_per_h * (1 - _TOLERANCE):
                key = "below-minimum"
                extreme = min
            elif rate > pump.max_rate_ml_per_h * (1 + _TOLERANCE):
                key = "above-maximum"
                extreme = max
            else:
                continue
            value, sessions = worst.get(key, (rate, []))
            if plan_.number not in sessions:
                sessions.append(plan_.number)
            worst[key] = (extreme(value, rate), sessions)
    out = []
    for key, (rate, sessions) in worst.items():
        bound = pump.min_rate_ml_per_h if key == "below-minimum" else pump.max_rate_ml_per_h
        word = "below the minimum" if key == "below-minimum" else "above the maximum"
        out.append(
            finding(
                "pump:below-minimum" if key == "below-minimum" else "pump:above-maximum",
                f"At {concentration:g} mg/mL a step of session"
                f"{'s' if len(sessions) > 1 else ''} {', '.join(map(str, sessions))} would run "
                f"at {rate:g} mL/h, {word} of the {pump.name} ({bound:g} mL/h).",
                source=pump.source,
                rule=(
                    f"Drug library pump {pump.name}: rates from {pump.min_rate_ml_per_h:g} to "
                    f"{pump.max_rate_ml_per_h:g} mL/h"
                ),
                kb=kb,
            )
        )
    return out


def _check_patient(dosing: DosingInputs) -> None:
    if not dosing.weight_kg > 0 or dosing.weight_kg > 400:
        raise InvalidInput(
            f"weight must be above 0 and at most 400 kg (got {dosing.weight_kg:g})",
            field="weight_kg",
        )
    if dosing.height_cm is not None and not 30 < dosing.height_cm <= 260:
        raise InvalidInput(
            f"height must be between 30 and 260 cm (got {dosing.height_cm:g})", field="height_cm"
        )
    if dosing.sex is not None and dosing.sex not in ("male", "female"):
        raise InvalidInput(f"sex must be male or female (got {dosing.sex!r})", field="sex")
    if dosing.age_years is not None and not 0 <= dosing.age_years <= 130:
        raise InvalidInput(
            f"age must be between 0 and 130 years (got {dosing.age_years:g})", field="age_years"
        )


def _session_plans(
    protocol: Protocol,
    options: PlanOptions,
    weight_kg: float,
    limits: SettingLimits,
    pump: PumpType,
    caps_applied: list[str],
    adjusted: list[str],
) -> list[_SessionPlan]:
    if protocol.dose_ladder is not None:
        return _ladder_plans(protocol, options, weight_kg, limits, caps_applied, adjusted)
    template = tuple(_step_plans(protocol, protocol.steps, weight_kg, caps_applied))
    bolus_mg = _bolus_mg(protocol, weight_kg, pump)
    return [
        _SessionPlan(number, day, bolus_mg, template, protocol.session_condition)
        for number, day in enumerate(protocol.day_offsets, start=1)
    ]


def _ladder_plans(
    protocol: Protocol,
    options: PlanOptions,
    weight_kg: float,
    limits: SettingLimits,
    caps_applied: list[str],
    adjusted: list[str],
) -> list[_SessionPlan]:
    """The guideline starting dose first, then one rung higher each session (Clark 2020)."""
    ladder = protocol.dose_ladder
    assert ladder is not None
    chosen = options.ladder_steps_mg_per_kg_per_h
    steps = chosen or tuple(ladder.steps_mg_per_kg_per_h)
    ceiling = options.ladder_ceiling_mg_per_kg_per_h or ladder.ceiling_mg_per_kg_per_h
    if not (math.isfinite(ceiling) and ceiling > 0):
        raise InvalidInput("the ladder ceiling must be above 0 mg/kg/h", field="ladder_ceiling")
    if not steps or any(not (math.isfinite(s) and s > 0) for s in steps):
        raise InvalidInput("ladder steps must be above 0 mg/kg/h", field="ladder_steps")
    if list(steps) != sorted(steps):
        raise InvalidInput(
            "ladder steps must not go down (each session one step higher)", field="ladder_steps"
        )
    hours = ladder.session_duration_min / 60.0
    start_mg = max(ladder.start.min_mg, ladder.start.min_mg_per_kg * weight_kg)
    start_per_kg = start_mg / hours / weight_kg
    if start_per_kg > ceiling * (1 + _TOLERANCE):
        raise InvalidInput(
            f"the ladder ceiling {ceiling:g} mg/kg/h is below the guideline starting dose for "
            f"this patient ({start_mg:g} mg over {hours:g} h is {start_per_kg:.3g} mg/kg/h)",
            field="ladder_ceiling",
        )
    rungs = _climb(steps, start_per_kg, ceiling, adjusted)
    if chosen is None:
        rungs = _within_soft_limits(rungs, weight_kg, limits, adjusted)
    count = 1 + len(rungs)
    plans = [
        _SessionPlan(
            1,
            0,
            0.0,
            (
                _StepPlan(
                    ladder.session_duration_min,
                    start_mg / hours,
                    start_mg,
                    f"ladder step 1 of {count}: the guideline starting dose ({start_mg:g} mg)",
                ),
            ),
            "",
        )
    ]
    for i, rung in enumerate(rungs, start=2):
        step = ProtocolStep(
            duration_min=ladder.session_duration_min,
            rate=RateSpec(value=rung, unit="mg/kg/h"),
            note=f"ladder step {i} of {count}",
        )
        template = tuple(_step_plans(protocol, [step], weight_kg, caps_applied))
        plans.append(
            _SessionPlan(i, (i - 1) * ladder.interval_days, 0.0, template, ladder.condition)
        )
    return plans


def _climb(
    steps: tuple[float, ...], start_per_kg: float, ceiling: float, adjusted: list[str]
) -> list[float]:
    """The rungs above the starting session's rate and not above the ceiling."""
    low = [s for s in steps if s <= start_per_kg * (1 + _TOLERANCE)]
    high = [s for s in steps if s > ceiling * (1 + _TOLERANCE)]
    if low:
        adjusted.append(
            f"dose ladder: steps at or below the starting session's rate "
            f"({start_per_kg:.3g} mg/kg/h) skipped ({', '.join(f'{s:g}' for s in low)} mg/kg/h)"
        )
    if high:
        adjusted.append(
            f"dose ladder ceiling {ceiling:g} mg/kg/h: steps above it removed "
            f"({', '.join(f'{s:g}' for s in high)} mg/kg/h)"
        )
    return [s for s in steps if s not in low and s not in high]


def _within_soft_limits(
    rungs: list[float], weight_kg: float, limits: SettingLimits, adjusted: list[str]
) -> list[float]:
    """The protocol's own rungs stay inside the drug library's soft rate limits."""
    soft_per_kg = limits.rate_mg_per_kg_per_h.soft
    bounds = [limits.rate_mg_per_h.soft, soft_per_kg * weight_kg if soft_per_kg else None]
    soft_mg_per_h = min((b for b in bounds if b is not None), default=math.inf)
    over = [r for r in rungs if r * weight_kg > soft_mg_per_h * (1 + _TOLERANCE)]
    if over:
        adjusted.append(
            f"dose ladder: steps above the drug library's soft rate limit for this patient "
            f"({soft_mg_per_h:.4g} mg/h) left out ({', '.join(f'{r:g}' for r in over)} mg/kg/h)"
        )
    return [r for r in rungs if r not in over]


def _step_plans(
    protocol: Protocol, steps: list[ProtocolStep], weight_kg: float, caps_applied: list[str]
) -> list[_StepPlan]:
    plans: list[_StepPlan] = []
    for step in steps:
        hours = step.duration_min / 60.0
        amount_mg: float | None = None
        if step.rate is not None:
            rate = _rate_mg_per_h(step.rate.value, step.rate.unit, weight_kg)
        elif step.amount is not None:
            amount_mg = step.amount.value * (weight_kg if step.amount.unit == "mg/kg" else 1.0)
            rate = amount_mg / hours
        else:
            assert step.fraction_of_previous is not None
            rate = plans[-1].prescribed_mg_per_h * step.fraction_of_previous
        capped = _apply_caps(protocol, rate, weight_kg, caps_applied)
        if capped < rate and amount_mg is not None:
            amount_mg = None  # the cap wins over the amount: the step runs at the capped rate
        plans.append(_StepPlan(step.duration_min, capped, amount_mg, step.note))
    return plans


def _rate_mg_per_h(value: float, unit: str, weight_kg: float) -> float:
    if unit == "mg/kg/h":
        return value * weight_kg
    if unit == "mg/h per 70 kg":
        return value * weight_kg / REFERENCE_WEIGHT_KG
    return value


def _apply_caps(
    protocol: Protocol, rate: float, weight_kg: float, caps_applied: list[str]
) -> float:
    caps = protocol.caps
    if caps is None:
        return rate
    capped = rate
    if caps.max_rate_mg_per_h is not None and capped > caps.max_rate_mg_per_h:
        capped = caps.max_rate_mg_per_h
        _note_cap(
            caps_applied,
            f"protocol cap {caps.max_rate_mg_per_h:g} mg/h applied "
            f"({rate:.4g} mg/h reduced to {capped:g} mg/h)",
        )
    if caps.max_rate_mg_per_kg_per_h is not None:
        per_kg_cap = caps.max_rate_mg_per_kg_per_h * weight_kg
        if capped > per_kg_cap:
            _note_cap(
                caps_applied,
                f"protocol cap {caps.max_rate_mg_per_kg_per_h:g} mg/kg/h "
                f"applied ({capped:.4g} mg/h reduced to {per_kg_cap:.4g} mg/h)",
            )
            capped = per_kg_cap
    return capped


def _note_cap(caps_applied: list[str], text: str) -> None:
    if text not in caps_applied:
        caps_applied.append(text)


def _bolus_mg(protocol: Protocol, weight_kg: float, pump: PumpType) -> float:
    if protocol.bolus is None:
        return 0.0
    mg = protocol.bolus.value * (weight_kg if protocol.bolus.unit == "mg/kg" else 1.0)
    return _round_down(mg, pump.bolus_resolution_mg)


def _round_down(value: float, resolution: float) -> float:
    res = Decimal(str(resolution))
    steps = (Decimal(repr(value)) / res).to_integral_value(rounding=ROUND_DOWN)
    return float(steps * res)


def _round_total(mg: float) -> float:
    return round(mg, 6)


def _session(
    plan_: _SessionPlan, concentration: float, weight_kg: float, pump: PumpType
) -> SessionOrder:
    """The session's pump settings: rates rounded down to the pump's resolution (already
    checked to lie in its range), each step's volume to be infused, the totals."""
    steps: list[RateStep] = []
    clock = 0.0
    for plan_step in plan_.steps:
        rate_ml = _round_down(
            plan_step.prescribed_mg_per_h / concentration, pump.rate_resolution_ml_per_h
        )
        # mg/h is computed back from the mL/h the pump is set to, so mg/h = mL/h x mg/mL exactly.
        rate_mg = rate_ml * concentration
        duration = plan_step.duration_min
        if plan_step.amount_mg is not None:
            # An amount is delivered in full: the pump runs at the rounded rate until its volume
            # to be infused is given, which may take a few seconds longer than the nominal time.
            duration = plan_step.amount_mg / rate_mg * 60.0
        steps.append(
            RateStep(
                start_min=round(clock, 6),
                end_min=round(clock + duration, 6),
                rate_mg_per_h=rate_mg,
                rate_ml_per_h=rate_ml,
                rate_mg_per_kg_per_h=rate_mg / weight_kg,
                volume_ml=round(rate_ml * duration / 60.0, 6),
                note=plan_step.note,
            )
        )
        clock += duration
    total = plan_.bolus_mg + sum(s.amount_mg for s in steps)
    return SessionOrder(
        number=plan_.number,
        day=plan_.day,
        start_offset_min=float(plan_.day * MINUTES_PER_DAY),
        bolus_mg=plan_.bolus_mg,
        bolus_ml=plan_.bolus_mg / concentration,
        steps=tuple(steps),
        total_mg=_round_total(total),
        infusion_volume_ml=round(sum(s.volume_ml for s in steps), 6),
        condition=plan_.condition,
    )


def _adjustment_findings(
    protocol: Protocol, pump: PumpType, adjusted: list[str], kb: Knowledge
) -> list[Finding]:
    """What planning changed for this patient (ladder steps, bag strength), with its rule."""
    out = []
    ladder_source = protocol.dose_ladder.source if protocol.dose_ladder else None
    for text in adjusted:
        if text.startswith("bag strength"):
            out.append(finding("pump:strength-changed", text, source=pump.source, kb=kb))
        else:
            out.append(
                finding(
                    "protocol:ladder-adjusted",
                    text,
                    source=ladder_source or protocol.source,
                    kb=kb,
                )
            )
    return out


def _protocol_findings(
    protocol: Protocol,
    setting: Setting,
    caps_applied: list[str],
    weight: DosingWeight,
    kb: Knowledge,
) -> list[Finding]:
    findings: list[Finding] = []
    if setting not in protocol.settings:
        findings.append(
            finding(
                "protocol:setting-deviation",
                f"{protocol.name} is written for {' or '.join(protocol.settings)}; giving it in "
                f"the {setting} setting is a protocol deviation.",
                source=protocol.source,
                kb=kb,
            )
        )
    for text in caps_applied:
        findings.append(
            finding(
                "protocol:cap-applied",
                text,
                source=(protocol.caps and protocol.caps.source) or protocol.source,
                kb=kb,
            )
        )
    if weight.source is not None:
        findings.append(
            finding(
                "dosing:weight-basis",
                f"Doses are computed on a dosing weight of {weight.weight_kg:g} kg: {weight.note}.",
                source=weight.source,
                kb=kb,
            )
        )
    return findings


def _apply_override(course: Course, options: PlanOptions) -> Course:
    by = (options.override_by or "").strip()
    reason = (options.override_reason or "").strip()
    if bool(by) != bool(reason):
        raise InvalidInput(
            "an override needs both the physician's name and a reason",
            field="override_by" if not by else "reason",
        )
    soft = tuple(f.code for f in course.findings if f.severity == "soft")
    if not by or not soft:
        if by:
            return replace(
                course,
                notes=(
                    *course.notes,
                    "no soft limit was passed; the override "
                    f"by {by} was not needed and is not recorded",
                ),
            )
        return course
    return replace(course, override=Override(physician=by, reason=reason, codes=soft))


def course_to_dict(course: Course) -> dict[str, Any]:
    """The course as plain data, with the field names of the command line's JSON."""
    data = asdict(course)
    data["status"] = status(course)
    sessions = []
    for session, raw in zip(course.sessions, data["sessions"], strict=True):
        sessions.append({"session": raw.pop("number"), **raw, "duration_min": session.duration_min})
    data["sessions"] = sessions
    data["findings"] = [f.to_dict() for f in course.findings]
    for raw_adjunct, adjunct in zip(data["adjuncts"], course.adjuncts, strict=True):
        raw_adjunct["citation"] = "; ".join(c.text for c in adjunct.citations)
    data["citation"] = "; ".join(c.text for c in course.citations)
    return data
