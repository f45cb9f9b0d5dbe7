"""From a protocol and a patient to a course of limit-checked pump orders (PRODUCT step 4).

The order of work is the order of a careful pharmacist: dosing weight, the protocol's rate for
each step, the protocol's own caps, the pump's rate resolution (rounded down, so an order never
exceeds what was prescribed), then the drug-library limits of the care setting. A course over a
hard limit is refused (``HardLimitExceeded``): nothing is produced. A course over a soft limit
is returned with ``status == "needs_override"`` until a named physician accepts it with a reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from decimal import ROUND_DOWN, Decimal
from typing import Any, Literal

from ketapath.domain.body_size import DosingWeight, dosing_weight
from ketapath.domain.errors import HardLimitExceeded, InvalidInput, UnknownItem
from ketapath.domain.findings import Finding, cite, finding
from ketapath.domain.limits import check, measure
from ketapath.domain.orders import (
    AdjunctOrder,
    Course,
    Override,
    RateStep,
    SessionOrder,
    Setting,
    WeightBasis,
)
from ketapath.knowledge.clinical import Knowledge, Protocol, ProtocolStep, RateSpec, knowledge

SETTINGS: tuple[Setting, ...] = ("clinic", "ward", "icu")
WEIGHT_BASES: tuple[WeightBasis, ...] = ("actual", "ideal", "adjusted")
REFERENCE_WEIGHT_KG = 70.0  # "mg/h per 70 kg" rates (Sigtermans et al. 2009)
MINUTES_PER_DAY = 1440
Status = Literal["ready", "needs_override"]


@dataclass(frozen=True)
class DosingInputs:
    """The patient facts that dosing uses."""

    weight_kg: float
    height_cm: float | None = None
    sex: str | None = None
    age_years: float | None = None


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
) -> Course:
    """Build the course for a protocol id; see ``build_course``."""
    kb = kb or knowledge()
    try:
        protocol = kb.protocol(protocol_id)
    except KeyError as exc:
        raise UnknownItem(str(exc.args[0]), field="protocol_id") from exc
    return build_course(protocol, dosing, options or PlanOptions(), kb)


def build_course(
    protocol: Protocol, dosing: DosingInputs, options: PlanOptions, kb: Knowledge
) -> Course:
    """The limit-checked course. Raises HardLimitExceeded, InvalidInput."""
    setting = _setting(protocol, options)
    concentration = _concentration(options, kb)
    basis: WeightBasis = options.weight_basis or protocol.weight_basis
    if basis not in WEIGHT_BASES:
        raise InvalidInput(
            f"weight basis must be one of {', '.join(WEIGHT_BASES)}", field="weight_basis"
        )
    _check_patient(dosing)
    weight = dosing_weight(dosing.weight_kg, basis, kb, height_cm=dosing.height_cm, sex=dosing.sex)
    caps_applied: list[str] = []
    sessions = _sessions(protocol, options, weight.weight_kg, concentration, kb, caps_applied)
    total = _round_total(sum(s.total_mg for s in sessions))
    findings = _protocol_findings(protocol, setting, caps_applied, weight, kb)
    findings += check(measure(sessions, weight.weight_kg, total), kb.limits(setting), kb)
    hard = [f for f in findings if f.severity == "hard"]
    if hard:
        raise HardLimitExceeded(
            f"refused: {protocol.name} for a {weight.weight_kg:g} kg dosing weight in the "
            f"{setting} setting passes a hard limit, which no override can pass: "
            + "; ".join(f"{f.message} [{f.rule}; {f.citation}]" for f in hard),
            findings=tuple(hard),
        )
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
        adjuncts=tuple(_adjuncts(protocol, weight.weight_kg, kb)),
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
    )
    return _apply_override(course, options)


def _setting(protocol: Protocol, options: PlanOptions) -> Setting:
    setting = options.setting or protocol.settings[0]
    if setting not in SETTINGS:
        raise InvalidInput(
            f"setting must be one of {', '.join(SETTINGS)} (got {setting!r})", field="setting"
        )
    return setting


def _concentration(options: PlanOptions, kb: Knowledge) -> float:
    pump = kb.pump_settings
    c = options.concentration_mg_per_ml
    if c is None:
        return pump.default_concentration_mg_per_ml
    if not pump.min_concentration_mg_per_ml <= c <= pump.max_concentration_mg_per_ml:
        raise InvalidInput(
            f"concentration must be at least {pump.min_concentration_mg_per_ml:g} and at most "
            f"{pump.max_concentration_mg_per_ml:g} mg/mL "
            f"(got {c:g} mg/mL)",
            field="concentration_mg_per_ml",
        )
    return c


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


@dataclass(frozen=True)
class _StepPlan:
    duration_min: float
    prescribed_mg_per_h: float
    amount_mg: float | None
    note: str


def _sessions(
    protocol: Protocol,
    options: PlanOptions,
    weight_kg: float,
    concentration: float,
    kb: Knowledge,
    caps_applied: list[str],
) -> list[SessionOrder]:
    if protocol.dose_ladder is not None:
        return _ladder_sessions(protocol, options, weight_kg, concentration, kb, caps_applied)
    template = _step_plans(protocol, protocol.steps, weight_kg, caps_applied)
    bolus_mg = _bolus_mg(protocol, weight_kg, kb)
    return [
        _session(
            number,
            day,
            bolus_mg,
            template,
            concentration,
            weight_kg,
            kb,
            protocol.session_condition,
        )
        for number, day in enumerate(protocol.day_offsets, start=1)
    ]


def _ladder_sessions(
    protocol: Protocol,
    options: PlanOptions,
    weight_kg: float,
    concentration: float,
    kb: Knowledge,
    caps_applied: list[str],
) -> list[SessionOrder]:
    ladder = protocol.dose_ladder
    assert ladder is not None
    steps = options.ladder_steps_mg_per_kg_per_h or tuple(ladder.steps_mg_per_kg_per_h)
    ceiling = options.ladder_ceiling_mg_per_kg_per_h or ladder.ceiling_mg_per_kg_per_h
    if not ceiling > 0:
        raise InvalidInput("the ladder ceiling must be above 0 mg/kg/h", field="ladder_ceiling")
    if not steps or any(not s > 0 for s in steps):
        raise InvalidInput("ladder steps must be above 0 mg/kg/h", field="ladder_steps")
    if list(steps) != sorted(steps):
        raise InvalidInput(
            "ladder steps must not go down (each session one step higher)", field="ladder_steps"
        )
    kept = [s for s in steps if s <= ceiling * (1 + 1e-12)]
    if len(kept) < len(steps):
        caps_applied.append(
            f"dose ladder ceiling {ceiling:g} mg/kg/h: steps above it removed "
            f"({', '.join(f'{s:g}' for s in steps if s not in kept)} mg/kg/h)"
        )
    if not kept:
        raise InvalidInput(
            f"every ladder step is above the ceiling {ceiling:g} mg/kg/h", field="ladder_steps"
        )
    sessions = []
    for i, step_rate in enumerate(kept):
        step = ProtocolStep(
            duration_min=ladder.session_duration_min,
            rate=RateSpec(value=step_rate, unit="mg/kg/h"),
            note=f"ladder step {i + 1} of {len(kept)}",
        )
        template = _step_plans(protocol, [step], weight_kg, caps_applied)
        condition = "" if i == 0 else ladder.condition
        sessions.append(
            _session(
                i + 1,
                i * ladder.interval_days,
                0.0,
                template,
                concentration,
                weight_kg,
                kb,
                condition,
            )
        )
    return sessions


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


def _bolus_mg(protocol: Protocol, weight_kg: float, kb: Knowledge) -> float:
    if protocol.bolus is None:
        return 0.0
    mg = protocol.bolus.value * (weight_kg if protocol.bolus.unit == "mg/kg" else 1.0)
    return _round_down(mg, kb.pump_settings.bolus_resolution_mg)


def _round_down(value: float, resolution: float) -> float:
    res = Decimal(str(resolution))
    steps = (Decimal(repr(value)) / res).to_integral_value(rounding=ROUND_DOWN)
    return float(steps * res)


def _round_total(mg: float) -> float:
    return round(mg, 6)


def _session(
    number: int,
    day: int,
    bolus_mg: float,
    template: list[_StepPlan],
    concentration: float,
    weight_kg: float,
    kb: Knowledge,
    condition: str,
) -> SessionOrder:
    resolution = kb.pump_settings.rate_resolution_ml_per_h
    steps: list[RateStep] = []
    clock = 0.0
    for plan_step in template:
        rate_ml = _round_down(plan_step.prescribed_mg_per_h / concentration, resolution)
        if rate_ml <= 0:
            raise InvalidInput(
                f"session {number}: {plan_step.prescribed_mg_per_h:.4g} mg/h at "
                f"{concentration:g} mg/mL is below the pump's resolution of {resolution:g} mL/h; "
                "use a weaker bag",
                field="concentration_mg_per_ml",
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
                note=plan_step.note,
            )
        )
        clock += duration
    total = bolus_mg + sum(s.amount_mg for s in steps)
    return SessionOrder(
        number=number,
        day=day,
        start_offset_min=float(day * MINUTES_PER_DAY),
        bolus_mg=bolus_mg,
        bolus_ml=bolus_mg / concentration,
        steps=tuple(steps),
        total_mg=_round_total(total),
        condition=condition,
    )


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


def _adjuncts(protocol: Protocol, weight_kg: float, kb: Knowledge) -> list[AdjunctOrder]:
    out = []
    for a in protocol.adjuncts:
        if a.unit == "mg/kg":
            dose = round(a.dose * weight_kg, 2)
            dose_max = round(a.dose_max * weight_kg, 2) if a.dose_max is not None else None
            unit, basis = "mg", f"{a.dose:g} mg/kg x {weight_kg:g} kg"
            if a.max_mg is not None and dose > a.max_mg:
                dose, basis = a.max_mg, f"{basis}, capped at {a.max_mg:g} mg"
        else:
            dose, dose_max, unit, basis = a.dose, a.dose_max, a.unit, ""
        out.append(
            AdjunctOrder(
                drug=a.drug,
                dose=dose,
                unit=unit,
                route=a.route,
                timing=a.timing,
                citations=cite(a.source, kb),
                dose_max=dose_max,
                prn=a.prn,
                basis=basis,
            )
        )
    return out


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
        for step, raw_step in zip(session.steps, raw["steps"], strict=True):
            raw_step["volume_ml"] = round(step.rate_ml_per_h * step.duration_min / 60.0, 6)
        sessions.append({"session": raw.pop("number"), **raw, "duration_min": session.duration_min})
    data["sessions"] = sessions
    data["findings"] = [f.to_dict() for f in course.findings]
    for raw_adjunct, adjunct in zip(data["adjuncts"], course.adjuncts, strict=True):
        raw_adjunct["citation"] = "; ".join(c.text for c in adjunct.citations)
    data["citation"] = "; ".join(c.text for c in course.citations)
    return data
