"""The registry page's pictures: Kaplan-Meier curves of relief duration and the adverse-event
rates by cumulative dose, drawn by matplotlib as SVG.

The SVG is shown as an ``<img>`` from a ``data:`` address: matplotlib styles its shapes with
inline styles, which the pages' Content-Security-Policy forbids inside the page but not inside
an image. Curves differ by line style and marker as well as colour, so they read without
colour; the same numbers are always in the tables beside the picture, and the image's ``alt``
text says what it shows. matplotlib is imported on first use (about half a second), through
its object API (no global figure state, so two requests can draw at once).
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence

from ketapath.services.registry import AdverseView, ReliefGroup

STYLES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D", "v", "x", "+", "*")
MAX_CURVES = 8


def _data_uri(figure: object) -> str:
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})  # type: ignore[attr-defined]
    return "data:image/svg+xml;base64," + base64.b64encode(out.getvalue().encode()).decode()


def relief_chart(groups: Sequence[ReliefGroup], title: str) -> str:
    """The curves (at most ``MAX_CURVES``, the largest groups) as a data URI; '' when none
    has a point."""
    from matplotlib.figure import Figure

    drawn = [g for g in groups if g.points]
    drawn = sorted(drawn, key=lambda g: -g.courses)[:MAX_CURVES]
    if not drawn:
        return ""
    figure = Figure(figsize=(8, 4.2))
    axes = figure.subplots()
    single = len(drawn) == 1
    for index, group in enumerate(drawn):
        days = [p.days for p in group.points]
        survival = [p.survival for p in group.points]
        label = f"{group.group} (n={group.ended + group.censored})"
        axes.step(
            days,
            survival,
            where="post",
            linestyle=STYLES[index % len(STYLES)],
            marker=MARKERS[index % len(MARKERS)],
            markevery=max(1, len(days) // 8),
            markersize=4,
            label=label,
        )
        if single:
            lows = [p.low if p.low is not None else float("nan") for p in group.points]
            highs = [p.high if p.high is not None else float("nan") for p in group.points]
            axes.fill_between(days, lows, highs, step="post", alpha=0.2, label="95% band")
    axes.set_xlabel("days since the last session")
    axes.set_ylabel("proportion still in relief")
    axes.set_ylim(0, 1.02)
    axes.set_xlim(left=0)
    axes.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
    axes.set_title(title, fontsize="medium")
    axes.legend(loc="upper right", fontsize="x-small")
    figure.tight_layout()
    return _data_uri(figure)


def adverse_chart(view: AdverseView, kind: str = "any") -> str:
    """The rate of ``kind`` by cumulative-dose band with its interval, as a data URI."""
    from matplotlib.figure import Figure

    bands = [b for b in view.bands if b.rates[kind].proportion is not None]
    if not bands:
        return ""
    figure = Figure(figsize=(8, 3.4))
    axes = figure.subplots()
    xs = list(range(len(bands)))
    rates = [b.rates[kind].proportion or 0.0 for b in bands]
    lower = [r - (b.rates[kind].low or r) for r, b in zip(rates, bands, strict=True)]
    upper = [(b.rates[kind].high or r) - r for r, b in zip(rates, bands, strict=True)]
    axes.errorbar(xs, rates, yerr=[lower, upper], fmt="o", capsize=4)
    axes.set_xticks(xs, [b.band for b in bands], fontsize="small")
    axes.set_ylabel(f"courses with {view.kinds[kind]}", fontsize="small")
    axes.set_xlabel("cumulative dose per kg at the end of the course")
    axes.set_ylim(0, min(1.0, max(b.rates[kind].high or 0 for b in bands) * 1.2 + 0.02))
    figure.tight_layout()
    return _data_uri(figure)
