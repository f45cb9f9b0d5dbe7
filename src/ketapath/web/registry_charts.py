"""The registry page's pictures, as inline SVG in the style of ``web/charts.py``: Kaplan-Meier
curves of relief duration (steps, with the 95% band when there is one curve) and the
adverse-event rate by cumulative-dose band with its interval.

Drawn by hand rather than by matplotlib: at 10,000 patients matplotlib took 0.2-0.3 s per page
for the two figures (0.9 s for the first in a process), most of the page's 1 s budget, and
its SVG styles every shape inline, which the pages' Content-Security-Policy refuses. Curves
differ by dash and marker as well as colour, the legend names each, and the same numbers are
in the tables beside the pictures (screen readers read the tables; each SVG has a title and a
description).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from html import escape
from math import ceil

from markupsafe import Markup

from ketapath.services.registry import AdverseView, ReliefGroup
from ketapath.web.charts import HEIGHT, MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, WIDTH, nice_step

MAX_CURVES = 6
LEGEND_ROW = 16
CHART_HEIGHT = HEIGHT + 60
BOTTOM = 44 + 60  # room for the legend under the axis
Scale = Callable[[float], float]


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _frame(chart_id: str, title: str, description: str) -> list[str]:
    return [
        f'<svg class="chart registry-chart" id="{chart_id}" viewBox="0 0 {WIDTH} '
        f'{CHART_HEIGHT}" role="img" aria-labelledby="{chart_id}-title {chart_id}-desc" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-title">{escape(title)}</title>',
        f'<desc id="{chart_id}-desc">{escape(description)}</desc>',
    ]


def _y_axis(y_of: Scale, label: str, plot_h: float) -> list[str]:
    parts = []
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(tick)
        parts.append(
            f'<line class="grid" x1="{MARGIN_LEFT}" x2="{WIDTH - MARGIN_RIGHT}" y1="{y:.1f}" '
            f'y2="{y:.1f}"/><text class="tick" x="{MARGIN_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{_fmt(tick)}</text>'
        )
    middle = MARGIN_TOP + plot_h / 2
    parts.append(
        f'<text class="axis-label" x="12" y="{middle:.1f}" transform="rotate(-90 12 '
        f'{middle:.1f})" text-anchor="middle">{escape(label)}</text>'
    )
    return parts


def relief_chart(
    groups: Sequence[ReliefGroup], title: str, chart_id: str = "relief-chart"
) -> Markup:
    """The curves of the largest ``MAX_CURVES`` groups with a point; empty without one."""
    drawn = sorted((g for g in groups if g.points), key=lambda g: -g.courses)[:MAX_CURVES]
    if not drawn:
        return Markup("")
    end = max(max(p.days for p in g.points) for g in drawn) or 1.0
    x_step = nice_step(end, ticks=8)
    x_top = ceil(end / x_step) * x_step
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = CHART_HEIGHT - MARGIN_TOP - BOTTOM

    def x_of(days: float) -> float:
        return MARGIN_LEFT + days / x_top * plot_w

    def y_of(value: float) -> float:
        return MARGIN_TOP + (1 - value) * plot_h

    described = "; ".join(
        f"{g.group}: median {'not reached' if g.median.days is None else _fmt(g.median.days)}"
        f" days, {g.ended} ended and {g.censored} censored"
        for g in drawn
    )
    parts = _frame(chart_id, title, f"Proportion still in relief by day. {described}.")
    parts += _y_axis(y_of, "still in relief", plot_h)
    for index in range(int(x_top / x_step) + 1):
        x = x_of(index * x_step)
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{MARGIN_TOP + plot_h + 16:.1f}" '
            f'text-anchor="middle">{_fmt(index * x_step)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{MARGIN_LEFT + plot_w / 2:.1f}" '
        f'y="{MARGIN_TOP + plot_h + 34:.1f}" text-anchor="middle">days since the last session'
        "</text>"
    )
    if len(drawn) == 1:
        parts.append(_band(drawn[0], x_of, y_of))
    for index, group in enumerate(drawn):
        style = index % MAX_CURVES + 1
        parts.append(
            f'<polyline class="line km km-{style}" points="{_steps(group, x_of, y_of)}">'
            f"<title>{escape(group.group)}</title></polyline>"
        )
        y = MARGIN_TOP + plot_h + 50 + (index // 2) * LEGEND_ROW
        x = MARGIN_LEFT + (index % 2) * (plot_w / 2)
        parts.append(
            f'<line class="line km km-{style}" x1="{x:.1f}" x2="{x + 28:.1f}" y1="{y - 4}" '
            f'y2="{y - 4}"/><text class="legend" x="{x + 34:.1f}" y="{y}">'
            f"{escape(group.group)} (n={group.ended + group.censored})</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def _steps(group: ReliefGroup, x_of: Scale, y_of: Scale) -> str:
    """The step function: each value holds until the next point."""
    coordinates = []
    previous = None
    for point in group.points:
        x, y = x_of(point.days), y_of(point.survival)
        if previous is not None:
            coordinates.append(f"{x:.1f},{previous:.1f}")
        coordinates.append(f"{x:.1f},{y:.1f}")
        previous = y
    return " ".join(coordinates)


def _band(group: ReliefGroup, x_of: Scale, y_of: Scale) -> str:
    """The pointwise 95% band of one curve, as steps (points without a bound are skipped)."""
    kept = [p for p in group.points if p.low is not None and p.high is not None]
    if len(kept) < 2:
        return ""
    upper, lower = [], []
    for index, point in enumerate(kept):
        assert point.low is not None and point.high is not None
        x = x_of(point.days)
        following = kept[index + 1] if index + 1 < len(kept) else None
        x_next = x_of(following.days) if following else x
        high, low = y_of(point.high), y_of(point.low)
        upper += [f"{x:.1f},{high:.1f}", f"{x_next:.1f},{high:.1f}"]
        lower += [f"{x:.1f},{low:.1f}", f"{x_next:.1f},{low:.1f}"]
    outline = " ".join(upper + list(reversed(lower)))
    return f'<polygon class="km-band" points="{outline}"><title>95% band</title></polygon>'


def adverse_chart(view: AdverseView, kind: str = "any", chart_id: str = "adverse-chart") -> Markup:
    """The rate of ``kind`` in each cumulative-dose band, a dot with its interval."""
    bands = [b for b in view.bands if b.rates[kind].proportion is not None]
    if not bands:
        return Markup("")
    plot_w = WIDTH - MARGIN_LEFT - MARGIN_RIGHT
    plot_h = CHART_HEIGHT - MARGIN_TOP - BOTTOM
    slot = plot_w / len(bands)

    def y_of(value: float) -> float:
        return MARGIN_TOP + (1 - value) * plot_h

    label = view.kinds[kind]
    described = "; ".join(
        f"{b.band}: {_fmt((b.rates[kind].proportion or 0) * 100)}% of {b.rates[kind].n}"
        for b in bands
    )
    parts = _frame(chart_id, f"Courses with {label}, by cumulative dose", described)
    parts += _y_axis(y_of, f"share with {label}", plot_h)
    for index, band in enumerate(bands):
        r = band.rates[kind]
        x = MARGIN_LEFT + slot * (index + 0.5)
        low, high = r.low if r.low is not None else 0.0, r.high if r.high is not None else 1.0
        parts.append(
            f'<line class="whisker" x1="{x:.1f}" x2="{x:.1f}" y1="{y_of(low):.1f}" '
            f'y2="{y_of(high):.1f}"/><circle class="dot" cx="{x:.1f}" '
            f'cy="{y_of(r.proportion or 0.0):.1f}" r="4"><title>{escape(band.band)}: '
            f"{_fmt((r.proportion or 0) * 100)}% ({_fmt(low * 100)}-{_fmt(high * 100)}%)"
            f"</title></circle>"
            f'<text class="tick" x="{x:.1f}" y="{MARGIN_TOP + plot_h + 16:.1f}" '
            f'text-anchor="middle">{escape(band.band)}</text>'
        )
    parts.append(
        f'<text class="axis-label" x="{MARGIN_LEFT + plot_w / 2:.1f}" '
        f'y="{MARGIN_TOP + plot_h + 34:.1f}" text-anchor="middle">cumulative dose per kg at '
        "the end of the course</text></svg>"
    )
    return Markup("".join(parts))
