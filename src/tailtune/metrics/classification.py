"""``classification_report``: every metric tailtune logs or writes to ``eval.json``, per task kind.

numpy in, a JSON-ready dict out; scikit-learn does the counting. Keys present for every kind:

- ``n_samples``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``micro_f1``, ``weighted_f1``,
  ``macro_precision``, ``macro_recall``, ``mcc``, ``per_class: {name: {precision, recall, f1, support}}``,
  ``confusion_matrix``;
- with ``y_score`` (raw logits): ``per_class[name]["pr_auc"]`` (average precision, ``None`` when the
  class has no positive target), ``macro_pr_auc`` (mean over classes with positives), ``ece`` (15
  equal-width bins), ``ece_adaptive`` (15 equal-mass bins), ``brier``.

Definitions per kind (F1 = 2PR / (P + R); every ``0/0`` becomes ``zero_division``, default 0.0):

``binary``
    ``per_class`` has both labels; ``macro_f1`` averages the two; ``f1`` is the positive class's F1;
    ``pr_auc`` = average precision of the positive class; confusion matrix 2 x 2 (rows = true).
``multiclass``
    scikit-learn's definitions over all C classes (a class with no support and no prediction counts
    with ``zero_division`` in the macro average). MCC is the multi-class R_K statistic (Gorodkin 2004).
``multilabel``
    ``accuracy`` is subset accuracy (exact match); ``hamming_accuracy`` = 1 - Hamming loss;
    ``balanced_accuracy`` = mean over labels of (TPR + TNR) / 2; ``mcc`` = mean of the per-label
    binary MCCs; ``samples_f1`` too; ``confusion_matrix`` = ``{label: [[tn, fp], [fn, tp]]}``;
    ``hierarchy_violations`` (when the task has a hierarchy): predictions where a child is on and its
    parent off, ``{"total", "samples", "per_edge": {"child -> parent": n}}``.
``aspects`` (targets ``(N, A)``, index P = ``absent``)
    Per aspect: ``macro_f1`` = sentiment F1 averaged over the *polarity* classes only (absent
    excluded as a class, but every cell counts: predicting a polarity on an absent cell is a false
    positive of that polarity, predicting absent on a present cell a false negative); a polarity
    that neither occurs nor is predicted in that aspect is left out of the average (and of
    ``macro_precision`` / ``macro_recall``, averaged the same way);
    ``detection_f1`` = F1 of "present" vs ``absent``; ``accuracy`` over all cells;
    ``present_accuracy`` over cells whose target is not absent. Top level: ``macro_f1`` = mean of
    the per-aspect ``macro_f1`` (the quantity tuning maximises); ``micro_f1``/``weighted_f1``
    pool all cells over the polarity classes; ``per_class`` pools cells per polarity (plus
    ``absent``); ``accuracy``, ``balanced_accuracy``, ``mcc`` and ``confusion_matrix`` pool all
    cells over the P + 1 classes; ``detection_f1`` pools presence decisions.
Label groups (``TaskSpec.groups``, any kind but binary): ``groups: {name: {members, macro_precision,
macro_recall, macro_f1, micro_f1, support[, hierarchy_violations]}}`` and ``macro_f1@<name>`` (and the
other :data:`~tailtune.data.task.GROUP_METRICS`) at the top level (:mod:`tailtune.metrics.groups`).

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> task = TaskSpec(kind="multiclass", labels=["a", "b"])
    >>> r = classification_report(np.array([0, 1, 1]), np.array([0, 1, 0]), task)
    >>> round(r["macro_f1"], 4), r["per_class"]["b"]["support"]
    (0.6667, 2)
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    multilabel_confusion_matrix,
    precision_recall_fscore_support,
)

from tailtune.data.kinds import task_kind
from tailtune.metrics._task import as_task
from tailtune.metrics.calibration import brier_score, confidence_pairs, expected_calibration_error
from tailtune.metrics.decoding import probabilities
from tailtune.metrics.groups import add_group_metrics

__all__ = ["classification_report", "hierarchy_violations", "macro_f1_score"]

N_BINS = 15


def _f(x) -> float:
    return float(x)


def _prf(y_true, y_pred, labels, names, zero_division) -> dict[str, dict[str, float]]:
    p, r, f, s = precision_recall_fscore_support(
        y_true, y_pred, labels=labels, average=None, zero_division=zero_division
    )
    return {
        name: {"precision": _f(p[i]), "recall": _f(r[i]), "f1": _f(f[i]), "support": int(s[i])}
        for i, name in enumerate(names)
    }


def _averages(y_true, y_pred, labels, zero_division) -> dict[str, float]:
    out = {}
    for avg in ("macro", "micro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            y_true, y_pred, labels=labels, average=avg, zero_division=zero_division
        )
        out[f"{avg}_f1"] = _f(f)
        if avg == "macro":
            out["macro_precision"], out["macro_recall"] = _f(p), _f(r)
    return out


def _mcc(y_true, y_pred) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _f(matthews_corrcoef(y_true, y_pred))


def _balanced_accuracy(y_true, y_pred) -> float:
    with warnings.catch_warnings():  # classes predicted but absent from y_true warn; the value is defined
        warnings.simplefilter("ignore")
        return _f(balanced_accuracy_score(y_true, y_pred))


def _ap(y_bin: np.ndarray, score: np.ndarray) -> float | None:
    if y_bin.sum() == 0:
        return None
    return _f(average_precision_score(y_bin, score))


def _add_pr_auc(report: dict, names: list[str], y_onehot: np.ndarray, probs2d: np.ndarray) -> None:
    aps = []
    for i, name in enumerate(names):
        ap = _ap(y_onehot[:, i], probs2d[:, i])
        if name in report["per_class"]:
            report["per_class"][name]["pr_auc"] = ap
        if ap is not None:
            aps.append(ap)
    report["macro_pr_auc"] = _f(np.mean(aps)) if aps else None


def _add_calibration(report: dict, y_true, probs, task) -> None:
    correct, conf = confidence_pairs(y_true, probs, task)
    report["ece"] = expected_calibration_error(correct, conf, n_bins=N_BINS, strategy="uniform")
    report["ece_adaptive"] = expected_calibration_error(correct, conf, n_bins=N_BINS, strategy="quantile")
    report["brier"] = brier_score(y_true, probs, task)


def hierarchy_violations(y_pred: Any, task: Any) -> dict[str, Any]:
    """Count predictions in which a child label is on while its parent is off (multilabel).

    Returns ``{"total": int, "samples": int, "per_edge": {"child -> parent": int}}``: ``total`` counts
    (text, edge) pairs, ``samples`` counts texts with at least one violation. Only direct
    child -> parent edges of ``task.hierarchy`` are checked (a chain a -> b -> c is two edges).
    """
    task = as_task(task)
    y = np.asarray(y_pred).astype(bool)
    hierarchy = getattr(task, "hierarchy", None) or {}
    index = {name: i for i, name in enumerate(task.labels)}
    per_edge: dict[str, int] = {}
    any_violation = np.zeros(y.shape[0], dtype=bool)
    for child, parent in hierarchy.items():
        v = y[:, index[child]] & ~y[:, index[parent]]
        per_edge[f"{child} -> {parent}"] = int(v.sum())
        any_violation |= v
    return {"total": int(sum(per_edge.values())), "samples": int(any_violation.sum()), "per_edge": per_edge}


def _check_shapes(y_true: np.ndarray, y_pred: np.ndarray, task) -> None:
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred must have the same shape, got {y_true.shape} and {y_pred.shape}")
    if y_true.shape[0] == 0:
        raise ValueError("classification_report needs at least one example, got 0")
    kind = task_kind(task)
    if kind.single_label and y_true.ndim != 1:
        raise ValueError(f"y_true for a {task.kind} task must have shape (N,), got {y_true.shape}")
    if kind.multi_hot and (y_true.ndim != 2 or y_true.shape[1] != len(task.labels)):
        raise ValueError(
            f"y_true for a multilabel task must have shape (N, {len(task.labels)}), got {y_true.shape}"
        )
    if kind.per_aspect and (y_true.ndim != 2 or y_true.shape[1] != len(task.labels)):
        raise ValueError(
            f"y_true for an aspects task must have shape (N, {len(task.labels)}), got {y_true.shape}"
        )


def classification_report(
    y_true: Any,
    y_pred: Any,
    task: Any,
    *,
    y_score: Any = None,
    zero_division: float = 0.0,
) -> dict[str, Any]:
    """All metrics of one split as a JSON-ready dict (definitions in the module docstring).

    Args:
        y_true: encoded targets (binary/multiclass ``(N,)``, multilabel ``(N, C)`` 0/1, aspects ``(N, A)``).
        y_pred: decisions of the same shape, e.g. from :func:`tailtune.metrics.decode`.
        task: the :class:`tailtune.data.TaskSpec`.
        y_score: optional raw logits ``(N, num_outputs)``; adds PR-AUC, ECE and Brier. (Already
            temperature-scaled logits give the calibrated figures.)
        zero_division: value of a precision/recall/F1 whose denominator is 0 (0.0 or 1.0; scikit-learn's
            ``zero_division``); ``np.nan`` is allowed and then propagates into averages.
    """
    task = as_task(task)
    if not (isinstance(zero_division, (int, float)) and (zero_division in (0, 1) or np.isnan(zero_division))):
        raise ValueError(f"zero_division must be 0.0, 1.0 or nan, got {zero_division!r}")
    yt = np.asarray(y_true)
    yp = np.asarray(y_pred)
    kind = task_kind(task)
    if kind.is_binary and yt.ndim == 2 and yt.shape[1] == 1:
        yt = yt[:, 0]
    if kind.is_binary and yp.ndim == 2 and yp.shape[1] == 1:
        yp = yp[:, 0]
    yt = np.rint(yt).astype(np.int64)
    yp = np.rint(yp).astype(np.int64)
    _check_shapes(yt, yp, task)
    probs = probabilities(y_score, task) if y_score is not None else None
    if probs is not None and probs.shape[0] != yt.shape[0]:
        raise ValueError(f"y_score has {probs.shape[0]} rows, y_true {yt.shape[0]}")
    report: dict[str, Any] = {"n_samples": int(yt.shape[0])}
    if kind.single_label:
        report = _single_label_report(report, yt, yp, probs, task, zero_division)
    elif kind.multi_hot:
        report = _multilabel_report(report, yt, yp, probs, task, zero_division)
    else:
        report = _aspects_report(report, yt, yp, probs, task, zero_division)
    return add_group_metrics(report, yt, yp, task, zero_division=zero_division)


def _single_label_report(report: dict, yt, yp, probs, task, zero_division) -> dict[str, Any]:
    """Binary and multiclass: accuracy, balanced accuracy, averages, MCC, per class, confusion matrix."""
    kind = task_kind(task)
    k = 2 if kind.is_binary else len(task.labels)
    labels = list(range(k))
    bad = (yt < 0) | (yt >= k)
    if bad.any():
        raise ValueError(
            f"y_true holds class indices outside [0, {k}): {np.unique(yt[bad])[:5].tolist()}"
        )
    report["accuracy"] = _f(accuracy_score(yt, yp))
    report["balanced_accuracy"] = _balanced_accuracy(yt, yp)
    report.update(_averages(yt, yp, labels, zero_division))
    report["mcc"] = _mcc(yt, yp)
    report["per_class"] = _prf(yt, yp, labels, list(task.labels), zero_division)
    report["confusion_matrix"] = confusion_matrix(yt, yp, labels=labels).tolist()
    if kind.is_binary:
        report["f1"] = report["per_class"][task.labels[1]]["f1"]
    if probs is not None:
        if kind.is_binary:
            ap = _ap(yt, probs)
            report["per_class"][task.labels[1]]["pr_auc"] = ap
            report["pr_auc"] = ap
            report["macro_pr_auc"] = ap
        else:
            _add_pr_auc(report, list(task.labels), np.eye(k, dtype=np.int64)[yt], probs)
        _add_calibration(report, yt, probs, task)
    return report


def _multilabel_report(report: dict, yt, yp, probs, task, zero_division) -> dict[str, Any]:
    """Multilabel: subset and Hamming accuracy, per-label balanced accuracy and MCC, averages, per label."""
    c = len(task.labels)
    report["accuracy"] = _f(accuracy_score(yt, yp))
    report["hamming_accuracy"] = _f(np.mean(yt == yp))
    mcm = multilabel_confusion_matrix(yt, yp)  # (C, 2, 2): [[tn, fp], [fn, tp]]
    tn, fp, fn, tp = (mcm[:, i, j].astype(np.float64) for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        tpr = np.where(tp + fn > 0, tp / (tp + fn), np.nan)
        tnr = np.where(tn + fp > 0, tn / (tn + fp), np.nan)
    ba = np.nanmean(
        np.vstack([tpr, tnr]), axis=0
    )  # a label with only one class present: the defined half
    report["balanced_accuracy"] = _f(np.mean(ba))
    report.update(_averages(yt, yp, list(range(c)), zero_division))
    report["samples_f1"] = _f(f1_score(yt, yp, average="samples", zero_division=zero_division))
    report["mcc"] = _f(np.mean([_mcc(yt[:, i], yp[:, i]) for i in range(c)]))
    report["per_class"] = _prf(yt, yp, list(range(c)), list(task.labels), zero_division)
    report["confusion_matrix"] = {name: mcm[i].tolist() for i, name in enumerate(task.labels)}
    if getattr(task, "hierarchy", None):
        report["hierarchy_violations"] = hierarchy_violations(yp, task)
    if probs is not None:
        _add_pr_auc(report, list(task.labels), yt, probs)
        _add_calibration(report, yt, probs, task)
    return report


def _aspect_entry(t, p, *, p_count: int, classes: list[str], zero_division) -> dict[str, Any]:
    """One aspect's ``per_aspect`` entry (macro-F1 over the polarities used, detection F1, ...)."""
    absent = p_count
    used = [k for k in range(p_count) if (t == k).any() or (p == k).any()]
    if used:
        prec, rec, f, _ = precision_recall_fscore_support(
            t, p, labels=used, average=None, zero_division=zero_division
        )
        macro, macro_p, macro_r = _f(np.mean(f)), _f(np.mean(prec)), _f(np.mean(rec))
    else:  # the aspect is absent everywhere and never predicted present
        macro = macro_p = macro_r = _f(zero_division)
    present = t != absent
    return {
        "macro_precision": macro_p,
        "macro_recall": macro_r,
        "macro_f1": macro,
        "detection_f1": _f(
            f1_score(present.astype(int), (p != absent).astype(int), zero_division=zero_division)
        ),
        "accuracy": _f(np.mean(t == p)),
        "present_accuracy": _f(np.mean(t[present] == p[present])) if present.any() else None,
        "support": int(present.sum()),
        "per_class": _prf(t, p, list(range(p_count + 1)), classes, zero_division),
        "confusion_matrix": confusion_matrix(t, p, labels=list(range(p_count + 1))).tolist(),
    }


