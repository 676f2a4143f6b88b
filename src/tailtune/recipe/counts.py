"""Training examples per class, as class weights and count-based losses see them.

:class:`ClassCounts` is the ``counts`` argument of :func:`tailtune.recipe.resolve`:

- binary: ``[negatives, positives]`` under the two label names;
- multiclass: examples per class;
- multilabel: positives per label (``num_examples`` gives the negatives: ``N - positives``);
- aspects: examples per polarity with ``absent`` last, pooled over the aspects; ``aspects`` and
  ``cells`` (``(A, P + 1)``, aspect-major) hold the per-aspect counts the per-cell class weights
  (``weighting.per_aspect: true``) use.

Example:
    >>> ClassCounts.from_mapping({"ham": 870, "spam": 130}).as_dict()
    {'ham': 870.0, 'spam': 130.0}
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailtune.data.kinds import TaskKind, task_kind
from tailtune.errors import RecipeError

__all__ = ["ClassCounts", "as_class_counts"]

_HOW = ("build them with ClassCounts.from_targets(task, train_labels) or "
        "ClassCounts.from_mapping({class: count, ...}, num_examples=N)")


@dataclass(frozen=True)
class ClassCounts:
    """Per-class training counts (see the module docstring for each kind's layout)."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    num_examples: int | None = None
    aspects: tuple[str, ...] = ()
    cells: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values):
            raise ValueError(f"ClassCounts: {len(self.names)} names but {len(self.values)} counts")
        if self.cells is not None and (len(self.cells) != len(self.aspects)
                                       or any(len(row) != len(self.names) for row in self.cells)):
            raise ValueError(f"ClassCounts: cells must be {len(self.aspects)} aspects x {len(self.names)} classes")

    @classmethod
    def from_targets(cls, task: Any, targets: Any) -> ClassCounts:
        """Count encoded targets (the ``labels`` column of a loaded split) of ``task``."""
        kind = task_kind(task)
        y = np.asarray(targets)
        n = int(len(y))
        if kind.per_aspect:
            k = len(task.polarities) + 1
            y = y.reshape(n, len(task.labels)).astype(int)
            cells = [np.bincount(y[:, a], minlength=k) for a in range(len(task.labels))]
            return cls.from_cells(task.labels, kind.weight_classes(task), cells, num_examples=n)
        if kind.multi_hot:
            values = y.reshape(n, -1).sum(axis=0)
        else:
            values = np.bincount(y.reshape(-1).astype(int), minlength=len(task.labels))
        names = kind.weight_classes(task)
        return cls(tuple(names), tuple(float(v) for v in values), n)

    @classmethod
    def from_mapping(cls, counts: Mapping[str, float] | Sequence[float], *,
                     num_examples: float | None = None) -> ClassCounts:
        """From ``{class: count}`` (or a sequence: classes named ``"0"``, ``"1"``, ...)."""
        items = (list(counts.items()) if isinstance(counts, Mapping)
                 else [(str(i), c) for i, c in enumerate(counts)])
        n = None if num_examples is None else int(num_examples)
        return cls(tuple(str(k) for k, _ in items), tuple(float(v) for _, v in items), n)

    @classmethod
    def from_cells(cls, aspects: Sequence[str], classes: Sequence[str], cells: Any, *,
                   num_examples: float | None = None) -> ClassCounts:
        """An aspect task's counts from its ``(A, P + 1)`` per-cell table (the pooled ``values`` are the
        column sums)."""
        table = np.asarray(cells, dtype=np.float64).reshape(len(aspects), len(classes))
        return cls(tuple(str(c) for c in classes), tuple(float(v) for v in table.sum(axis=0)),
                   None if num_examples is None else int(num_examples), tuple(str(a) for a in aspects),
                   tuple(tuple(float(v) for v in row) for row in table))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ClassCounts:
        """The inverse of :meth:`to_dict` (a run's ``resolved.json`` ``counts``)."""
        n = d.get("num_examples")
        cells = d.get("per_cell")
        if isinstance(cells, Mapping) and cells:
            aspects = list(cells)
            classes = list(next(iter(cells.values())))
            return cls.from_cells(aspects, classes, [[cells[a][c] for c in classes] for a in aspects], num_examples=n)
        return cls.from_mapping(dict(d.get("per_class") or {}), num_examples=n)

    def cell_table(self) -> list[list[float]] | None:
        """The ``(A, P + 1)`` per-cell counts as lists (``None`` when not an aspect task's counts)."""
        return None if self.cells is None else [list(row) for row in self.cells]

    def as_dict(self) -> dict[str, float]:
        """``{class: count}`` in class order."""
        return dict(zip(self.names, self.values))

    def of(self, names: Sequence[str]) -> list[float]:
        """The counts of ``names``, in that order."""
        table = self.as_dict()
        return [table[n] for n in names]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"per_class": self.as_dict(), "num_examples": self.num_examples}
        if self.cells is not None:
            out["per_cell"] = {a: dict(zip(self.names, row)) for a, row in zip(self.aspects, self.cells)}
        return out

    def require_num_examples(self, why: str) -> int:
        """``num_examples``, or a :class:`RecipeError` saying ``why`` it is needed and how to give it."""
        if self.num_examples is None:
            raise RecipeError(f"counts.num_examples is missing: {why} needs the number of training examples; {_HOW}")
        return int(self.num_examples)


def as_class_counts(counts: Any, task: Any = None) -> ClassCounts | None:
    """``counts`` (a :class:`ClassCounts`, a ``{class: count}`` mapping or ``None``) checked at the
    boundary of :func:`tailtune.recipe.resolve`: counts finite and >= 0, ``num_examples`` an integer
    >= 0 when given, and (when ``task`` is a TaskSpec) a count for every class the task weights.

    Raises:
        RecipeError: naming the bad count or the missing class and how to build the counts.
    """
    if counts is None:
        return None
    if isinstance(counts, Mapping):
        try:
            counts = ClassCounts.from_mapping(counts)
        except (TypeError, ValueError) as exc:
            raise RecipeError(f"counts: {exc}; {_HOW}") from exc
    if not isinstance(counts, ClassCounts):
        raise RecipeError(f"counts: expected a ClassCounts or a {{class: count}} mapping, got "
                          f"{type(counts).__name__}; {_HOW}")
    for name, value in zip(counts.names, counts.values):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
            raise RecipeError(f"counts.{name} = {value!r}: a class count must be a finite number >= 0")
    n = counts.num_examples
    if n is not None and (isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0):
        raise RecipeError(f"counts.num_examples = {n!r}: must be an integer >= 0 (the training set size)")
    if task is not None and not isinstance(task, (str, TaskKind)):
        missing = [c for c in task_kind(task).weight_classes(task) if c not in counts.names]
        if missing:
            raise RecipeError(f"counts: no count for class(es) {', '.join(map(repr, missing))} of the task "
                              f"(counts has {', '.join(counts.names) or 'none'}); {_HOW}")
    return counts
