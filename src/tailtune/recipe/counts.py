"""Training examples per class, as class weights and count-based losses see them.

:class:`ClassCounts` is the ``counts`` argument of :func:`tailtune.recipe.resolve`:

- binary: ``[negatives, positives]`` under the two label names;
- multiclass: examples per class;
- multilabel: positives per label (``num_examples`` gives the negatives: ``N - positives``);
- aspects: examples per polarity with ``absent`` last, pooled over the aspects.

Example:
    >>> ClassCounts.from_mapping({"ham": 870, "spam": 130}).as_dict()
    {'ham': 870.0, 'spam': 130.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tailtune.data.kinds import task_kind

__all__ = ["ClassCounts"]


@dataclass(frozen=True)
class ClassCounts:
    """Per-class training counts (see the module docstring for each kind's layout)."""

    names: tuple[str, ...]
    values: tuple[float, ...]
    num_examples: int | None = None

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values):
            raise ValueError(f"ClassCounts: {len(self.names)} names but {len(self.values)} counts")

    @classmethod
    def from_targets(cls, task: Any, targets: Any) -> ClassCounts:
        """Count encoded targets (the ``labels`` column of a loaded split) of ``task``."""
        kind = task_kind(task)
        y = np.asarray(targets)
        n = int(len(y))
        if kind.name == "multilabel":
            values = y.reshape(n, -1).sum(axis=0)
        elif kind.per_aspect:
            values = np.bincount(y.reshape(-1).astype(int), minlength=len(task.polarities) + 1)
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

    def as_dict(self) -> dict[str, float]:
        """``{class: count}`` in class order."""
        return dict(zip(self.names, self.values))

    def of(self, names: Sequence[str]) -> list[float]:
        """The counts of ``names``, in that order."""
        table = self.as_dict()
        return [table[n] for n in names]

    def to_dict(self) -> dict[str, Any]:
        return {"per_class": self.as_dict(), "num_examples": self.num_examples}
