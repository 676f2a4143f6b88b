"""Recipe checks beyond the schema: loss parts against the loss registry, and the recipe against the
data's :class:`~tailtune.data.TaskSpec` (labels, class-weight overrides, hierarchy).

Every problem is one :class:`~tailtune.errors.RecipeError` naming the field, the bad value and the
valid choices. The loss registry (torch) is imported on first use, so importing this module is light.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from tailtune.errors import RecipeError, did_you_mean
from tailtune.recipe.schema import Recipe

__all__ = ["CLASS_WEIGHT_PARAMS", "TRAINER_PARAMS", "check_losses", "validate_against_task"]


#: Loss constructor arguments the trainer sets (from the data, the task or its loss contract); a recipe
#: never writes them.
TRAINER_PARAMS = ("counts", "priors", "num_samples", "parent_of", "names", "kind", "reduction", "absent_index")
#: Constructor arguments that carry class weights (filled by the ``weighting`` section).
CLASS_WEIGHT_PARAMS = ("alpha", "weight", "pos_weight")


def _loss_registry():
    """The :mod:`tailtune.losses.registry` module (imported lazily: torch is only needed here)."""
    from tailtune.losses import registry

    return registry


def _num_classes(task: Any) -> int:
    if task.kind == "aspects":
        return len(task.polarities) + 1
    if task.kind == "binary":
        return 1
    return len(task.labels)


def _placeholders(factory_params: Iterable[str], given: Mapping[str, Any], task: Any) -> dict[str, Any] | None:
    """Stand-ins for the data-derived arguments so a loss can be built once to check its parameters;
    ``None`` when they cannot be made without the data (no task yet)."""
    out: dict[str, Any] = {}
    for name in factory_params:
        if name in given or name not in ("counts", "num_samples", "parent_of", "names"):
            continue
        if task is None:
            return None
        if name == "counts":
            out[name] = [1.0] * _num_classes(task)
        elif name == "num_samples":
            out[name] = 2
        elif name == "parent_of":
            out[name] = dict(task.hierarchy or {})
        elif name == "names":
            out[name] = list(task.labels)
    return out


def _class_weight_target(recipe: Recipe, kind: str) -> str | None:
    """The loss argument the weighting section fills for ``kind`` (the trainer's rule), or None."""
    w = recipe.weighting
    if w.scheme == "uniform" or w.apply_to == "none":
        return None
    if w.apply_to == "auto":
        return "pos_weight" if kind in ("binary", "multilabel") else "alpha"
    return w.apply_to


def check_losses(recipe: Recipe, *, kind: str | None = None, task: Any = None, source: str = "recipe") -> None:
    """Check every loss part against :mod:`tailtune.losses`: the name is registered, it exists for the
    task kind (when known), its parameters are ones the loss accepts, and (when the task is known, or
    the loss needs nothing from the data) that the loss can be built with them.

    Raises:
        RecipeError: naming ``loss.<part>``, the bad name or parameter, and the valid choices.
    """


    registry = _loss_registry()
    kind = kind or (task.kind if task is not None else None) or recipe.task.kind
    names = list(registry.available())
    for key, part in recipe.loss.items():
        name = part.loss_type(key)
        where = f"loss.{key}" + (".type" if part.type else "")
        if name not in names:
            raise RecipeError(
                f"{source}: {where} = {name!r}: not a registered loss{did_you_mean(name, names)}. "
                f"Fix: use one of {', '.join(sorted(names))} (or name the part freely and set type: to one)"
            )
        if kind is None:
            continue
        kind_names = list(registry.available(kind=kind))
        if name not in kind_names:
            raise RecipeError(
                f"{source}: {where} = {name!r}: not available for {kind} tasks. "
                f"Fix: use one of {', '.join(sorted(kind_names))}"
            )
        params = dict(part.params)
        spec = registry.spec(name, kind=kind)
        accepted = [p for p in inspect.signature(spec.factory).parameters if p != "self"]
        settable = [p for p in accepted if p not in TRAINER_PARAMS]
        for param in params:
            if param in TRAINER_PARAMS and param in accepted:
                raise RecipeError(
                    f"{source}: loss.{key}.{param}: set by the trainer (from the data and the task), not in the "
                    "recipe. Fix: remove it"
                )
            if param not in accepted:
                raise RecipeError(
                    f"{source}: loss.{key}.{param}: {spec.name} has no parameter {param!r}"
                    f"{did_you_mean(param, settable)}. Fix: use one of {', '.join(settable) or '(none)'}"
                )
        target = _class_weight_target(recipe, kind)
        if target is not None and target in params:
            raise RecipeError(
                f"{source}: loss.{key}.{target} is set and weighting (scheme {recipe.weighting.scheme!r}, apply_to "
                f"{recipe.weighting.apply_to!r}) also fills {target!r}: class weights would be applied twice. "
                f"Fix: remove loss.{key}.{target} or set weighting.scheme: uniform"
            )
        if "parent_of" in accepted and task is not None and not task.hierarchy:
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) needs a label hierarchy. "
                "Fix: set task.hierarchy: {child: parent, ...} or remove this loss part"
            )
        extra = _placeholders(accepted, params, task)
        if extra is None:
            continue
        try:
            registry.get(name, kind=kind, **params, **extra)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf), e.g. ignore_index: .inf
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) {params!r}: {exc}. "
                "Fix: correct the parameter (see docs/recipes.md, section loss)"
            ) from exc


