"""The data a recipe trains on: its ``data`` and ``task`` sections translated to
:func:`tailtune.data.load_dataset` (the one translation: training, lint and ``fit`` read the data the
same way), and the training counts :func:`tailtune.recipe.resolve` takes.
"""

from __future__ import annotations

import os
from typing import Any

from tailtune.data import LoadedData, load_dataset
from tailtune.errors import RecipeError
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.schema import Recipe
from tailtune.recipe.validation import task_with_groups

__all__ = ["load_recipe_data", "train_counts"]


def _task_argument(recipe: Recipe) -> Any:
    """What ``load_dataset(task=...)`` gets: labels fix the label order (a partial spec); a kind alone
    is a kind name; nothing is inferred from the data."""
    spec = {k: v for k, v in recipe.task.model_dump(exclude={"groups"}).items() if v is not None}
    if set(spec) - {"kind"}:
        return spec
    return spec.get("kind")


def load_recipe_data(recipe: Recipe, *, data_path: str | os.PathLike | None = None, task: Any = None,
                     require: tuple[str, ...] = ("train", "validation")) -> LoadedData:
    """Load the recipe's data exactly as training does (columns, ``label_sep``, ``empty_text``,
    ``unused_labels``, ``val_fraction`` and the split seed ``train.seed``); the loaded task carries
    the recipe's ``task.groups``.

    Args:
        recipe: a validated recipe.
        data_path: read this instead of ``data.path``.
        task: read the data as this task (a trained run's :class:`~tailtune.data.TaskSpec` or its
            mapping: its label order, so class indices mean what the model's outputs mean) instead
            of the recipe's ``task`` section.
        require: splits that must hold examples.

    Raises:
        RecipeError: no ``data.path``; the data's kind differs from ``task.kind``; a required split
            is empty. DataError: from :func:`tailtune.data.load_dataset`.
    """
    d = recipe.data
    path = data_path or d.path
    if not path:
        raise RecipeError("data.path: missing; set it to a data folder or file (e.g. --set data.path=data/)")
    kwargs: dict[str, Any] = {"task": _task_argument(recipe) if task is None else task, "seed": recipe.train.seed,
                              "val_fraction": d.val_fraction, "empty_text": d.empty_text,
                              "unused_labels": d.unused_labels}
    if d.text:
        kwargs["text_column"] = d.text
    if d.labels:
        kwargs["label_column"] = d.labels
    if d.label_sep:
        kwargs["label_sep"] = d.label_sep
    loaded = load_dataset(path, **kwargs)
    want = recipe.task.kind
    if want and loaded.task.kind != want:
        raise RecipeError(
            f"task.kind: the recipe says {want!r} but the data at {path} is {loaded.task.kind!r}; fix task.kind "
            "or the label column"
        )
    if recipe.task.hierarchy and loaded.task.hierarchy is None and loaded.task.kind_info.multi_hot:
        loaded.task.hierarchy = dict(recipe.task.hierarchy)
    groups = recipe.task.groups if task is None else (task.get("groups") if isinstance(task, dict)
                                                       else getattr(task, "groups", None))
    if groups:  # a run's task (task=) carries its own groups
        loaded.task = task_with_groups(loaded.task, groups)
    for split in require:
        if split not in loaded.splits or len(loaded.splits[split]) == 0:
            raise RecipeError(f"data.path: {path} gives no {split!r} examples")
    return loaded


def train_counts(loaded: LoadedData) -> ClassCounts:
    """:class:`ClassCounts` of the loaded training split."""
    return ClassCounts.from_targets(loaded.task, loaded.splits["train"]["labels"])
