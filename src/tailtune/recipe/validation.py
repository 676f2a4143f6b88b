"""Recipe checks beyond the schema: loss parts against the loss registry, and the recipe against the
data's :class:`~tailtune.data.TaskSpec` (labels, class-weight overrides, hierarchy).

Every problem is one :class:`~tailtune.errors.RecipeError` naming the field, the bad value and the
valid choices. The loss registry (torch) is imported on first use, so importing this module is light.
"""

from __future__ import annotations

from typing import Any

from tailtune.data.kinds import task_kind
from tailtune.errors import DataError, RecipeError, did_you_mean
from tailtune.recipe.loss_args import (
    AUXILIARY_LOSSES,
    CLASS_WEIGHT_PARAMS,
    TRAINER_PARAMS,
    accepted_params,
    check_weighting,
    class_weight_slot,
    class_weight_target,
    data_arguments,
    no_class_weight_slot,
)
from tailtune.recipe.loss_args import registry as loss_registry
from tailtune.recipe.schema import Recipe

__all__ = ["CLASS_WEIGHT_PARAMS", "TRAINER_PARAMS", "check_losses", "task_with_groups", "validate_against_task"]


def check_losses(recipe: Recipe, *, kind: str | None = None, task: Any = None, source: str = "recipe") -> None:
    """Check every loss part against :mod:`tailtune.losses`: the name is registered, it exists for the
    task kind (when known), its parameters are ones the loss accepts, and (when the task is known, or
    the loss needs nothing from the data) that the loss can be built with them.

    Raises:
        RecipeError: naming ``loss.<part>``, the bad name or parameter, and the valid choices.
    """


    registry = loss_registry()
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
        accepted = accepted_params(spec)
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
        _check_own_class_weight(recipe, key, name, spec, params, kind, source)
        if "parent_of" in accepted and task is not None and not task.hierarchy:
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) needs a label hierarchy. "
                "Fix: set task.hierarchy: {child: parent, ...} or remove this loss part"
            )
        extra = data_arguments(accepted, params, task, part=key)  # stand-in counts: no data yet
        if extra is None:
            continue
        try:
            registry.get(name, kind=kind, **params, **extra)
        except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf), e.g. ignore_index: .inf
            raise RecipeError(
                f"{source}: loss.{key} ({spec.name}) {params!r}: {exc}. "
                "Fix: correct the parameter (see docs/recipes.md, section loss)"
            ) from exc


def _check_own_class_weight(recipe: Recipe, key: str, name: str, spec, params: dict, kind: str,
                            source: str) -> None:
    """Refuse an explicit ``weighting.apply_to`` the part has no class-weight argument for, and a part
    that sets the argument ``weighting`` fills (the part's value would stand alone)."""
    try:
        wanted = class_weight_target(recipe.weighting, kind)
    except RecipeError as exc:
        raise RecipeError(f"{source}: {exc}") from None
    target = class_weight_slot(spec, wanted, kind)
    if wanted is not None and target is None and recipe.weighting.apply_to != "auto" and name not in AUXILIARY_LOSSES:
        raise RecipeError(f"{source}: {no_class_weight_slot(key, name, spec, wanted)}")
    if target is None or target not in params:
        return
    w = recipe.weighting
    from tailtune.losses.focal import NO_ALPHA  # the registry has loaded torch by now

    if target == "alpha" and task_kind(kind).sigmoid and params["alpha"] == NO_ALPHA:
        raise RecipeError(
            f"{source}: loss.{key}.alpha = {NO_ALPHA} switches the alpha weighting off, but weighting (scheme "
            f"{w.scheme!r}, apply_to 'alpha') fills 'alpha' with class weights. Fix: remove loss.{key}.alpha to "
            "train with the weighting's alpha, or set weighting.apply_to: pos_weight (or none)"
        )
    raise RecipeError(
        f"{source}: loss.{key}.{target} is set and weighting (scheme {w.scheme!r}, apply_to "
        f"{w.apply_to!r}) also fills {target!r}: class weights would be applied twice. "
        f"Fix: remove loss.{key}.{target} or set weighting.scheme: uniform"
    )


def validate_against_task(recipe: Recipe, task: Any, *, source: str = "recipe") -> None:
    """Check the recipe against the data's :class:`~tailtune.data.TaskSpec` (before any model loads).

    Checks: ``task.kind``/``labels``/``polarities``/``hierarchy`` agree with the data, ``task.groups``
    name its labels (aspects: its aspects); class
    ``weighting.overrides`` name real classes (labels; for aspects the polarities or ``absent``);
    ``apply_to: pos_weight`` only for binary/multilabel; every loss part exists for the task kind and
    accepts its parameters.

    Raises:
        RecipeError: naming the field, the bad value and the valid names.
    """
    kind = task.kind
    info = task_kind(task)
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
        if not info.multi_hot:
            raise RecipeError(f"{source}: task.hierarchy is for multilabel tasks, not {kind!r}. Fix: remove it")
        for child, parent in rt.hierarchy.items():
            for name in (child, parent):
                if name not in labels:
                    raise RecipeError(
                        f"{source}: task.hierarchy names {name!r}, which is not a label"
                        f"{did_you_mean(name, labels)}. Fix: use label names from the data ({_preview(labels)})"
                    )
    if rt.groups:
        task_with_groups(task, rt.groups, source=source)
    check_weighting(recipe.weighting, task, source=source)
    if recipe.weighting.apply_to == "pos_weight" and not info.sigmoid:
        raise RecipeError(
            f"{source}: weighting.apply_to = 'pos_weight' is for binary/multilabel tasks, not {kind!r}. "
            "Fix: use 'weight', 'alpha' or 'auto'"
        )
    check_losses(recipe, kind=kind, task=task, source=source)


def task_with_groups(task: Any, groups: dict[str, list[str]], *, source: str = "recipe") -> Any:
    """``task`` (a TaskSpec) with the recipe's ``task.groups``, checked against its labels.

    Raises:
        RecipeError: ``task.groups`` names a label (aspect) the data does not have (with the closest),
            or the task is binary.
    """
    try:
        return task.with_groups(groups)
    except DataError as exc:
        raise RecipeError(f"{source}: task.groups: {exc}. Fix: list label names of the data in each group") from None


def _preview(names: list[str], n: int = 12) -> str:
    shown = ", ".join(names[:n])
    return shown + (f", ... ({len(names)} in all)" if len(names) > n else "")


