"""Scoring of assessment instruments (NRS, BPI, PSEQ, DN4, PCS, DASS-21, PHQ-9, GAD-7, PGIC).

One algorithm scores every instrument from its definition in the knowledge base
(``knowledge/data/instruments.yaml``):

1. every answer is checked against its item's range (a wrong answer is an error that names the
   item and the range, never a silently clipped value);
2. each scale (total or subscale) is computed from its items: summed or averaged, then
   multiplied (DASS-21 doubles its sums to match the DASS-42);
3. missing items follow the scale's published rule: a summed scale with no more than
   ``max_missing`` items missing is prorated (the answered sum scaled up to the full item
   count), a mean scale is averaged over its answered items, and beyond the limit the scale is
   not scored;
4. the score is placed in its interpretation band, and item alerts (e.g. PHQ-9 item 9) are
   raised whatever the total.

Answers are given by item id or alias (``q1``, ``worst`` ...); ``None`` means unanswered.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ketapath.domain.findings import citation_text
from ketapath.knowledge.instruments import Instrument, ResponseScale, Scale, load_instruments

Answer = int | float | str | bool | None

_YES = frozenset({"yes", "y", "true", "1"})
_NO = frozenset({"no", "n", "false", "0"})
_INTEGER = re.compile(r"^[+-]?\d+$")
_INTEGER_FLOAT = re.compile(r"^[+-]?\d+\.0*$")
# no rating is written with more characters than this; longer text is refused before parsing
_MAX_ANSWER_CHARS = 12


class InstrumentError(ValueError):
    """Base of every scoring error; the message names the instrument and the item at fault."""


class UnknownInstrumentError(InstrumentError):
    def __init__(self, instrument_id: str, known: tuple[str, ...]) -> None:
        self.instrument_id = instrument_id
        self.known = known
        super().__init__(
            f"unknown instrument {instrument_id!r}; known instruments: {', '.join(known)}"
        )


class UnknownItemError(InstrumentError):
    def __init__(self, instrument_id: str, item_id: str, valid: tuple[str, ...]) -> None:
        self.instrument_id = instrument_id
        self.item_id = item_id
        self.valid = valid
        super().__init__(
            f"{instrument_id}: unknown item {item_id!r}; its items are {', '.join(valid)}"
        )


class InvalidAnswerError(InstrumentError):
    """An answer that is not a value the item accepts."""

    def __init__(self, instrument_id: str, item_id: str, value: object, allowed: str) -> None:
        self.instrument_id = instrument_id
        self.item_id = item_id
        self.value = value
        self.allowed = allowed
        super().__init__(
            f"{instrument_id} item {item_id}: answer {value!r} is not allowed; "
            f"the item takes {allowed}"
        )


class AnswerOutOfRangeError(InvalidAnswerError):
    """A whole-number answer outside the item's range."""

    def __init__(
        self, instrument_id: str, item_id: str, value: int, minimum: int, maximum: int
    ) -> None:
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(
            instrument_id, item_id, value, f"a whole number from {minimum} to {maximum}"
        )


class DuplicateAnswerError(InstrumentError):
    def __init__(self, instrument_id: str, item_id: str, names: tuple[str, ...]) -> None:
        self.instrument_id = instrument_id
        self.item_id = item_id
        super().__init__(
            f"{instrument_id} item {item_id} is answered more than once "
            f"(as {', '.join(repr(n) for n in names)})"
        )


@dataclass(frozen=True)
class ScaleScore:
    """One scale (total or subscale) of a scored instrument."""

    scale_id: str
    name: str
    value: float | None
    minimum: float
    maximum: float
    band: str | None
    items_answered: int
    items_missing: tuple[str, ...]
    prorated: bool
    scorable: bool
    direction: str
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "scale_id": self.scale_id,
            "name": self.name,
            "value": self.value,
            "range": [self.minimum, self.maximum],
            "band": self.band,
            "items_answered": self.items_answered,
            "items_missing": list(self.items_missing),
            "prorated": self.prorated,
            "scorable": self.scorable,
            "direction": self.direction,
            "message": self.message,
        }


