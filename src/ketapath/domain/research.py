"""De-identification for research: the Safe Harbor transformations and the export's tables.

The HIPAA Safe Harbor method (45 CFR 164.514(b)(2); ``knowledge/data/safe_harbor.yaml``)
allows a few identifiers only in a transformed form. The transformations are pure functions
here, each property-tested:

- ``age_band`` and ``age_in_years``: ten-year bands and whole years, with every age from 90
  on pooled as one category ("90 or older") and its number of years left out;
- ``zip3``: the first three digits of a US ZIP code, or ``000`` for a restricted area;
- ``day_number``: a date as the number of days from the patient's own anchor (the day they
  were registered), the same anchor for every date of the patient in every table, so that
  intervals are kept and no calendar date is exported;
- ``research_code``: the code a patient is exported under, a keyed hash (HMAC-SHA-256) of the
  clinic's random pseudonym: stable for one key, not derived from anything about the patient,
  and not reversible without the key (which is never exported).

``TABLES`` is the export's data dictionary: every table, every column with its type, unit,
meaning and the de-identification applied. ``checked_rows`` refuses a row with a column the
dictionary does not list (nothing reaches a file by accident) or a value of the wrong type.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

OLDEST_BAND = "90 or older"
POOLED_FROM_YEARS = 90
RESEARCH_CODE_PREFIX = "P-"
RESEARCH_CODE_LENGTH = 12  # base32 characters: 60 bits, no collision in any clinic's lifetime
LIST_SEPARATOR = "; "

ColumnType = Literal["string", "integer", "number", "boolean"]


# ------------------------------------------------------------------ the transformations


def age_in_years(age_years: float | None, pooled_from: int = POOLED_FROM_YEARS) -> int | None:
    """Whole years of age, or None when unknown or pooled (``pooled_from`` and over)."""
    if age_years is None or not math.isfinite(age_years) or age_years < 0:
        return None
    years = int(age_years)
    return None if years >= pooled_from else years


def age_band(
    age_years: float | None, pooled_from: int = POOLED_FROM_YEARS, label: str = OLDEST_BAND
) -> str | None:
    """A ten-year band ("60-69"), or ``label`` from ``pooled_from`` years on; None if unknown."""
    if age_years is None or not math.isfinite(age_years) or age_years < 0:
        return None
    if age_years >= pooled_from:
        return label
    low = int(age_years // 10) * 10
    return f"{low}-{low + 9}"


def zip3(zip_code: str | None, restricted: Iterable[str], replacement: str = "000") -> str | None:
    """The first three digits of a US ZIP code (``12345`` or ``12345-6789``), ``replacement``
    when they name a restricted area; None when there is no well-formed ZIP code."""
    if zip_code is None:
        return None
    text = zip_code.strip()
    digits = text.replace("-", "")
    if not (len(text) in (5, 10) and digits.isascii() and digits.isdigit()):
        return None
    if len(text) == 10 and text[5] != "-":
        return None
    prefix = text[:3]
    return replacement if prefix in frozenset(restricted) else prefix


def day_number(day: date, anchor: date) -> int:
    """``day`` as the number of days after ``anchor`` (negative before it)."""
    return (day - anchor).days


def research_code(key: bytes, pseudonym: str) -> str:
    """The patient's code in research data: ``P-`` and 12 base32 characters of
    HMAC-SHA-256(``key``, ``pseudonym``)."""
    digest = hmac.new(key, pseudonym.encode("utf-8"), hashlib.sha256).digest()
    text = base64.b32encode(digest).decode("ascii")
    return RESEARCH_CODE_PREFIX + text[:RESEARCH_CODE_LENGTH]


def joined(values: Iterable[str]) -> str:
    """A list as one cell: its values in order, without repeats, separated by ``; ``."""
    seen: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.append(value)
    return LIST_SEPARATOR.join(seen)


# ------------------------------------------------------------------ the data dictionary


@dataclass(frozen=True)
class Column:
    """One column of an exported table, as the data dictionary describes it."""

    name: str
    type: ColumnType
    unit: str
    meaning: str
    deidentification: str


@dataclass(frozen=True)
class Table:
    """One exported table: its name (the file's), what a row is, and its columns."""

    name: str
    row: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


CODE = (
    "research code (Safe Harbor (R), (c)): a keyed hash of the clinic's pseudonym, made for "
    "research only"
)
COUNTED = "numbered within the export (Safe Harbor (H)): not a record number of the clinic"
DAY = (
    "date shifted (Safe Harbor (C)): days from the patient's registration (day 0), the same "
    "anchor in every table; no calendar date is exported"
)
AS_RECORDED = "as recorded: not one of the 18 identifiers"
CODED = "coded value of a closed list: no free text"
VOCABULARY = "vocabulary codes only: text the vocabulary does not recognise is withheld"
WITHHELD = "free text withheld (Safe Harbor (A)-(R) may hide in it): only its count"
COMPUTED = "computed from the chart or the order: no identifier"
AGE = "age pooled (Safe Harbor (C)): empty from 90 years, which the band calls '90 or older'"
BAND = "ten-year band; every age from 90 on is the one category '90 or older' (Safe Harbor (C))"

_P = Column("patient_code", "string", "", "The patient's research code.", CODE)
_COURSE = Column(
    "course_number", "integer", "", "The course of the patient (1, 2 ... by signing).", COUNTED
)
_SESSION = Column(
    "session_number", "integer", "", "The session of the course (1, 2 ... as ordered).", COUNTED
)


def _c(name: str, kind: ColumnType, unit: str, meaning: str, how: str = AS_RECORDED) -> Column:
    return Column(name, kind, unit, meaning, how)


PATIENTS = Table(
    "patients",
    "one patient, as the latest version of the record says",
    (
        _P,
        _c("sex", "string", "", "male or female.", CODED),
        _c("age_band", "string", "years", "Age at registration, in a ten-year band.", BAND),
        _c(
            "registration_year",
            "integer",
            "",
            "Year the patient was registered: the only calendar element exported.",
            "year only (Safe Harbor (C) keeps the year)",
        ),
        _c(
            "zip3",
            "string",
            "",
            "First three digits of the home ZIP code; 000 for an area of 20,000 or fewer "
            "people; empty when none is recorded.",
            "generalised (Safe Harbor (B)): three digits or 000",
        ),
        _c("weight_kg", "number", "kg", "Body weight."),
        _c("height_cm", "number", "cm", "Height."),
        _c("pregnancy", "string", "", "pregnant, not_pregnant, unknown or not_applicable.", CODED),
        _c("consent", "string", "", "Consent to infusion: given, pending, refused, unable.", CODED),
        _c("laterality", "string", "", "Side of the pain.", CODED),
        _c("purposes", "string", "", "Purposes of the infusion ('; ' separated).", CODED),
        _c("diagnoses", "string", "", "Diagnosis vocabulary ids ('; ' separated).", VOCABULARY),
        _c("diagnoses_icd10cm", "string", "", "Their ICD-10-CM codes ('; ').", VOCABULARY),
        _c("diagnoses_icd11", "string", "", "Their ICD-11 codes ('; ').", VOCABULARY),
        _c("comorbidities", "string", "", "Comorbidity vocabulary ids ('; ').", VOCABULARY),
        _c(
            "medicines",
            "string",
            "",
            "Current medicines as ingredient ids (a combination joined by '+'; medicines "
            "separated by '; ').",
            VOCABULARY,
        ),
        _c("medicines_atc", "string", "", "WHO ATC codes of those ingredients ('; ').", VOCABULARY),
        _c("allergies", "string", "", "Allergies recognised as ingredient ids ('; ').", VOCABULARY),
        _c("central_sensitisation", "boolean", "", "Evidence of central sensitisation.", CODED),
        _c("poor_opioid_response", "boolean", "", "Poor response to opioids.", CODED),
        _c(
            "opioid_side_effects",
            "boolean",
            "",
            "Clinically significant opioid side effects.",
            CODED,
        ),
        _c("drug_seeking_behaviour", "boolean", "", "Drug-seeking behaviour.", CODED),
        _c("multidisciplinary_care", "boolean", "", "Part of a multidisciplinary plan.", CODED),
        _c("diagnoses_withheld", "integer", "", "Diagnoses not recognised (withheld).", WITHHELD),
        _c("comorbidities_withheld", "integer", "", "Comorbidities not recognised.", WITHHELD),
        _c("medicines_withheld", "integer", "", "Medicines not recognised (withheld).", WITHHELD),
        _c("allergies_withheld", "integer", "", "Allergies not recognised (withheld).", WITHHELD),
        _c(
            "free_text_withheld",
            "integer",
            "",
            "Other free-text fields of the record that hold text (GP, referrer, goals, "
            "expectancy, notes, reactions, frequencies, routes, indications).",
            WITHHELD,
        ),
    ),
)

COURSES = Table(
    "courses",
    "one signed order (a course of sessions), with what its sessions delivered",
    (
        _P,
        _COURSE,
        _c("protocol_id", "string", "", "The protocol of ketapath's library.", CODED),
        _c("status", "string", "", "signed, or cancelled later.", CODED),
        _c("signed_day", "integer", "day", "Day the order was signed.", DAY),
        _c(
            "indication",
            "string",
            "",
            "Diagnosis vocabulary ids of the record the course was computed from ('; ').",
            VOCABULARY,
        ),
        _c("age_at_signing", "integer", "years", "Age when the order was signed.", AGE),
        _c("age_band_at_signing", "string", "years", "The same in a ten-year band.", BAND),
        _c("route", "string", "", "iv or sc.", CODED),
        _c("setting", "string", "", "clinic, ward or icu.", CODED),
        _c("weight_basis", "string", "", "actual, ideal or adjusted body weight.", CODED),
        _c("dosing_weight_kg", "number", "kg", "The weight the doses were computed on."),
        _c("actual_weight_kg", "number", "kg", "The measured weight at signing."),
        _c(
            "override",
            "boolean",
            "",
            "Signed with a physician's override (reason withheld).",
            CODED,
        ),
        _c("sessions_planned", "integer", "", "Sessions in the signed order.", COMPUTED),
        _c(
            "planned_total_mg", "number", "mg", "Ketamine the order plans for the course.", COMPUTED
        ),
        _c(
            "planned_total_mg_per_kg",
            "number",
            "mg/kg",
            "The same per kg of dosing weight.",
            COMPUTED,
        ),
        _c(
            "adjuncts_planned",
            "string",
            "",
            "Adjunct medicines of the protocol ('; ').",
            CODED,
        ),
        _c("sessions_scheduled", "integer", "", "Sessions scheduled (moved ones once).", COMPUTED),
        _c("sessions_with_dose", "integer", "", "Sessions in which ketamine was given.", COMPUTED),
        _c(
            "delivered_total_mg",
            "number",
            "mg",
            "Ketamine given over the course, from the charts (rate x time + boluses).",
            COMPUTED,
        ),
        _c(
            "delivered_total_mg_per_kg",
            "number",
            "mg/kg",
            "The same per kg of dosing weight.",
            COMPUTED,
        ),
        _c(
            "infusion_minutes_total",
            "number",
            "min",
            "Minutes the pump ran, over the course.",
            COMPUTED,
        ),
        _c("first_dose_day", "integer", "day", "Day of the first session with a dose.", DAY),
        _c("last_dose_day", "integer", "day", "Day of the last session with a dose.", DAY),
        _c(
            "adjuncts_given",
            "string",
            "",
            "Adjunct medicines charted in the sessions, as ingredient ids ('; ').",
            VOCABULARY,
        ),
        _c("pauses", "integer", "", "Pauses over the course.", COMPUTED),
        _c("stops", "integer", "", "Infusions stopped early.", COMPUTED),
        _c("adverse_events", "integer", "", "Side effects charted over the course.", COMPUTED),
    ),
)

SESSIONS = Table(
    "sessions",
    "one infusion session of a course (a moved session once, as it stands)",
    (
        _P,
        _COURSE,
        _SESSION,
        _c("scheduled_day", "integer", "day", "Day the session is or was scheduled.", DAY),
        _c("state", "string", "", "The chart's state (e.g. discharged, stopped).", CODED),
        _c("delivered_mg", "number", "mg", "Ketamine given: infusion plus boluses.", COMPUTED),
        _c("infusion_mg", "number", "mg", "Of which by infusion.", COMPUTED),
        _c("bolus_mg", "number", "mg", "Of which as boluses.", COMPUTED),
        _c("delivered_mg_per_kg", "number", "mg/kg", "Given, per kg of dosing weight.", COMPUTED),
        _c("ordered_mg", "number", "mg", "Ketamine the order planned for the session.", COMPUTED),
        _c("delivered_percent", "number", "%", "Given as a percentage of ordered.", COMPUTED),
        _c(
            "infusion_duration_min",
            "number",
            "min",
            "From the start of the infusion to its end (pauses included).",
            COMPUTED,
        ),
        _c("running_min", "number", "min", "Minutes the pump ran.", COMPUTED),
        _c("paused_min", "number", "min", "Minutes paused.", COMPUTED),
        _c("pauses", "integer", "", "Pauses.", COMPUTED),
        _c("pause_reasons", "string", "", "Their reasons ('; ').", CODED),
        _c("stopped_early", "boolean", "", "The infusion was stopped before its end.", COMPUTED),
        _c("stop_reason", "string", "", "Why it was stopped (empty if not).", CODED),
        _c("adverse_events", "integer", "", "Side effects charted.", COMPUTED),
        _c(
            "worst_severity",
            "string",
            "",
            "The most severe of them: mild, moderate, severe.",
            CODED,
        ),
        _c("baseline_pain_nrs", "integer", "0-10", "Pain at check-in.", AS_RECORDED),
        _c("adjuncts_given", "string", "", "Adjuncts charted, as ingredient ids.", VOCABULARY),
        _c("adjuncts_withheld", "integer", "", "Adjuncts whose name was not recognised.", WITHHELD),
        _c("discharged", "boolean", "", "The patient was discharged.", COMPUTED),
        _c("notes_withheld", "integer", "", "Notes and other text of the chart.", WITHHELD),
    ),
)

ADVERSE_EVENTS = Table(
    "adverse_events",
    "one side effect charted during a session (after corrections)",
    (
        _P,
        _COURSE,
        _SESSION,
        _c("event_number", "integer", "", "The side effect of the session (1, 2 ...).", COUNTED),
        _c(
            "minutes_from_start",
            "number",
            "min",
            "Minutes after the infusion started (negative before; empty if it never started).",
            COMPUTED,
        ),
        _c("effect", "string", "", "The side effect, from the chart's closed list.", CODED),
        _c("severity", "string", "", "mild, moderate or severe.", CODED),
        _c("troublesome", "boolean", "", "Troublesome (the pause rule's trigger).", CODED),
        _c("cadss6_total", "integer", "0-24", "CADSS-6 total with a dissociation report."),
        _c("description_withheld", "boolean", "", "A description was written.", WITHHELD),
    ),
)

ASSESSMENTS = Table(
    "assessments",
    "one instrument given to a patient (its current version after corrections)",
    (
        _P,
        _c("assessment_number", "integer", "", "The assessment of the patient (by day).", COUNTED),
        _c("instrument_id", "string", "", "The instrument (nrs, bpi, pseq ...).", CODED),
        _c("day", "integer", "day", "Day it was given.", DAY),
        _c("course_number", "integer", "", "The course it belongs to (empty if none).", COUNTED),
        _c("context", "string", "", "baseline, post-session or follow-up (or empty).", CODED),
        _c("timepoint_days", "integer", "days", "Follow-up: days after the last session."),
        _c("session_number", "integer", "", "Post-session: the session it follows.", COUNTED),
        _c("total", "number", "", "The instrument's total score.", COMPUTED),
        _c("band", "string", "", "The instrument's band of the total (e.g. moderate).", CODED),
        _c("scorable", "boolean", "", "Enough items were answered to score.", COMPUTED),
        _c("prorated", "boolean", "", "The total was prorated for missing items.", COMPUTED),
        _c("items_answered", "integer", "", "Items answered.", COMPUTED),
    ),
)

ASSESSMENT_SCALES = Table(
    "assessment_scales",
    "one scale (subscale or total) of an assessment",
    (
        _P,
        _c("assessment_number", "integer", "", "The assessment (as in assessments).", COUNTED),
        _c("scale_id", "string", "", "The scale of the instrument.", CODED),
        _c("value", "number", "", "Its score.", COMPUTED),
        _c("band", "string", "", "Its band, where the instrument has one.", CODED),
        _c("scorable", "boolean", "", "Enough items were answered to score it.", COMPUTED),
    ),
)

DIARY_ENTRIES = Table(
    "diary_entries",
    "one day of a patient's diary for a course (the latest entry of the day)",
    (
        _P,
        _COURSE,
        _c("day", "integer", "day", "The diary day.", DAY),
        _c("pain_nrs", "integer", "0-10", "Pain that day."),
        _c("sleep_quality", "integer", "0-10", "Sleep quality that night."),
        _c("side_effects", "string", "", "Side effects, from the closed list ('; ').", CODED),
        _c(
            "side_effect_descriptions_withheld",
            "integer",
            "",
            "Side effects described in words.",
            WITHHELD,
        ),
        _c("opioids", "string", "", "Opioid ingredients taken, recognised ('; ').", VOCABULARY),
        _c("opioid_doses", "integer", "", "Opioid doses written with a recognised name.", COMPUTED),
        _c(
            "opioid_doses_withheld",
            "integer",
            "",
            "Opioid doses whose name was not recognised.",
            WITHHELD,
        ),
        _c("note_withheld", "boolean", "", "The patient wrote a note.", WITHHELD),
    ),
)

SAFETY_RESULTS = Table(
    "safety_results",
    "one safety follow-up result (its current version after corrections)",
    (
        _P,
        _c("result_number", "integer", "", "The result of the patient (by day).", COUNTED),
        _c("check_id", "string", "", "liver-enzymes, urinary-symptoms, cognition ...", CODED),
        _c("day", "integer", "day", "Day observed.", DAY),
        _c("abnormal", "boolean", "", "Abnormal by the check's rules.", COMPUTED),
        _c("text_withheld", "integer", "", "Text fields and notes of the result.", WITHHELD),
    ),
)

SAFETY_VALUES = Table(
    "safety_values",
    "one number or yes/no answer of a safety result",
    (
        _P,
        _c("result_number", "integer", "", "The result (as in safety_results).", COUNTED),
        _c("field", "string", "", "The check's field (e.g. alt_u_per_l, moca_score).", CODED),
        _c("number", "number", "", "A number (its unit in the column unit).", AS_RECORDED),
        _c("unit", "string", "", "The number's unit.", CODED),
        _c("yes_no", "boolean", "", "A yes/no answer.", AS_RECORDED),
    ),
)

REGISTRY = (
    "the registry's per-course definition (docs/registry.md): no date, no identifier; days "
    "counted from the course's last session"
)

COURSE_OUTCOMES = Table(
    "course_outcomes",
    "one course the registry summarises (signed, not cancelled), its outcomes by the "
    "registry's definitions",
    (
        _P,
        _COURSE,
        _c(
            "registry_status",
            "string",
            "",
            "complete, in progress or not given (only complete courses are analysed).",
            CODED,
        ),
        _c("baseline_nrs", "integer", "0-10", "The course's baseline pain NRS.", AS_RECORDED),
        _c(
            "follow_up_days",
            "integer",
            "days after the last session",
            "The first follow-up timepoint with an NRS (the registry judges response there).",
            REGISTRY,
        ),
        _c("follow_up_nrs", "integer", "0-10", "The NRS at that follow-up.", AS_RECORDED),
        _c(
            "responder_30",
            "string",
            "",
            "responder, non-responder or unknown: at least 30% less pain at the first "
            "follow-up than at baseline.",
            REGISTRY,
        ),
        _c(
            "responder_50",
            "string",
            "",
            "The same at 50%.",
            REGISTRY,
        ),
        _c(
            "relief_status",
            "string",
            "",
            "ended, censored, never began or no data (duration of relief from the diary).",
            REGISTRY,
        ),
        _c(
            "relief_days",
            "integer",
            "days",
            "Days of relief after the last session (ended or censored; empty otherwise).",
            REGISTRY,
        ),
        _c(
            "relief_censored",
            "boolean",
            "",
            "True when relief was still present at the end of the follow-up (censored), false "
            "when it ended; empty when it never began or there is no diary.",
            REGISTRY,
        ),
        _c(
            "pain_auc_status",
            "string",
            "",
            "complete or incomplete: the 35-day diary pain area's status.",
            REGISTRY,
        ),
        _c(
            "pain_auc_35",
            "number",
            "NRS x days",
            "The 35-day pain area after the last session (empty when incomplete).",
            REGISTRY,
        ),
    ),
)

COURSE_EXPOSURE = Table(
    "course_exposure",
    "one course the registry summarises, with the predicted ketamine exposure of its stored "
    "course exposure summary (when one with current inputs exists)",
    (
        _P,
        _COURSE,
        _c(
            "not_computed",
            "boolean",
            "",
            "True when no stored course summary with current inputs exists: the numbers are "
            "then empty, never 0.",
            REGISTRY,
        ),
        _c(
            "ketamine_auc_inf",
            "number",
            "mg.h/L",
            "Predicted ketamine AUC to infinity over the course's sessions.",
            COMPUTED,
        ),
        _c("ketamine_peak", "number", "mg/L", "Predicted ketamine peak.", COMPUTED),
        _c(
            "minutes_above_first_threshold",
            "number",
            "min",
            "Minutes above the first reference concentration on ketamine's curve.",
            COMPUTED,
        ),
        _c(
            "exposure_band",
            "string",
            "mg.h/L",
            "The AUC's band of registry_rules.yaml, or 'not computed'.",
            REGISTRY,
        ),
    ),
)

TABLES: tuple[Table, ...] = (
    PATIENTS,
    COURSES,
    COURSE_OUTCOMES,
    COURSE_EXPOSURE,
    SESSIONS,
    ADVERSE_EVENTS,
    ASSESSMENTS,
    ASSESSMENT_SCALES,
    DIARY_ENTRIES,
    SAFETY_RESULTS,
    SAFETY_VALUES,
)
TABLE_NAMES: tuple[str, ...] = tuple(t.name for t in TABLES)
DICTIONARY_COLUMNS = ("table", "column", "type", "unit", "meaning", "deidentification")


def table(name: str) -> Table:
    """The table of this name (``KeyError`` if the export has none)."""
    for item in TABLES:
        if item.name == name:
            return item
    raise KeyError(name)


def dictionary_rows() -> list[dict[str, str]]:
    """The data dictionary: one row per column of every table, in the tables' order."""
    return [
        {
            "table": t.name,
            "column": c.name,
            "type": c.type,
            "unit": c.unit,
            "meaning": c.meaning,
            "deidentification": c.deidentification,
        }
        for t in TABLES
        for c in t.columns
    ]


def _fits(value: Any, kind: ColumnType) -> bool:
    if value is None:
        return True
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def checked_rows(name: str, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The rows of table ``name`` in the dictionary's column order, each checked: exactly the
    dictionary's columns, each value of its type (None for empty; numbers finite; an empty
    text becomes None). Raises ``ValueError`` naming the table, the row and the column
    otherwise."""
    spec = table(name)
    names = spec.column_names
    numbers = {c.name for c in spec.columns if c.type == "number"}
    out = []
    for index, row in enumerate(rows):
        if set(row) != set(names):
            extra = sorted(set(row) - set(names))
            missing = sorted(set(names) - set(row))
            raise ValueError(
                f"{name} row {index + 1}: columns not in the data dictionary {extra}, "
                f"missing {missing}"
            )
        for column in spec.columns:
            value = row[column.name]
            if not _fits(value, column.type):
                raise ValueError(
                    f"{name} row {index + 1}: {column.name} is {value!r}, not a {column.type}"
                )
        out.append({n: _cell(row[n], n in numbers) for n in names})
    return out


def _cell(value: Any, number: bool) -> Any:
    """A checked value as stored in a table: numbers as floats, an empty text as empty (None),
    so that CSV (which cannot tell them apart) and Parquet hold the same."""
    if value == "":
        return None
    return float(value) if number and value is not None else value
