"""What a loss part's constructor receives: the registry's view of a loss, its defaults, and the
arguments the data fills in.

One list of the data-derived arguments (:data:`DATA_ARGS`) serves both the real build
(:func:`tailtune.recipe.resolve`, from the training counts) and the recipe check before any data is
read (:func:`tailtune.recipe.validation.check_losses`, from stand-in counts). The loss registry
(torch) is imported on first use.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from tailtune.data.kinds import TaskKind, task_kind
from tailtune.errors import RecipeError, did_you_mean
from tailtune.recipe.schema import WeightingSection
from tailtune.weighting.cells import parse_cell_key

__all__ = [
    "AUXILIARY_LOSSES",
    "CLASS_WEIGHT_PARAMS",
    "check_overrides",
    "class_weight_slot",
    "check_weighting",
    "class_weight_target",
    "no_class_weight_slot",
    "DATA_ARGS",
    "TRAINER_PARAMS",
    "accepted_params",
    "data_arguments",
    "default_arguments",
    "loss_spec",
    "registry",
    "weighting_active",
]

#: constructor arguments filled from the training data and the task (never written in a recipe)
DATA_ARGS = ("counts", "num_samples", "parent_of", "names", "absent_index")
#: everything the trainer sets: the data arguments, ``priors`` (a count-based loss's other form), the
#: task ``kind`` and the ``reduction`` of the loss contract
TRAINER_PARAMS = (*DATA_ARGS, "priors", "kind", "reduction")
#: the names ``weighting.apply_to`` may give (which of them a loss takes as class weights is the
#: registry's ``LossSpec.class_weight_params``: Tversky's ``alpha`` is a scalar, not one of them)
CLASS_WEIGHT_PARAMS = ("alpha", "weight", "pos_weight")
#: parts that score no classes themselves (contrastive on embeddings, the hierarchy penalty): an
#: explicit ``weighting.apply_to`` they do not take leaves them alone instead of refusing them
AUXILIARY_LOSSES = ("supcon", "supervised_contrastive", "hierarchy")


def registry():
    """The :mod:`tailtune.losses.registry` module (imported on first use: it imports torch)."""
    from tailtune.losses import registry as reg

    return reg


def loss_spec(name: str, kind: str | None):
    """The registry's ``LossSpec`` behind ``name`` for ``kind`` (``ValueError`` when unknown)."""
    return registry().spec(name, kind=kind)


def accepted_params(spec) -> list[str]:
    """The constructor's parameter names (``self`` excluded)."""
    return [p for p in inspect.signature(spec.factory).parameters if p != "self"]


def default_arguments(spec) -> dict[str, Any]:
    """The constructor's defaults with the registry's own defaults on top (``smoothed_bce``: 0.1)."""
    out = {name: p.default for name, p in inspect.signature(spec.factory).parameters.items()
           if name != "self" and p.default is not inspect.Parameter.empty}
    out.update(dict(spec.defaults))
    return out


def _count_vector(task: Any, counts) -> list[float]:
    """The ``counts`` a count-based loss takes: binary the positives; aspects the pooled polarities."""
    kind = task_kind(task)
    return [float(c) for c in counts.of(kind.weighted_outputs(task))]


def _placeholder_counts(task: Any) -> list[float]:
    return [1.0] * len(task_kind(task).weighted_outputs(task))


def data_arguments(accepted: Iterable[str], params: Mapping[str, Any], task: Any, counts=None, *,
                   part: str = "loss", placeholders: bool = True) -> dict[str, Any] | None:
    """The data-derived constructor arguments a part did not set (:data:`DATA_ARGS`).

    ``counts`` (logit-adjusted, LDAM, distribution-balanced: per weighted output, aspects pooled) and
    ``num_samples`` come from ``counts`` (a :class:`~tailtune.recipe.counts.ClassCounts`); without
    counts they are stand-ins (ones and 2) that let a loss be built to check its parameters, or
    left out with ``placeholders=False``.
    ``parent_of``/``names`` come from the task's hierarchy, ``absent_index`` (aspects) from its
    polarities. Returns ``None`` when an argument is needed but there is no task to take it from.

    Raises:
        RecipeError: the part needs a hierarchy and the task has none.
    """
    accepted = set(accepted)
    needed = [a for a in DATA_ARGS if a in accepted and a not in params]
    if task is None:  # absent_index only exists for aspect tasks: not needed to build the loss
        return None if [a for a in needed if a != "absent_index"] else {}
    kind = task_kind(task)
    out: dict[str, Any] = {}
    if counts is not None or placeholders:
        if "counts" in needed and "priors" not in params:
            out["counts"] = _count_vector(task, counts) if counts is not None else _placeholder_counts(task)
        if "num_samples" in needed:
            out["num_samples"] = (counts.require_num_examples(f"loss.{part} (num_samples)") if counts is not None
                                  else 2)
    if "parent_of" in needed:
        if not getattr(task, "hierarchy", None):
            raise RecipeError(
                f"loss.{part}: the hierarchy penalty needs task.hierarchy {{child: parent}}; add it or remove the part"
            )
        out["parent_of"] = dict(task.hierarchy)
        if "names" in needed:
            out["names"] = list(task.labels)
    if "absent_index" in needed and kind.per_aspect:
        out["absent_index"] = len(task.polarities)
    return out


