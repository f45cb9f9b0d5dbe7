"""The inline SVG charts: accessible, scaled to their data, never empty when data exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ketapath.web.charts import (
    Point,
    Series,
    TimeSeries,
    curves_chart,
    line_chart,
    nice_step,
    time_chart,
)

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_a_chart_without_points_is_nothing():
    assert str(line_chart([], title="NRS", y_label="score")) == ""


def test_a_chart_has_a_title_and_a_description_naming_every_value():
    points = [Point(START + timedelta(days=d), v) for d, v in ((0, 8), (7, 6), (14, 3.5))]
    svg = str(line_chart(points, title="NRS over time", y_label="NRS", y_min=0, y_max=10))
    assert 'role="img"' in svg
    assert '<title id="chart-title">NRS over time</title>' in svg
    for text in ("2026-01-05: 8", "2026-01-12: 6", "2026-01-19: 3.5"):
        assert text in svg
    assert svg.count("<circle") == 3


def test_text_in_a_chart_is_escaped():
    svg = str(line_chart([Point(START, 1)], title="<script>", y_label="a&b"))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg and "a&amp;b" in svg


@given(
    st.lists(st.floats(min_value=-1000, max_value=1000, allow_nan=False), min_size=1, max_size=20)
)
def test_every_point_lies_inside_the_plot_area(values: list[float]):
    points = [Point(START + timedelta(hours=i), v) for i, v in enumerate(values)]
    svg = str(line_chart(points, title="t", y_label="y"))
    for cx, cy in re.findall(r'<circle class="dot" cx="([-\d.]+)" cy="([-\d.]+)"', svg):
        assert 48 - 0.1 <= float(cx) <= 640 - 16 + 0.1
        assert 16 - 0.1 <= float(cy) <= 240 - 44 + 0.1


@given(st.floats(min_value=1e-6, max_value=1e6))
def test_a_tick_step_is_one_two_or_five_times_a_power_of_ten(span: float):
    step = nice_step(span)
    mantissa = f"{step:.6e}".split("e")[0].rstrip("0").rstrip(".")
    assert mantissa in ("1", "2", "5")
    assert span / step <= 5.0 + 1e-9


def _curves_svg(values: list[list[float]], times: list[float] | None = None) -> str:
    times = times or [float(i * 10) for i in range(len(values[0]))]
    series = [Series(f"curve {i}", v, i + 1) for i, v in enumerate(values)]
    return str(curves_chart(times, series, title="Predicted", y_label="ng/mL", description="peaks"))


def test_a_curves_chart_names_each_curve_in_a_legend_and_tells_them_apart_without_colour():
    svg = _curves_svg([[0, 50, 20], [0, 40, 30], [0, 10, 35]])
    assert 'role="img"' in svg and '<desc id="curves-desc">peaks</desc>' in svg
    assert svg.count("<polyline") == 3
    for style in (1, 2, 3):
        assert f'class="line series-{style}"' in svg
    assert re.findall(r'<text class="legend"[^>]*>([^<]+)</text>', svg) == [
        "curve 0",
        "curve 1",
        "curve 2",
    ]
    assert "hours from the start" in svg


def test_a_curves_chart_without_times_or_curves_is_nothing():
    assert str(curves_chart([], [Series("a", [])], title="t", y_label="y", description="")) == ""
    assert str(curves_chart([0.0], [], title="t", y_label="y", description="")) == ""


def test_a_curve_of_zeros_is_drawn_on_the_axis():
    svg = _curves_svg([[0.0, 0.0, 0.0]])
    assert "nan" not in svg.lower()
    assert re.search(r'points="48.0,196.0 [\d.]+,196.0 624.0,196.0"', svg)


@given(
    st.lists(
        st.lists(st.floats(min_value=0, max_value=1e6), min_size=5, max_size=5),
        min_size=1,
        max_size=3,
    ),
    st.floats(min_value=0.01, max_value=527040),
)
def test_every_curve_point_lies_inside_the_plot_area(values: list[list[float]], end: float):
    times = [end * i / 4 for i in range(5)]
    svg = _curves_svg(values, times)
    for points in re.findall(r'<polyline class="line series-\d" points="([^"]+)"', svg):
        for pair in points.split():
            x, y = (float(v) for v in pair.split(","))
            assert 48 - 0.1 <= x <= 640 - 16 + 0.1
            assert 16 - 0.1 <= y <= 240 - 44 + 0.1


def test_a_span_too_small_for_a_tick_still_gets_a_step():
    """Found by the property above: a curve of denormal values (5e-324 ng/mL)."""
    from ketapath.web.charts import nice_step

    assert nice_step(5e-324) == 1.0
    assert nice_step(float("nan")) == 1.0
    assert nice_step(7.0) == 2.0


# ------------------------------------------------------------------ several series over a day


def _series(name: str, values: list[float], step: bool = False) -> TimeSeries:
    return TimeSeries(
        name, tuple(Point(START + timedelta(minutes=15 * i), v) for i, v in enumerate(values)), step
    )


def test_a_time_chart_draws_each_series_with_its_own_dash_marker_and_legend():
    svg = str(
        time_chart(
            [_series("HR", [72, 80, 76]), _series("SBP", [120, 130, 125])],
            title="Vitals",
            y_label="/min, mmHg",
            start=START,
            end=START + timedelta(hours=1),
            chart_id="vitals",
        )
    )
    assert svg.count("<polyline") == 2 and 'stroke-dasharray="6 4"' in svg
    assert svg.count("<circle") == 3 + 1 and svg.count("<rect") == 3 + 1  # + the legend's
    assert ">HR</text>" in svg and ">SBP</text>" in svg
    assert "HR: 09:00 72, 09:15 80, 09:30 76; SBP: 09:00 120" in svg
    assert ">09:00</text>" in svg and ">10:00</text>" in svg  # clock times on the axis


def test_a_time_chart_without_points_is_nothing():
    assert (
        str(time_chart([TimeSeries("HR", ())], title="t", y_label="y", start=START, end=START))
        == ""
    )


def test_a_step_series_holds_each_value_until_the_next_point():
    svg = str(
        time_chart(
            [_series("rate", [10, 20, 0], step=True)],
            title="rate",
            y_label="mg/h",
            start=START,
            end=START + timedelta(minutes=30),
            y_min=0,
        )
    )
    points = re.search(r'<polyline class="line series-0" points="([^"]+)"', svg)
    assert points is not None
    pairs = [tuple(map(float, p.split(","))) for p in points.group(1).split()]
    assert len(pairs) == 5  # a horizontal then a vertical move at each change
    assert pairs[0][1] == pairs[1][1] and pairs[1][0] == pairs[2][0]


@given(
    st.lists(st.floats(min_value=-500, max_value=500, allow_nan=False), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=48 * 60),
)
def test_every_point_of_a_time_chart_lies_inside_its_plot(values: list[float], span_min: int):
    step = span_min / max(len(values), 1)
    series = TimeSeries(
        "v", tuple(Point(START + timedelta(minutes=step * i), v) for i, v in enumerate(values))
    )
    svg = str(
        time_chart(
            [series], title="t", y_label="y", start=START, end=START + timedelta(minutes=span_min)
        )
    )
    dots = re.findall(r'cx="([-\d.]+)" cy="([-\d.]+)" r="4"><title>v \d\d:\d\d', svg)
    assert len(dots) == len(values)  # the legend's marker is not a point
    for cx, cy in dots:
        assert 48 - 0.1 <= float(cx) <= 640 - 16 + 0.1
        assert 16 - 0.1 <= float(cy) <= 240 - 44 - 18 + 0.1  # above the axis and the legend