@dataclass(frozen=True)
class InstrumentScore:
    """The result of scoring one instrument.

    ``total`` and ``band`` are those of the instrument's total scale (``None`` when it has no
    total, as the BPI and DASS-21, or when the total cannot be scored). ``scorable`` is true
    when every scale could be scored. ``answers`` holds the validated item values by item id.
    """

    instrument_id: str
    name: str
    total: float | None
    band: str | None
    subscales: dict[str, ScaleScore]
    items_answered: int
    items_missing: tuple[str, ...]
    prorated: bool
    scorable: bool
    messages: tuple[str, ...]
    citation: str
    total_scale_id: str | None = None
    answers: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "instrument_id": self.instrument_id,
            "name": self.name,
            "total": self.total,
            "band": self.band,
            "total_scale_id": self.total_scale_id,
            "scorable": self.scorable,
            "prorated": self.prorated,
            "items_answered": self.items_answered,
            "items_missing": list(self.items_missing),
            "subscales": {k: v.to_dict() for k, v in self.subscales.items()},
            "messages": list(self.messages),
            "citation": self.citation,
            "answers": dict(self.answers),
        }


def list_instruments() -> tuple[Instrument, ...]:
    """Every instrument the knowledge base can score, in file order."""
    return load_instruments()


def get_instrument(instrument_id: str) -> Instrument:
    """One instrument by id (case-insensitive)."""
    wanted = instrument_id.strip().lower()
    instruments = load_instruments()
    for inst in instruments:
        if inst.id == wanted:
            return inst
    raise UnknownInstrumentError(instrument_id, tuple(i.id for i in instruments))


def score(instrument_id: str, answers: Mapping[str, Answer]) -> InstrumentScore:
    """Score one instrument from answers keyed by item id or alias.

    Raises :class:`UnknownInstrumentError`, :class:`UnknownItemError`,
    :class:`InvalidAnswerError` (including :class:`AnswerOutOfRangeError`) or
    :class:`DuplicateAnswerError`; never clips or guesses an answer.
    """
    instrument = get_instrument(instrument_id)
    return score_instrument(instrument, answers)


def score_instrument(instrument: Instrument, answers: Mapping[str, Answer]) -> InstrumentScore:
    """Score an instrument definition (see :func:`score`)."""
    values = _validate_answers(instrument, answers)
    scale_scores = {sc.id: _score_scale(instrument, sc, values) for sc in instrument.scales}
    missing = tuple(it.id for it in instrument.items if it.id not in values)
    messages: list[str] = []
    for sc in scale_scores.values():
        if sc.message:
            messages.append(f"{sc.name}: {sc.message}")
    messages.extend(_alerts(instrument, values))
    total_score = scale_scores.get(instrument.total_scale) if instrument.total_scale else None
    return InstrumentScore(
        instrument_id=instrument.id,
        name=instrument.name,
        total=total_score.value if total_score else None,
        band=total_score.band if total_score else None,
        subscales=scale_scores,
        items_answered=len(values),
        items_missing=missing,
        prorated=any(s.prorated for s in scale_scores.values()),
        scorable=all(s.scorable for s in scale_scores.values()),
        messages=tuple(messages),
        citation=citation_text(instrument.source),
        total_scale_id=instrument.total_scale,
        answers=values,
    )


def band_for(scale: Scale, value: float) -> str | None:
    """The interpretation band holding ``value`` (the last band starting at or below it)."""
    label: str | None = None
    for band in scale.bands:
        if value >= band.at_least:
            label = band.label
    return label


def _lookup(instrument: Instrument) -> dict[str, str]:
    names: dict[str, str] = {}
    for it in instrument.items:
        names[it.id] = it.id
        for alias in it.aliases:
            names[alias] = it.id
    return names


def _validate_answers(instrument: Instrument, answers: Mapping[str, Answer]) -> dict[str, int]:
    names = _lookup(instrument)
    given_as: dict[str, list[str]] = {}
    values: dict[str, int] = {}
    for raw_key, raw_value in answers.items():
        key = str(raw_key).strip().lower()
        item_id = names.get(key)
        if item_id is None:
            raise UnknownItemError(
                instrument.id, str(raw_key), tuple(i.id for i in instrument.items)
            )
        given_as.setdefault(item_id, []).append(str(raw_key))
        if len(given_as[item_id]) > 1:
            raise DuplicateAnswerError(instrument.id, item_id, tuple(given_as[item_id]))
        value = _parse_answer(instrument.id, item_id, instrument.response_for(item_id), raw_value)
        if value is not None:
            values[item_id] = value
    # keep the instrument's item order, whatever order the answers came in
    return {it.id: values[it.id] for it in instrument.items if it.id in values}


