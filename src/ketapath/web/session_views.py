"""What the chart shows, in words and pictures: labels, each entry in a line, the log with
its corrections, and the plots of the vitals and the pump rate (used by ``session_pages``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from ketapath.domain.session_view import ACTIVE, STATE_WORDS, VOIDABLE, SessionView
from ketapath.knowledge.clinical import knowledge
from ketapath.services.sessions import StoredEntry
from ketapath.web import charts
from ketapath.web.pages import in_zone, templates
from ketapath.web.session_forms import FORM_KINDS, VITAL_FIELDS

STATE_LABELS = {
    "scheduled": "Scheduled",
    "checked_in": "Checked in",
    "running": "Running",
    "paused": "Paused",
    "stopped": "Stopped",
    "completed": "Completed",
    "observation": "Observation",
    "discharged": "Discharged",
    "cancelled": "Cancelled",
    "did_not_attend": "Did not attend",
}
PAUSE_REASONS = (
    ("side_effect", "A side effect"),
    ("patient_request", "The patient asked"),
    ("clinical", "Clinical reason"),
    ("equipment", "Equipment"),
    ("other", "Other (say in the note)"),
)
STOP_REASONS = (
    ("dissociation", "Dissociation"),
    ("amnesia", "Amnestic effects"),
    ("side_effect", "Another side effect"),
    ("physician", "A physician's direction"),
    ("patient_request", "The patient asked"),
    ("equipment", "Equipment"),
    ("other", "Other (say in the note)"),
)
PREGNANCY_TESTS = (
    ("negative", "Negative"),
    ("positive", "Positive"),
    ("not_applicable", "Not applicable"),
)
SEVERITIES = (("mild", "Mild"), ("moderate", "Moderate"), ("severe", "Severe"))
LEVELS = (("minimal", "Minimal"), ("moderate", "Moderate"), ("severe", "Severe"))
TROUBLESOME = (
    ("", "By severity (moderate or severe is troublesome)"),
    ("yes", "Yes: troublesome"),
    ("no", "No: not troublesome"),
)
VITAL_LABELS = {
    "heart_rate": ("HR", "/min", "Heart rate"),
    "systolic": ("SBP", "mmHg", "Systolic blood pressure"),
    "diastolic": ("DBP", "mmHg", "Diastolic blood pressure"),
    "spo2": ("SpO2", "%", "Oxygen saturation"),
    "respiratory_rate": ("RR", "/min", "Respiratory rate"),
    "sedation": ("RASS", "", "Sedation, Richmond Agitation-Sedation Scale (-5 to +4)"),
    "etco2": ("EtCO2", "mmHg", "End-tidal CO2"),
}
# Each kind of chart entry as the log names it (what happened, not what to do).
ENTRY_WORDS = {
    "check_in": "Checked in",
    "start": "Pump started",
    "rate_change": "Rate changed",
    "pause": "Paused",
    "resume": "Resumed",
    "stop": "Stopped",
    "complete": "Completed",
    "bolus": "Bolus given",
    "vitals": "Observations",
    "side_effect": "Side effect",
    "adjunct": "Adjunct given",
    "note": "Note",
    "acknowledge": "Prompt acknowledged",
    "begin_observation": "Observation period began",
    "discharge_assessment": "Discharge assessment",
    "discharge": "Discharged",
    "cancel": "Cancelled",
    "did_not_attend": "Did not attend",
    "void": "Voided",
}


def minutes_text(minutes: float | None) -> str:
    """Minutes to the next observations in words ('in 12 min', 'overdue by 3 min')."""
    if minutes is None:
        return ""
    whole = round(minutes)
    if whole > 0:
        return f"due in {whole} min"
    return "due now" if whole == 0 else f"overdue by {-whole} min"


def _local(at: datetime, zone: tzinfo | None) -> datetime:
    return in_zone(at, zone)


def session_charts(view: SessionView, zone: tzinfo | None) -> list[dict[str, Any]]:
    """The vitals and the pump rate over the session (inline SVG, clinic times)."""
    check_in = view.check_in
    readings = list(view.vitals)
    times = [v.at for v in readings] + [p.at for p in view.rate_series]
    if check_in is not None:
        times.append(check_in.at)
    if not times:
        return []
    start = min(times)
    end = view.at if view.state in ACTIVE else max(times)

    def series(name: str, vital: str) -> charts.TimeSeries:
        points = []
        if check_in is not None and getattr(check_in.baseline, vital) is not None:
            points.append(
                charts.Point(
                    _local(check_in.at, zone), getattr(check_in.baseline, vital), "baseline"
                )
            )
        points += [
            charts.Point(_local(v.at, zone), getattr(v, vital), f"entry {v.seq}")
            for v in readings
            if getattr(v, vital) is not None
        ]
        return charts.TimeSeries(name, tuple(points))

    rate = [charts.Point(_local(p.at, zone), p.rate_mg_per_h) for p in view.rate_series]
    if rate and view.running_rate_mg_per_h is not None:
        rate.append(charts.Point(_local(view.at, zone), view.running_rate_mg_per_h, "now"))
    local_start, local_end = _local(start, zone), _local(end, zone)
    out = [
        {
            "id": "chart-haemodynamics",
            "title": "Heart rate and blood pressure",
            "svg": charts.time_chart(
                [
                    series("Heart rate /min", "heart_rate"),
                    series("Systolic mmHg", "systolic"),
                    series("Diastolic mmHg", "diastolic"),
                ],
                title="Heart rate and blood pressure over the session",
                y_label="/min, mmHg",
                start=local_start,
                end=local_end,
                chart_id="chart-haemodynamics",
            ),
        },
        {
            "id": "chart-respiration",
            "title": "SpO2, respiratory rate and EtCO2",
            "svg": charts.time_chart(
                [
                    series("SpO2 %", "spo2"),
                    series("Resp. rate /min", "respiratory_rate"),
                    series("EtCO2 mmHg", "etco2"),
                ],
                title="Oxygen saturation, respiratory rate and end-tidal CO2 over the session",
                y_label="%, /min, mmHg",
                start=local_start,
                end=local_end,
                y_min=0,
                chart_id="chart-respiration",
            ),
        },
        {
            "id": "chart-rate",
            "title": "Pump rate",
            "svg": charts.time_chart(
                [charts.TimeSeries("Ketamine mg/h", tuple(rate), step=True)],
                title="The pump's rate over the session (0 while paused or stopped)",
                y_label="mg/h",
                start=local_start,
                end=local_end,
                y_min=0,
                chart_id="chart-rate",
            ),
        },
    ]
    return [c for c in out if c["svg"]]


def _rate_text(entry: Any) -> str:
    if getattr(entry, "rate_ml_per_h", None) is not None:
        return f"{entry.rate_ml_per_h:g} mL/h"
    if getattr(entry, "rate_mg_per_h", None) is not None:
        return f"{entry.rate_mg_per_h:g} mg/h"
    return ""


def _vitals_text(values: Any) -> str:
    parts = []
    for name in (*VITAL_FIELDS, "etco2"):
        value = getattr(values, name, None)
        if value is None or name == "diastolic":
            continue
        short, unit, _ = VITAL_LABELS[name]
        if name == "systolic":
            dia = getattr(values, "diastolic", None)
            parts.append(f"BP {value}/{dia if dia is not None else '?'}")
        else:
            parts.append(f"{short} {value}{unit if unit == '%' else ''}")
    if getattr(values, "systolic", None) is None and getattr(values, "diastolic", None) is not None:
        parts.append(f"DBP {values.diastolic}")
    return ", ".join(parts)


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def entry_summary(entry: Any) -> str:
    """One chart entry in words (the log of the chart)."""
    kind = entry.kind
    rules = knowledge().session_rules
    if kind == "check_in":
        text = (
            f"Consent {_yes(entry.consent_confirmed)}, fasting {_yes(entry.fasting_confirmed)}, "
            f"escort {_yes(entry.escort_present)}, allergies confirmed "
            f"{_yes(entry.allergies_confirmed)}, pregnancy test "
            f"{entry.pregnancy_test.replace('_', ' ')}"
            f"{', high respiratory risk' if entry.high_respiratory_risk else ''}; baseline "
            f"{_vitals_text(entry.baseline)}; pain {entry.baseline_pain_nrs}/10"
        )
    elif kind in ("start", "resume"):
        text = f"at {_rate_text(entry)}" if _rate_text(entry) else ""
    elif kind == "rate_change":
        text = f"to {_rate_text(entry)}"
    elif kind in ("pause", "stop"):
        reasons = dict(PAUSE_REASONS if kind == "pause" else STOP_REASONS)
        text = reasons.get(entry.reason, entry.reason)
    elif kind == "bolus":
        text = f"{entry.dose_mg:g} mg"
    elif kind == "vitals":
        text = _vitals_text(entry)
    elif kind == "side_effect":
        name = rules.effect(entry.effect).name
        trouble = {None: "", True: ", troublesome", False: ", not troublesome"}[entry.troublesome]
        text = f"{name}, {entry.severity}{trouble}"
        if entry.description:
            text += f": {entry.description}"
        if entry.cadss6_total is not None:
            text += f" (CADSS-6 {entry.cadss6_total}/24)"
    elif kind == "adjunct":
        text = f"{entry.drug} {entry.dose:g} {entry.unit} {entry.route}"
    elif kind == "acknowledge":
        text = f"prompt {entry.prompt_id}"
    elif kind == "discharge_assessment":
        text = (
            f"oriented {_yes(entry.oriented)}, steady gait {_yes(entry.steady_gait)}, pain or "
            f"nausea {entry.pain_nausea_vomiting}, bleeding {entry.bleeding}, oral fluids "
            f"{_yes(entry.oral_fluids)}, voided {_yes(entry.voided)}"
        )
    elif kind == "discharge":
        text = f"escort {_yes(entry.escort_present)}"
        if entry.escort_name:
            text += f" ({entry.escort_name})"
        text += f", after-hours plan given {_yes(entry.emergency_plan_given)}"
        if entry.override_reason:
            text += f"; physician's override: {entry.override_reason}"
    elif kind == "cancel":
        text = entry.reason
    else:
        text = ""
    note = entry.note if kind != "note" else ""
    if kind == "note":
        text = entry.note
    return f"{text}; note: {note}" if note and text else (text or note)


@dataclass(frozen=True)
class LogLine:
    """An entry of the chart as stored, with how it stands after corrections."""

    entry: StoredEntry
    words: str
    summary: str
    superseded_by: StoredEntry | None
    root_kind: str
    correctable: bool
    voidable: bool


def log_lines(log: list[StoredEntry], may_chart: bool) -> list[LogLine]:
    """The stored entries in order; an entry a later one corrects is marked superseded (the
    page strikes it through and says who corrected it, when and why)."""
    by_seq = {e.seq: e for e in log}
    corrected_by = {e.amends_seq: e for e in log if e.amends_seq is not None}
    out = []
    for item in log:
        root = item
        while root.amends_seq is not None and root.amends_seq in by_seq:
            root = by_seq[root.amends_seq]
        newer = corrected_by.get(item.seq)
        current = newer is None and item.kind != "void"
        out.append(
            LogLine(
                entry=item,
                words=ENTRY_WORDS.get(item.kind, item.kind),
                summary=entry_summary(item.entry),
                superseded_by=newer,
                root_kind=root.kind,
                correctable=may_chart and current and root.kind in FORM_KINDS,
                voidable=may_chart and current and root.kind in VOIDABLE,
            )
        )
    return out


def latest_of(log: list[StoredEntry], seq: int) -> StoredEntry | None:
    """The entry as it stands now: ``seq``, or the latest correction of it."""
    by_seq = {e.seq: e for e in log}
    item = by_seq.get(seq)
    corrected_by = {e.amends_seq: e for e in log if e.amends_seq is not None}
    while item is not None and item.seq in corrected_by:
        item = corrected_by[item.seq]
    return item


templates.env.globals["session_state_labels"] = STATE_LABELS
templates.env.globals["session_state_words"] = STATE_WORDS
templates.env.filters["minutes_text"] = minutes_text
