"""Shared plumbing of every loss: the reduction contract, argument checks, the module base class.

Reduction contract (every loss in :mod:`tailtune.losses`):

* ``"none"``: one value per example, shape ``(N,)``. Ignored examples are 0. For element-wise
  multi-label losses (target ``(N, C)``) the value of an example is the **sum over its labels**,
  so ``"sum" == loss("none").sum()`` always holds.
* ``"sum"``: the sum of the ``"none"`` values.
* ``"mean"``: the sum divided by the summed weight of the counted targets:

  - softmax losses (integer targets with ``ignore_index``): ``sum / sum_i s_i * w[t_i]`` over
    non-ignored ``i``, where ``w`` is the class weight (``alpha``/``weight``, 1 when absent) and
    ``s`` the sample weight (1 when absent): exactly ``F.cross_entropy(reduction="mean")``, whose
    denominator is the summed class weight of the non-ignored targets;
  - element-wise sigmoid losses (``(N,)`` or ``(N, C)`` float targets): ``sum / (C * sum_i s_i)``,
    i.e. the mean over all ``N*C`` elements like
    ``F.binary_cross_entropy_with_logits(reduction="mean")`` (whose per-label ``weight`` and
    ``pos_weight`` are *not* in the denominator);
  - anchor/pair losses (supervised contrastive, hierarchy penalty) document their own count.

  Sample weights therefore give a *weighted mean* under ``"mean"`` (rescaling all of them by a
  constant changes nothing) and scale the contribution of each example under ``"sum"``/``"none"``.
  A batch whose denominator is 0 (every target ignored) gives 0 with a gradient, never NaN
  (``F.cross_entropy`` returns NaN there).
* anything else raises ``ValueError``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from tailtune.data.kinds import KINDS
from tailtune.errors import did_you_mean
from tailtune.utils.vectors import as_class_vector

REDUCTIONS: tuple[str, ...] = ("none", "mean", "sum")
TASK_KINDS: tuple[str, ...] = KINDS
_LOW_PRECISION = (torch.float16, torch.bfloat16)


def check_reduction(reduction: str) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction={reduction!r} is not one of {list(REDUCTIONS)}{did_you_mean(str(reduction), REDUCTIONS)}"
        )
    return reduction


def check_kind(kind: str | None, *, allowed: Sequence[str] = TASK_KINDS, optional: bool = False) -> str | None:
    if kind is None and optional:
        return None
    if kind not in allowed:
        raise ValueError(f"kind={kind!r} is not one of {list(allowed)}{did_you_mean(str(kind), allowed)}")
    return kind


def check_number(value, *, name: str, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """A finite real number in the given interval, else ValueError/TypeError naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name}={value!r} must be a number")
    v = float(value)
    ok = math.isfinite(v)
    if ok and low is not None:
        ok = v > low if low_open else v >= low
    if ok and high is not None:
        ok = v < high if high_open else v <= high
    if not ok:
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        raise ValueError(f"{name}={value!r} must be a finite number in {interval}")
    return v


def as_weight_tensor(value, *, name: str, nonnegative: bool = True,
                     dtype: torch.dtype = torch.float32) -> torch.Tensor | None:
    """None, a sequence or a tensor -> 1-D ``dtype`` (float32) tensor (detached), validated by
    :func:`tailtune.utils.vectors.as_class_vector`."""
    if value is None:
        return None
    return as_class_vector(value, name=name, dtype=dtype, nonnegative=nonnegative)


def compute_dtype(x: torch.Tensor) -> torch.Tensor:
    """Half-precision inputs are computed in float32 (the result is float32), others as given."""
    return x.float() if x.dtype in _LOW_PRECISION else x


def check_sample_weight(sample_weight, n: int, ref: torch.Tensor) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    sw = torch.as_tensor(sample_weight, device=ref.device)
    if sw.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},), got {tuple(sw.shape)}")
    return sw.to(ref.dtype)


def check_class_logits(logits: torch.Tensor, target: torch.Tensor, name: str = "logits") -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("logits and target must be tensors")
    if logits.ndim != 2:
        raise ValueError(f"{name} must have shape (N, C), got {tuple(logits.shape)}")
    if target.ndim != 1 or target.shape[0] != logits.shape[0]:
        raise ValueError(f"target must have shape ({logits.shape[0]},) of class indices, got {tuple(target.shape)}")
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer class indices, got dtype {target.dtype}")


def check_elementwise(logits: torch.Tensor, target: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("logits and target must be tensors")
    if logits.ndim not in (1, 2):
        raise ValueError(f"logits must have shape (N,) or (N, C), got {tuple(logits.shape)}")
    if target.shape != logits.shape:
        raise ValueError(f"target must have the shape of logits {tuple(logits.shape)}, got {tuple(target.shape)}")


def reduce(per_example: torch.Tensor, denominator, reduction: str) -> torch.Tensor:
    """Apply the reduction contract; ``denominator`` is a tensor or a number (for ``"mean"``)."""
    if reduction == "none":
        return per_example
    total = per_example.sum()
    if reduction == "sum":
        return total
    if reduction == "mean":
        # a zero denominator means every term is weighted 0: divide by 1 (0, with a finite gradient
        # under any upstream scale such as fp16 loss scaling), not by a tiny number (1/tiny overflows)
        if isinstance(denominator, torch.Tensor):
            d = denominator.to(total.dtype)
            return total / torch.where(d > 0, d, torch.ones_like(d))
        d = float(denominator)
        return total / (d if d > 0 else 1.0)
    raise ValueError(f"reduction={reduction!r} is not one of {list(REDUCTIONS)}")


def reduce_elementwise(elements: torch.Tensor, sample_weight: torch.Tensor | None, reduction: str) -> torch.Tensor:
    """Element losses ``(N,)`` or ``(N, C)`` -> contract (per example: sum over labels)."""
    per_example = elements.sum(dim=1) if elements.ndim == 2 else elements
    labels = elements.shape[1] if elements.ndim == 2 else 1
    if sample_weight is not None:
        per_example = per_example * sample_weight
        denom = sample_weight.sum() * labels
    else:
        denom = elements.numel()
    return reduce(per_example, denom, reduction)


class LossModule(nn.Module):
    """Base of every registered loss module.

    Class attributes read by the training layer and :class:`CompositeLoss`:
    ``uses_embeddings`` (consumes ``embeddings``, ignores ``logits``), ``uses_lengths`` (accepts
    ``lengths=``), ``needs_counts`` (constructor takes class ``counts=``), ``count_unit``
    (``"targets"`` when ``reduction="sum"`` divided by the Trainer's ``num_items_in_batch`` is the
    exact mean; ``"anchors"``/``"pairs"`` otherwise).
    """

    uses_embeddings: bool = False
    uses_lengths: bool = False
    needs_counts: bool = False
    count_unit: str = "targets"

    def __init__(self, *, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = check_reduction(reduction)

    def _reduction(self, override: str | None) -> str:
        return self.reduction if override is None else check_reduction(override)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"
