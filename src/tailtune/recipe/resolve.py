"""``resolve(recipe, task, counts)``: the ONE place that decides what a recipe means for a data set.

It turns a validated :class:`~tailtune.recipe.schema.Recipe`, the data's
:class:`~tailtune.data.TaskSpec` and the training :class:`~tailtune.recipe.counts.ClassCounts` into a
:class:`ResolvedRecipe`: every loss part with every constructor argument (the loss signature's
defaults, the registry's, the recipe's, the data-derived ones and the class weights), the class
weights per class and where they apply, the sample weighting and the sampler. Training
(:mod:`tailtune.training`), screening and sweeps (:mod:`tailtune.experiments`), the recipe lint and
the weight diagnostics (:mod:`tailtune.diagnostics`) and ``analyze`` all call it; nothing else
re-derives a default. :mod:`tailtune.recipe.build` turns the result into modules;
``ResolvedRecipe.to_dict()`` is the run directory's ``resolved.json``.

Class weights (``weighting``), for ``scheme`` other than ``uniform`` (``uniform`` with overrides:
ones, then the overrides):

- softmax kinds (multiclass; aspects over the polarities and ``absent``, counts pooled over the
  aspects): :func:`tailtune.weighting.class_weights`, overrides set last;
- aspects with ``per_aspect: true``: every aspect x class cell (``absent`` included) weighed by its
  own count, :func:`tailtune.weighting.aspect_class_weights`; the loss parts get the ``(A, P + 1)``
  table (row ``a`` for the rows of aspect ``a`` in the training layer's ``(N * A, P + 1)`` view) and
  must take one (``per_row_class_weights``: cross-entropy, focal and the sentiment presets);
- sigmoid kinds: one positive-to-negative ratio per label, :func:`tailtune.weighting.pos_weight`
  (``neg / pos`` under ``inverse``; ``cap`` bounds it), multilabel overrides set a label's ratio.
  A binary task's two classes share ONE ratio, because binary cross-entropy's class weights are
  relative: weighting the negatives by ``w_neg`` and the positives by ``w_pos`` trains like
  ``pos_weight = w_pos / w_neg`` (the loss scale aside). So ``overrides: {ham: 2.0}`` on a ham/spam
  task halves the automatic ``pos_weight`` of spam; ``{spam: 6.0}`` sets it to 6;
  ``{ham: 2.0, spam: 6.0}`` gives 3.
- ``apply_to``: ``auto`` is ``pos_weight`` for sigmoid kinds and ``alpha`` for softmax kinds (a
  softmax loss without ``alpha`` takes the vector as ``weight``); a sigmoid ``alpha`` is the positive
  share ``pos_weight / (1 + pos_weight)`` (torchvision's convention). Every part that takes the
  argument gets its own copy; an explicit ``apply_to`` that a scoring part does not take is an error.

Example:
    >>> from tailtune.data import TaskSpec  # doctest: +SKIP
    >>> r = resolve({"loss": {"focal": {"gamma": 1.0}}, "weighting": {"scheme": "inverse"}},
    ...             TaskSpec("binary", ["ham", "spam"]), ClassCounts.from_mapping({"ham": 90, "spam": 10}))  # doctest: +SKIP
    >>> r.class_weights.pos_weight, r.loss["focal"].args["gamma"]  # doctest: +SKIP
    ({'spam': 9.0}, 1.0)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tailtune import weighting as weighting_fns
from tailtune.data.kinds import KINDS, TaskKind, task_kind
from tailtune.errors import RecipeError
from tailtune.recipe.counts import ClassCounts, as_class_counts
from tailtune.recipe.io import as_recipe
from tailtune.recipe.loss_args import (
    AUXILIARY_LOSSES,
    accepted_params,
    check_weighting,
    class_weight_slot,
    class_weight_target,
    data_arguments,
    default_arguments,
    loss_spec,
    no_class_weight_slot,
    registry,
    weighting_active,
)
from tailtune.recipe.schema import LossPart, Recipe, WeightingSection
from tailtune.weighting.cells import cell_keys

__all__ = [
    "ClassWeights",
    "ResolvedLossPart",
    "ResolvedRecipe",
    "SampleWeighting",
    "class_weight_target",
    "resolve",
    "resolve_class_weights",
    "resolve_loss_part",
    "weighting_active",
]


# ------------------------------------------------------------------------------------- results
@dataclass(frozen=True)
class ClassWeights:
    """The class weights a recipe trains with.

    Attributes:
        apply_to: the loss argument they fill (``alpha``, ``weight`` or ``pos_weight``).
        classes: the class of each entry of ``values`` (binary: the positive class).
        values: the vector every class-weighted loss part receives (a sigmoid ``alpha`` is
            ``pos_weight / (1 + pos_weight)``).
        per_class: the weight of every class as a user reads it: softmax kinds the class weight;
            binary both classes (negative 1 unless overridden, positive its automatic ratio or
            override); multilabel each label's positive-to-negative ratio.
        pos_weight: sigmoid kinds: the positive-to-negative ratio per label the loss applies
            (binary: ``w_pos / w_neg``); ``None`` for softmax kinds.
        per_aspect: per-cell weights of an aspect task: ``values`` is the ``(A, P + 1)`` table (one row
            per entry of ``aspects``, one column per entry of ``classes``) and ``per_class`` is keyed
            by cell (``aspect#class``).
    """

    apply_to: str
    scheme: str
    beta: float
    cap: float | None
    normalize: bool
    overrides: dict[str, float]
    classes: tuple[str, ...]
    values: tuple[float, ...] | tuple[tuple[float, ...], ...]
    per_class: dict[str, float]
    pos_weight: dict[str, float] | None = None
    per_aspect: bool = False
    aspects: tuple[str, ...] = ()

    @property
    def effective(self) -> dict[str, float]:
        """What each class's loss is multiplied by relative to the others: the class weights
        (softmax kinds) or the positive-to-negative ratios (sigmoid kinds)."""
        return dict(self.pos_weight) if self.pos_weight is not None else dict(self.per_class)

    @property
    def per_cell(self) -> dict[str, dict[str, float]] | None:
        """Per-cell weights as ``{aspect: {class: weight}}`` (``None`` when pooled)."""
        if not self.per_aspect:
            return None
        return {a: dict(zip(self.classes, row)) for a, row in zip(self.aspects, self.values)}

    def tensor_values(self) -> list:
        """``values`` as the loss argument: a list (one per class) or, per cell, a list of rows."""
        return [list(row) for row in self.values] if self.per_aspect else list(self.values)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "apply_to": self.apply_to, "scheme": self.scheme, "beta": self.beta, "cap": self.cap,
            "normalize": self.normalize, "overrides": dict(self.overrides), "per_class": dict(self.per_class),
            "pos_weight": None if self.pos_weight is None else dict(self.pos_weight),
            "classes": list(self.classes), "values": self.tensor_values(), "per_aspect": self.per_aspect,
        }
        if self.per_aspect:
            out["aspects"] = list(self.aspects)
            out["per_cell"] = self.per_cell
        return out


@dataclass(frozen=True)
class ResolvedLossPart:
    """One loss part as built: registry ``loss`` name, composite ``weight`` and every argument."""

    name: str
    type: str
    loss: str
    weight: float
    args: dict[str, Any]
    class_weight_arg: str | None = None
    data_args: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "loss": self.loss, "weight": self.weight, "args": _jsonable(self.args),
                "class_weight_arg": self.class_weight_arg, "data_args": list(self.data_args)}


@dataclass(frozen=True)
class SampleWeighting:
    """Per-example weights multiplied into the loss (``sample_weighting``)."""

    length: bool
    confidence: bool
    min_weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"length": self.length, "confidence": self.confidence, "min_weight": self.min_weight}


@dataclass(frozen=True)
class ResolvedRecipe:
    """Everything training needs from a recipe for one data set (see the module docstring)."""

    kind: str | None
    task: Any
    counts: ClassCounts | None
    class_weights: ClassWeights | None
    loss: dict[str, ResolvedLossPart]
    loss_balance: str
    sample_weighting: SampleWeighting | None
    sampler: str
    notes: list[str] = field(default_factory=list)

    @property
    def kind_info(self) -> TaskKind | None:
        return None if self.kind is None else task_kind(self.kind)

    def to_dict(self) -> dict[str, Any]:
        """The ``resolved.json`` of a run (JSON-safe)."""
        cw = self.class_weights
        return {
            "kind": self.kind,
            "counts": None if self.counts is None else self.counts.to_dict(),
            "class_weights": None if cw is None else cw.to_dict(),
            "loss": {name: part.to_dict() for name, part in self.loss.items()},
            "loss_balance": self.loss_balance,
            "sample_weighting": None if self.sample_weighting is None else self.sample_weighting.to_dict(),
            "sampler": self.sampler,
            "notes": list(self.notes),
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist"):
        return value.tolist()
    return repr(value)


# ------------------------------------------------------------------------------- class weights
def _sigmoid_weights(w: WeightingSection, task: Any, counts: ClassCounts, info: TaskKind):
    """(pos_weight tensor per weighted output, per-class weights) of a binary/multilabel task."""
    outputs = info.weighted_outputs(task)
    pos = counts.of(outputs)
    if info.is_binary:
        neg_name = task.labels[0]
        neg = counts.of([neg_name])
    else:
        n = counts.require_num_examples("multilabel class weights (negatives = examples - positives)")
        neg = [float(n) - c for c in pos]
    try:
        values = weighting_fns.pos_weight(pos, neg, cap=w.cap, names=outputs, scheme=w.scheme, beta=float(w.beta))
    except ValueError as exc:
        raise RecipeError(f"weighting: {exc}") from exc
    values = values.clone()
    for name, value in w.overrides.items():
        if name in outputs:
            values[outputs.index(name)] = float(value)
    if not info.is_binary:
        return values, dict(zip(outputs, values.tolist()))
    per_class = {neg_name: 1.0, outputs[0]: float(values[0])}
    if neg_name in w.overrides:  # binary BCE weights are one ratio: w_pos / w_neg
        w_neg = float(w.overrides[neg_name])
        if w_neg <= 0:
            raise RecipeError(
                f"weighting.overrides.{neg_name} = {w.overrides[neg_name]:g}: the negative class of a binary task "
                f"needs a weight > 0 (the loss applies pos_weight = w({outputs[0]}) / w({neg_name})). Fix: use a "
                "positive weight or remove the override"
            )
        per_class[neg_name] = w_neg
        values = values / w_neg
    return values, per_class


def _cell_weights(weighting: WeightingSection, task: Any, counts: ClassCounts) -> tuple[Any, dict[str, float]]:
    """The ``(A, P + 1)`` per-cell weights of an aspect task and ``{aspect#class: weight}``."""
    if counts.cells is None or list(counts.aspects) != list(task.labels):
        raise RecipeError(
            "weighting.per_aspect: per-cell class weights need the training counts per aspect "
            "(ClassCounts.from_targets(task, targets) or ClassCounts.from_cells)"
        )
    classes = task_kind(task).weight_classes(task)
    try:
        table = weighting_fns.aspect_class_weights(
            counts.cells, aspects=list(task.labels), classes=classes, scheme=weighting.scheme, beta=weighting.beta,
            cap=weighting.cap, overrides=dict(weighting.overrides) or None, normalize=weighting.normalize,
        )
    except ValueError as exc:
        raise RecipeError(f"weighting: {exc}") from exc
    flat = table.reshape(-1).tolist()
    return table, dict(zip(cell_keys(task.labels, classes), flat))


def resolve_class_weights(weighting: WeightingSection, task: Any, counts: ClassCounts | None) -> ClassWeights | None:
    """The class weights of ``weighting`` for ``task`` and ``counts`` (``None``: no class weights).

    Raises:
        RecipeError: an override names no class of the task (no cell, with ``per_aspect``), an
            ``apply_to`` the kind does not take, ``per_aspect`` for another kind, or a scheme undefined
            for the counts (a class without examples), each naming the fix.
    """
    target = class_weight_target(weighting, task)
    info = task_kind(task)
    check_weighting(weighting, task)
    if target is None:
        return None
    counts = as_class_counts(counts, task)
    if counts is None:
        raise RecipeError("weighting: class weights need the training counts (resolve(recipe, task, counts))")
    pos_weight = None
    if info.sigmoid:
        tensor, per_class = _sigmoid_weights(weighting, task, counts, info)
        pos_weight = dict(zip(info.weighted_outputs(task), tensor.tolist()))
        if target == "alpha":
            tensor = tensor / (1.0 + tensor)
    elif weighting.per_aspect:
        tensor, per_class = _cell_weights(weighting, task, counts)
    else:
        names = info.weight_classes(task)
        try:
            tensor = weighting_fns.class_weights(
                counts.of(names), overrides=dict(weighting.overrides) or None, names=names, scheme=weighting.scheme,
                beta=weighting.beta, cap=weighting.cap, normalize=weighting.normalize,
            )
        except ValueError as exc:
            raise RecipeError(f"weighting: {exc}") from exc
        per_class = dict(zip(names, tensor.tolist()))
    values = tuple(tuple(row) for row in tensor.tolist()) if weighting.per_aspect else tuple(tensor.tolist())
    return ClassWeights(
        apply_to=target, scheme=weighting.scheme, beta=float(weighting.beta), cap=weighting.cap,
        normalize=weighting.normalize, overrides={k: float(v) for k, v in weighting.overrides.items()},
        classes=tuple(info.weighted_outputs(task)), values=values, per_class=per_class,
        pos_weight=pos_weight, per_aspect=bool(weighting.per_aspect),
        aspects=tuple(task.labels) if weighting.per_aspect else (),
    )


# ---------------------------------------------------------------------------------- loss parts
def _agreeing_defaults(name: str) -> tuple[str, dict[str, Any]]:
    """Kind unknown: the defaults every form of ``name`` shares (``focal``'s gamma is 2.0 in both)."""
    reg = registry()
    forms = []
    for kind in KINDS:
        if name in reg.available(kind=kind):
            forms.append(loss_spec(name, kind))
    if not forms:
        loss_spec(name, None)  # raises the registry's "unknown loss" error
    canonical = {f.name for f in forms}
    shared = default_arguments(forms[0])
    for spec in forms[1:]:
        other = default_arguments(spec)
        shared = {k: v for k, v in shared.items() if k in other and other[k] == v}
    return (forms[0].name if len(canonical) == 1 else name), shared


def resolve_loss_part(key: str, part: LossPart, task: Any = None, counts: ClassCounts | None = None,
                      class_weights: ClassWeights | None = None, *, apply_to: str = "auto",
                      kind: str | None = None) -> ResolvedLossPart:
    """One loss part with every constructor argument (see the module docstring).

    ``task`` (a TaskSpec) gives the data arguments that need only the task (hierarchy, ``absent``);
    ``counts`` the count-based ones. Without a kind the part keeps the defaults all its forms share.

    Raises:
        RecipeError: the loss does not exist (for the kind), or an explicit ``apply_to`` names an
            argument this scoring part does not take.
    """
    ltype = part.loss_type(key)
    kind = kind or (task_kind(task).name if task is not None else None)
    params = {k: v for k, v in part.params.items() if v is not None}
    if kind is None:
        try:
            canonical, defaults = _agreeing_defaults(ltype)
        except (TypeError, ValueError, KeyError) as exc:
            raise RecipeError(f"loss.{key}: {exc}") from exc
        return ResolvedLossPart(key, ltype, canonical, float(part.weight), {**defaults, **params})
    try:
        spec = loss_spec(ltype, kind)
    except (TypeError, ValueError, KeyError) as exc:
        raise RecipeError(f"loss.{key}: {exc}") from exc
    accepted = accepted_params(spec)
    args = default_arguments(spec)
    if "kind" in accepted:
        args["kind"] = kind
    data = data_arguments(accepted, params, task, counts, part=key, placeholders=False) or {}
    args.update(data)
    args.update(params)
    target = None
    if class_weights is not None:
        arg = class_weights.apply_to
        target = class_weight_slot(spec, arg, kind)
        if target is None and apply_to != "auto" and ltype not in AUXILIARY_LOSSES:
            raise RecipeError(no_class_weight_slot(key, ltype, spec, arg))
        if target is not None and target in params:
            target = None  # the part's own value stands (lint reports the double weighting)
        if target is not None:
            _check_per_row(key, ltype, spec, class_weights)
            args[target] = class_weights.tensor_values()
    return ResolvedLossPart(key, ltype, spec.name, float(part.weight), args, target, tuple(data))


def _unweighted_parts(loss: dict[str, ResolvedLossPart], cw: ClassWeights | None, kind: str | None) -> list[str]:
    """Notes for the scoring parts that ``apply_to: auto`` class weights cannot reach (Tversky, Dice,
    asymmetric: no class-weight argument), so that the record says they train unweighted."""
    if cw is None or kind is None:
        return []
    return [f"weighting: loss part {name!r} ({part.type}) takes no class weights as {cw.apply_to!r}; "
            "it trains unweighted"
            for name, part in loss.items()
            if part.type not in AUXILIARY_LOSSES and class_weight_slot(loss_spec(part.loss, kind), cw.apply_to, kind) is None]


def _check_per_row(key: str, ltype: str, spec, class_weights: ClassWeights) -> None:
    """Per-cell weights go only to losses that take a class-weight table (``per_row_class_weights``)."""
    if class_weights.per_aspect and not getattr(spec.factory, "per_row_class_weights", False):
        takers = [n for n in registry().available(kind="aspects")
                  if getattr(registry().spec(n, kind="aspects").factory, "per_row_class_weights", False)]
        raise RecipeError(
            f"loss.{key} ({ltype}) takes one class-weight vector, but weighting.per_aspect: true gives one per "
            f"aspect. Fix: set weighting.per_aspect: false (pooled weights), weighting.apply_to: none, or use a "
            f"loss that takes per-aspect weights ({', '.join(sorted(takers))})"
        )


# ------------------------------------------------------------------------------------- resolve
def resolve(recipe: Recipe | Mapping[str, Any], task: Any = None, counts: ClassCounts | None = None) -> ResolvedRecipe:
    """What ``recipe`` trains with on data of ``task`` with training ``counts``.

    Args:
        recipe: a :class:`Recipe` or its mapping.
        task: the data's :class:`~tailtune.data.TaskSpec`; a kind name (or ``None``: the recipe's
            ``task.kind``) resolves what needs no data (loss defaults, sampler, sample weighting).
        counts: :class:`ClassCounts` of the training split (class weights and count-based losses
            need them; without them those stay unresolved).

    Raises:
        RecipeError: naming the field and the fix (unknown override key, ``apply_to`` the kind does
            not take, a class without examples under a counting scheme, a loss not for the kind).
    """
    recipe = as_recipe(recipe)
    spec_task = task if task is not None and not isinstance(task, (str, TaskKind)) else None
    counts = as_class_counts(counts, spec_task)
    kind = task_kind(task).name if task is not None else recipe.task.kind
    cw = None
    notes = []
    if spec_task is not None and counts is None and weighting_active(recipe.weighting):
        info = task_kind(spec_task)
        check_weighting(recipe.weighting, spec_task)
        class_weight_target(recipe.weighting, info)
        notes.append("class weights unresolved: no training counts")
    elif spec_task is not None:
        cw = resolve_class_weights(recipe.weighting, spec_task, counts)
    loss = {key: resolve_loss_part(key, part, spec_task, counts, cw, apply_to=recipe.weighting.apply_to, kind=kind)
            for key, part in recipe.loss.items()}
    notes += _unweighted_parts(loss, cw, kind)
    sw = recipe.sample_weighting
    sample = SampleWeighting(sw.length, sw.confidence, float(sw.min_weight)) if (sw.length or sw.confidence) else None
    return ResolvedRecipe(kind, spec_task, counts, cw, loss, recipe.loss_balance, sample, recipe.sampler, notes)
