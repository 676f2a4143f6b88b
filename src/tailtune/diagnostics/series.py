"""Shape of a per-epoch series: falling / flat / rising, oscillating, saturated.

All thresholds are *relative* (divided by the mean absolute level of the series in the window),
so they read the same for a focal loss of 0.05 and a contrastive loss of 4.0. They are documented
in docs/diagnostics.md ("Series shapes").

``relative_slope(y)`` = least-squares slope of ``y`` against the epoch index, divided by
``mean(|y|)``: the fraction of its level the series moves per epoch.

========== ===========================================================================
shape      definition (window = the last :data:`WINDOW` epochs, at least 3 points)
========== ===========================================================================
falling    ``relative_slope <= -FLAT_SLOPE`` (falls by 2% of its level or more per epoch)
flat       ``|relative_slope| < FLAT_SLOPE`` ("plateau" when earlier epochs fell)
rising     ``relative_slope >= +FLAT_SLOPE``
oscillating at least 4 points; the first differences change sign at
           ``>= OSC_FLIP_SHARE`` of consecutive pairs (at least 2 flips); the median step is
           ``>= OSC_AMPLITUDE`` of the level; and the path length is ``>= OSC_PATH_RATIO`` times the
           net change (it goes up and down more than it goes anywhere)
========== ===========================================================================

Two measures compare a series with *its own start* rather than with a constant, so that loss
parts of different scales (and different losses) can be judged side by side:

* ``drop_from_start(y)`` = ``1 - y[-1] / y[0]``: the share of its first value the series has shed
  (a focal part 0.65 -> 0.60 has shed 7.7%, a contrastive part 0.64 -> 0.35 has shed 45%);
* ``stalled(y)``: the best value of the last :data:`STALL_EPOCHS` epochs improves on the best
  before them by at most :data:`STALL_SHARE` of the improvement the series made until then.

Example:
    >>> shape([1.0, 0.8, 0.6, 0.5])
    'falling'
    >>> shape([0.50, 0.50, 0.505, 0.50])
    'flat'
    >>> is_oscillating([0.5, 0.8, 0.45, 0.85, 0.4, 0.8])
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

#: epochs looked at for "falling / flat / rising" (the most recent ones)
WINDOW = 4
#: |relative slope| below this (per epoch) is flat
FLAT_SLOPE = 0.02
#: share of consecutive first-difference pairs that must change sign to call a series oscillating
OSC_FLIP_SHARE = 0.6
#: median |step| as a share of the level for an oscillation to matter
OSC_AMPLITUDE = 0.05
#: path length / |net change| above which the series goes up and down more than it goes anywhere
OSC_PATH_RATIO = 3.0
#: recent epochs looked at by :func:`stalled`
STALL_EPOCHS = 3
#: a series has stalled when its recent gain is at most this share of its earlier gain
STALL_SHARE = 0.1


def _clean(values: Sequence[float | None]) -> np.ndarray:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(float(v))], dtype=np.float64)
    return arr


def relative_slope(values: Sequence[float | None]) -> float:
    """Least-squares slope per epoch divided by ``mean(|values|)``; ``nan`` with fewer than 2 points."""
    y = _clean(values)
    if y.size < 2:
        return float("nan")
    x = np.arange(y.size, dtype=np.float64)
    slope = float(np.polyfit(x, y, 1)[0])
    level = float(np.mean(np.abs(y)))
    if level == 0.0:
        return 0.0 if slope == 0.0 else math.copysign(math.inf, slope)
    return slope / level


def shape(values: Sequence[float | None], *, window: int = WINDOW) -> str | None:
    """``"falling"``, ``"flat"`` or ``"rising"`` over the last ``window`` points; ``None`` if < 3 points."""
    y = _clean(values)
    if y.size < 3:
        return None
    s = relative_slope(y[-window:])
    if s <= -FLAT_SLOPE:
        return "falling"
    if s >= FLAT_SLOPE:
        return "rising"
    return "flat"


def is_oscillating(values: Sequence[float | None]) -> bool:
    """Whether the series zig-zags (see the module table); ``False`` with fewer than 4 points."""
    y = _clean(values)
    if y.size < 4:
        return False
    d = np.diff(y)
    d = d[d != 0]
    if d.size < 3:
        return False
    flips = int(np.sum(np.sign(d[1:]) != np.sign(d[:-1])))
    level = float(np.mean(np.abs(y))) or 1.0
    path = float(np.sum(np.abs(d)))
    net = abs(float(y[-1] - y[0]))
    return (
        flips >= 2
        and flips / (d.size - 1) >= OSC_FLIP_SHARE
        and float(np.median(np.abs(d))) / level >= OSC_AMPLITUDE
        and path >= OSC_PATH_RATIO * net
    )


def drop_from_start(values: Sequence[float | None]) -> float:
    """``1 - last / first``: the share of its first value a (positive) series has shed; ``nan`` if undefined.

    Example:
        >>> round(drop_from_start([0.64, 0.55, 0.47, 0.40, 0.35]), 3)
        0.453
    """
    y = _clean(values)
    if y.size < 2 or y[0] <= 0:
        return float("nan")
    return float(1.0 - y[-1] / y[0])


def stalled(values: Sequence[float | None], *, higher_is_better: bool = True, recent: int = STALL_EPOCHS) -> bool | None:
    """Whether a score stopped improving: the best of its last ``recent`` points gains at most
    :data:`STALL_SHARE` of what the series had gained by then over its first value; ``None`` when
    there are fewer than ``recent + 1`` points.

    Example:
        >>> stalled([0.50, 0.60, 0.66, 0.661, 0.66, 0.662])
        True
        >>> stalled([0.50, 0.55, 0.60, 0.65, 0.70])
        False
    """
    y = _clean(values)
    if y.size < recent + 1:
        return None
    if not higher_is_better:
        y = -y
    before, last = y[:-recent], y[-recent:]
    earlier_gain = float(before.max() - y[0])
    recent_gain = float(last.max() - before.max())
    if earlier_gain <= 0:
        return recent_gain <= 0
    return recent_gain <= STALL_SHARE * earlier_gain
