"""Statistics for comparing recipes: seed summaries, paired tests on the same test items, verdicts.

Three questions, three tools:

- *How stable is one recipe?* :func:`summarize` gives the mean, the sample standard deviation and
  the 95% Student-t interval over seeds::

      mean +- t_{1 - alpha/2, n - 1} * sd / sqrt(n)

- *Is recipe B better than recipe A on these test items?* :func:`paired_bootstrap` and
  :func:`paired_permutation` compare two sets of decisions on the SAME items. Both work on per-item
  contributions: for each item and each class ("cell") the item adds 0/1 to the true-positive,
  false-positive and false-negative counts (:func:`item_counts`). Resampling items and re-summing
  their counts recomputes macro-F1 exactly (F1 = 2TP / (2TP + FP + FN), 0 when the denominator is
  0, as ``tailtune.metrics.classification_report`` with ``zero_division=0``); accuracy uses per-item
  correctness. The bootstrap draws items with replacement (both recipes get the same draw) and
  gives a percentile interval of ``metric(B) - metric(A)``; the permutation test swaps A's and B's
  decisions on each item with probability 1/2 (the null hypothesis: the labels "A" and "B" are
  exchangeable) and gives a two-sided p-value ``(1 + #{|d*| >= |d|}) / (1 + R)``.
  Several seeds per recipe are handled by stacking them: an item carries the decisions of every
  seed, the metric of a resample is the mean over seeds of the per-seed metric.

- *What may we say?* :func:`verdict` calls a difference an improvement (or a regression) only when
  its whole interval lies above (below) zero, and, when a p-value is given, only when it is below
  ``alpha`` too; an interval that crosses zero is always "no detectable difference".

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> task = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
    >>> y = np.array([0, 1, 2, 0, 1, 2] * 20)
    >>> test = paired_bootstrap(y, y, y, task=task, n_resamples=200, seed=0)
    >>> test.diff, verdict(test)
    (0.0, 'no detectable difference')

References:
    Efron & Tibshirani, "An Introduction to the Bootstrap", 1993 (percentile interval).
    Dror, Baumer, Shlomov, Reichart, "The Hitchhiker's Guide to Testing Statistical Significance in
    Natural Language Processing", ACL 2018 (paired bootstrap / permutation tests for NLP metrics).
    Berg-Kirkpatrick, Burkett, Klein, "An Empirical Investigation of Statistical Significance in
    NLP", EMNLP 2012.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats as _st

from tailtune.data.kinds import task_kind
from tailtune.errors import OptionError, check_int
from tailtune.metrics.counts import item_counts, metric_from_counts, task_cells

__all__ = [
    "METRICS",
    "PairedTest",
    "Summary",
    "item_counts",
    "metric_from_counts",
    "paired_bootstrap",
    "paired_permutation",
    "combine_verdicts",
    "summarize",
    "verdict",
    "welch_interval",
]

#: metrics the paired tests compute from per-item contributions
METRICS = ("macro_f1", "accuracy")
VERDICTS = ("improvement", "regression", "no detectable difference")


# ------------------------------------------------------------------------------ seed summaries
@dataclass(frozen=True)
class Summary:
    """Mean, sample sd and the Student-t interval of one metric over ``n`` seeds."""

    n: int
    mean: float
    sd: float
    ci_low: float
    ci_high: float
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def _check_confidence(confidence: float) -> float:
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
        raise OptionError(f"confidence={confidence!r} must be a number in (0, 1), e.g. 0.95")
    return float(confidence)


def summarize(values: Sequence[float], *, confidence: float = 0.95) -> Summary:
    """Mean, sd (``ddof=1``) and the t-interval ``mean +- t_{(1+c)/2, n-1} sd / sqrt(n)``.

    NaN values (e.g. a seed whose metric is undefined) are dropped. With one value the sd and the
    interval are NaN (there is no spread to measure), with none the mean is NaN too.

    Example:
        >>> s = summarize([0.60, 0.62, 0.64])
        >>> round(s.mean, 3), round(s.sd, 3), round(s.ci_low, 3), round(s.ci_high, 3)
        (0.62, 0.02, 0.57, 0.67)
    """
    confidence = _check_confidence(confidence)
    x = np.asarray([float(v) for v in values], dtype=np.float64)
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan, confidence)
    mean = float(x.mean())
    if n == 1:
        return Summary(1, mean, math.nan, math.nan, math.nan, confidence)
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf((1 + confidence) / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(n, mean, sd, mean - half, mean + half, confidence)


def welch_interval(a: Sequence[float], b: Sequence[float], *, confidence: float = 0.95) -> tuple[float, float, float]:
    """``(diff, low, high)``: mean(b) - mean(a) with Welch's t-interval (unequal variances, seeds
    of the two recipes independent). NaN bounds when either side has fewer than 2 values."""
    confidence = _check_confidence(confidence)
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]
    if x.size == 0 or y.size == 0:
        return math.nan, math.nan, math.nan
    diff = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return diff, math.nan, math.nan
    va, vb = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = math.sqrt(va + vb)
    if se == 0:
        return diff, diff, diff
    dof = (va + vb) ** 2 / (va**2 / (x.size - 1) + vb**2 / (y.size - 1))
    half = float(_st.t.ppf((1 + confidence) / 2, dof)) * se
    return diff, diff - half, diff + half


# ---------------------------------------------------------------------------------- paired tests
@dataclass(frozen=True)
class PairedTest:
    """Result of a paired test of B against A on the same items (``diff = metric(B) - metric(A)``)."""

    method: str
    metric: str
    a: float
    b: float
    diff: float
    ci_low: float | None
    ci_high: float | None
    p_value: float
    n_items: int
    n_resamples: int
    seed: int
    confidence: float = 0.95

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _stack(pred: Any, n_items: int) -> np.ndarray:
    """Predictions as ``(S, N, ...)``: one run ``(N, ...)`` becomes ``S = 1``."""
    if isinstance(pred, (list, tuple)):
        arr = np.stack([np.asarray(p) for p in pred])
    else:
        arr = np.asarray(pred)
        arr = arr[None]
    if arr.shape[1] != n_items:
        raise ValueError(f"predictions cover {arr.shape[1]} items, y_true has {n_items}")
    return arr


class _Prepared:
    """Per-seed per-item contributions of one recipe, laid out for one matrix product per resample
    block: ``matrix (N, S * (3K + 1))`` holds, for each seed, the item's tp, fp, fn cells and its
    correctness."""

    def __init__(self, y_true, preds, task):
        counts = [item_counts(y_true, p, task) for p in preds]
        self.seeds = len(counts)
        self.k = counts[0][0].shape[1]
        blocks = [np.concatenate([c[0], c[1], c[2], c[3][:, None]], axis=1) for c in counts]
        self.matrix = np.concatenate(blocks, axis=1).astype(np.float32)  # (N, S * (3K + 1))


def _from_sums(sums: np.ndarray, n_items: np.ndarray, *, seeds: int, k: int, metric: str, kind: str, p: int):
    """Metric per row from summed contributions ``(R, S * (3K + 1))``, mean over seeds -> ``(R,)``."""
    sums = sums.reshape(sums.shape[0], seeds, 3 * k + 1)
    if metric == "accuracy":
        return (sums[:, :, -1] / n_items[:, None]).mean(axis=1)
    tp, fp, fn = sums[:, :, :k], sums[:, :, k : 2 * k], sums[:, :, 2 * k : 3 * k]
    return metric_from_counts(tp, fp, fn, kind=kind, polarities=p).mean(axis=1)


def _score(prep: _Prepared, weights: np.ndarray | None, *, metric: str, kind: str, p: int) -> np.ndarray:
    """Metric per row of ``weights (R, N)`` (item multiplicities); ``None`` scores every item once."""
    if weights is None:
        weights = np.ones((1, prep.matrix.shape[0]), dtype=np.float32)
    sums = weights @ prep.matrix
    return _from_sums(sums, weights.sum(axis=1), seeds=prep.seeds, k=prep.k, metric=metric, kind=kind, p=p)


def _prepare(y_true, pred_a, pred_b, task, metric):
    if metric not in METRICS:
        raise OptionError(f"metric={metric!r} is not one of {list(METRICS)}")
    kind = task_kind(task)
    n = len(np.asarray(y_true))
    if n == 0:
        raise ValueError("y_true is empty; a paired test needs at least one item")
    a = _Prepared(y_true, _stack(pred_a, n), task)
    b = _Prepared(y_true, _stack(pred_b, n), task)
    _, p = task_cells(task)
    return kind, p, n, a, b


def check_alpha(alpha: float) -> float:
    """``alpha`` as a float in (0, 1) (the significance level of a verdict), else OptionError."""
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha < 1:
        raise OptionError(f"alpha={alpha!r} must be in (0, 1), e.g. 0.05")
    return float(alpha)


def check_resamples(n_resamples: int) -> int:
    return check_int("n_resamples", n_resamples, example=2000)


def _chunks(total: int, size: int):
    for start in range(0, total, size):
        yield min(size, total - start)


def paired_bootstrap(
    y_true: Any,
    pred_a: Any,
    pred_b: Any,
    *,
    task: Any,
    metric: str = "macro_f1",
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> PairedTest:
    """Paired bootstrap over items of ``metric(B) - metric(A)``.

    Each resample draws ``N`` items with replacement (the same draw for A and B), re-sums their
    per-item counts and recomputes the metric. The interval is the percentile interval of the
    resampled differences; the two-sided p-value is ``2 * min(P(d* <= 0), P(d* >= 0))`` (capped at
    1), i.e. how often the resampled difference lands on the other side of zero.

    Args:
        y_true: encoded targets of the N test items.
        pred_a, pred_b: decisions ``(N, ...)``, or a list of several seeds' decisions each ``(N, ...)``.
        task: the :class:`tailtune.data.TaskSpec` (or its dict).
        metric: ``"macro_f1"`` or ``"accuracy"``.
        n_resamples: bootstrap resamples; seed: for the resampling generator (deterministic).

    Example:
        >>> from tailtune.data import TaskSpec
        >>> task = TaskSpec(kind="binary", labels=["neg", "pos"])
        >>> y = np.array([0, 1] * 100)
        >>> t = paired_bootstrap(y, 1 - y, y, task=task, n_resamples=500)
        >>> t.diff, t.ci_low > 0
        (1.0, True)
    """
    confidence = _check_confidence(confidence)
    n_resamples = check_resamples(n_resamples)
    kind, p, n, a, b = _prepare(y_true, pred_a, pred_b, task, metric)
    score_a = float(_score(a, None, metric=metric, kind=kind, p=p)[0])
    score_b = float(_score(b, None, metric=metric, kind=kind, p=p)[0])
    rng = np.random.default_rng(seed)
    diffs = []
    for size in _chunks(n_resamples, 256):
        idx = rng.integers(0, n, size=(size, n)) + (np.arange(size) * n)[:, None]
        weights = np.bincount(idx.ravel(), minlength=size * n).reshape(size, n).astype(np.float32)
        diffs.append(_score(b, weights, metric=metric, kind=kind, p=p) - _score(a, weights, metric=metric, kind=kind, p=p))
    d = np.concatenate(diffs)
    alpha = 1 - confidence
    low, high = np.quantile(d, [alpha / 2, 1 - alpha / 2])
    p_value = min(1.0, 2 * min(float(np.mean(d <= 0)), float(np.mean(d >= 0))))
    return PairedTest("paired_bootstrap", metric, score_a, score_b, score_b - score_a,
                      float(low), float(high), p_value, n, n_resamples, int(seed), confidence)


def paired_permutation(
    y_true: Any,
    pred_a: Any,
    pred_b: Any,
    *,
    task: Any,
    metric: str = "macro_f1",
    n_resamples: int = 2000,
    seed: int = 0,
) -> PairedTest:
    """Paired (approximate randomisation) permutation test of ``metric(B) - metric(A)``.

    Under the null hypothesis A and B are exchangeable on every item, so each resample swaps the two
    recipes' decisions on each item with probability 1/2 and recomputes the difference ``d*``. The
    two-sided p-value is ``(1 + #{|d*| >= |d|}) / (1 + R)`` (never 0). With several seeds both
    recipes need the same number of seeds (an item's seed decisions move together). No interval:
    ``ci_low``/``ci_high`` are ``None``.
    """
    n_resamples = check_resamples(n_resamples)
    kind, p, n, a, b = _prepare(y_true, pred_a, pred_b, task, metric)
    if a.seeds != b.seeds:
        raise ValueError(
            f"a permutation test swaps whole items, so both sides need the same number of seeds "
            f"(got {a.seeds} and {b.seeds}); use paired_bootstrap instead"
        )
    score_a = float(_score(a, None, metric=metric, kind=kind, p=p)[0])
    score_b = float(_score(b, None, metric=metric, kind=kind, p=p)[0])
    observed = score_b - score_a
    rng = np.random.default_rng(seed)
    # swapping an item moves (b - a) from one side to the other: side 1 = A + swap (B - A),
    # side 2 = A + (1 - swap) (B - A)
    base = a.matrix.sum(axis=0)[None]
    delta = b.matrix - a.matrix
    counts = np.full(1, float(n))
    hits = 0
    for size in _chunks(n_resamples, 256):
        swap = (rng.random((size, n)) < 0.5).astype(np.float32)
        moved = swap @ delta
        total = delta.sum(axis=0)[None]
        opts = dict(seeds=a.seeds, k=a.k, metric=metric, kind=kind, p=p)
        s1 = _from_sums(base + moved, np.repeat(counts, size), **opts)
        s2 = _from_sums(base + total - moved, np.repeat(counts, size), **opts)
        hits += int(np.sum(np.abs(s2 - s1) >= abs(observed) - 1e-12))
    p_value = (1 + hits) / (1 + n_resamples)
    return PairedTest("paired_permutation", metric, score_a, score_b, observed, None, None,
                      float(p_value), n, n_resamples, int(seed), 0.95)


# ---------------------------------------------------------------------------------------- verdict
def verdict(
    test: PairedTest | None = None,
    *,
    low: float | None = None,
    high: float | None = None,
    p_value: float | None = None,
    alpha: float = 0.05,
    higher_is_better: bool = True,
) -> str:
    """``"improvement"``, ``"regression"`` or ``"no detectable difference"`` for B vs A.

    An improvement needs the whole interval above zero (``low > 0``; ``high < 0`` when lower is
    better) AND, when a p-value is known, ``p < alpha``. An interval that touches or crosses zero,
    a missing interval (NaN/None) or a large p-value is never an improvement or a regression.

    Args:
        test: a :class:`PairedTest` (its interval and p-value are used), or give ``low``/``high``
            (and optionally ``p_value``) directly.

    Example:
        >>> verdict(low=-0.01, high=0.03)
        'no detectable difference'
        >>> verdict(low=0.004, high=0.03, p_value=0.01)
        'improvement'
    """
    check_alpha(alpha)
    if test is not None:
        low = test.ci_low if low is None else low
        high = test.ci_high if high is None else high
        p_value = test.p_value if p_value is None else p_value
    if low is None or high is None or any(math.isnan(float(v)) for v in (low, high)):
        # no interval: a p-value alone is not enough to name a direction safely
        return "no detectable difference"
    low, high = float(low), float(high)
    significant = p_value is None or float(p_value) < alpha
    if low > 0 and significant:
        return "improvement" if higher_is_better else "regression"
    if high < 0 and significant:
        return "regression" if higher_is_better else "improvement"
    return "no detectable difference"


def combine_verdicts(verdicts: Sequence[str]) -> str:
    """One verdict from several intervals about the same difference: a direction only when all agree."""
    unique = set(verdicts)
    if len(unique) == 1:
        return unique.pop()
    return "no detectable difference"

