"""Calibration metrics: expected calibration error (fixed and adaptive bins), reliability data, Brier.

ECE (Naeini et al., AAAI 2015; Guo et al., ICML 2017, "On Calibration of Modern Neural Networks"):

.. math::  \\mathrm{ECE} = \\sum_b \\frac{|B_b|}{n} \\left| \\mathrm{acc}(B_b) - \\mathrm{conf}(B_b) \\right|

``strategy="uniform"`` uses ``n_bins`` equal-width bins on [0, 1]; ``strategy="quantile"`` (adaptive
ECE, Nixon et al., CVPR-W 2019, "Measuring Calibration in Deep Learning") uses bins holding equal
numbers of predictions: the predictions in confidence order, cut into ``n_bins`` runs whose sizes
differ by at most one (ties in data order). Cutting by rank, not at quantile values, keeps the bins
equal when many predictions tie (duplicate texts) and keeps the metric continuous: a tie broken by
float rounding (another batch padding) moves a prediction to a bin of the same confidence, where
quantile edges moved every tied prediction across the edge. Which (confidence, correct) pairs a task
produces is defined by :func:`confidence_pairs`.

Shape:
    ``correct`` and ``confidence``: ``(M,)``, any M >= 1.

Example:
    >>> import numpy as np
    >>> expected_calibration_error(np.array([1, 0]), np.array([0.9, 0.6]), n_bins=10)
    0.35
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.metrics._task import as_task

__all__ = [
    "STRATEGIES",
    "brier_score",
    "confidence_pairs",
    "expected_calibration_error",
    "reliability_diagram",
]

STRATEGIES = ("uniform", "quantile")


def _check_bins(n_bins: int, strategy: str) -> None:
    if not isinstance(n_bins, (int, np.integer)) or isinstance(n_bins, bool) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}")


def _bins(confidence: np.ndarray, n_bins: int, strategy: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(bin index per prediction, lower bound per bin, upper bound per bin)``."""
    _check_bins(n_bins, strategy)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
        idx = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
        return idx, edges[:-1], edges[1:]
    order = np.argsort(confidence, kind="stable")
    runs = [r for r in np.array_split(order, n_bins) if r.size]
    idx = np.empty(confidence.size, dtype=np.int64)
    for b, r in enumerate(runs):
        idx[r] = b
    upper = np.array([confidence[r[-1]] for r in runs])
    upper[-1] = 1.0
    lower = np.concatenate([[0.0], upper[:-1]])
    return idx, lower, upper


def _validate(correct: Any, confidence: Any) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(correct, dtype=np.float64).ravel()
    p = np.asarray(confidence, dtype=np.float64).ravel()
    if c.shape != p.shape:
        raise ValueError(f"correct and confidence must have the same length, got {c.size} and {p.size}")
    if p.size == 0:
        raise ValueError("calibration needs at least one prediction, got 0")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("confidence must be probabilities in [0, 1]")
    return c, p


def reliability_diagram(
    correct: Any, confidence: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> dict[str, list]:
    """Per-bin data of a reliability diagram.

    Returns ``{"bin_lower", "bin_upper", "confidence", "accuracy", "count"}`` (lists of the same
    length; empty bins are omitted). Uniform bins are right-closed ``(lo, hi]`` except the first,
    which includes 0; quantile bins run from the previous bin's largest confidence to their own (the
    first from 0, the last to 1), and a tie may span two of them (see the module docstring).
    """
    c, p = _validate(correct, confidence)
    idx, lower, upper = _bins(p, n_bins, strategy)
    out: dict[str, list] = {"bin_lower": [], "bin_upper": [], "confidence": [], "accuracy": [], "count": []}
    counts = np.bincount(idx, minlength=lower.size)
    conf_sum = np.bincount(idx, weights=p, minlength=lower.size)
    acc_sum = np.bincount(idx, weights=c, minlength=lower.size)
    for b in np.nonzero(counts)[0]:
        out["bin_lower"].append(float(lower[b]))
        out["bin_upper"].append(float(upper[b]))
        out["confidence"].append(float(conf_sum[b] / counts[b]))
        out["accuracy"].append(float(acc_sum[b] / counts[b]))
        out["count"].append(int(counts[b]))
    return out


def expected_calibration_error(
    correct: Any, confidence: Any, *, n_bins: int = 15, strategy: str = "uniform"
) -> float:
    """Expected calibration error (lower is better, 0 = calibrated); see the module docstring."""
    d = reliability_diagram(correct, confidence, n_bins=n_bins, strategy=strategy)
    n = float(sum(d["count"]))
    return float(
        sum(k / n * abs(a - c) for k, a, c in zip(d["count"], d["accuracy"], d["confidence"], strict=True))
    )


def confidence_pairs(y_true: Any, probs: Any, task: Any) -> tuple[np.ndarray, np.ndarray]:
    """The (correct, confidence) pairs over which ECE is computed for each task kind.

    - binary: top-label: confidence ``max(p, 1 - p)``, correct when ``(p >= 0.5) == y``;
    - multiclass: top-label: confidence ``max_k p_k``, correct when the argmax is the target;
    - multilabel: every (text, label) cell is a binary decision, scored top-label as for binary;
    - aspects: every (text, aspect) cell is a (P + 1)-way decision, scored top-label.
    """
    task = as_task(task)
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if task_kind(task).sigmoid:
        p = p.ravel()
        y = y.astype(np.int64).ravel()
        pred = (p >= 0.5).astype(np.int64)
        return (pred == y).astype(np.float64), np.maximum(p, 1.0 - p)
    k = p.shape[-1]
    p2 = p.reshape(-1, k)
    y = y.astype(np.int64).ravel()
    return (p2.argmax(axis=1) == y).astype(np.float64), p2.max(axis=1)


def brier_score(y_true: Any, probs: Any, task: Any) -> float:
    """Brier score (lower is better).

    .. math:: \\mathrm{BS} = \\frac{1}{M} \\sum_{m} \\sum_{k} (p_{mk} - y_{mk})^2

    binary and multilabel: one term per (text, label) cell, ``(p - y)^2`` (M = N or N * C);
    multiclass: the original multi-class Brier (Brier, 1950) summing over the C classes per text;
    aspects: the same summed over P + 1 classes per (text, aspect) cell (M = N * A).
    """
    task = as_task(task)
    p = np.asarray(probs, dtype=np.float64)
    y = np.asarray(y_true)
    if task_kind(task).sigmoid:
        return float(np.mean((p.ravel() - y.astype(np.float64).ravel()) ** 2))
    k = p.shape[-1]
    p2 = p.reshape(-1, k)
    onehot = np.eye(k)[y.astype(np.int64).ravel()]
    return float(np.mean(np.sum((p2 - onehot) ** 2, axis=1)))