def _parse_answer(
    instrument_id: str, item_id: str, response: ResponseScale, raw: Answer
) -> int | None:
    if raw is None:
        return None
    if response.kind == "yes_no":
        return _parse_yes_no(instrument_id, item_id, raw)
    allowed = f"a whole number from {response.minimum} to {response.maximum}"
    if isinstance(raw, bool):
        # True/False are not ratings; refuse rather than read them as 1/0
        raise InvalidAnswerError(instrument_id, item_id, raw, allowed)
    number: int
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, float):
        if not raw.is_integer():
            raise InvalidAnswerError(instrument_id, item_id, raw, allowed)
        number = int(raw)
    elif isinstance(raw, str):
        text = raw.strip()
        if text == "":
            return None
        if len(text) > _MAX_ANSWER_CHARS:
            raise InvalidAnswerError(
                instrument_id, item_id, raw[:_MAX_ANSWER_CHARS] + "...", allowed
            )
        if _INTEGER.match(text):
            number = int(text)
        elif _INTEGER_FLOAT.match(text):
            number = int(float(text))
        else:
            raise InvalidAnswerError(instrument_id, item_id, raw, allowed)
    else:
        raise InvalidAnswerError(instrument_id, item_id, raw, allowed)
    if not response.minimum <= number <= response.maximum:
        raise AnswerOutOfRangeError(
            instrument_id, item_id, number, response.minimum, response.maximum
        )
    return number


def _parse_yes_no(instrument_id: str, item_id: str, raw: Answer) -> int | None:
    allowed = "yes or no (or 1 / 0)"
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int) and raw in (0, 1):
        return raw
    if isinstance(raw, float) and raw in (0.0, 1.0):
        return int(raw)
    if isinstance(raw, str):
        text = raw.strip().lower()
        if text == "":
            return None
        if text in _YES:
            return 1
        if text in _NO:
            return 0
    raise InvalidAnswerError(instrument_id, item_id, raw, allowed)


def _score_scale(instrument: Instrument, scale: Scale, values: Mapping[str, int]) -> ScaleScore:
    minimum, maximum = instrument.computed_range(scale)
    answered = [values[i] for i in scale.items if i in values]
    missing = tuple(i for i in scale.items if i not in values)
    n_items = len(scale.items)
    rule = scale.missing

    def result(value: float | None, prorated: bool, scorable: bool, message: str) -> ScaleScore:
        return ScaleScore(
            scale_id=scale.id,
            name=scale.name,
            value=value,
            minimum=minimum,
            maximum=maximum,
            band=None if value is None else band_for(scale, value),
            items_answered=len(answered),
            items_missing=missing,
            prorated=prorated,
            scorable=scorable,
            direction=scale.direction,
            message=message,
        )

    if len(missing) > rule.max_missing:
        allowed = (
            "every item is needed"
            if rule.max_missing == 0
            else f"at most {rule.max_missing} may be missing"
        )
        return result(
            None,
            prorated=False,
            scorable=False,
            message=(
                f"not scored: {len(missing)} of {n_items} items missing "
                f"({', '.join(missing)}); {allowed} ({citation_text(rule.source)})"
            ),
        )
    prorated = bool(missing)
    if scale.combine == "sum":
        raw = float(sum(answered))
        if prorated:
            raw = raw * n_items / len(answered)
    else:
        raw = sum(answered) / len(answered)
    value = raw * scale.multiplier
    message = ""
    if prorated:
        how = "prorated" if scale.combine == "sum" else "mean of the answered items"
        message = (
            f"{how}: {len(missing)} of {n_items} items missing ({', '.join(missing)}); "
            f"{rule.rule.rstrip('.')} ({citation_text(rule.source)})"
        )
    return result(value, prorated=prorated, scorable=True, message=message)


def _alerts(instrument: Instrument, values: Mapping[str, int]) -> list[str]:
    raised: list[str] = []
    for alert in instrument.alerts:
        value = values.get(alert.item)
        if value is None:
            if alert.when_missing:
                raised.append(alert.message)
        elif alert.at_least is not None and value >= alert.at_least:
            raised.append(alert.message)
    return raised
