"""Registry of loss modules: ``get(name, *, kind=None, **params)`` and ``available(kind=None)``.

Canonical names map to one module class each. Aliases with a softmax and a sigmoid form are
resolved by the task ``kind``: ``binary``/``multilabel`` -> sigmoid form, ``multiclass``/``aspects``
-> softmax form. When a module's constructor takes ``kind`` and the caller gave one, it is passed
on. Recipe parameters arrive as plain YAML values (lists for tensors, mappings for gamma schedules).

Each entry also says which constructor arguments are per-class weight vectors
(:attr:`LossSpec.class_weight_params`): the recipe's ``weighting`` may fill only those. A parameter
that merely shares a name is not one: Tversky's ``alpha``/``beta`` are false-positive/false-negative
scalars, asymmetric loss and distribution-balanced loss take no class weights at all.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from tailtune.data.kinds import TASK_KINDS as _KIND_OBJECTS
from tailtune.errors import did_you_mean
from tailtune.losses._base import TASK_KINDS
from tailtune.losses.asymmetric import AsymmetricLoss
from tailtune.losses.contrastive import SupConLoss
from tailtune.losses.cross_entropy import BinaryCrossEntropyLoss, CrossEntropyLoss
from tailtune.losses.dice import SoftDiceLoss, TverskyLoss
from tailtune.losses.distribution_balanced import DistributionBalancedLoss
from tailtune.losses.focal import SigmoidFocalLoss, SoftmaxFocalLoss
from tailtune.losses.hierarchy import HierarchyPenalty
from tailtune.losses.ldam import LDAMLoss
from tailtune.losses.logit_adjust import LogitAdjustedLoss
from tailtune.losses.weighted import SentimentFocalLoss, WeightedLoss

SOFTMAX_KINDS = tuple(k.name for k in _KIND_OBJECTS.values() if k.softmax)  # ("multiclass", "aspects")
SIGMOID_KINDS = tuple(k.name for k in _KIND_OBJECTS.values() if k.sigmoid)  # ("binary", "multilabel")


@dataclass(frozen=True)
class LossSpec:
    name: str
    factory: Callable[..., nn.Module]
    kinds: tuple[str, ...]
    summary: str
    defaults: tuple[tuple[str, object], ...] = ()
    #: constructor arguments that take one weight per class (per label for sigmoid kinds); the
    #: recipe's ``weighting`` fills only these (see ``tailtune.recipe.loss_args.class_weight_slot``)
    class_weight_params: tuple[str, ...] = ()


_REGISTRY: dict[str, LossSpec] = {}
_ALIASES: dict[str, dict[str, str]] = {}


def register(name: str, factory: Callable[..., nn.Module], *, kinds: tuple[str, ...], summary: str,
             defaults: dict | None = None, class_weights: tuple[str, ...] = ()) -> None:
    """Add a loss; ``defaults`` are parameters applied unless the caller overrides them;
    ``class_weights`` names the constructor arguments that take a per-class weight vector."""
    if name in _REGISTRY or name in _ALIASES:
        raise ValueError(f"loss name {name!r} is already registered")
    bad = [k for k in kinds if k not in TASK_KINDS]
    if bad:
        raise ValueError(f"kinds {bad} are not task kinds {list(TASK_KINDS)}")
    params = inspect.signature(factory).parameters
    unknown = [p for p in class_weights if p not in params]
    if unknown:
        raise ValueError(f"class_weights {unknown} are not parameters of {name!r}: {[p for p in params if p != 'self']}")
    _REGISTRY[name] = LossSpec(name, factory, tuple(kinds), summary, tuple((defaults or {}).items()),
                               tuple(class_weights))


def register_alias(alias: str, *, softmax: str | None = None, sigmoid: str | None = None) -> None:
    if alias in _REGISTRY or alias in _ALIASES:
        raise ValueError(f"loss name {alias!r} is already registered")
    table = {}
    for kinds, target in ((SOFTMAX_KINDS, softmax), (SIGMOID_KINDS, sigmoid)):
        if target is not None:
            for k in kinds:
                if k in _REGISTRY[target].kinds:
                    table[k] = target
    _ALIASES[alias] = table


def _all_names() -> list[str]:
    return sorted(set(_REGISTRY) | set(_ALIASES))


def resolve(name: str, *, kind: str | None = None) -> str:
    """Canonical name of ``name`` for ``kind`` (aliases need a kind unless unambiguous)."""
    if not isinstance(name, str):
        raise TypeError(f"loss name must be a string, got {name!r}")
    if kind is not None and kind not in TASK_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {list(TASK_KINDS)}{did_you_mean(str(kind), TASK_KINDS)}")
    if name in _ALIASES:
        table = _ALIASES[name]
        targets = sorted(set(table.values()))
        if kind is None:
            if len(targets) == 1:
                return targets[0]
            raise ValueError(
                f"loss {name!r} has several forms ({', '.join(targets)}); pass kind= one of {sorted(table)}"
            )
        if kind not in table:
            raise ValueError(f"loss {name!r} is not available for kind={kind!r}; kinds: {sorted(table)}")
        return table[kind]
    if name not in _REGISTRY:
        raise ValueError(f"unknown loss {name!r}{did_you_mean(name, _all_names())}; available: {_all_names()}")
    spec = _REGISTRY[name]
    if kind is not None and kind not in spec.kinds:
        raise ValueError(f"loss {name!r} does not apply to kind={kind!r}; it supports {list(spec.kinds)}")
    return name


def get(name: str, *, kind: str | None = None, **params) -> nn.Module:
    """Build the loss module ``name`` with ``params``.

    Example:
        >>> get("focal", kind="multiclass", gamma=1.0)
        SoftmaxFocalLoss(gamma=1.0, label_smoothing=0.0, reduction='mean')
    """
    canonical = resolve(name, kind=kind)
    spec = _REGISTRY[canonical]
    kwargs = dict(spec.defaults)
    kwargs.update(params)
    sig = inspect.signature(spec.factory)
    accepted = [p for p in sig.parameters if p != "self"]
    if kind is not None and "kind" in accepted and "kind" not in kwargs:
        kwargs["kind"] = kind
    unknown = [k for k in kwargs if k not in accepted]
    if unknown:
        raise TypeError(
            f"loss {canonical!r} got unknown parameter {unknown[0]!r}{did_you_mean(unknown[0], accepted)}; "
            f"valid: {accepted}"
        )
    missing = [p.name for p in sig.parameters.values()
               if p.default is inspect.Parameter.empty and p.kind == p.KEYWORD_ONLY and p.name not in kwargs]
    if missing:
        raise TypeError(f"loss {canonical!r} needs parameter(s) {missing}")
    return spec.factory(**kwargs)


def available(kind: str | None = None, *, aliases: bool = True) -> list[str]:
    """Loss names usable for ``kind`` (all when ``None``): canonical names plus, unless
    ``aliases=False``, the aliases that resolve for that kind (``focal``, ``ce``, ...)."""
    if kind is not None and kind not in TASK_KINDS:
        raise ValueError(f"kind={kind!r} is not one of {list(TASK_KINDS)}{did_you_mean(str(kind), TASK_KINDS)}")
    names = [n for n, s in _REGISTRY.items() if kind is None or kind in s.kinds]
    if aliases:
        names += [a for a, t in _ALIASES.items() if (kind is None and t) or kind in t]
    return sorted(names)


def spec(name: str, *, kind: str | None = None) -> LossSpec:
    """The :class:`LossSpec` (factory, kinds, summary) behind ``name``."""
    return _REGISTRY[resolve(name, kind=kind)]


ALL = TASK_KINDS
register("cross_entropy", CrossEntropyLoss, kinds=SOFTMAX_KINDS, summary="softmax cross-entropy (class weights)",
         class_weights=("weight",))
register("bce", BinaryCrossEntropyLoss, kinds=SIGMOID_KINDS, summary="binary cross-entropy on logits",
         class_weights=("pos_weight", "weight"))
register("smoothed_cross_entropy", CrossEntropyLoss, kinds=SOFTMAX_KINDS, summary="CE with label smoothing 0.1",
         defaults={"label_smoothing": 0.1}, class_weights=("weight",))
register("smoothed_bce", BinaryCrossEntropyLoss, kinds=SIGMOID_KINDS, summary="BCE with label smoothing 0.1",
         defaults={"label_smoothing": 0.1}, class_weights=("pos_weight", "weight"))
register("softmax_focal", SoftmaxFocalLoss, kinds=SOFTMAX_KINDS, summary="focal loss, softmax form",
         class_weights=("alpha",))
register("sigmoid_focal", SigmoidFocalLoss, kinds=SIGMOID_KINDS, summary="focal loss, sigmoid form",
         class_weights=("alpha", "pos_weight", "weight"))
register("supcon", SupConLoss, kinds=ALL, summary="supervised contrastive loss on embeddings")
register("hierarchy", HierarchyPenalty, kinds=("multilabel",), summary="child scored above parent penalty")
register("dice", SoftDiceLoss, kinds=ALL, summary="soft Dice loss")
# alpha/beta weigh false positives/negatives (scalars), not classes
register("tversky", TverskyLoss, kinds=ALL, summary="Tversky loss (FP/FN trade-off)")
register("asymmetric", AsymmetricLoss, kinds=SIGMOID_KINDS, summary="asymmetric loss (Ridnik 2021)")
register("logit_adjusted", LogitAdjustedLoss, kinds=SOFTMAX_KINDS, summary="logit-adjusted CE (Menon 2021)",
         class_weights=("weight",))
register("distribution_balanced", DistributionBalancedLoss, kinds=("multilabel",),
         summary="distribution-balanced loss (Wu 2020)")
register("ldam", LDAMLoss, kinds=SOFTMAX_KINDS, summary="LDAM margin loss (Cao 2019)", class_weights=("weight",))
register("weighted", WeightedLoss, kinds=ALL, summary="BCE/CE x length weight x confidence weight",
         class_weights=("weight", "pos_weight"))
register("sentiment_focal", SentimentFocalLoss, kinds=ALL, summary="focal gamma=0.1 + smoothing 0.05 + weights",
         class_weights=("alpha",))

register_alias("focal", softmax="softmax_focal", sigmoid="sigmoid_focal")
register_alias("ce", softmax="cross_entropy", sigmoid="bce")
register_alias("label_smoothing", softmax="smoothed_cross_entropy", sigmoid="smoothed_bce")
register_alias("asl", sigmoid="asymmetric")
register_alias("db", sigmoid="distribution_balanced")
register_alias("la", softmax="logit_adjusted")
register_alias("supervised_contrastive", softmax="supcon", sigmoid="supcon")
