"""metrics._task: the one rule for encoded targets as integer arrays."""

from __future__ import annotations

import numpy as np

from tailtune.data import TaskSpec
from tailtune.metrics._task import int_targets


def test_int_targets_flattens_single_label_kinds_only():
    binary = TaskSpec("binary", ["no", "yes"])
    y = int_targets(np.array([[0.0], [1.0], [0.9999]]), binary)
    assert y.dtype == np.int64 and y.tolist() == [0, 1, 1]
    assert int_targets([2.0, 0.0], TaskSpec("multiclass", ["a", "b", "c"])).tolist() == [2, 0]
    multi = int_targets(np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32), TaskSpec("multilabel", ["a", "b"]))
    assert multi.shape == (2, 2) and multi.dtype == np.int64
    aspects = TaskSpec("aspects", ["food", "staff"], polarities=["pos", "neg"])
    assert int_targets([[0, 2], [1, 1]], aspects).tolist() == [[0, 2], [1, 1]]
