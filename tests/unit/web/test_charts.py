"""The overview's chart geometry: lengths in proportion, round axis ends, nothing to draw for
nothing, long labels cut (the full text kept), missing values breaking a sparkline."""

from __future__ import annotations

import math

import pytest

from plantwarden.web.charts import Part, columns, horizontal_bars, nice_top, shorten, sparkline


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 0), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (150, 200), (999, 1000), (1001, 2000)],
)
def test_axis_ends_are_round(value: int, top: int) -> None:
    assert nice_top(value) == top


@pytest.mark.parametrize(
    ("top", "ticks"),
    [
        (1, [0, 1]),
        (2, [0, 1, 2]),
        (5, [0, 1, 2, 3, 4, 5]),
        (10, [0, 2, 4, 6, 8, 10]),
        (20, [0, 5, 10, 15, 20]),
        (50, [0, 10, 20, 30, 40, 50]),
        (200, [0, 50, 100, 150, 200]),
    ],
)
def test_ticks_fall_on_round_values(top: int, ticks: list[int]) -> None:
    chart = horizontal_bars([("a", [Part("n", top)])])
    assert chart.top == top and [t.value for t in chart.ticks] == ticks


def test_horizontal_bars_scale_to_the_largest_total_and_stack() -> None:
    chart = horizontal_bars(
        [
            ("a", [Part("new", 10), Part("ack", 10)]),
            ("b", [Part("new", 5), Part("ack", 0)]),
            ("c", [Part("new", 0)]),
        ],
        width=440,
        label_width=100,
    )
    span = chart.plot[2] - chart.plot[0]  # 300
    assert chart.top == 20 and span == 300
    a, b, c = chart.bars
    assert [p.width for p in a.pieces] == [150, 150] and a.pieces[1].x == a.pieces[0].x + 150
    assert [p.width for p in b.pieces] == [75]  # the empty part is not drawn
    assert c.pieces == () and c.total == 0
    assert a.y < b.y < c.y and chart.height > c.y
    assert [t.value for t in chart.ticks] == [0, 5, 10, 15, 20] and chart.ticks[-1].at == chart.plot[2]


def test_columns_grow_from_the_bottom() -> None:
    chart = columns([("00:00", [Part("low", 2), Part("high", 3)]), ("01:00", [Part("low", 1)])], height=224)
    bottom, top = chart.plot[3], chart.plot[1]
    first, second = chart.bars
    low, high = first.pieces
    assert chart.top == 5 and low.y + low.height == bottom and high.y + high.height == pytest.approx(low.y)
    assert high.y == pytest.approx(top)  # the largest total fills the height
    assert second.pieces[0].height == pytest.approx((bottom - top) / 5)
    assert second.x > first.x
    assert chart.ticks[0].at == bottom and chart.ticks[-1].at == pytest.approx(top)


def test_no_data_draws_nothing_and_divides_by_nothing() -> None:
    assert horizontal_bars([]).bars == () and horizontal_bars([]).top == 0
    zeros = columns([("00:00", [Part("low", 0)])])
    assert zeros.top == 0 and zeros.bars[0].pieces == ()
    assert sparkline([], []).lines == () and sparkline([1, 2], [math.nan, math.nan]).last is None


def test_long_labels_are_cut_and_kept_whole() -> None:
    label = "<script>" + "x" * 60
    bar = horizontal_bars([(label, [Part("assets", 1)])]).bars[0]
    assert bar.label == label and len(bar.shown) == 28 and bar.shown.endswith("\u2026")
    assert shorten("short") == "short"


def test_sparklines_fill_the_box_and_break_at_missing_values() -> None:
    line = sparkline([0, 10, 20, 30], [1.0, 3.0, math.nan, 2.0], width=104, height=24)
    assert line.lines == ("2.0,22.0 35.3,2.0", "102.0,12.0 102.0,12.0")
    assert (line.low, line.high, line.last, line.count) == (1.0, 3.0, 2.0, 4)
    flat = sparkline([5], [7.0], width=104, height=24)
    assert flat.lines == ("52.0,12.0 52.0,12.0",)
