"""Hierarchy-consistent decoding for multi-label tasks: a child label implies its parent.

``task.hierarchy`` maps each child label to its parent. A prediction that switches a child on while
its parent is off violates the hierarchy; two repairs are offered:

- ``"add_parent"``: switch on every ancestor of each predicted label (recall-preserving; the usual
  choice when parents are broad topics whose classifier misses some children's texts);
- ``"drop_child"``: switch off every label whose parent chain is not fully on (precision-preserving;
  the choice when a child prediction without its parent is more likely a false positive).

Both walk the whole ancestor chain, so ``a -> b -> c`` is repaired in one call, and the result has
zero :func:`tailtune.metrics.hierarchy_violations`.

Example:
    >>> import numpy as np
    >>> from tailtune.data import TaskSpec
    >>> task = TaskSpec(kind="multilabel", labels=["animal", "dog"], hierarchy={"dog": "animal"})
    >>> enforce_hierarchy(np.array([[0, 1]]), task, mode="add_parent").tolist()
    [[1, 1]]
    >>> enforce_hierarchy(np.array([[0, 1]]), task, mode="drop_child").tolist()
    [[0, 0]]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind
from tailtune.metrics._task import as_task

__all__ = ["HIERARCHY_MODES", "enforce_hierarchy"]

HIERARCHY_MODES = ("add_parent", "drop_child")


def _ancestors(hierarchy: dict[str, str], index: dict[str, int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for child in hierarchy:
        chain, node = [], child
        while node in hierarchy:
            node = hierarchy[node]
            chain.append(index[node])
        out[index[child]] = chain
    return out


def enforce_hierarchy(y_pred: Any, task: Any, *, mode: str | None) -> np.ndarray:
    """Repair multi-label predictions ``(N, C)`` so that every predicted child has its parents on.

    ``mode=None`` (or a task without a hierarchy) returns the predictions unchanged.

    Raises:
        ValueError: ``mode`` is not one of ``add_parent``, ``drop_child``, ``None``, or the task is
            not multilabel while a mode is given.
    """
    if mode is None:
        return np.asarray(y_pred)
    if mode not in HIERARCHY_MODES:
        raise ValueError(f"hierarchy mode must be one of {list(HIERARCHY_MODES)} or None, got {mode!r}")
    task = as_task(task)
    if not task_kind(task).multi_hot:
        raise ValueError(f"hierarchy_mode applies to multilabel tasks only, not {task.kind!r}")
    y = np.asarray(y_pred).astype(np.int64).copy()
    hierarchy = getattr(task, "hierarchy", None) or {}
    if not hierarchy:
        return y
    index = {name: i for i, name in enumerate(task.labels)}
    ancestors = _ancestors(hierarchy, index)
    if mode == "add_parent":
        for child, chain in ancestors.items():
            on = y[:, child] == 1
            for a in chain:
                y[on, a] = 1
    else:
        original = y.copy()
        for child, chain in ancestors.items():
            ok = np.all(original[:, chain] == 1, axis=1)
            y[~ok, child] = 0
    return y
