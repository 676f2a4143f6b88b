"""Per-item contributions to macro-F1 and macro-F1 from summed counts (pure numpy).

Resampling items and re-summing their counts recomputes macro-F1 exactly, which is what the paired
tests (:mod:`tailtune.experiments.stats`) and the out-of-bag check of decision-rule tuning
(:mod:`tailtune.evaluation.tuning`) need: ``F1 = 2TP / (2TP + FP + FN)``, 0 when the denominator is 0,
as :func:`tailtune.metrics.classification_report` with ``zero_division=0``.

Example:
    >>> import numpy as np
    >>> task = {"kind": "multiclass", "labels": ["a", "b"]}
    >>> tp, fp, fn, _ = item_counts(np.array([0, 1, 1]), np.array([0, 1, 0]), task)
    >>> round(float(metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), kind="multiclass")), 4)
    0.6667
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data.kinds import TaskKind, task_kind

__all__ = ["aspect_f1_from_counts", "item_counts", "metric_from_counts", "task_cells"]


def task_cells(task: Any) -> tuple[int, int]:
    """``(cells per item K, polarity count P for aspects else 0)`` of :func:`item_counts`."""
    kind = task_kind(task)
    get = (lambda k, d=None: task.get(k, d)) if isinstance(task, dict) else (lambda k, d=None: getattr(task, k, d))
    labels = list(get("labels") or [])
    if kind.is_binary:
        return 2, 0
    if not kind.per_aspect:
        return len(labels), 0
    p = len(get("polarities") or [])
    return len(labels) * p, p


def item_counts(y_true: Any, y_pred: Any, task: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-item contributions ``(tp, fp, fn, correct)``: three ``(N, K)`` 0/1 arrays and ``(N,)``.

    Cells ``K``: binary 2 (both classes, as the report's macro-F1), multiclass C, multilabel C
    (each label's positive class), aspects A x P (aspect a, polarity p; ``absent`` is no class, a
    polarity predicted on an absent cell is a false positive, absent predicted on a present cell a
    false negative). ``correct`` is exact-match per item (subset accuracy for multilabel; for aspects
    the share of the item's correct cells, so its mean is the pooled cell accuracy).

    Shape:
        y_true, y_pred: ``(N,)`` binary/multiclass, ``(N, C)`` multilabel, ``(N, A)`` aspects.
    """
    kind = task_kind(task)
    k, p = task_cells(task)
    yt = np.rint(np.asarray(y_true)).astype(np.int64)
    yp = np.rint(np.asarray(y_pred)).astype(np.int64)
    if kind.is_binary:
        yt, yp = yt.reshape(len(yt), -1)[:, 0], yp.reshape(len(yp), -1)[:, 0]
    if yt.shape != yp.shape:
        raise ValueError(f"y_true shape {yt.shape} and y_pred shape {yp.shape} differ")
    if kind.single_label:
        eye = np.eye(k, dtype=np.int8)
        t, q = eye[yt], eye[yp]
        tp = t & q
        return tp, q - tp, t - tp, (yt == yp).astype(np.float64)
    if kind.multi_hot:
        t, q = yt.astype(np.int8), yp.astype(np.int8)
        tp = t & q
        return tp, q - tp, t - tp, np.all(yt == yp, axis=1).astype(np.float64)
    # aspects: one-hot over P + 1, drop the absent column, flatten (A, P) -> A * P
    eye = np.eye(p + 1, dtype=np.int8)[:, :p]
    t, q = eye[yt], eye[yp]  # (N, A, P)
    tp = t & q
    n = yt.shape[0]
    return (
        tp.reshape(n, -1),
        (q - tp).reshape(n, -1),
        (t - tp).reshape(n, -1),
        (yt == yp).mean(axis=1).astype(np.float64),
    )


def metric_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, *, kind: str | TaskKind,
                       polarities: int = 0) -> np.ndarray:
    """Macro-F1 from summed counts ``(..., K)`` -> ``(...)``.

    ``F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)`` (0 when the denominator is 0) averaged over k; for
    aspects, per aspect over the polarities that occur or are predicted, then over aspects.
    """
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    if not task_kind(kind).per_aspect:
        denom = 2 * tp + fp + fn
        return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0).mean(axis=-1)
    per_aspect = aspect_f1_from_counts(tp, fp, fn, polarities=polarities)
    with np.errstate(all="ignore"):
        out = np.nanmean(per_aspect, axis=-1) if per_aspect.size else per_aspect
    return np.nan_to_num(out, nan=0.0)


def aspect_f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray, *, polarities: int) -> np.ndarray:
    """Per-aspect macro-F1 from summed aspect counts ``(..., A * P)`` -> ``(..., A)``.

    Each aspect averages the F1 of the polarities that occur or are predicted in it; an aspect with
    neither is ``nan`` (left out of :func:`metric_from_counts`' mean over aspects).
    """
    tp, fp, fn = (np.asarray(a, dtype=np.float64) for a in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)
    shape = f1.shape[:-1] + (-1, polarities)
    f1 = f1.reshape(shape)
    seen = denom.reshape(shape) > 0
    n_seen = seen.sum(-1)
    return np.divide((f1 * seen).sum(-1), n_seen, out=np.full(f1.shape[:-1], np.nan), where=n_seen > 0)
