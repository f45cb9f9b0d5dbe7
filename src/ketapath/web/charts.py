"""Small server-side charts as inline SVG (no scripts, no CDN, readable without colour).

A chart is a picture for people who would rather look than read; the same numbers are
always also given as a table beside it (screen readers read the table, and the SVG carries a
title and a description).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
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


def _y_axis(
    ticks: Sequence[float], y_of: Callable[[float], float], y_label: str, plot_h: float
) -> list[str]:
    """The horizontal grid lines with their values, and the y axis's label (every chart)."""
    parts = []
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
    return parts


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
    parts += _y_axis(ticks, y_of, y_label, plot_h)
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
    parts += _y_axis(y_ticks, y_of, y_label, plot_h)
    for tick in x_ticks:
        x = MARGIN_LEFT + tick / x_end_h * plot_w
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - MARGIN_BOTTOM + 16}" '
            f'text-anchor="middle">{_fmt(tick)}</text>'
        )
    parts.append(
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


# ------------------------------------------------------------------ several series over a day


@dataclass(frozen=True)
class TimeSeries:
    """One line of a time chart. ``step``: the value holds until the next point (a pump
    rate), drawn as steps, not as a slope between readings."""

    name: str
    points: tuple[Point, ...]
    step: bool = False


# Minutes between time ticks: the smallest giving at most six ticks.
TIME_STEPS_MIN = (5, 10, 15, 30, 60, 120, 240, 480, 720, 1440)
# Each series has its own dash pattern and marker, so the lines read without colour.
DASHES = ("", "6 4", "2 3", "10 3 2 3")
MARKERS = ("circle", "square", "diamond", "triangle")


def _time_ticks(start: datetime, end: datetime) -> list[datetime]:
    span_min = (end - start).total_seconds() / 60
    step = next((s for s in TIME_STEPS_MIN if span_min / s <= 6), TIME_STEPS_MIN[-1])
    midnight = start.replace(hour=0, minute=0, second=0, microsecond=0)
    elapsed = (start - midnight).total_seconds() / 60
    first = midnight + timedelta(minutes=ceil(elapsed / step) * step)
    ticks = []
    at = first
    while at <= end:
        ticks.append(at)
        at += timedelta(minutes=step)
    return ticks


def _marker(shape: str, x: float, y: float, css: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if shape == "square":
        corner = f'x="{x - 3.5:.1f}" y="{y - 3.5:.1f}"'
        return f'<rect class="{css}" {corner} width="7" height="7">{title}</rect>'
    if shape == "diamond":
        d = f"M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y:.1f}L{x:.1f} {y + 5:.1f}L{x - 5:.1f} {y:.1f}Z"
        return f'<path class="{css}" d="{d}">{title}</path>'
    if shape == "triangle":
        d = f"M{x:.1f} {y - 5:.1f}L{x + 5:.1f} {y + 4:.1f}L{x - 5:.1f} {y + 4:.1f}Z"
        return f'<path class="{css}" d="{d}">{title}</path>'
    return f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="4">{title}</circle>'


def time_chart(
    series: list[TimeSeries],
    *,
    title: str,
    y_label: str,
    start: datetime,
    end: datetime,
    y_min: float | None = None,
    y_max: float | None = None,
    chart_id: str = "chart",
) -> Markup:
    """Several series over one stretch of time (``start`` to ``end``, clock times on the
    axis), each with its own dash and marker and a legend; an empty Markup without points.

    Times are drawn as given: pass them in the clinic's zone.
    """
    drawn = [s for s in series if s.points]
    if not drawn:
        return Markup("")
    values = [p.value for s in drawn for p in s.points]
    low = min(values) if y_min is None else min(y_min, *values)
    high = max(values) if y_max is None else max(y_max, *values)
    if high == low:
        high = low + 1.0
    step = nice_step(high - low)
    first = floor(low / step)
    last = max(ceil(high / step), first + 1)
    ticks = [index * step for index in range(first, last + 1)]
    low, high = ticks[0], ticks[-1]
    times = [p.at for s in drawn for p in s.points]
    start = min(start, *times)
    end = max(end, *times)
    span = (end - start).total_seconds() or 60.0
    legend_h = 18
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - legend_h

    def x_of(at: datetime) -> float:
        return MARGIN_LEFT + (at - start).total_seconds() / span * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (high - value) / (high - low) * plot_h

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    described = "; ".join(
        f"{s.name}: " + ", ".join(f"{p.at:%H:%M} {_fmt(p.value)}" for p in s.points) for s in drawn
    )
    parts = [
        f'<svg class="chart time-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg" '
        f'id="{chart_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(y_label)}: {escape(described)}</desc>',
    ]
    parts += _y_axis(ticks, y_of, y_label, plot_h)
    base = MARGIN_TOP + plot_h
    for at in _time_ticks(start, end):
        x = x_of(at)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{base:.1f}"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 16:.1f}" '
            f'text-anchor="middle">{at:%H:%M}</text>'
        )
    for index, s in enumerate(drawn):
        css = f"series-{index % len(DASHES)}"
        dash = DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = sorted(s.points, key=lambda p: p.at)
        coordinates = []
        for i, p in enumerate(points):
            if s.step and i:
                coordinates.append(f"{x_of(p.at):.1f},{y_of(points[i - 1].value):.1f}")
            coordinates.append(f"{x_of(p.at):.1f},{y_of(p.value):.1f}")
        if len(coordinates) > 1:
            parts.append(
                f'<polyline class="line {css}"{dash_attr} points="{" ".join(coordinates)}"/>'
            )
        shape = MARKERS[index % len(MARKERS)]
        for p in points:
            tip = f"{s.name} {p.at:%H:%M}: {_fmt(p.value)}" + (f" ({p.label})" if p.label else "")
            parts.append(_marker(shape, x_of(p.at), y_of(p.value), f"dot {css}", tip))
        legend_x = MARGIN_LEFT + index * 150
        legend_y = HEIGHT - 10
        parts.append(
            f'<line class="line {css}"{dash_attr} x1="{legend_x}" x2="{legend_x + 28}" '
            f'y1="{legend_y - 4}" y2="{legend_y - 4}"/>'
            + _marker(shape, legend_x + 14, legend_y - 4, f"dot {css}", s.name)
            + f'<text class="tick legend" x="{legend_x + 34}" y="{legend_y}">'
            + f"{escape(s.name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


# ------------------------------------------------------- points on two logarithmic axes


@dataclass(frozen=True)
class ScatterPoint:
    """One point of a log-log scatter plot, linked to its page.

    ``x_low``..``x_high`` is drawn as a bar with the marker at its middle (on the log scale)
    when the x value is a range; ``marker`` 0 is a filled circle, 1 an open diamond;
    ``at_least`` draws an arrow up (the y value is a lower bound).
    """

    x_low: float
    x_high: float
    y: float
    label: str
    href: str
    tip: str
    marker: int = 0
    at_least: bool = False


@dataclass(frozen=True)
class Tick:
    value: float
    label: str


def decade_ticks(low: float, high: float, unit: str = "") -> list[Tick]:
    """Ticks at the powers of ten from below ``low`` to above ``high`` (1, 10, 100 ...)."""
    first = floor(log10(low))
    last = max(ceil(log10(high)), first + 1)
    suffix = f" {unit}" if unit else ""
    return [Tick(10.0**power, f"{10.0**power:g}{suffix}") for power in range(first, last + 1)]


def log_scatter_chart(
    points: Sequence[ScatterPoint],
    *,
    title: str,
    description: str,
    x_label: str,
    y_label: str,
    x_ticks: Sequence[Tick],
    y_ticks: Sequence[Tick],
    legend: Sequence[tuple[int, str]] = (),
    height: int = 320,
    chart_id: str = "scatter",
) -> Markup:
    """An SVG scatter plot with both axes logarithmic, each point a link (``<a href>``) to its
    page, labelled beside it; an empty Markup without points. The axes span the ticks given,
    widened to a whole power of ten where a point falls outside them."""
    drawn = [p for p in points if p.x_low > 0 and p.x_high >= p.x_low and p.y > 0]
    if not drawn:
        return Markup("")
    left = 64
    bottom = 48 + (LEGEND_ROW if legend else 0)
    x_lo = log10(min([t.value for t in x_ticks] + [p.x_low for p in drawn]))
    x_hi = log10(max([t.value for t in x_ticks] + [p.x_high for p in drawn]))
    y_lo = log10(min([t.value for t in y_ticks] + [p.y for p in drawn]))
    y_hi = log10(max([t.value for t in y_ticks] + [p.y for p in drawn]))
    x_hi = x_hi if x_hi > x_lo else x_lo + 1
    y_hi = y_hi if y_hi > y_lo else y_lo + 1
    plot_w = WIDTH - left - MARGIN_RIGHT - 90  # room for the labels of the right-most points
    plot_h = height - MARGIN_TOP - bottom

    def x_of(value: float) -> float:
        return left + (log10(value) - x_lo) / (x_hi - x_lo) * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (y_hi - log10(value)) / (y_hi - y_lo) * plot_h

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    base = MARGIN_TOP + plot_h
    parts = [
        f'<svg class="chart scatter" id="{chart_id}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    for tick in y_ticks:
        y = y_of(tick.value)
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
            f"{escape(tick.label)}</text>"
        )
    for tick in x_ticks:
        x = x_of(tick.value)
        parts.append(
            f'<line class="grid" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" y2="{base:.1f}"/>'
            f'<text class="tick" x="{x:.1f}" y="{base + 16:.1f}" text-anchor="middle">'
            f"{escape(tick.label)}</text>"
        )
    parts.append(
        f'<text class="axis-label" x="{left + plot_w / 2:.1f}" y="{base + 34:.1f}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
        f'<text class="axis-label" x="12" y="{MARGIN_TOP + plot_h / 2:.1f}" '
        f'transform="rotate(-90 12 {MARGIN_TOP + plot_h / 2:.1f})" '
        f'text-anchor="middle">{escape(y_label)}</text>'
    )
    for p in drawn:
        x1, x2, y = x_of(p.x_low), x_of(p.x_high), y_of(p.y)
        x = (x1 + x2) / 2
        inner = [f"<title>{escape(p.tip)}</title>"]
        if x2 - x1 > 0.5:
            inner.append(
                f'<line class="range" x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
                f'<line class="range" x1="{x1:.1f}" x2="{x1:.1f}" y1="{y - 4:.1f}" '
                f'y2="{y + 4:.1f}"/>'
                f'<line class="range" x1="{x2:.1f}" x2="{x2:.1f}" y1="{y - 4:.1f}" '
                f'y2="{y + 4:.1f}"/>'
            )
        if p.at_least:
            inner.append(
                f'<path class="range" d="M{x:.1f} {y:.1f}V{y - 16:.1f}'
                f'M{x - 4:.1f} {y - 11:.1f}L{x:.1f} {y - 16:.1f}L{x + 4:.1f} {y - 11:.1f}"/>'
            )
        inner.append(_scatter_marker(p.marker, x, y))
        inner.append(
            f'<text class="point-label" x="{max(x2, x) + 8:.1f}" y="{y + 4:.1f}">'
            f"{escape(p.label)}</text>"
        )
        parts.append(
            f'<a class="point" href="{escape(p.href)}" aria-label="{escape(p.tip)}">'
            + "".join(inner)
            + "</a>"
        )
    for index, (marker, words) in enumerate(legend):
        lx = left + index * 260
        ly = height - 10
        parts.append(
            _scatter_marker(marker, lx + 5, ly - 4)
            + f'<text class="legend" x="{lx + 16}" y="{ly}">{escape(words)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _scatter_marker(marker: int, x: float, y: float) -> str:
    if marker == 1:
        d = f"M{x:.1f} {y - 6:.1f}L{x + 6:.1f} {y:.1f}L{x:.1f} {y + 6:.1f}L{x - 6:.1f} {y:.1f}Z"
        return f'<path class="dot marker-1" d="{d}"/>'
    return f'<circle class="dot marker-0" cx="{x:.1f}" cy="{y:.1f}" r="5"/>'


# ------------------------------------------------------------------ values by day, over weeks


@dataclass(frozen=True)
class DayPoint:
    day: date
    value: float
    label: str = ""


@dataclass(frozen=True)
class DaySeries:
    """One series of daily values. ``joined``: consecutive days are joined by a line (a gap
    of a day or more is left open: nothing is drawn where nothing was recorded)."""

    name: str
    points: tuple[DayPoint, ...]
    joined: bool = True


@dataclass(frozen=True)
class DayMarker:
    """A day marked by a vertical line (a session), with a short label above it."""

    day: date
    label: str


@dataclass(frozen=True)
class DayBand:
    """A stretch of days shaded behind the series (a duration), with its label."""

    start: date
    end: date
    label: str


@dataclass(frozen=True)
class Level:
    """A value marked by a dashed horizontal line (a baseline), with its label."""

    value: float
    label: str


def days_chart(
    series: Sequence[DaySeries],
    *,
    title: str,
    y_label: str,
    description: str,
    y_min: float,
    y_max: float,
    markers: Sequence[DayMarker] = (),
    bands: Sequence[DayBand] = (),
    levels: Sequence[Level] = (),
    chart_id: str = "days",
) -> Markup:
    """Daily values over weeks: each series with its own dash and marker and a legend,
    vertical lines for marked days, shaded bands and dashed levels; an empty Markup when
    there is nothing to draw. ``description`` is the SVG's description for screen readers
    (a table beside the chart gives the numbers)."""
    drawn = [s for s in series if s.points]
    days = [p.day for s in drawn for p in s.points] + [m.day for m in markers]
    days += [d for b in bands for d in (b.start, b.end)]
    if not drawn or not days:
        return Markup("")
    first, last = min(days), max(days)
    span = max((last - first).days, 1)
    step = max(1, int(nice_step(span, ticks=6)))
    y_step = nice_step(y_max - y_min)
    y_ticks = [y_min + k * y_step for k in range(int((y_max - y_min) / y_step + 1e-9) + 1)]
    legend_h = 18
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = HEIGHT - MARGIN_TOP - MARGIN_BOTTOM - legend_h
    base = MARGIN_TOP + plot_h

    def x_of(day: date) -> float:
        return MARGIN_LEFT + (day - first).days / span * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (y_max - value) / (y_max - y_min) * plot_h

    title_id, desc_id = f"{chart_id}-title", f"{chart_id}-desc"
    parts = [
        f'<svg class="chart days-chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{title_id} {desc_id}" xmlns="http://www.w3.org/2000/svg" '
        f'id="{chart_id}">',
        f'<title id="{title_id}">{escape(title)}</title>',
        f'<desc id="{desc_id}">{escape(description)}</desc>',
    ]
    for band in bands:
        x1, x2 = x_of(band.start), x_of(band.end)
        parts.append(
            f'<rect class="band" x="{x1:.1f}" y="{MARGIN_TOP}" width="{max(x2 - x1, 1):.1f}" '
            f'height="{plot_h:.1f}"><title>{escape(band.label)}</title></rect>'
            f'<text class="band-label" x="{x1 + 4:.1f}" y="{MARGIN_TOP + 12}">'
            f"{escape(band.label)}</text>"
        )
    parts += _y_axis(y_ticks, y_of, y_label, plot_h)
    tick = first
    while tick <= last:
        x = x_of(tick)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{base + 16:.1f}" '
            f'text-anchor="middle">{tick:%d %b}</text>'
        )
        tick += timedelta(days=step)
    for level in levels:
        y = y_of(level.value)
        parts.append(
            f'<line class="level" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"><title>{escape(level.label)}</title></line>'
            f'<text class="level-label" x="{WIDTH - MARGIN_RIGHT - 4}" y="{y - 4:.1f}" '
            f'text-anchor="end">{escape(level.label)}</text>'
        )
    for marker in markers:
        x = x_of(marker.day)
        parts.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{MARGIN_TOP}" '
            f'y2="{base:.1f}"><title>{escape(marker.label)}</title></line>'
            f'<text class="marker-label" x="{x + 3:.1f}" y="{base - 4:.1f}">'
            f"{escape(marker.label)}</text>"
        )
    for index, s in enumerate(drawn):
        css = f"series-{index % len(DASHES)}"
        dash = DASHES[index % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        points = sorted(s.points, key=lambda p: p.day)
        if s.joined:
            run: list[DayPoint] = []
            for p in [*points, None]:
                if p is not None and run and (p.day - run[-1].day).days == 1:
                    run.append(p)
                    continue
                if len(run) > 1:
                    coordinates = " ".join(f"{x_of(q.day):.1f},{y_of(q.value):.1f}" for q in run)
                    parts.append(
                        f'<polyline class="line {css}"{dash_attr} points="{coordinates}"/>'
                    )
                run = [p] if p is not None else []
        shape = MARKERS[index % len(MARKERS)]
        for p in points:
            tip = f"{s.name} {p.day:%Y-%m-%d}: {_fmt(p.value)}" + (
                f" ({p.label})" if p.label else ""
            )
            parts.append(_marker(shape, x_of(p.day), y_of(p.value), f"dot {css}", tip))
        legend_x = MARGIN_LEFT + index * 200
        legend_y = HEIGHT - 10
        parts.append(
            f'<line class="line {css}"{dash_attr} x1="{legend_x}" x2="{legend_x + 28}" '
            f'y1="{legend_y - 4}" y2="{legend_y - 4}"/>'
            + _marker(shape, legend_x + 14, legend_y - 4, f"dot {css}", s.name)
            + f'<text class="tick legend" x="{legend_x + 34}" y="{legend_y}">'
            + f"{escape(s.name)}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
