"""Forms that help: every problem of a posted form at once, in a clinician's words, beside the
field it concerns, with what was typed given back.

A page reads its form, checks what only the form knows (a required field left empty, a number
that is not one), lets the service validate the rest, and collects every problem in one
``FormErrors``: keyed by the form's field (the id of its control, so that the summary can link
to it), one message per field, shown in the form's order. ``_form.html`` shows them: a summary
at the top linking to each field, and the message beside the field (``aria-invalid``,
``aria-describedby``).

The words are made here from what validation reports, never copied from it: pydantic's error
type with its numbers, the domain's ``OutOfBounds`` rule with its facts, a service's
``InvalidInput``; the field is named by the form's label, and a clinical number is held to its
physiological bound from ``knowledge/data/input_bounds.yaml`` ("Weight must be between 0.2 and
650 kg."). No clinical number is written in this module.

A page's handler ends with ``submit``: the service called with what the form gave, then on to
the next page, or the form shown again with the problems and what was typed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from annotated_types import MaxLen
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from ketapath.domain.errors import OutOfBounds
from ketapath.domain.instruments import InvalidAnswerError
from ketapath.domain.patient import EARLIEST_DATE
from ketapath.knowledge.bounds import Bound, input_bounds
from ketapath.services.errors import InvalidInput, ServiceError
from ketapath.services.validation import field_path

# The longest number a form accepts, in characters. Not a clinical bound: no measurement needs
# more digits, and a longer "number" is a paste gone wrong (the clinical bounds are checked
# after it is read).
NUMBER_LENGTH = 24
# The longest typed text shown back inside a message (the field itself keeps all of it).
SHOWN_LENGTH = 40

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
R = TypeVar("R")

Where = Callable[[str], str]
"""Maps a validated path (``medications[1].dose``) to the id of the form's field for it
(``med_dose_2``); an empty string for a problem no field of the form shows."""


@dataclass(frozen=True)
class Problem:
    """One problem of a form: the field's id (empty for the form as a whole) and the words."""

    field: str
    message: str


def brief(value: float | int) -> str:
    """A number as a person writes it: 650, 0.2, 12.5, 2,147,483,647; a huge or tiny one in
    short scientific form (1e+300), never hundreds of digits."""
    number = float(value)
    if not math.isfinite(number):
        return "not a number"
    if number != 0 and not 1e-4 <= abs(number) < 1e12:
        return f"{number:.3g}"
    if number.is_integer():
        return f"{int(number):,}"
    return f"{number:.6g}"


def day_text(value: date | datetime | str) -> str:
    """A day in words (1 January 1900)."""
    if isinstance(value, str):
        try:
            day = date.fromisoformat(value[:10])
        except ValueError:
            return value
        return day_text(day)
    return f"{value.day} {value:%B %Y}"


def shown(text: str) -> str:
    """Typed text quoted in a message, cut short when long."""
    text = " ".join(text.split())
    return text if len(text) <= SHOWN_LENGTH else text[: SHOWN_LENGTH - 1] + "…"


def max_length(model: type[BaseModel], name: str) -> int:
    """The longest text the model's field accepts (its ``max_length``), for ``maxlength``."""
    for item in model.model_fields[name].metadata:
        if isinstance(item, MaxLen):
            return item.max_length
    raise KeyError(f"{model.__name__}.{name} has no max_length")


def date_limits(today: date) -> dict[str, str]:
    """``min`` and ``max`` of a date input for a day that has happened: not before the
    record's earliest date, not after the clinic's today."""
    return {"min": EARLIEST_DATE.isoformat(), "max": today.isoformat()}


def bound_of(path: str) -> Bound | None:
    """The physiological bound of the clinical number at ``path`` (by its field's name:
    ``weight_kg``, ``height_cm``, ``age_years``), if it has one."""
    name = re.split(r"[.\[]", path)[-1] if path else ""
    return input_bounds().by_id.get(name)


