"""The registry's analyses as CSV files (one per analysis), laid out from the typed views of
``ketapath.services.registry``: one header row, then one row per course, group, curve point,
band or coefficient, written by the ``csv`` module (RFC 4180 quoting, CRLF line ends).

A number is written as Python writes it (full precision); an unknown one is an empty cell and
the reason, where the view gives one, has its own column. A researcher's course file has no
patient, order or date column at all (the view's ``link`` is none for them).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date

from ketapath.services.registry import (
    AdverseView,
    CourseTable,
    RateView,
    RegressionView,
    ReliefView,
    RespondersView,
)

Cell = str | int | float | bool | None


def _csv(header: Sequence[str], rows: Iterable[Sequence[Cell]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


COURSE_COLUMNS = (
    "patient_code",
    "course_number",
    "protocol_id",
    "indication",
    "diagnoses",
    "icd10cm",
    "status",
    "sessions_planned",
    "sessions_given",
    "weight_kg",
    "delivered_mg",
    "dose_mg_per_kg",
    "dose_band",
    "infusion_hours",
    "duration_band",
    "adjuncts",
    "side_effects",
    "troublesome_side_effects",
    "stopped_for_side_effect",
    "safety_abnormal",
    "cumulative_mg_per_kg",
    "cumulative_band",
    "baseline_nrs",
    "follow_up_days",
    "follow_up_nrs",
    "responder_30",
    "responder_50",
    "relief_status",
    "relief_days",
    "relief_ended",
    "auc_status",
    "auc",
    "exposure_status",
    "exposure_auc",
    "exposure_band",
    "exposure_peak",
    "exposure_minutes_above",
)
LINK_COLUMNS = ("patient_id", "order_id", "first_session_on", "last_session_on")


def courses_csv(table: CourseTable) -> str:
    """One row per course; the link columns only when the table is identified."""
    header = [*COURSE_COLUMNS, *(LINK_COLUMNS if table.identified else ())]
    rows = []
    for record in table.records:
        values = [record[c] for c in COURSE_COLUMNS]
        row: list[Cell] = [" ".join(v) if isinstance(v, list) else v for v in values]
        link = record["link"]
        if table.identified and link is not None:
            row += [_cell(link[c]) for c in LINK_COLUMNS]
        rows.append(row)
    return _csv(header, rows)


def _cell(value: Cell | date) -> Cell:
    return value.isoformat() if isinstance(value, date) else value


def _rate_cells(rate: RateView) -> list[Cell]:
    return [rate.n, rate.events, rate.unknown, rate.proportion, rate.low, rate.high, rate.reason]


RATE = ("n", "responders", "unknown", "rate", "ci_low", "ci_high", "note")


def responders_csv(view: RespondersView) -> str:
    header = [
        "group_by",
        "group",
        "courses",
        *(f"{c}_30" for c in RATE),
        *(f"{c}_50" for c in RATE),
        "level",
    ]
    rows = [
        [
            view.group_by,
            g.group,
            g.courses,
            *_rate_cells(g.at_30),
            *_rate_cells(g.at_50),
            view.level,
        ]
        for g in view.groups
    ]
    return _csv(header, rows)


def relief_csv(view: ReliefView) -> str:
    """Every point of every curve (a step function: the value holds until the next point),
    with the group's median beside it."""
    header = (
        "group",
        "days",
        "in_relief",
        "ci_low",
        "ci_high",
        "at_risk",
        "ended",
        "censored",
        "median_days",
        "median_ci_low",
        "median_ci_high",
        "median_note",
        "level",
    )
    rows = [
        [
            g.group,
            p.days,
            p.survival,
            p.low,
            p.high,
            p.at_risk,
            p.ended,
            p.censored,
            g.median.days,
            g.median.low,
            g.median.high,
            g.median.reason,
            view.level,
        ]
        for g in view.groups
        for p in g.points
    ]
    return _csv(header, rows)


def adverse_csv(view: AdverseView) -> str:
    kinds = list(view.kinds)
    header = [
        "cumulative_band",
        "courses",
        *(f"{k}_{c}" for k in kinds for c in ("n", "courses_with", "rate", "ci_low", "ci_high")),
    ]
    rows = []
    for band in view.bands:
        cells: list[Cell] = [band.band, band.courses]
        for kind in kinds:
            r = band.rates[kind]
            cells += [r.n, r.events, r.proportion, r.low, r.high]
        rows.append(cells)
    return _csv(header, rows)


def regression_csv(view: RegressionView) -> str:
    """The coefficients, or one row saying why there are none (too few data, no fit)."""
    header = (
        "status",
        "covariate",
        "unit",
        "coef",
        "hazard_ratio",
        "hr_ci_low",
        "hr_ci_high",
        "p",
        "courses",
        "events",
        "min_events",
        "note",
    )
    if not view.coefficients:
        rows: list[list[Cell]] = [
            [
                view.status,
                "",
                "",
                None,
                None,
                None,
                None,
                None,
                view.courses,
                view.events,
                view.min_events,
                view.message,
            ]
        ]
    else:
        rows = [
            [
                view.status,
                c.covariate,
                c.unit,
                c.coef,
                c.hazard_ratio,
                c.low,
                c.high,
                c.p,
                view.courses,
                view.events,
                view.min_events,
                c.note or view.message,
            ]
            for c in view.coefficients
        ]
    return _csv(header, rows)
