"""The predicted-exposure panel of the protocol chooser and the order page: the curves as an
inline SVG chart (``charts.curves_chart``), with a caption, a table of each curve's peak and
AUC, and the model (citation, population, limitations, verification) beside it; and on the
session page, the session's stored exposure summary (``summary_panel``): AUC, peak and time
above each reference concentration, when it was computed and why.

The numbers come from ``ketapath.services.exposure``; this module only arranges them.
"""

from __future__ import annotations

from typing import Any

from ketapath.services.exposure import (
    TAIL_H,
    CurveDifferenceView,
    CurveSummary,
    SessionComparisonView,
    SessionExposureView,
    model_options,
)
from ketapath.services.exposure_summary import AnalyteSummaryView, ExposureSummaryView
from ketapath.web.charts import Series, curves_chart
from ketapath.web.pages import clock, number, templates

templates.env.globals["exposure_models"] = model_options


def covariates_words(view: SessionExposureView) -> str:
    """The patient facts the prediction used: '72 kg, 58 years, female, 168 cm'."""
    c = view.covariates
    words = [f"{number(c.weight_kg, 1)} kg"]
    if c.age_years is not None:
        words.append(f"{number(c.age_years, 0)} years")
    if c.sex:
        words.append(c.sex)
    if c.height_cm is not None:
        words.append(f"{number(c.height_cm, 0)} cm")
    return ", ".join(words)


def exposure_panel(
    view: SessionExposureView | None,
    *,
    sessions: int,
    session: int,
    requested_model: str,
    error: str = "",
    chart_id: str = "exposure-chart",
) -> dict[str, Any]:
    """What ``_exposure.html`` shows: the chart, its caption, the summary rows, the options
    (the session and model asked for, the number of sessions), or why there is no prediction.
    """
    options = {
        "sessions": sessions,
        "session": session,
        "requested_model": requested_model,
        "error": error,
    }
    if view is None:
        return {"view": None, **options}
    summaries = [view.summary.plasma, view.summary.effect_site]
    values = [view.curves.plasma_ng_per_ml, view.curves.effect_site_ng_per_ml]
    if view.summary.norketamine is not None and view.curves.norketamine_ng_per_ml is not None:
        summaries.append(view.summary.norketamine)
        values.append(view.curves.norketamine_ng_per_ml)
    rows = [
        {
            "label": s.label,
            "peak": number(s.peak_ng_per_ml, 1),
            "at": clock(s.peak_at_min),
            "auc": number(s.auc_ng_h_per_ml, 0),
            "method": s.auc_method,
        }
        for s in summaries
    ]
    description = "; ".join(
        f"{r['label']}: peak {r['peak']} ng/mL at {r['at']} (h:mm), AUC {r['auc']} ng.h/mL"
        for r in rows
    )
    svg = curves_chart(
        view.curves.times_min,
        [
            Series(s.label, v, style)
            for style, (s, v) in enumerate(zip(summaries, values, strict=True), 1)
        ],
        title=f"Predicted concentrations, session {view.session} of {view.sessions}",
        y_label="ng/mL",
        x_label="hours from the session start",
        description=description,
        chart_id=chart_id,
    )
    metabolite = f", and {view.model.metabolite}" if view.curves.norketamine_ng_per_ml else ""
    caption = (
        f"Predicted {view.model.analyte} in plasma and at the effect site{metabolite} (ng/mL) "
        f"for this patient ({covariates_words(view)}), session {view.session} of "
        f"{view.sessions} (day {view.session_day}) and {TAIL_H:g} h after, with the "
        f"{view.model.name} model."
    )
    return {"view": view, "svg": svg, "caption": caption, "rows": rows, **options}


def comparison_panel(view: SessionComparisonView | None, error: str = "") -> dict[str, Any]:
    """What ``_session_exposure.html`` shows: the session's plasma curve as ordered against as
    given (and the effect site as given) on one chart, and each curve's peak and AUC both
    ways; or why there is no prediction."""
    if view is None:
        return {"view": None, "error": error}
    planned, given = view.planned, view.given
    svg = curves_chart(
        given.curves.times_min,
        [
            # short labels: the legend sits inside the plot (the analyte is in the caption)
            Series("as ordered: plasma", planned.curves.plasma_ng_per_ml, 1),
            Series("as given: plasma", given.curves.plasma_ng_per_ml, 2),
            Series("as given: effect site", given.curves.effect_site_ng_per_ml, 3),
        ],
        title=f"Predicted concentrations of session {view.session}, as ordered and as given",
        y_label="ng/mL",
        x_label="hours from the first dose",
        description="; ".join(
            f"{d.label}: peak {number(p.peak_ng_per_ml, 1)} ordered, "
            f"{number(g.peak_ng_per_ml, 1)} given (ng/mL)"
            for d, p, g in _pairs(view)
        ),
        chart_id="session-exposure-chart",
    )
    rows = [
        {
            "label": d.label,
            "planned_peak": number(p.peak_ng_per_ml, 1),
            "given_peak": number(g.peak_ng_per_ml, 1),
            "planned_auc": number(p.auc_ng_h_per_ml, 0),
            "given_auc": number(g.auc_ng_h_per_ml, 0),
            "auc_percent": None if d.auc_ratio is None else number(100 * d.auc_ratio, 0),
            "method": g.auc_method,
        }
        for d, p, g in _pairs(view)
    ]
    return {"view": view, "svg": svg, "rows": rows, "error": ""}


def _pairs(
    view: SessionComparisonView,
) -> list[tuple[CurveDifferenceView, CurveSummary, CurveSummary]]:
    """Each curve's difference with its summary as ordered and as given."""
    planned, given = view.planned.summary, view.given.summary
    pairs = [(planned.plasma, given.plasma), (planned.effect_site, given.effect_site)]
    if planned.norketamine is not None and given.norketamine is not None:
        pairs.append((planned.norketamine, given.norketamine))
    by_label = {d.label: d for d in view.differences}
    return [(by_label[p.label], p, g) for p, g in pairs if p.label in by_label]


NG_PER_MG = 1000.0


def summary_panel(view: ExposureSummaryView | None, error: str = "") -> dict[str, Any]:
    """What ``_exposure_summary.html`` shows: each analyte's AUC (ng.h/mL, as the chart's
    table; the API gives mg.h/L), AUC to infinity, peak and its time, and the minutes above
    each reference concentration (with its basis and any conversion to the model's analyte);
    the stored row's date, reason and model version; or why there is none."""
    if view is None:
        return {"view": None, "error": error, "rows": [], "above": []}
    analytes = [a for a in (view.ketamine, view.norketamine) if a is not None]
    rows = [
        {
            "label": a.label,
            "auc": number(a.auc_mg_h_per_l * NG_PER_MG, 0),
            "auc_inf": number(a.auc_inf_mg_h_per_l * NG_PER_MG, 0),
            "peak": number(a.peak_mg_per_l * NG_PER_MG, 1),
            "at": clock(a.peak_at_min),
        }
        for a in analytes
    ]
    return {"view": view, "error": error, "rows": rows, "above": _above(analytes)}


def _above(analytes: list[AnalyteSummaryView]) -> list[dict[str, Any]]:
    return [
        {
            "label": a.label,
            "name": t.name,
            "basis": "published" if t.basis == "published" else "ketapath policy",
            "applied": number(t.applied_mg_per_l * NG_PER_MG, 1),
            "converted": t.converted or "",
            "minutes": clock(t.minutes),
        }
        for a in analytes
        for t in a.time_above
    ]