def validate_against_task(recipe: Recipe, task: Any, *, source: str = "recipe") -> None:
    """Check the recipe against the data's :class:`~tailtune.data.TaskSpec` (before any model loads).

    Checks: ``task.kind``/``labels``/``polarities``/``hierarchy`` agree with the data; class
    ``weighting.overrides`` name real classes (labels; for aspects the polarities or ``absent``);
    ``apply_to: pos_weight`` only for binary/multilabel; every loss part exists for the task kind and
    accepts its parameters.

    Raises:
        RecipeError: naming the field, the bad value and the valid names.
    """
    kind = task.kind
    labels = list(task.labels)
    rt = recipe.task
    if rt.kind is not None and rt.kind != kind:
        raise RecipeError(
            f"{source}: task.kind = {rt.kind!r} but the data is a {kind!r} task. "
            f"Fix: set task.kind: {kind} or check data.path/data.labels"
        )
    if rt.labels is not None and list(rt.labels) != labels:
        raise RecipeError(
            f"{source}: task.labels = {rt.labels!r} differ from the data's labels {labels!r}. "
            "Fix: list the data's labels in their order, or remove task.labels"
        )
    if rt.polarities is not None and list(rt.polarities) != list(getattr(task, "polarities", [])):
        raise RecipeError(
            f"{source}: task.polarities = {rt.polarities!r} differ from the data's "
            f"{list(getattr(task, 'polarities', []))!r}. Fix: match them or remove task.polarities"
        )
    if rt.hierarchy:
        if kind != "multilabel":
            raise RecipeError(f"{source}: task.hierarchy is for multilabel tasks, not {kind!r}. Fix: remove it")
        for child, parent in rt.hierarchy.items():
            for name in (child, parent):
                if name not in labels:
                    raise RecipeError(
                        f"{source}: task.hierarchy names {name!r}, which is not a label"
                        f"{did_you_mean(name, labels)}. Fix: use label names from the data ({_preview(labels)})"
                    )
    if kind == "aspects":
        classes = list(getattr(task, "aspect_classes", [*task.polarities, "absent"]))
        what = "aspect class (polarity or 'absent')"
    else:
        classes, what = labels, "label"
    for name in recipe.weighting.overrides:
        if name not in classes:
            raise RecipeError(
                f"{source}: weighting.overrides.{name}: {name!r} is not a {what}{did_you_mean(name, classes)}. "
                f"Fix: use one of {_preview(classes)}"
            )
    if recipe.weighting.apply_to == "pos_weight" and kind not in ("binary", "multilabel"):
        raise RecipeError(
            f"{source}: weighting.apply_to = 'pos_weight' is for binary/multilabel tasks, not {kind!r}. "
            "Fix: use 'weight', 'alpha' or 'auto'"
        )
    check_losses(recipe, kind=kind, task=task, source=source)


def _preview(names: list[str], n: int = 12) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