def between(label: str, bound: Bound) -> str:
    return (
        f"{label} must be between {brief(bound.minimum)} and {brief(bound.maximum)} {bound.unit}."
    )


REQUIRED = "{label} is required."
# a field path as services name it: lower case, dots and indexes (patient.medications[0].dose)
_TECHNICAL_PREFIX = re.compile(r"^[a-z_][a-z0-9_.\[\]]*:\s+")


def plain(text: str) -> str:
    """A validation or service message without its internal parts: pydantic's "Value error, "
    and a leading field path (``patient.weight_kg: ``); a full sentence."""
    text = text.removeprefix("Value error, ").strip()
    text = _TECHNICAL_PREFIX.sub("", text, count=1)
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def clause(text: str) -> str:
    """A sentence continued after a colon: its first word in lower case (not an acronym)."""
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text


def rule_message(rule: OutOfBounds, label: str) -> str:
    """An ``OutOfBounds`` rule of the record in words."""
    facts = rule.facts
    if rule.kind == "before_earliest":
        return f"{label} cannot be before {day_text(facts['earliest'])}."
    if rule.kind == "before_birth":
        return f"{label} cannot be before the date of birth ({day_text(facts['birth'])})."
    if rule.kind == "in_future":
        today = facts.get("today")
        return f"{label} cannot be in the future" + (
            f" (today is {day_text(today)})." if today else "."
        )
    if rule.kind == "age_above":
        return (
            f"{label} {day_text(facts['day'])} would make the patient older than "
            f"{brief(facts['maximum'])} years: check the year."
        )
    if rule.kind == "no_age":
        return f"{label} is required (or the age, when the date of birth is not known)."
    if rule.kind == "pregnant_male":
        return f"{label} cannot be “pregnant” when the sex is male."
    if rule.kind == "amount_without_unit":
        return f"{label} is required with a dose (for example mg, or mcg/h for a patch)."
    if rule.kind == "implausible_amount":
        problem = str(facts["problem"]).rstrip(".")
        return f"{label}: {brief(facts['amount'])} {facts['unit']} is {problem}."
    return f"{label}: {clause(plain(str(rule)))}"


_NUMBER_TYPES = {"float_parsing", "float_type", "finite_number", "decimal_parsing"}
_WHOLE_NUMBER_TYPES = {"int_parsing", "int_type", "int_from_float", "int_parsing_size"}
_RANGE_TYPES = {"greater_than", "greater_than_equal", "less_than", "less_than_equal"}
_DATE_TYPES = {"date_parsing", "date_from_datetime_parsing", "date_from_datetime_inexact"}
_DATE_TYPES |= {"date_type", "date_future", "date_past"}
_DATETIME_TYPES = {"datetime_parsing", "datetime_from_date_parsing", "datetime_type"}


def _range(kind: str, ctx: Mapping[str, Any], label: str) -> str:
    if kind == "greater_than_equal":
        return f"{label} must be {brief(ctx['ge'])} or more."
    if kind == "greater_than":
        return f"{label} must be more than {brief(ctx['gt'])}."
    if kind == "less_than_equal":
        return f"{label} must be {brief(ctx['le'])} or less."
    return f"{label} must be less than {brief(ctx['lt'])}."


