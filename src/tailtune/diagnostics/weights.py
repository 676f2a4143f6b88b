"""The class weights a recipe gives each class, as training applies them.

Nothing is re-derived here: the weights come from :func:`tailtune.recipe.resolve` (the one owner of
what a recipe means), or from the ``resolved.json`` a run recorded. Softmax tasks (multiclass,
aspects) report the class weight of each class; sigmoid tasks (binary, multilabel) report each
label's ``pos_weight``, the positive-to-negative weight ratio the loss applies (also when training
hands it to a focal loss as ``alpha = pos_weight / (1 + pos_weight)``). ``None`` means no class
weights (``apply_to: none``, or ``uniform`` without overrides) or weights that cannot be computed
from what is known.

Example:
    >>> recipe_class_weights({"weighting": {"scheme": "inverse", "normalize": False}}, "multiclass",
    ...                      {"a": 900, "b": 100})
    {'a': 1.1111111640930176, 'b': 10.0}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from tailtune.data import TaskSpec, task_kind
from tailtune.errors import TailtuneError
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve_class_weights
from tailtune.recipe.resolve import weighting_active as _active
from tailtune.recipe.schema import WeightingSection

__all__ = ["imbalance_ratio", "recipe_class_weights", "task_from_counts", "weighting_active", "weights_from_resolved"]


def _weighting(recipe: Mapping | Any | None) -> WeightingSection | None:
    """The recipe's validated ``weighting`` section (``None`` when it does not validate)."""
    if recipe is not None and hasattr(recipe, "weighting") and isinstance(recipe.weighting, WeightingSection):
        return recipe.weighting
    w = (recipe or {}).get("weighting") if isinstance(recipe, Mapping) else None
    try:
        return WeightingSection.model_validate(dict(w) if isinstance(w, Mapping) else {})
    except ValidationError:
        return None


def weighting_active(recipe: Mapping | Any | None) -> bool:
    """Whether the recipe's ``weighting`` section produces class weights
    (:func:`tailtune.recipe.resolve.weighting_active`)."""
    w = _weighting(recipe)
    return w is not None and _active(w)


def task_from_counts(kind: str | None, names: Sequence[str], *, hierarchy: Mapping | None = None,
                     aspects: Sequence[str] = ()) -> TaskSpec | None:
    """A :class:`~tailtune.data.TaskSpec` whose weighted classes are ``names`` (the class-count keys:
    binary ``[negative, positive]``, labels, or an aspect task's polarities with ``absent`` last, its
    aspects from ``aspects`` when known); ``None`` when the names cannot be such a task."""
    if kind is None:
        return None
    try:
        info = task_kind(kind)
        if info.per_aspect:
            names = list(names)
            if not names or names[-1] != "absent":
                return None
            return TaskSpec(kind, list(aspects) or ["aspect"], polarities=names[:-1])
        return TaskSpec(kind, list(names), hierarchy=dict(hierarchy) if hierarchy and info.multi_hot else None)
    except (TailtuneError, ValueError):
        return None


def _class_counts(counts: Mapping[str, float] | ClassCounts, labels: Sequence[str] | None,
                  num_examples: float | None) -> ClassCounts:
    """``counts`` as :class:`ClassCounts` (a ClassCounts, e.g. with an aspect task's per-cell counts,
    is used as it is)."""
    if isinstance(counts, ClassCounts):
        return counts
    names = [str(n) for n in (labels or list(counts))]
    if any(n not in counts for n in names):
        names = list(counts)
    return ClassCounts(tuple(names), tuple(float(counts[n]) for n in names),
                       None if num_examples is None else int(num_examples))


def recipe_class_weights(
    recipe: Mapping | Any | None,
    kind: str | None,
    counts: Mapping[str, float] | ClassCounts | None,
    *,
    labels: Sequence[str] | None = None,
    num_examples: float | None = None,
    task: TaskSpec | None = None,
) -> dict[str, float] | None:
    """``{class: weight}`` training applies for the recipe's ``weighting``, or ``None``.

    Args:
        recipe: a Recipe or its mapping (``recipe.yaml`` contents).
        kind: the task kind.
        counts: training examples per class (multilabel: positives per label), or a
            :class:`~tailtune.recipe.counts.ClassCounts` (an aspect task's per-cell weights,
            ``weighting.per_aspect``, need its per-aspect counts: then the keys are ``aspect#class``).
        labels: class order (default: the keys of ``counts``).
        num_examples: training set size, needed for multilabel ``pos_weight`` (negatives = N - positives).
        task: the data's TaskSpec (default: one made from ``kind`` and the class names).
    """
    w = _weighting(recipe)
    if w is None or not _active(w) or not counts:
        return None
    try:
        cc = _class_counts(counts, labels, num_examples)
        task = task or task_from_counts(kind, cc.names, aspects=cc.aspects)
        if task is None or (task.kind_info.is_multilabel and cc.num_examples is None):
            return None
        weights = resolve_class_weights(w, task, cc)
    except (TailtuneError, ValueError, KeyError, TypeError):
        return None
    return None if weights is None else weights.effective


def weights_from_resolved(resolved: Mapping | None) -> dict[str, float] | None:
    """The class weights a run recorded in ``resolved.json`` (same layout as :func:`recipe_class_weights`)."""
    cw = (resolved or {}).get("class_weights") if isinstance(resolved, Mapping) else None
    if not isinstance(cw, Mapping):
        return None
    table = cw.get("pos_weight") if cw.get("pos_weight") is not None else cw.get("per_class")
    return {str(k): float(v) for k, v in table.items()} if isinstance(table, Mapping) else None


def imbalance_ratio(counts: Mapping[str, float] | Sequence[float]) -> tuple[float, str | None, str | None]:
    """``(max count / min non-zero count, largest class, smallest class)``; ``(1.0, None, None)`` if empty."""
    items = list(counts.items()) if isinstance(counts, Mapping) else [(str(i), c) for i, c in enumerate(counts)]
    items = [(k, float(v)) for k, v in items if float(v) > 0]
    if not items:
        return 1.0, None, None
    big = max(items, key=lambda kv: kv[1])
    small = min(items, key=lambda kv: kv[1])
    return big[1] / small[1], big[0], small[0]