def weighting_active(weighting: WeightingSection) -> bool:
    """Whether ``weighting`` gives class weights: not ``apply_to: none``, and a scheme other than
    ``uniform`` or an override other than 1."""
    if weighting.apply_to == "none":
        return False
    return weighting.scheme != "uniform" or any(float(v) != 1.0 for v in weighting.overrides.values())


def class_weight_target(weighting: WeightingSection, kind: str | TaskKind) -> str | None:
    """The loss argument ``weighting`` fills for ``kind`` (``auto`` resolved), or None.

    Raises:
        RecipeError: ``apply_to`` names an argument the kind's losses do not take.
    """
    if not weighting_active(weighting):
        return None
    info = task_kind(kind)
    if weighting.apply_to == "auto":
        return info.auto_class_weight
    if weighting.apply_to not in info.class_weight_args:
        choices = " or ".join(info.class_weight_args)
        raise RecipeError(
            f"weighting.apply_to: {weighting.apply_to} is for "
            f"{'multiclass/aspects' if info.sigmoid else 'binary/multilabel'} tasks, this one is {info.name}; "
            f"use {choices}"
        )
    return weighting.apply_to


def class_weight_slot(spec, target: str | None, kind: str | TaskKind) -> str | None:
    """The argument of the loss ``spec`` that receives the class weights resolved for ``target``
    (``alpha``, ``weight`` or ``pos_weight``; see :func:`class_weight_target`), or None.

    Only the arguments the registry declares as per-class weight vectors
    (``LossSpec.class_weight_params``) qualify, so a scalar that shares the name (Tversky's ``alpha``)
    never receives a vector. For softmax kinds a loss without a class-weight ``alpha`` takes the
    vector as ``weight`` (the same weights). For sigmoid kinds ``alpha`` is the positive share
    ``pos_weight / (1 + pos_weight)`` and goes to ``alpha`` only.
    """
    if target is None:
        return None
    params = tuple(getattr(spec, "class_weight_params", ()))
    if target in params:
        return target
    if target == "alpha" and task_kind(kind).softmax and "weight" in params:
        return "weight"
    return None


def no_class_weight_slot(key: str, ltype: str, spec, target: str) -> str:
    """The message for an explicit ``weighting.apply_to`` that loss part ``key`` cannot take."""
    params = tuple(getattr(spec, "class_weight_params", ()))
    same_name = target in accepted_params(spec)
    why = (f"its {target!r} is a scalar of the loss, not a per-class weight" if same_name
           else f"it has no {target!r}")
    takes = f"it takes class weights as {' or '.join(params)}" if params else "it takes no class weights"
    return (f"weighting.apply_to: {target!r} but loss part {key!r} ({ltype}) cannot take class weights there: "
            f"{why}; {takes}. Fix: set weighting.apply_to to an argument it takes, or to none "
            "(or use a class-weighted loss such as ce or focal)")


def check_overrides(weighting: WeightingSection, classes: list[str], info: TaskKind, *, source: str | None = None,
                    aspects: list[str] | None = None) -> None:
    """Every pooled ``weighting.overrides`` key names one of ``classes`` (the task's weight classes).

    ``aspects`` (an aspect task's aspect names) lets the message say that a cell or aspect key needs
    ``weighting.per_aspect: true``.

    Raises:
        RecipeError: naming the key, the closest class and the valid ones.
    """
    prefix = f"{source}: " if source else ""
    for name in weighting.overrides:
        if name in classes:
            continue
        if aspects:
            try:
                parse_cell_key(name, aspects, classes)
            except ValueError:
                pass
            else:
                raise RecipeError(
                    prefix + f"weighting.overrides.{name}: {name!r} names aspect cells, but the class weights are "
                    f"pooled over the aspects (one per class: {', '.join(classes)}). Fix: set weighting.per_aspect: "
                    "true for one weight per aspect x class cell, or use a class key"
                )
        what = "aspect class (polarity or 'absent')" if info.per_aspect else "label"
        raise RecipeError(
            prefix + f"weighting.overrides.{name}: {name!r} is not a {what}{did_you_mean(name, classes)}. "
            f"Fix: use one of {', '.join(classes[:12])}" + (f", ... ({len(classes)} in all)" if len(classes) > 12 else "")
        )


def check_weighting(weighting: WeightingSection, task: Any, *, source: str | None = None) -> None:
    """The ``weighting`` section against the data's task (a TaskSpec): ``per_aspect`` only for aspect
    tasks, and every override key valid for the layout (pooled: a class; per aspect: a cell
    ``aspect#class``, an aspect or a class, :mod:`tailtune.weighting.cells`).

    Raises:
        RecipeError: naming the field, the key, the closest valid key and the valid forms.
    """
    info = task_kind(task)
    prefix = f"{source}: " if source else ""
    classes = info.weight_classes(task)
    if weighting.per_aspect and not info.per_aspect:
        raise RecipeError(
            prefix + f"weighting.per_aspect: true weighs aspect x class cells, for aspects tasks; this one is "
            f"{info.name}. Fix: remove weighting.per_aspect"
        )
    if not weighting.per_aspect:
        check_overrides(weighting, classes, info, source=source, aspects=list(task.labels) if info.per_aspect else None)
        return
    for key in weighting.overrides:
        try:
            parse_cell_key(key, list(task.labels), classes)
        except ValueError as exc:
            raise RecipeError(prefix + f"weighting.overrides.{key}: {exc}") from None
