"""Accept a TaskSpec, its dict, or any object with the TaskSpec attributes."""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data import KINDS, TaskSpec, task_kind


def as_task(task: Any):
    """Return a TaskSpec-like object (``kind``, ``labels``, ``polarities``, ``hierarchy``, ``num_outputs``)."""
    if isinstance(task, dict):
        return TaskSpec.from_dict(task)
    for attr in ("kind", "labels", "num_outputs"):
        if not hasattr(task, attr):
            raise TypeError(
                f"task must be a TaskSpec (or its dict), got {type(task).__name__} without {attr!r}"
            )
    if task.kind not in KINDS:
        raise ValueError(f"task.kind {task.kind!r} is not one of {list(KINDS)}")
    return task


def int_targets(y: Any, task: Any) -> np.ndarray:
    """Encoded targets as an int64 array (values rounded): ``(N,)`` for the single-label kinds (binary,
    multiclass; an ``(N, 1)`` column is flattened), the given shape otherwise (multilabel ``(N, C)``,
    aspects ``(N, A)``). The one rule the paired tests, cross-fitting and ``ablate`` share."""
    out = np.rint(np.asarray(y, dtype=np.float64)).astype(np.int64)
    return out.reshape(-1) if task_kind(task).single_label else out
