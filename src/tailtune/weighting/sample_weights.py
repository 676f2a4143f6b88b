"""Per-example weights: text length, model confidence, and their batch-normalised product.

These are the two per-sample factors practitioners multiply into BCE for review sentiment:

* length weight ``sqrt(L_i) / sqrt(max_j L_j)`` clamped to ``[min_weight, 1]`` (short, nearly empty
  texts count less);
* confidence weight of the current prediction, always computed without gradient:

  - sigmoid form (``kind="binary"`` or ``"multilabel"``): ``|sigmoid(z) - 0.5| * 2`` in ``[0, 1]``
    (multilabel: averaged over labels, one value per example);
  - softmax form (``kind="multiclass"``/``"aspects"``), the natural generalisation:
    ``(p_max - 1/C) / (1 - 1/C)`` in ``[0, 1]``: 0 for the uniform distribution, 1 for a one-hot
    prediction. For ``C = 2`` it equals the sigmoid form on the logit difference.

* :func:`combine_sample_weights` multiplies the factors and divides by the batch mean (``+ eps``),
  so the weights average 1 and the loss scale is unchanged.
"""

from __future__ import annotations

import math

import torch

from tailtune.data.kinds import TASK_KINDS, known_task_kind
from tailtune.weighting.schemes import DEFAULT_MIN_WEIGHT

#: the kind names, sigmoid forms first (for messages)
_KIND_NAMES = [k.name for k in TASK_KINDS.values() if k.sigmoid] + [k.name for k in TASK_KINDS.values() if k.softmax]


def length_weights(lengths, *, min_weight: float = DEFAULT_MIN_WEIGHT) -> torch.Tensor:
    """``clamp(sqrt(L) / sqrt(max L in batch), min_weight, 1)``.

    Args:
        lengths: ``(N,)`` token counts (e.g. ``attention_mask.sum(-1)``), non-negative.
        min_weight: floor in ``[0, 1]``.

    Shape:
        ``(N,)`` -> ``(N,)`` float32 (no gradient).

    Example:
        >>> length_weights(torch.tensor([100, 25, 1]))
        tensor([1.0000, 0.5000, 0.1000])
    """
    if not isinstance(min_weight, (int, float)) or not (0.0 <= float(min_weight) <= 1.0):
        raise ValueError(f"min_weight={min_weight!r} must be a number in [0, 1]")
    lengths = torch.as_tensor(lengths)
    if lengths.ndim != 1:
        raise ValueError(f"lengths must have shape (N,), got {tuple(lengths.shape)}")
    x = lengths.detach().to(torch.float32)
    if x.numel() == 0:
        return x
    x = x.clamp_min(0.0).sqrt()
    return (x / x.max().clamp_min(1.0)).clamp(min=float(min_weight), max=1.0)


def confidence_weights(logits: torch.Tensor, *, kind: str | None = None) -> torch.Tensor:
    """Confidence of the current prediction in ``[0, 1]``, one value per example, no gradient.

    Args:
        logits: ``(N,)`` binary logits, ``(N, C)`` multilabel/multiclass logits.
        kind: ``"binary"``/``"multilabel"`` (sigmoid form) or ``"multiclass"``/``"aspects"``
            (softmax form over the last dimension). May be omitted for 1-D logits only.

    Shape:
        ``(N,)`` or ``(N, C)`` -> ``(N,)`` float32.

    Example:
        >>> confidence_weights(torch.tensor([0.0, 100.0]))
        tensor([0., 1.])
        >>> confidence_weights(torch.tensor([[0.0, 0.0], [9.0, -9.0]]), kind="multiclass")
        tensor([0., 1.])
    """
    z = logits.detach().to(torch.float32)
    if kind is None:
        if z.ndim != 1:
            raise ValueError(
                f"kind is required for logits of shape {tuple(z.shape)}; pass one of "
                f"{_KIND_NAMES}"
            )
        kind = "binary"
    info = known_task_kind(kind)
    if info is not None and info.sigmoid:
        conf = (torch.sigmoid(z) - 0.5).abs() * 2.0
        if conf.ndim == 2:
            conf = conf.mean(dim=1)
        elif conf.ndim != 1:
            raise ValueError(f"logits must be (N,) or (N, C), got {tuple(z.shape)}")
        return conf
    if info is not None and info.softmax:
        if z.ndim != 2 or z.shape[1] < 2:
            raise ValueError(f"softmax confidence needs logits (N, C) with C >= 2, got {tuple(z.shape)}")
        c = z.shape[1]
        p_max = torch.softmax(z, dim=1).amax(dim=1)
        return ((p_max - 1.0 / c) / (1.0 - 1.0 / c)).clamp(0.0, 1.0)
    raise ValueError(f"kind={kind!r} is not one of {_KIND_NAMES}")


def combine_sample_weights(*weights: torch.Tensor | None, eps: float = 1e-6) -> torch.Tensor | None:
    """Product of per-example weights divided by its batch mean (``+ eps``); ``None`` entries skip.

    Returns ``None`` when every argument is ``None``.

    Shape:
        each ``(N,)`` -> ``(N,)``.

    Example:
        >>> combine_sample_weights(torch.tensor([1.0, 0.5]), torch.tensor([1.0, 1.0]))
        tensor([1.3333, 0.6667])
    """
    if not isinstance(eps, (int, float)) or not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps={eps!r} must be a finite number >= 0")
    present = [torch.as_tensor(w) for w in weights if w is not None]
    if not present:
        return None
    shape = present[0].shape
    if len(shape) != 1:
        raise ValueError(f"sample weights must have shape (N,), got {tuple(shape)}")
    out = present[0].detach().to(torch.float32)
    for w in present[1:]:
        if w.shape != shape:
            raise ValueError(f"sample weights disagree in shape: {tuple(shape)} vs {tuple(w.shape)}")
        out = out * w.detach().to(device=out.device, dtype=torch.float32)
    if out.numel() == 0:
        return out
    return out / (out.mean() + eps)
