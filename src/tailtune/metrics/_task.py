"""Accept a TaskSpec, its dict, or any object with the TaskSpec attributes."""

from __future__ import annotations

from typing import Any

from tailtune.data import KINDS, TaskSpec


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
