"""From raw logits to probabilities and decisions, per task kind (numpy only).

=============  ======================  ==========================  =======================================
kind           ``scores`` (logits)     probabilities               decision (``decode``)
=============  ======================  ==========================  =======================================
``binary``     ``(N,)`` or ``(N, 1)``  ``(N,)`` sigmoid            ``sigmoid(s) >= threshold`` (default 0.5)
``multiclass`` ``(N, C)``              ``(N, C)`` softmax          ``argmax(s + bias)``
``multilabel`` ``(N, C)``              ``(N, C)`` sigmoid          ``sigmoid(s_c) >= threshold_c``
``aspects``    ``(N, A * (P + 1))``    ``(N, A, P + 1)`` softmax   ``argmax_k(s[a, k] + bias[a, k])``
=============  ======================  ==========================  =======================================

Thresholds are probabilities in (0, 1); biases are additive logit offsets. Adding a bias ``b_k`` to
class ``k`` before the softmax-argmax is the same as multiplying its probability by ``exp(b_k)``, i.e.
moving the decision boundary toward the other classes (the decision-theoretic prior shift of
Saerens et al., 2002).

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> task = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
    >>> decode(np.array([[2.0, 1.5, 0.0]]), task, biases=[0.0, 1.0, 0.0]).tolist()
    [1]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.metrics._task import as_task

__all__ = ["decode", "probabilities", "sigmoid", "softmax", "to_3d"]


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Numerically stable logistic function (no overflow warnings at +-1000)."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1.0 + e)
    return out


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (max subtracted first)."""
    x = np.asarray(x, dtype=np.float64)
    z = x - np.max(x, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _check_scores(scores: Any, task) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64)
    if task_kind(task).is_binary:
        if s.ndim == 2 and s.shape[1] == 1:
            s = s[:, 0]
        if s.ndim != 1:
            raise ValueError(f"scores for a binary task must have shape (N,) or (N, 1), got {s.shape}")
        return s
    if s.ndim != 2 or s.shape[1] != task.num_outputs:
        raise ValueError(
            f"scores for a {task.kind} task must have shape (N, {task.num_outputs}) (task.num_outputs), got {s.shape}"
        )
    return s


def to_3d(scores: np.ndarray, task) -> np.ndarray:
    """Aspects: reshape ``(N, A * (P + 1))`` to ``(N, A, P + 1)`` (aspect-major, as the model head emits)."""
    task = as_task(task)
    s = _check_scores(scores, task)
    return s.reshape(s.shape[0], len(task.labels), task_kind(task).target_classes(task))


def probabilities(scores: Any, task: Any, *, temperature: float | np.ndarray | None = None) -> np.ndarray:
    """Probabilities from logits: sigmoid (binary, multilabel) or softmax (multiclass, per aspect).

    ``temperature`` divides the logits first: a scalar, or for multilabel a ``(C,)`` vector (one per
    label). Shapes as in the module table.
    """
    task = as_task(task)
    info = task_kind(task)
    s = _check_scores(scores, task)
    if info.per_aspect:
        s = s.reshape(s.shape[0], len(task.labels), info.target_classes(task))
    if temperature is not None:
        t = np.asarray(temperature, dtype=np.float64)
        if np.any(~np.isfinite(t)) or np.any(t <= 0):
            raise ValueError(f"temperature must be positive and finite, got {temperature!r}")
        if t.ndim == 1 and not info.multi_hot:
            if t.size != 1:
                raise ValueError(
                    f"a per-label temperature vector is for multilabel tasks only, not {task.kind!r}"
                )
            t = t[0]
        if t.ndim == 1 and t.size != s.shape[1]:
            raise ValueError(f"temperature has {t.size} entries, the task has {s.shape[1]} labels")
        s = s / t
    if info.sigmoid:
        return sigmoid(s)
    return softmax(s, axis=-1)


def decode(
    scores: Any,
    task: Any,
    *,
    thresholds: float | list[float] | np.ndarray | None = None,
    biases: list[float] | list[list[float]] | np.ndarray | None = None,
) -> np.ndarray:
    """Turn logits into predicted labels with an explicit decision rule.

    Args:
        scores: raw logits as the model outputs them, shape as in the module table.
        task: a :class:`tailtune.data.TaskSpec` (or its dict / any object with ``kind``, ``labels``,
            ``polarities``, ``num_outputs``).
        thresholds: binary: one probability (default 0.5); multilabel: one per label ``(C,)`` or a
            scalar (default 0.5). A prediction is positive when ``p >= threshold``. Not allowed for
            multiclass/aspects (use ``biases``).
        biases: multiclass: ``(C,)`` logit offsets; aspects: ``(P + 1,)`` shared by every aspect or
            ``(A, P + 1)`` one row per aspect (default zeros, i.e. plain argmax). Not allowed for
            binary/multilabel (use ``thresholds``).

    Returns:
        binary ``(N,)`` int 0/1; multiclass ``(N,)`` int; multilabel ``(N, C)`` int 0/1; aspects
        ``(N, A)`` int in ``[0, P]`` (P = absent).

    Relations:
        For binary, threshold ``t`` equals a logit bias ``log(t / (1 - t))``: ``s >= logit(t)``.
    """
    task = as_task(task)
    s = _check_scores(scores, task)
    info = task_kind(task)
    kind = info.name
    if info.sigmoid:
        if biases is not None:
            raise ValueError(f"biases are for multiclass/aspects tasks; a {kind} task takes thresholds")
        p = sigmoid(s)
        if thresholds is None:
            t = np.asarray(0.5)
        else:
            t = np.asarray(thresholds, dtype=np.float64)
            if info.is_binary:
                if t.size != 1:
                    raise ValueError(f"thresholds for a binary task must be one number, got shape {t.shape}")
                t = t.reshape(())
            elif t.ndim > 1 or (t.ndim == 1 and t.size != s.shape[1]):
                raise ValueError(
                    f"thresholds must be a scalar or have {s.shape[1]} entries (one per label), got {t.shape}"
                )
            if np.any(~np.isfinite(t)) or np.any(t < 0) or np.any(t > 1):
                raise ValueError(
                    f"thresholds must be probabilities in [0, 1], got {np.asarray(thresholds).tolist()}"
                )
        return (p >= t).astype(np.int64)
    if thresholds is not None:
        raise ValueError(f"thresholds are for binary/multilabel tasks; a {kind} task takes biases")
    if info.is_multiclass:
        if biases is not None:
            b = np.asarray(biases, dtype=np.float64)
            if b.shape != (s.shape[1],):
                raise ValueError(
                    f"biases for a multiclass task must have shape ({s.shape[1]},), got {b.shape}"
                )
            s = s + b
        return np.argmax(s, axis=1).astype(np.int64)
    # aspects
    s3 = s.reshape(s.shape[0], len(task.labels), info.target_classes(task))
    if biases is not None:
        b = np.asarray(biases, dtype=np.float64)
        if b.shape not in ((s3.shape[2],), s3.shape[1:]):
            raise ValueError(
                f"biases for an aspects task must have shape ({s3.shape[2]},) or {s3.shape[1:]} "
                f"(aspects x (polarities + absent)), got {b.shape}"
            )
        s3 = s3 + b
    return np.argmax(s3, axis=2).astype(np.int64)