def problem_message(item: ErrorDetails, label: str, path: str = "") -> str:
    """One problem pydantic found, in words, naming the field by ``label``; ``path`` (the
    field's place in the document) finds the physiological bound of a clinical number."""
    kind = item["type"]
    ctx: Mapping[str, Any] = item.get("ctx") or {}
    given = item.get("input")
    bound = bound_of(path)
    if kind == "missing" or (kind == "string_too_short" and ctx.get("min_length") == 1):
        return REQUIRED.format(label=label)
    if kind == "string_too_short":
        return f"{label} must have at least {ctx['min_length']:,} characters."
    if kind == "string_too_long":
        length = f"; this has {len(given):,}" if isinstance(given, str) else ""
        return f"{label} can be at most {ctx['max_length']:,} characters long{length}."
    if kind == "too_long":
        return f"{label} can have at most {ctx['max_length']:,} entries."
    if kind == "too_short":
        return f"{label} needs at least {ctx['min_length']:,} entries."
    if bound is not None and kind in _RANGE_TYPES | _NUMBER_TYPES | _WHOLE_NUMBER_TYPES:
        return between(label, bound)
    if kind in _RANGE_TYPES:
        return _range(kind, ctx, label)
    if kind in _NUMBER_TYPES:
        return f"{label} must be a number."
    if kind in _WHOLE_NUMBER_TYPES:
        return f"{label} must be a whole number."
    if kind in _DATE_TYPES:
        return f"{label} must be a date (for example 2024-03-01)."
    if kind in _DATETIME_TYPES:
        return f"{label} must be a date and time (for example 2024-03-01 09:30)."
    if kind in ("literal_error", "enum"):
        return f"{label}: choose one of the options offered."
    if kind in ("bool_parsing", "bool_type"):
        return f"{label}: answer yes or no."
    rule = ctx.get("error")
    if isinstance(rule, OutOfBounds):
        return rule_message(rule, label)
    return f"{label}: {clause(plain(str(item['msg'])))}"


class FormErrors:
    """The problems of one posted form, by the id of the field each concerns.

    ``labels`` gives the form's words for each field, in the form's order (the summary follows
    it); ``where`` maps a path the service or the model names (``medications[1].dose``, with
    ``root``, e.g. ``patient``, left off) to the field's id. A field keeps its first problem.
    """

    def __init__(
        self,
        labels: Mapping[str, str] | None = None,
        *,
        where: Where | None = None,
        root: str = "",
        path_label: Callable[[str, str], str] | None = None,
    ) -> None:
        self.labels: dict[str, str] = dict(labels or {})
        self.where = where or (lambda path: path if path in self.labels else "")
        self.root = root
        self.path_label = path_label
        self.messages: dict[str, str] = {}

    def __bool__(self) -> bool:
        return bool(self.messages)

    def __len__(self) -> int:
        return len(self.messages)

    def __contains__(self, field: object) -> bool:
        return field in self.messages

    def get(self, field: str) -> str:
        """The problem of the field ``field`` (empty when it has none)."""
        return self.messages.get(field, "")

    def any(self, fields: Iterable[str]) -> bool:
        """Whether any of ``fields`` has a problem (e.g. a row of a table)."""
        return any(field in self.messages for field in fields)

    def label(self, field: str) -> str:
        return self.labels.get(field) or field.replace("_", " ").strip().capitalize() or "Form"

    @property
    def problems(self) -> list[Problem]:
        """Every problem, in the form's order (problems of no field last)."""
        order = {field: index for index, field in enumerate(self.labels)}
        fields = sorted(self.messages, key=lambda f: (not f, order.get(f, len(order))))
        return [Problem(field, self.messages[field]) for field in fields]

    def add(self, field: str, message: str) -> None:
        """Add ``message`` for ``field`` unless the field already has a problem."""
        self.messages.setdefault(field, message)

    def require(self, values: Mapping[str, str], *fields: str) -> None:
        """Each of ``fields`` left empty (or only spaces) is a problem."""
        for field in fields:
            if not values.get(field, "").strip():
                self.add(field, REQUIRED.format(label=self.label(field)))

    def limit(self, values: Mapping[str, str], field: str, length: int) -> None:
        """Text in ``field`` longer than ``length`` characters is a problem."""
        text = values.get(field, "")
        if len(text) > length:
            self.add(
                field,
                f"{self.label(field)} can be at most {length:,} characters long; "
                f"this has {len(text):,}.",
            )

    def number(self, values: Mapping[str, str], field: str, path: str = "") -> float | None:
        """The number typed into ``field`` (a decimal comma is accepted), None when empty; a
        typed text that is not a finite number is a problem (and None). ``path`` names it in
        the document, for its physiological bound."""
        raw = values.get(field, "").strip().replace(",", ".")
        if not raw:
            return None
        label = self.label(field)
        try:
            number = float(raw) if len(raw) <= NUMBER_LENGTH else math.inf
        except ValueError:
            self.add(field, f"{label} must be a number, not “{shown(raw)}”.")
            return None
        if not math.isfinite(number):
            bound = bound_of(path or field)
            self.add(field, between(label, bound) if bound else f"{label} must be a plain number.")
            return None
        return number

    def _label(self, path: str, field: str) -> str:
        """The words for the problem's place: the page's for a path, else the field's label."""
        return (self.path_label(path, field) if self.path_label else "") or self.label(field)

    def _field(self, path: str) -> str:
        if self.root and (path == self.root or path.startswith(self.root + ".")):
            path = path[len(self.root) :].lstrip(".")
        return self.where(path)

    def add_details(self, found: Sequence[ErrorDetails], prefix: str = "") -> None:
        """Every problem pydantic found (``ValidationError.errors()``); ``prefix`` is the path
        of what was validated inside the document (``medications[0]``)."""
        for item in found:
            path = field_path(tuple(item["loc"]))
            if prefix:
                path = f"{prefix}.{path}" if path else prefix
            ctx: Mapping[str, Any] = item.get("ctx") or {}
            rule = ctx.get("error")
            if isinstance(rule, OutOfBounds) and rule.field:
                path = f"{path}.{rule.field}" if path else rule.field
            field = self._field(path)
            relative = path.removeprefix(self.root + ".") if self.root else path
            self.add(field, problem_message(item, self._label(relative, field), relative))

    def add_validation(self, error: ValidationError, prefix: str = "") -> None:
        self.add_details(error.errors(), prefix)

    def add_error(self, error: ServiceError) -> None:
        """A service's refusal: every problem its validation found, a rule of the record in
        words, or else its message without the internal field name."""
        if isinstance(error, InvalidInput) and error.problems:
            self.add_details(error.problems)
            return
        path = error.field or ""
        field = self._field(path)
        relative = path.removeprefix(self.root + ".") if self.root else path
        cause = error.__cause__
        if isinstance(cause, OutOfBounds):
            self.add(field, rule_message(cause, self._label(relative, field)))
            return
        if isinstance(cause, InvalidAnswerError):
            self.add(
                field,
                f"{self._label(relative, field)}: {shown(str(cause.value))} is not an answer it "
                f"takes ({cause.allowed}).",
            )
            return
        text = plain(error.message) or "This could not be done."
        if field:
            text = f"{self._label(relative, field)}: {clause(text)}"
        self.add(field, text)


