"""The inline SVG charts: accessible, scaled to their data, never empty when data exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from ketapath.web.charts import Point, line_chart, nice_step

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
