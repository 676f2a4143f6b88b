import math

import pytest

from tailtune.diagnostics.series import FLAT_SLOPE, is_oscillating, relative_slope, shape


def test_relative_slope_is_fraction_of_level_per_epoch():
    assert relative_slope([1.0, 0.9, 0.8]) == pytest.approx(-0.1 / 0.9)
    assert relative_slope([10.0, 9.0, 8.0]) == pytest.approx(relative_slope([1.0, 0.9, 0.8]))  # scale-free
    assert math.isnan(relative_slope([1.0]))
    assert relative_slope([0.0, 0.0, 0.0]) == 0.0


@pytest.mark.parametrize(
    "values, expected",
    [
        ([1.0, 0.8, 0.6, 0.5], "falling"),
        ([0.5, 0.5, 0.505, 0.5], "flat"),
        ([0.5, 0.6, 0.7, 0.8], "rising"),
        ([1.0, 0.5], None),
        ([5.0, 4.0, 3.0, 1.0, 1.001, 1.0, 0.999], "flat"),  # plateau after falling: window is the last 4
    ],
)
def test_shape(values, expected):
    assert shape(values) == expected


def test_flat_boundary():
    # slope exactly at the threshold counts as moving
    y = [1.0 - FLAT_SLOPE * i for i in range(3)]
    assert relative_slope(y) <= -FLAT_SLOPE + 1e-12
    assert shape([v for v in y]) == "falling"


def test_oscillating():
    assert is_oscillating([0.5, 0.8, 0.45, 0.85, 0.4, 0.8])
    assert not is_oscillating([1.0, 0.8, 0.6, 0.5, 0.4])          # monotone
    assert not is_oscillating([0.5, 0.501, 0.5, 0.501, 0.5])       # zig-zag below the 5% amplitude
    assert not is_oscillating([0.5, 0.8, 0.45])                    # too short
    assert not is_oscillating([1.0, 0.6, 0.7, 0.3, 0.35, 0.1])     # falls more than it wobbles


def test_drop_from_start_and_stalled():
    from tailtune.diagnostics.series import drop_from_start, stalled

    assert drop_from_start([0.65, 0.635, 0.62, 0.61, 0.60]) == pytest.approx(1 - 0.60 / 0.65)
    assert math.isnan(drop_from_start([0.5])) and math.isnan(drop_from_start([0.0, 0.1]))
    assert stalled([0.50, 0.60, 0.66, 0.661, 0.66, 0.662]) is True
    assert stalled([0.50, 0.55, 0.60, 0.65, 0.70]) is False
    assert stalled([0.9, 0.7, 0.6, 0.6, 0.6, 0.6], higher_is_better=False) is True
    assert stalled([0.5, 0.6, 0.7]) is None  # too short
