"""Is a candidate recipe better than its baseline? An interval for the difference, and a verdict.

* Several seeds on each side: Welch's t-interval for ``mean(candidate) - mean(baseline)``
  (Welch-Satterthwaite degrees of freedom). With several seeds on one side only, the single run is
  assumed to vary as much as the other side (``s^2/n_a + s^2/n_b``, ``df = n - 1``).
* One run on each side with test predictions on the same examples: a paired bootstrap over the
  test examples (:data:`BOOTSTRAP_SAMPLES` resamples, seeded), percentile interval. This measures
  the sampling noise of the test set only, not seed-to-seed variance; the verdict says so.
* The verdict is ``better`` only when the whole interval lies above zero, ``worse`` when it lies
  below, else ``not distinguishable`` — never "better" when the interval crosses zero.
* What is compared is a metric. Loss values of runs whose losses differ are not comparable (focal
  loss is below cross-entropy for every example by construction): :func:`check_comparable` refuses
  them, naming the difference (:mod:`tailtune.diagnostics.loss_scale`).

Example:
    >>> c = compare_values([0.62, 0.63, 0.61], [0.58, 0.59, 0.57])
    >>> c.verdict, round(c.delta, 3)
    ('better', 0.04)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0


@dataclass
class Comparison:
    delta: float
    low: float | None
    high: float | None
    method: str
    verdict: str
    n_candidate: int
    n_baseline: int
    confidence: float = CONFIDENCE

    def describe(self, *, points: bool = True) -> str:
        f = (lambda x: f"{100 * x:+.1f}") if points else (lambda x: f"{x:+.4f}")
        unit = " points" if points else ""
        if self.low is None:
            return f"{f(self.delta)}{unit} ({self.method})"
        return (f"{f(self.delta)}{unit}, {int(100 * self.confidence)}% interval {f(self.low)} to {f(self.high)}"
                f" ({self.method})")


def check_comparable(metric: str, candidate_recipe: dict | None = None, baseline_recipe: dict | None = None) -> None:
    """Raise ``ValueError`` when ``metric`` is a loss value and the two recipes' losses differ (or are unknown).

    Example:
        >>> check_comparable("macro_f1", {"loss": {"focal": {}}}, {"loss": {"ce": {}}})
        >>> check_comparable("val_loss", {"loss": {"focal": {"gamma": 2.0}}}, {"loss": {"ce": {}}})
        Traceback (most recent call last):
        ...
        ValueError: val_loss: loss values of different losses are not comparable (loss: focal(gamma=2) vs ce); compare a metric (macro_f1, per-class recall) and each loss against its own start
    """
    from tailtune.diagnostics.loss_scale import is_loss_metric, loss_differences

    if not is_loss_metric(metric):
        return
    diffs = loss_differences(candidate_recipe, baseline_recipe)
    if diffs:
        raise ValueError(f"{metric}: loss values of different losses are not comparable ({'; '.join(diffs)}); compare "
                         "a metric (macro_f1, per-class recall) and each loss against its own start")


def _verdict(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "not distinguishable"
    if low > 0:
        return "better"
    if high < 0:
        return "worse"
    return "not distinguishable"


def compare_values(candidate: Sequence[float], baseline: Sequence[float], *, confidence: float = CONFIDENCE) -> Comparison:
    """Welch t-interval for the difference of means (higher is better); see the module doc."""
    from scipy import stats

    a = np.asarray([x for x in candidate if x is not None and math.isfinite(x)], dtype=np.float64)
    b = np.asarray([x for x in baseline if x is not None and math.isfinite(x)], dtype=np.float64)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"need at least one value per side, got {a.size} candidate and {b.size} baseline")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence!r} must be in (0, 1)")
    delta = float(a.mean() - b.mean())
    na, nb = a.size, b.size
    if na >= 2 and nb >= 2:
        va, vb = a.var(ddof=1), b.var(ddof=1)
        se2 = va / na + vb / nb
        if se2 == 0:
            low = high = delta
        else:
            df = se2**2 / ((va / na) ** 2 / (na - 1) + (vb / nb) ** 2 / (nb - 1))
            h = stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(se2)
            low, high = delta - h, delta + h
        method = f"Welch t-interval, {na} vs {nb} seeds"
    elif na >= 2 or nb >= 2:
        s2 = (a if na >= 2 else b).var(ddof=1)
        n = max(na, nb)
        h = stats.t.ppf(0.5 + confidence / 2, n - 1) * math.sqrt(s2 / na + s2 / nb)
        low, high = delta - h, delta + h
        method = f"t-interval from the {n}-seed side's variance, {na} vs {nb} seeds"
    else:
        return Comparison(delta, None, None, "one run per side: no seed variance", "not distinguishable", na, nb, confidence)
    return Comparison(delta, float(low), float(high), method, _verdict(low, high), na, nb, confidence)


def paired_bootstrap(
    metric: Callable[[np.ndarray], float],
    metric_baseline: Callable[[np.ndarray], float],
    n: int,
    *,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = BOOTSTRAP_SEED,
    confidence: float = CONFIDENCE,
) -> Comparison:
    """Percentile interval of ``metric(idx) - metric_baseline(idx)`` over ``samples`` resamples of ``n`` examples.

    ``metric(idx)`` computes the candidate's score on the examples ``idx`` (with repetition).
    """
    rng = np.random.default_rng(seed)
    full = np.arange(n)
    delta = metric(full) - metric_baseline(full)
    diffs = np.empty(samples)
    for i in range(samples):
        idx = rng.integers(0, n, size=n)
        diffs[i] = metric(idx) - metric_baseline(idx)
    alpha = (1 - confidence) / 2
    low, high = float(np.quantile(diffs, alpha)), float(np.quantile(diffs, 1 - alpha))
    return Comparison(float(delta), low, high, f"paired bootstrap over {n} test examples, {samples} resamples; "
                      "one seed per side, so seed variance is not included", _verdict(low, high), 1, 1, confidence)