def _aspects_report(report: dict, yt, yp, probs, task, zero_division) -> dict[str, Any]:
    """Aspects: per aspect, and pooled over every (text, aspect) cell with ``absent`` as a class."""
    p_count = len(task.polarities)
    absent = p_count
    classes = list(task.polarities) + ["absent"]
    bad = (yt < 0) | (yt > absent)
    if bad.any():
        raise ValueError(
            f"y_true holds aspect classes outside [0, {absent}]: {np.unique(yt[bad])[:5].tolist()}"
        )
    polarity_idx = list(range(p_count))
    per_aspect: dict[str, Any] = {
        name: _aspect_entry(yt[:, a], yp[:, a], p_count=p_count, classes=classes, zero_division=zero_division)
        for a, name in enumerate(task.labels)
    }
    flat_t, flat_p = yt.ravel(), yp.ravel()
    present = flat_t != absent
    report["accuracy"] = _f(np.mean(flat_t == flat_p))
    report["present_accuracy"] = _f(np.mean(flat_t[present] == flat_p[present])) if present.any() else None
    report["balanced_accuracy"] = _balanced_accuracy(flat_t, flat_p)
    pooled = _averages(flat_t, flat_p, polarity_idx, zero_division)
    report["macro_f1"] = _f(np.mean([e["macro_f1"] for e in per_aspect.values()]))
    report["pooled_macro_f1"] = pooled["macro_f1"]
    report["micro_f1"] = pooled["micro_f1"]
    report["weighted_f1"] = pooled["weighted_f1"]
    report["macro_precision"] = pooled["macro_precision"]
    report["macro_recall"] = pooled["macro_recall"]
    report["mcc"] = _mcc(flat_t, flat_p)
    report["detection_f1"] = _f(
        f1_score(present.astype(int), (flat_p != absent).astype(int), zero_division=zero_division)
    )
    report["per_class"] = _prf(flat_t, flat_p, list(range(p_count + 1)), classes, zero_division)
    report["confusion_matrix"] = confusion_matrix(flat_t, flat_p, labels=list(range(p_count + 1))).tolist()
    report["per_aspect"] = per_aspect
    if probs is not None:  # (N, A, P + 1)
        flat_probs = probs.reshape(-1, p_count + 1)
        _add_pr_auc(report, classes, np.eye(p_count + 1, dtype=np.int64)[flat_t], flat_probs)
        for a, name in enumerate(task.labels):
            onehot = np.eye(p_count + 1, dtype=np.int64)[yt[:, a]]
            aps = [_ap(onehot[:, k], probs[:, a, k]) for k in polarity_idx]
            aps = [x for x in aps if x is not None]
            per_aspect[name]["macro_pr_auc"] = _f(np.mean(aps)) if aps else None
        _add_calibration(report, yt, probs, task)
    return report


def macro_f1_score(y_true: Any, y_pred: Any, task: Any, *, zero_division: float = 0.0) -> float:
    """The headline score of a task: ``classification_report(...)["macro_f1"]`` (see definitions)."""
    return classification_report(y_true, y_pred, task, zero_division=zero_division)["macro_f1"]