def validated(
    errors: FormErrors,
    model: type[M],
    data: Mapping[str, Any],
    *,
    prefix: str = "",
    context: dict[str, Any] | None = None,
) -> M | None:
    """``data`` validated as ``model``, or None with every problem added to ``errors``."""
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        errors.add_validation(error, prefix)
        return None


def submit(
    errors: FormErrors,
    data: T | None,
    call: Callable[[T], R],
    done: Callable[[R], str],
    again: Callable[[int], Response],
    *,
    refusals: tuple[type[ServiceError], ...],
    form_refusals: tuple[type[ServiceError], ...] = (),
) -> Response:
    """The end of a posted form: when the form has no problem and gave ``data``, the service
    ``call``ed with it and a redirect (303) to ``done(result)``; otherwise the form ``again``,
    with the status to answer. That is 422 for a problem of the form; when the service refuses
    with one of ``refusals``, its problem is added to ``errors`` and the status is the
    refusal's own, or 422 for one of ``form_refusals`` (a refusal of what the form names)."""
    status_code = 422
    if data is not None and not errors:
        try:
            result = call(data)
        except refusals as error:
            errors.add_error(error)
            status_code = 422 if isinstance(error, form_refusals) else error.status_code
        else:
            return RedirectResponse(done(result), status_code=303)
    return again(status_code)
