"""Safety follow-up results: the values of a check read against its fields, and judged by its
rules (``knowledge/data/safety_checks.yaml``).

``read_values`` refuses what a check does not record (an unknown field, a number out of its
bounds, a text too long, a yes/no that is not one, a value without its upper limit of normal)
with a :class:`SafetyValueError` naming the field; nothing is clipped or guessed, and a value
not given stays absent (never zero). ``judge`` returns one finding per abnormal rule, in words
with the values that made it abnormal, its rule and citations; a result is abnormal when it
has a warning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ketapath.domain.findings import Finding, finding
from ketapath.knowledge.safety import AbnormalRule, SafetyCheck, SafetyField


class SafetyValueError(ValueError):
    """A value a check does not take; ``field`` names it (``values.alt_u_per_l``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _number(f: SafetyField, raw: Any) -> float | int:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise SafetyValueError(f.id, f"{f.label} must be a number.")
    if not math.isfinite(raw):
        raise SafetyValueError(f.id, f"{f.label} must be a plain number.")
    if f.kind == "whole" and not float(raw).is_integer():
        raise SafetyValueError(f.id, f"{f.label} must be a whole number.")
    assert f.minimum is not None and f.maximum is not None
    if not f.minimum <= raw <= f.maximum:
        unit = f" {f.unit}" if f.unit else ""
        raise SafetyValueError(
            f.id, f"{f.label} must be between {f.minimum:g} and {f.maximum:g}{unit}."
        )
    return int(raw) if f.kind == "whole" else raw


def _value(f: SafetyField, raw: Any) -> Any:
    if f.kind in ("number", "whole"):
        return _number(f, raw)
    if f.kind == "yes_no":
        if not isinstance(raw, bool):
            raise SafetyValueError(f.id, f"{f.label}: answer yes or no.")
        return raw
    if not isinstance(raw, str):
        raise SafetyValueError(f.id, f"{f.label} must be text.")
    text = raw.strip()
    assert f.max_length is not None
    if len(text) > f.max_length:
        raise SafetyValueError(f.id, f"{f.label} can be at most {f.max_length:,} characters long.")
    return text


def read_values(check: SafetyCheck, values: Mapping[str, Any]) -> dict[str, Any]:
    """The values as the check records them (empty text and nulls left out)."""
    known = {f.id for f in check.fields}
    unknown = sorted(set(values) - known)
    if unknown:
        raise SafetyValueError(
            unknown[0],
            f"{check.name} does not record {unknown[0]!r}; it records {', '.join(sorted(known))}.",
        )
    out: dict[str, Any] = {}
    for f in check.fields:
        raw = values.get(f.id)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            if f.required:
                raise SafetyValueError(f.id, f"{f.label} is required.")
            continue
        out[f.id] = _value(f, raw)
    for f in check.fields:
        if f.limit_field and f.id in out and f.limit_field not in out:
            limit = check.field(f.limit_field)
            raise SafetyValueError(
                f.limit_field, f"{limit.label} is required with {f.label} (the laboratory's)."
            )
    if check.needs_one_of and not any(name in out for name in check.needs_one_of):
        labels = ", ".join(check.field(name).label for name in check.needs_one_of)
        raise SafetyValueError(check.needs_one_of[0], f"Give at least one of: {labels}.")
    return out


def _shown(f: SafetyField, value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    unit = f" {f.unit}" if f.unit else ""
    return f"{value:g}{unit}" if isinstance(value, float) else f"{value}{unit}"


def _breaches(check: SafetyCheck, rule: AbnormalRule, values: Mapping[str, Any]) -> list[str]:
    """What makes the rule fire, in words (empty when it does not)."""
    out = []
    for name in rule.fields:
        if name not in values:
            continue
        f = check.field(name)
        value = values[name]
        if rule.kind == "any_yes" and value is True:
            out.append(f.label.lower() if f.label[1:2].islower() else f.label)
        elif rule.kind == "above_limit" and value > values[f.limit_field]:
            limit = check.field(f.limit_field)
            out.append(f"{f.label} {_shown(f, value)} (limit {_shown(limit, values[limit.id])})")
        elif rule.kind == "below" and rule.threshold is not None and value < rule.threshold:
            out.append(f"{f.label.split(' (')[0]} {_shown(f, value)} (below {rule.threshold:g})")
    return out


def judge(check: SafetyCheck, values: Mapping[str, Any]) -> list[Finding]:
    """One warning per rule the values break; an info finding when no rule could judge them."""
    findings = []
    judged = False
    for rule in check.abnormal:
        judged = judged or any(name in values for name in rule.fields)
        breaches = _breaches(check, rule, values)
        if breaches:
            findings.append(
                finding(
                    rule.code,
                    f"{check.name}: abnormal: {'; '.join(breaches)}.",
                    rule=rule.rule,
                    subject=check.id,
                )
            )
    if not judged:
        findings.append(
            finding(
                "safety:not-judged",
                f"{check.name}: no value a rule judges was recorded; read the result.",
                subject=check.id,
            )
        )
    return findings


def is_abnormal(findings: list[Finding]) -> bool:
    """A result is abnormal when a rule found it so (a warning), never by what was typed."""
    return any(f.severity == "warning" for f in findings)
