"""Mood and self-harm in the eligibility and safety screen, from the questionnaires recorded for
the patient (PHQ-9, GAD-7, DASS-21): the latest of each instrument is read.

- PHQ-9 item 9 above "not at all" (thoughts of being better off dead or of self-harm) is a
  ``soft`` finding whatever the total: the instrument's guidance is to assess it (the alert's
  wording in ``instruments.yaml``, Kroenke et al. 2001), so a physician must have assessed the
  risk of suicide and self-harm, and says so in the override reason, before an order is signed.
  An unanswered item 9 is a ``warning``: unknown is not "not at all".
- A severe score (PHQ-9 total in its severe band; GAD-7 severe; DASS-21 depression or anxiety
  severe or extremely severe, by the published bands in ``instruments.yaml``) is ``soft``: the
  position statement asks for the factors that might predispose to harm from the infusion to
  be identified and documented (FPM (ANZCA) 2016, section 3), and ketamine's psychomimetic
  effects make severe depression and anxiety such factors; the override reason documents how
  it was assessed. Neither is a contraindication: nothing here makes a patient not eligible.

The screen stays pure: the screening service passes the patient's recorded assessments (or
the command line those of a patient file's ``questionnaires``) as :class:`RecordedScore`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from ketapath.domain.errors import InvalidInput
from ketapath.domain.findings import Finding, finding
from ketapath.domain.instruments import (
    InstrumentError,
    InstrumentScore,
    UnknownInstrumentError,
    get_instrument,
    score,
)
from ketapath.domain.patient import Patient, patient_from_dict, read_patient_file
from ketapath.knowledge.base import Cite, Source
from ketapath.knowledge.clinical import Knowledge, knowledge
from ketapath.knowledge.instruments import Alert, Instrument

# The instruments the screen reads, and the scales whose severe bands it reports.
SEVERE_SCALES: Mapping[tuple[str, str], str] = {
    ("phq9", "total"): "mood:severe-depression",
    ("gad7", "total"): "mood:severe-anxiety",
    ("dass21", "depression"): "mood:severe-depression",
    ("dass21", "anxiety"): "mood:severe-anxiety",
}
SEVERE_BANDS = frozenset({"severe", "extremely severe"})
SCREENED_INSTRUMENTS = ("phq9", "gad7", "dass21")
SELF_HARM_ITEM = ("phq9", "q9")
HARM_FACTORS = Cite(
    ref="fpm-anzca-2016-ketamine",
    at="section 3 (factors that might predispose to potential harm from ketamine infusion)",
)
WORDS = {
    "mood:severe-depression": "severe depression",
    "mood:severe-anxiety": "severe anxiety",
}


@dataclass(frozen=True)
class RecordedScore:
    """A questionnaire the patient answered, scored; ``ref`` says where it is recorded."""

    score: InstrumentScore
    given_on: date
    ref: str = ""

    @property
    def instrument_id(self) -> str:
        return self.score.instrument_id


@dataclass(frozen=True)
class QuestionnaireSeen:
    """What the screen read of one questionnaire (kept with the screen's result)."""

    instrument_id: str
    given_on: str
    ref: str
    total: float | None
    band: str | None


def latest(scores: Sequence[RecordedScore]) -> list[RecordedScore]:
    """The latest score of each screened instrument (a later entry wins a tie)."""
    out: dict[str, RecordedScore] = {}
    for recorded in scores:
        if recorded.instrument_id not in SCREENED_INSTRUMENTS:
            continue
        known = out.get(recorded.instrument_id)
        if known is None or recorded.given_on >= known.given_on:
            out[recorded.instrument_id] = recorded
    return [out[i] for i in SCREENED_INSTRUMENTS if i in out]


def seen(scores: Sequence[RecordedScore]) -> tuple[QuestionnaireSeen, ...]:
    """The questionnaires the screen reads, as kept with its result."""
    return tuple(
        QuestionnaireSeen(
            r.instrument_id, r.given_on.isoformat(), r.ref, r.score.total, r.score.band
        )
        for r in latest(scores)
    )


def mood_findings(scores: Sequence[RecordedScore], kb: Knowledge | None = None) -> list[Finding]:
    """The findings of the latest PHQ-9, GAD-7 and DASS-21 (see the module docstring)."""
    kb = kb or knowledge()
    out: list[Finding] = []
    for recorded in latest(scores):
        instrument = get_instrument(recorded.instrument_id)
        if recorded.instrument_id == SELF_HARM_ITEM[0]:
            out += _self_harm(recorded, instrument, kb)
        out += _severe(recorded, instrument, kb)
    return out


def _where(recorded: RecordedScore) -> str:
    name = get_instrument(recorded.instrument_id).short_name
    ref = f", {recorded.ref}" if recorded.ref else ""
    return f"{name} of {recorded.given_on.isoformat()}{ref}"


def _self_harm(recorded: RecordedScore, instrument: Instrument, kb: Knowledge) -> list[Finding]:
    item = SELF_HARM_ITEM[1]
    value = recorded.score.answers.get(item)
    alerts: list[Alert] = [a for a in instrument.alerts if a.item == item]
    for alert in alerts:
        if value is None and alert.when_missing:
            return [
                finding(
                    "mood:phq9-item9-unanswered",
                    f"{_where(recorded)}: {alert.message}",
                    source=alert.source,
                    subject=f"{instrument.short_name} item 9",
                    kb=kb,
                )
            ]
        if value is not None and alert.at_least is not None and value >= alert.at_least:
            anchor = instrument.response_for(item).anchors.get(value, "")
            return [
                finding(
                    "mood:phq9-item9",
                    f"{_where(recorded)}: item 9 answered {value}"
                    + (f" ('{anchor}')" if anchor else "")
                    + f". {alert.message} Before an order is signed a physician assesses the "
                    "risk of suicide and self-harm, and says so in the override reason.",
                    source=alert.source,
                    subject=f"{instrument.short_name} item 9",
                    kb=kb,
                )
            ]
    return []


def _severe(recorded: RecordedScore, instrument: Instrument, kb: Knowledge) -> list[Finding]:
    out = []
    for scale in instrument.scales:
        code = SEVERE_SCALES.get((instrument.id, scale.id))
        result = recorded.score.subscales.get(scale.id)
        if code is None or result is None or result.band not in SEVERE_BANDS:
            continue
        assert result.value is not None and scale.bands_source is not None
        start = next(b.at_least for b in scale.bands if b.label == result.band)
        name = f"{instrument.short_name} {'total' if scale.id == 'total' else scale.name.lower()}"
        out.append(
            finding(
                code,
                f"{_where(recorded)}: {name} {result.value:g} of {result.maximum:g}, in the "
                f"{result.band} band (from {start:g}). {WORDS[code].capitalize()} may predispose "
                "to harm from a ketamine infusion: before an order is signed a physician "
                "assesses it and says how in the override reason.",
                source=_severe_source(instrument, scale.bands_source),
                subject=name,
                kb=kb,
            )
        )
    return out


def _severe_source(instrument: Instrument, bands_source: Source) -> Source:
    cites: list[Cite] = []
    for cite in (*bands_source.cite, *instrument.source.cite, HARM_FACTORS):
        if cite.ref not in {c.ref for c in cites}:
            cites.append(cite)
    return Source(cite=tuple(cites), note=bands_source.note)


# ------------------------------------------------------------------ patient files


class Questionnaire(BaseModel):
    """One questionnaire in a patient file's ``questionnaires`` (docs/patient-file.md); the
    names of the API's assessments (``instrument``, ``administered_at``) are accepted too."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    instrument_id: str = Field(
        min_length=1, max_length=40, validation_alias=AliasChoices("instrument_id", "instrument")
    )
    given_on: date = Field(
        validation_alias=AliasChoices("given_on", "administered_on", "administered_at")
    )
    answers: dict[str, int | str | None]

    @field_validator("given_on", mode="before")
    @classmethod
    def _day_of_a_time(cls, value: Any) -> Any:
        # "2026-01-10T09:30:00Z" (a time, as the API records it): the day it was given
        if isinstance(value, str) and "T" in value:
            return value.split("T", 1)[0]
        if isinstance(value, datetime):
            return value.date()
        return value


def questionnaires_from_file(
    raw: Any, *, origin: str = "patient", today: date | None = None, key: str = "questionnaires"
) -> list[RecordedScore]:
    """The ``questionnaires`` of a patient file, scored; ``today`` bounds their dates (this
    computer's date by default, right for the command line). Raises ``InvalidInput`` naming
    the entry and the item at fault."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput(
            f"{origin}: field '{key}': give a list of questionnaires",
            field=key,
        )
    today = today or date.today()
    out = []
    for index, entry in enumerate(raw):
        where = f"{key}[{index}]"
        try:
            item = Questionnaire.model_validate(entry)
        except ValidationError as exc:
            problem = exc.errors()[0]
            field = ".".join([where, *(str(p) for p in problem["loc"])])
            raise InvalidInput(f"{origin}: field '{field}': {problem['msg']}", field=field) from exc
        if item.given_on > today:
            raise InvalidInput(
                f"{origin}: field '{where}.given_on': {item.given_on} is in the future",
                field=f"{where}.given_on",
            )
        try:
            scored = score(item.instrument_id, item.answers)
        except UnknownInstrumentError as exc:
            field = f"{where}.instrument_id"
            raise InvalidInput(f"{origin}: field '{field}': {exc}", field=field) from exc
        except InstrumentError as exc:
            item_id = getattr(exc, "item_id", "")
            field = f"{where}.answers" + (f".{item_id}" if item_id else "")
            raise InvalidInput(f"{origin}: field '{field}': {exc}", field=field) from exc
        out.append(RecordedScore(scored, item.given_on, ref=""))
    return out


def load_screening_file(path: str | Path) -> tuple[Patient, list[str], list[RecordedScore]]:
    """A patient file with its questionnaires: the patient, input warnings, the scores."""
    return screening_from_document(read_patient_file(path), origin=str(path))


def screening_from_document(
    raw: Any, *, origin: str
) -> tuple[Patient, list[str], list[RecordedScore]]:
    """A patient document with its questionnaires (see :func:`load_screening_file`)."""
    patient, warnings = patient_from_dict(raw, origin=origin)
    key = "questionnaires"
    if isinstance(raw, dict) and key not in raw and "assessments" in raw:
        key = "assessments"  # the clinic's name for them (the API's assessments)
    answered = raw.get(key) if isinstance(raw, dict) else None
    return patient, warnings, questionnaires_from_file(answered, origin=origin, key=key)
