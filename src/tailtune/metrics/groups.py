"""Label-group metrics: each named group of labels (``TaskSpec.groups``) scored on its own.

A group's entry in ``classification_report(...)["groups"][name]``:

``members``
    the group's labels (aspects: its aspects).
``macro_precision`` / ``macro_recall`` / ``macro_f1``
    the mean over the group's members of their ``per_class`` precision / recall / F1 (multiclass,
    multilabel), or of their ``per_aspect`` macro values (aspects: each aspect's macro over its
    polarities); the same numbers the report's per-class (per-aspect) table shows.
``micro_f1``
    F1 of the pooled true/false positives of the group's members (multiclass: over the examples
    whose truth or prediction is a member; aspects: over the group's cells, polarity classes only).
``support``
    examples of the members (multilabel: positives; aspects: cells that are not ``absent``).
``hierarchy_violations`` (multilabel with a hierarchy)
    ``{"total", "samples"}`` of the violations (a child on, its parent off) whose child is a member.

Every higher-is-better group metric is also a top-level key ``<metric>@<group>``
(``macro_f1@primary``; :data:`tailtune.data.task.GROUP_METRICS`), the name early stopping and the
epoch history use.

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> from tailtune.metrics import classification_report
    >>> task = TaskSpec("multiclass", ["a", "b", "c"], groups={"rare": ["b", "c"]})
    >>> r = classification_report(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 0]), task)
    >>> round(r["groups"]["rare"]["macro_f1"], 4), round(r["macro_f1@rare"], 4)
    (0.8333, 0.8333)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.data.task import GROUP_METRICS, group_metric

__all__ = ["add_group_metrics", "group_scores"]


def _mean(values: list) -> float | None:
    vals = [float(v) for v in values if isinstance(v, (int, float))]
    return float(np.mean(vals)) if vals else None


def _micro_f1(tp: float, fp: float, fn: float, zero_division: float) -> float:
    denom = 2 * tp + fp + fn
    return float(2 * tp / denom) if denom > 0 else float(zero_division)


def _label_counts(yt: np.ndarray, yp: np.ndarray, idx: list[int], multi_hot: bool) -> tuple[float, float, float]:
    """``(tp, fp, fn)`` pooled over the labels ``idx`` (single-label: one-vs-rest per label)."""
    if multi_hot:
        t, p = yt[:, idx].astype(bool), yp[:, idx].astype(bool)
        return float((t & p).sum()), float((~t & p).sum()), float((t & ~p).sum())
    t, p = np.isin(yt, idx), np.isin(yp, idx)
    tp = float((t & (yt == yp)).sum())
    return tp, float(p.sum()) - tp, float(t.sum()) - tp


def _aspect_group(members: list[str], per_aspect: dict, yt, yp, idx: list[int], p_count: int,
                  zero_division: float) -> dict[str, Any]:
    rows = [per_aspect[m] for m in members]
    t, p = yt[:, idx].ravel(), yp[:, idx].ravel()
    polar = t < p_count
    tp = float((polar & (t == p)).sum())
    fp = float((p < p_count).sum()) - tp
    return {
        "members": list(members),
        **{k: _mean([r.get(k) for r in rows]) for k in ("macro_precision", "macro_recall", "macro_f1")},
        "micro_f1": _micro_f1(tp, fp, float(polar.sum()) - tp, zero_division),
        "detection_f1": _mean([r.get("detection_f1") for r in rows]),
        "support": int(sum(int(r.get("support", 0)) for r in rows)),
    }


def _label_group(members: list[str], per_class: dict, yt, yp, idx: list[int], multi_hot: bool,
                 zero_division: float) -> dict[str, Any]:
    rows = [per_class[m] for m in members]
    tp, fp, fn = _label_counts(yt, yp, idx, multi_hot)
    return {
        "members": list(members),
        "macro_precision": _mean([r.get("precision") for r in rows]),
        "macro_recall": _mean([r.get("recall") for r in rows]),
        "macro_f1": _mean([r.get("f1") for r in rows]),
        "micro_f1": _micro_f1(tp, fp, fn, zero_division),
        "support": int(sum(int(r.get("support", 0)) for r in rows)),
    }


def _violations(y_pred: np.ndarray, task, members: list[str]) -> dict[str, int]:
    """Hierarchy violations (child on, parent off) whose child is one of ``members``."""
    index = {name: i for i, name in enumerate(task.labels)}
    y = np.asarray(y_pred).astype(bool)
    hit = np.zeros(y.shape[0], dtype=bool)
    total = 0
    for child, parent in (task.hierarchy or {}).items():
        if child in members:
            v = y[:, index[child]] & ~y[:, index[parent]]
            total += int(v.sum())
            hit |= v
    return {"total": total, "samples": int(hit.sum())}


def add_group_metrics(report: dict[str, Any], yt: np.ndarray, yp: np.ndarray, task: Any, *,
                      zero_division: float = 0.0) -> dict[str, Any]:
    """Add ``groups`` and the ``<metric>@<group>`` keys to ``report`` (a ``classification_report`` of
    ``task`` whose ``per_class``/``per_aspect`` are filled) when ``task`` has groups; returns it."""
    groups = getattr(task, "groups", None) or {}
    if not groups:
        return report
    index = {name: i for i, name in enumerate(task.labels)}
    out: dict[str, dict] = {}
    kind = task_kind(task)
    for name, members in groups.items():
        idx = [index[m] for m in members]
        if kind.per_aspect:
            out[name] = _aspect_group(members, report["per_aspect"], yt, yp, idx, len(task.polarities), zero_division)
        else:
            out[name] = _label_group(members, report["per_class"], yt, yp, idx, kind.multi_hot,
                                     zero_division)
            if kind.multi_hot and getattr(task, "hierarchy", None):
                out[name]["hierarchy_violations"] = _violations(yp, task, members)
    report["groups"] = out
    report.update(group_scores(out))
    return report


def group_scores(groups: dict[str, dict]) -> dict[str, float]:
    """``{"macro_f1@primary": value, ...}``: every group metric of :data:`GROUP_METRICS` that has a value."""
    return {group_metric(metric, name): float(entry[metric])
            for name, entry in groups.items() for metric in GROUP_METRICS
            if isinstance(entry.get(metric), (int, float))}
