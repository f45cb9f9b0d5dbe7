"""Small server-side charts as inline SVG (no scripts, no CDN, readable without colour).

A chart is a picture for people who would rather look than read; the same numbers are
always also given as a table beside it (screen readers read the table, and the SVG carries a
title and a description).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from math import ceil, floor, isfinite, log10

from markupsafe import Markup

WIDTH = 640
HEIGHT = 240
MARGIN_LEFT = 48
MARGIN_RIGHT = 16
MARGIN_TOP = 16
MARGIN_BOTTOM = 44


@dataclass(frozen=True)
class Point:
    at: datetime
    value: float
    label: str = ""


def nice_step(span: float, ticks: int = 5) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about ``ticks`` ticks."""
    raw = span / ticks
    if not (isfinite(raw) and raw > 0):  # also a span so small its tick underflows to 0
        return 1.0
    power = 10 ** floor(log10(raw))
    for multiple in (1, 2, 5, 10):
        if raw <= multiple * power:
            return float(multiple * power)
    return float(10 * power)


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def line_chart(
    points: list[Point],
    *,
    title: str,
    y_label: str,
    y_min: float | None = None,
    y_max: float | None = None,
    chart_id: str = "chart",
) -> Markup:
    """An SVG line chart of ``points`` over time; an empty Markup when there are none."""
    if not points:
        return Markup("")
    points = sorted(points, key=lambda p: p.at)
    values = [p.value for p in points]
    low = min(values) if y_min is None else min(y_min, *values)
    high = max(values) if y_max is None else max(y_max, *values)
    if high == low:
        high = low + 1.0
    step = nice_step(high - low)
    first = floor(low / step)
    last = max(ceil(high / step), first + 1)
    ticks = [index * step for index in range(first, last + 1)]
    low, high = ticks[0], ticks[-1]

    start = points[0].at.timestamp()
    end = points[-1].at.timestamp()
    time_span = end - start or 1.0
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x_of(at: datetime) -> float:
        if len(points) == 1:
            return MARGIN_LEFT + plot_w / 2
        return MARGIN_LEFT + (at.timestamp() - start) / time_span * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (high - value) / (high - low) * plot_h

    title_id = f"{chart_id}-title"
    desc_id = f"{chart_id}-desc"
    described = ", ".join(f"{p.at:%Y-%m-%d}: {_fmt(p.value)}" for p in points)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(y_label)} over time: {escape(described)}</desc>',
    ]
    for tick in ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="12" y="{MARGIN_TOP + plot_h / 2:.1f}" '
        f'transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.1f})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    dates = {points[0].at.date(): points[0].at, points[-1].at.date(): points[-1].at}
    for at in dates.values():
        x = x_of(at)
        anchor = "start" if at == points[0].at and len(dates) > 1 else "end"
        if len(dates) == 1:
            anchor = "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 18}" '
            f'text-anchor="{anchor}">{at:%Y-%m-%d}</text>'
        )
    coordinates = " ".join(f"{x_of(p.at):.1f},{y_of(p.value):.1f}" for p in points)
    if len(points) > 1:
        parts.append(f'<polyline class="line" points="{coordinates}"/>')
    for p in points:
        tip = f"{p.at:%Y-%m-%d %H:%M}: {_fmt(p.value)}" + (f" ({p.label})" if p.label else "")
        parts.append(
            f'<circle class="dot" cx="{x_of(p.at):.1f}" cy="{y_of(p.value):.1f}" r="4">'
            f"<title>{escape(tip)}</title></circle>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# -- several curves over minutes (predicted concentrations) -----------------------------------
LEGEND_ROW = 16


@dataclass(frozen=True)
class Series:
    """One curve: a label, its values, and its line style (1, 2, 3: solid, dashed, dotted)."""

    label: str
    values: Sequence[float]
    style: int = 1


def curves_chart(
    times_min: Sequence[float],
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    description: str,
    x_label: str = "hours from the start",
    chart_id: str = "curves",
) -> Markup:
    """An SVG chart of several curves over one time axis (minutes, drawn in hours), from 0.

    Curves differ by line style as well as colour, and the legend names each one, so the
    chart reads without colour; ``description`` (peaks, AUC) is the SVG's description for
    screen readers, which a table beside the chart also gives.
    """
    if not times_min or not series:
        return Markup("")
    high = max((max(s.values, default=0.0) for s in series), default=0.0)
    step = nice_step(high if high > 0 else 1.0)
    y_ticks = [index * step for index in range(max(ceil(high / step), 1) + 1)]
    y_top = y_ticks[-1]
    x_end_h = max(float(times_min[-1]) / 60.0, 1e-9)
    x_step = nice_step(x_end_h, ticks=8)
    x_ticks = [index * x_step for index in range(floor(x_end_h / x_step + 1e-9) + 1)]
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM

    def x_of(minutes: float) -> float:
        return MARGIN_LEFT + minutes / 60.0 / x_end_h * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (y_top - value) / y_top * plot_h

    title_id = f"{chart_id}-title"
    desc_id = f"{chart_id}-desc"
    parts = [
        f'<svg class="chart curves" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    for tick in y_ticks:
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    for tick in x_ticks:
        x = MARGIN_LEFT + tick / x_end_h * plot_w
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle">{_fmt(tick)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="12" y="{MARGIN_TOP + plot_h / 2:.1f}" '
        f'transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.1f})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
        f'<text class="axis-label" x="{MARGIN_LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    for s in series:
        coordinates = " ".join(
            f"{x_of(float(t)):.1f},{y_of(float(v)):.1f}"
            for t, v in zip(times_min, s.values, strict=True)
        )
        parts.append(
            f'<polyline class="line series-{s.style}" points="{coordinates}">'
            f"<title>{escape(s.label)}</title></polyline>"
        )
    legend_x = WIDTH - MARGIN_RIGHT - 190
    for index, s in enumerate(series):
        y = MARGIN_TOP + 10 + index * LEGEND_ROW
        parts.append(
            f'<line class="line series-{s.style}" x1="{legend_x}" x2="{legend_x + 28}" '
            f'y1="{y - 4}" y2="{y - 4}"/>'
            f'<text class="legend" x="{legend_x + 34}" y="{y}">{escape(s.label)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
