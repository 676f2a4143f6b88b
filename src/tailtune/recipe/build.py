"""Turn a :class:`~tailtune.recipe.resolve.ResolvedRecipe` into the objects training uses: the
:class:`~tailtune.losses.CompositeLoss`, the per-example weight function and the class-balanced
sampler's weights. Training (:mod:`tailtune.training`) and screening (:mod:`tailtune.experiments`)
call these, so both train exactly what was resolved (and what ``resolved.json`` records).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from tailtune import weighting
from tailtune.data.kinds import task_kind
from tailtune.errors import RecipeError
from tailtune.losses import CompositeLoss
from tailtune.losses import get as get_loss
from tailtune.recipe.resolve import ResolvedLossPart, ResolvedRecipe

__all__ = ["build_loss", "build_loss_part", "sample_weight_fn", "sampler_weights"]


def build_loss_part(part: ResolvedLossPart, kind: str | None) -> torch.nn.Module:
    """The loss module of one resolved part (its class weights as a float32 tensor of its own).

    Raises:
        RecipeError: the loss refuses an argument (named, with the reason).
    """
    args = dict(part.args)
    kind = args.pop("kind", kind)  # the registry passes the task kind to the losses that take one
    if part.class_weight_arg is not None:
        args[part.class_weight_arg] = torch.tensor(args[part.class_weight_arg], dtype=torch.float32)
    try:
        return get_loss(part.loss, kind=kind, **args)
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: int(inf), e.g. ignore_index: .inf
        raise RecipeError(f"loss.{part.name} ({part.type}): {exc}") from exc


def build_loss(resolved: ResolvedRecipe) -> CompositeLoss:
    """The recipe's :class:`~tailtune.losses.CompositeLoss` of its named, weighted parts."""
    parts = {name: (part.weight, build_loss_part(part, resolved.kind)) for name, part in resolved.loss.items()}
    try:
        return CompositeLoss(parts, auto_balance=resolved.loss_balance == "uncertainty")
    except (TypeError, ValueError) as exc:
        raise RecipeError(f"loss: {exc}") from exc


def sample_weight_fn(resolved: ResolvedRecipe) -> Callable | None:
    """``fn(*, logits, attention_mask) -> (N,) weights`` for ``sample_weighting``, or ``None``.

    Length weights need the attention mask (a head trained on cached embeddings has none);
    confidence weights are per example (aspects: per cell, averaged over the example's aspects).
    The factors are multiplied and normalised to mean 1 per batch.
    """
    sw = resolved.sample_weighting
    if sw is None:
        return None
    info = task_kind(resolved.kind)
    num_aspects = len(resolved.task.labels) if info.per_aspect else 0

    def fn(*, logits, attention_mask):
        weights = []
        if sw.length and attention_mask is not None:
            weights.append(weighting.length_weights(attention_mask.sum(dim=1), min_weight=sw.min_weight))
        if sw.confidence:
            if info.per_aspect:
                n = logits.shape[0]
                cell = weighting.confidence_weights(logits.reshape(n * num_aspects, -1), kind=info.name)
                weights.append(cell.reshape(n, -1).mean(dim=1))
            else:
                z = logits.reshape(-1) if info.is_binary else logits
                weights.append(weighting.confidence_weights(z, kind=info.name))
        if not weights:
            return None
        out = weighting.combine_sample_weights(*weights)
        return torch.as_tensor(out, device=logits.device, dtype=logits.dtype)

    return fn


def sampler_weights(resolved: ResolvedRecipe, labels: Any) -> np.ndarray | None:
    """Per-example drawing weights of ``sampler: class_balanced`` (``None`` for ``sampler: none``).

    Each class is drawn about equally often: single-label kinds 1 / count(class); multilabel the
    largest 1 / count over the example's labels; aspects the largest 1 / count(aspect, polarity) over
    the example's non-absent cells. Examples with no label (no non-absent cell) share the weight of
    their group: 1 / (number of such examples).
    """
    if resolved.sampler != "class_balanced":
        return None
    info = task_kind(resolved.kind)
    y = np.asarray(labels)
    if info.single_label:
        counts = np.bincount(y.astype(int))
        return 1.0 / counts[y.astype(int)]
    if info.multi_hot:
        y = y.reshape(len(y), -1)
        counts = y.sum(axis=0)
        inv = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        w = (y * inv).max(axis=1)
        empty = y.sum(axis=1) == 0
        if empty.any():
            w[empty] = 1.0 / empty.sum()
        return w
    absent = len(resolved.task.polarities)
    w = np.zeros(len(y))
    for a in range(y.shape[1]):
        col = y[:, a].astype(int)
        counts = np.bincount(col, minlength=absent + 1)
        cell = np.where(col != absent, 1.0 / np.maximum(counts[col], 1), 0.0)
        w = np.maximum(w, cell)
    empty = w == 0
    if empty.any():
        w[empty] = 1.0 / empty.sum()
    return w
