"""The chart's forms: posted text to a chart entry, and every problem beside its field.

A form posts text; ``entry_from_form`` turns it into the chart entry of its kind
(``ketapath.domain.session_events``), validated by the entry's own model so the page accepts
and refuses what the API does. Every problem is collected at once and named by the form's
field (``FormState.errors``), in plain words; what was typed is kept (``FormState.values``)
so the form is shown again as it was.

This is local to the session pages on purpose: the form helper shared by the other pages
(``web/forms.py``, being written on another branch) can take it over, since its parts are
small functions (``plain_message``, ``form_field``, ``FormState``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from pydantic import TypeAdapter, ValidationError

from ketapath.domain.session_events import ChartEntry, PumpProgramme
from ketapath.knowledge.clinical import knowledge
from ketapath.services.clock import ClinicClock
from ketapath.services.errors import ServiceError

ENTRY: TypeAdapter[Any] = TypeAdapter(ChartEntry)

VITAL_FIELDS = ("heart_rate", "systolic", "diastolic", "spo2", "respiratory_rate", "sedation")
VITAL_FIELDS_ALL = (*VITAL_FIELDS, "etco2")
# The fields of each form (besides the time, the kind and the last entry seen).
FORM_FIELDS: dict[str, tuple[str, ...]] = {
    "check_in": (
        "consent_confirmed",
        "fasting_confirmed",
        "escort_present",
        "allergies_confirmed",
        "pregnancy_test",
        "high_respiratory_risk",
        *VITAL_FIELDS_ALL,
        "baseline_pain_nrs",
        "note",
    ),
    "start": ("rate_ml_per_h", "note"),
    "rate_change": ("rate_ml_per_h", "note"),
    "pause": ("reason", "note"),
    "resume": ("rate_ml_per_h", "note"),
    "stop": ("reason", "note"),
    "complete": ("note",),
    "bolus": ("dose_mg", "note"),
    "vitals": (*VITAL_FIELDS_ALL, "note"),
    "side_effect": ("effect", "severity", "troublesome", "description", "cadss6_total", "note"),
    "adjunct": ("drug", "dose", "unit", "route", "note"),
    "note": ("note",),
    "begin_observation": ("note",),
    "discharge_assessment": (
        "oriented",
        "steady_gait",
        "pain_nausea_vomiting",
        "bleeding",
        "oral_fluids",
        "voided",
        "note",
    ),
    "discharge": (
        "escort_present",
        "escort_name",
        "emergency_plan_given",
        "override_reason",
        "note",
    ),
    "cancel": ("reason", "note"),
    "did_not_attend": ("note",),
}
FORM_KINDS = tuple(FORM_FIELDS)
# The pages' other forms: scheduling a course, voiding an entry, correcting one.
OTHER_FORMS: dict[str, tuple[str, ...]] = {
    "schedule": ("first_date", "chair"),
    "void": ("reason",),
}
CHECKBOXES = frozenset(
    {
        "consent_confirmed",
        "fasting_confirmed",
        "escort_present",
        "allergies_confirmed",
        "high_respiratory_risk",
        "oriented",
        "steady_gait",
        "oral_fluids",
        "voided",
        "emergency_plan_given",
    }
)
# Boxes a form cannot be saved without (the chart refuses the entry otherwise).
REQUIRED_CHECKS: dict[str, tuple[tuple[str, str], ...]] = {
    "check_in": (
        ("consent_confirmed", "confirm the patient's consent"),
        ("allergies_confirmed", "confirm the patient's allergies"),
    ),
}
# Entry fields whose problems are shown beside another form field.
FIELD_OF_ENTRY = {"occurred_at": "time", "rate_mg_per_h": "rate_ml_per_h"}
# Words a model-level problem uses, and the form field it belongs beside.
MODEL_PROBLEMS = (
    ("diastolic", "diastolic"),
    ("describe the side effect", "description"),
    ("cadss-6", "cadss6_total"),
    ("mL/h or in mg/h", "rate_ml_per_h"),
    ("at least one value", ""),
)
TIME_PATTERN = re.compile(r"^(?:(\d{4}-\d{2}-\d{2})[ T])?(\d{1,2}):?(\d{2})$")


@dataclass
class FormState:
    """A form shown again after a refusal: what was typed, and what is wrong with it."""

    kind: str
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    message: str = ""

    def add(self, name: str, message: str) -> None:
        """Add a problem beside ``name`` (the form's general message when '')."""
        if not name:
            self.message = f"{self.message} {message}".strip() if self.message else message
        else:
            self.errors.setdefault(name, message)

    @property
    def failed(self) -> bool:
        return bool(self.errors or self.message)


def plain_message(error: Mapping[str, Any]) -> str:
    """A pydantic problem in a clinician's words (not the library's)."""
    kind = str(error.get("type", ""))
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "Required."
    if kind in ("int_parsing", "int_from_float"):
        return "A whole number, please."
    if kind in ("float_parsing", "decimal_parsing"):
        return "A number, please."
    if kind in ("less_than_equal", "less_than"):
        return f"At most {ctx.get('le', ctx.get('lt'))}."
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"More than {bound}." if kind == "greater_than" else f"At least {bound}."
    if kind == "literal_error":
        return "Choose one of the options."
    if kind == "string_too_long":
        return f"At most {ctx.get('max_length')} characters."
    if kind == "string_too_short":
        return "Required."
    if kind == "string_pattern_mismatch":
        return "Use letters, digits, spaces and hyphens only (starting with a letter or digit)."
    if kind in ("finite_number",):
        return "A number, please."
    message = str(error.get("msg", "Not valid."))
    message = message.removeprefix("Value error, ")
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


def fields_of(kind: str) -> tuple[str, ...]:
    """The fields of a form: a chart entry's, or one of the other forms of the pages."""
    if kind.startswith("ack-"):
        return ("note",)
    return FORM_FIELDS.get(kind) or OTHER_FORMS.get(kind, ())


def form_field(location: tuple[Any, ...], kind: str) -> str:
    """The form field a problem at ``location`` (within the entry) belongs beside, or ''."""
    names = [part for part in location if isinstance(part, str)]
    if names and names[0] == "baseline":
        names = names[1:]
    if not names:
        return ""
    name = FIELD_OF_ENTRY.get(names[0], names[0])
    return name if name == "time" or name in fields_of(kind) else ""


def add_validation_errors(state: FormState, error: ValidationError, *, tagged: bool) -> None:
    """Every problem of ``error`` beside its field (``tagged``: locations start with the
    union's tag, as for a chart entry validated by kind)."""
    for problem in error.errors():
        location = tuple(problem["loc"])[1 if tagged else 0 :]
        name = form_field(location, state.kind)
        message = plain_message(problem)
        if not name:
            name = next((f for words, f in MODEL_PROBLEMS if words in message.lower()), "")
        state.add(name, message)


def add_service_error(state: FormState, error: ServiceError) -> None:
    """A service's refusal beside the field it names (its message without the field's name)."""
    name = FIELD_OF_ENTRY.get(error.field or "", error.field or "")
    message = error.message
    if error.field and message.startswith(f"{error.field}: "):
        message = message.removeprefix(f"{error.field}: ")
        message = message[:1].upper() + message[1:]
    if name == "time" or name in fields_of(state.kind):
        state.add(name, message)
    else:
        state.add("", message)


def chart_time(text: str, day: date, clock: ClinicClock) -> datetime:
    """A time as typed ('10:42', '1042', '2026-12-01 10:42') on the session's day in the
    clinic's zone; blank is now. ``ValueError`` in plain words when it cannot be one."""
    text = text.strip()
    if not text:
        return clock.now()
    match = TIME_PATTERN.match(text)
    if not match:
        raise ValueError("A time as HH:MM (or YYYY-MM-DD HH:MM); blank for now.")
    day_text, hours, minutes = match.groups()
    try:
        on = date.fromisoformat(day_text) if day_text else day
        at = time(int(hours), int(minutes))
    except ValueError as error:
        raise ValueError("Not a time of day: hours 0-23, minutes 0-59.") from error
    return datetime.combine(on, at, tzinfo=clock.tz())


def _text(form: Mapping[str, str], name: str) -> str:
    # never cut: a text over its bound is refused by the entry's model, beside its field
    return form.get(name, "").strip()


def _given(form: Mapping[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: _text(form, name) for name in names if _text(form, name)}


def _flag(form: Mapping[str, str], name: str) -> bool:
    return form.get(name, "") in ("on", "yes", "true", "1")


def entry_fields(kind: str, form: Mapping[str, str]) -> dict[str, Any]:
    """The posted text as the fields of a ``kind`` entry (blank fields left out)."""
    flags = {name: _flag(form, name) for name in FORM_FIELDS[kind] if name in CHECKBOXES}
    texts = _given(form, tuple(n for n in FORM_FIELDS[kind] if n not in CHECKBOXES))
    if kind == "check_in":
        baseline = {name: texts.pop(name) for name in VITAL_FIELDS_ALL if name in texts}
        return {**flags, **texts, "baseline": baseline}
    if kind == "adjunct" and "route" in texts:
        texts["route"] = texts["route"].lower()
    if kind == "side_effect":
        troublesome = texts.pop("troublesome", "")
        if troublesome in ("yes", "no"):
            texts["troublesome"] = troublesome == "yes"  # type: ignore[assignment]
    return {**flags, **texts}


def required_at_check_in() -> tuple[str, ...]:
    """The observations check-in needs (a complete set, ``session_rules.yaml``)."""
    return tuple(knowledge().session_rules.monitoring.complete_set)


def entry_from_form(
    kind: str, form: Mapping[str, str], day: date, clock: ClinicClock
) -> tuple[Any | None, FormState]:
    """The chart entry a form posts, or None with every problem named beside its field."""
    state = FormState(kind=kind, values={k: v for k, v in form.items() if k != "csrf_token"})
    try:
        at = chart_time(form.get("time", ""), day, clock)
    except ValueError as error:
        state.add("time", str(error))
        at = clock.now()
    data = {"kind": kind, "occurred_at": at, **entry_fields(kind, form)}
    for name, words in REQUIRED_CHECKS.get(kind, ()):
        if not _flag(form, name):
            state.add(name, f"Required: {words} before check-in.")
    if kind == "check_in":
        for name in required_at_check_in():
            if name not in data["baseline"]:
                state.add(name, "Required at check-in (a complete set of observations).")
    try:
        entry = ENTRY.validate_python(data)
    except ValidationError as error:
        add_validation_errors(state, error, tagged=True)
        return None, state
    return (None, state) if state.failed else (entry, state)


def _number_text(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def form_values(
    entry: Any, day: date, clock: ClinicClock, programme: PumpProgramme | None
) -> dict[str, str]:
    """An entry as its form shows it (to correct it): the reverse of ``entry_from_form``."""
    data: dict[str, Any] = entry.model_dump(mode="python")
    at: datetime = data.pop("occurred_at")
    local = clock.local(at)
    values = {"time": f"{local:%H:%M}" if local.date() == day else f"{local:%Y-%m-%d %H:%M}"}
    data.update(data.pop("baseline", None) or {})
    data.pop("programme", None)
    if data.get("rate_mg_per_h") is not None and programme is not None:
        step = next(
            (s for s in programme.steps if abs(s.rate_mg_per_h - data["rate_mg_per_h"]) < 1e-6),
            None,
        )
        data["rate_ml_per_h"] = step.rate_ml_per_h if step else None
    for name, value in data.items():
        if name not in FORM_FIELDS.get(entry.kind, ()):
            continue
        if name == "troublesome":
            values[name] = "" if value is None else ("yes" if value else "no")
        elif name == "rate_ml_per_h":
            values[name] = "" if value is None else repr(float(value))
        elif isinstance(value, bool):
            values[name] = "on" if value else ""
        elif isinstance(value, int | float):
            values[name] = _number_text(value)
        elif value is not None:
            values[name] = str(value)
    return values


def form_helpers(
    form: FormState | None, prefill: Mapping[str, str] | None = None, prefill_kind: str = ""
) -> dict[str, Callable[..., Any]]:
    """What the templates ask of a form: a field's value (as typed after a refusal, else as
    prefilled for a correction, else the default), whether a box is ticked, its problem."""

    def typed(kind: str) -> Mapping[str, str] | None:
        if form is not None and form.kind == kind:
            return form.values
        if prefill is not None and kind == prefill_kind:
            return prefill
        return None

    def value(kind: str, name: str, default: Any = "") -> str:
        values = typed(kind)
        if values is None:
            return "" if default is None else str(default)
        return values.get(name, "")

    def checked(kind: str, name: str, default: bool = False) -> bool:
        values = typed(kind)
        return default if values is None else values.get(name, "") in ("on", "yes", "true", "1")

    def error(kind: str, name: str = "") -> str:
        if form is None or form.kind != kind:
            return ""
        return form.errors.get(name, "") if name else form.message

    return {"value": value, "checked": checked, "error": error}
