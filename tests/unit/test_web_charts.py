"""The inline SVG charts: accessible, scaled to their data, never empty when data exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ketapath.web.charts import Point, Series, line_chart, nice_step, time_chart

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


# ------------------------------------------------------------------ several series over a day


def _series(name: str, values: list[float], step: bool = False) -> Series:
    return Series(
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
    assert str(time_chart([Series("HR", ())], title="t", y_label="y", start=START, end=START)) == ""


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
    series = Series(
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
