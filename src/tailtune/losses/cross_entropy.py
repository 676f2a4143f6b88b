"""Weighted cross-entropy and binary cross-entropy under the tailtune reduction contract.

``cross_entropy`` is ``F.cross_entropy`` plus per-example ``sample_weight`` and an all-ignored
batch that yields 0 instead of NaN; ``binary_cross_entropy`` is
``F.binary_cross_entropy_with_logits`` plus binary label smoothing and ``sample_weight``.
Class-balanced cross-entropy (Cui et al. 2019) is cross-entropy with
``weight=class_weights(counts, scheme="effective_number")``: see :meth:`CrossEntropyLoss.from_counts`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailtune.losses._base import (
    LossModule,
    as_weight_tensor,
    check_class_logits,
    check_elementwise,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
    reduce,
    reduce_elementwise,
)
from tailtune.weighting.schemes import DEFAULT_BETA


def cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight=None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy ``-w_t log softmax(z)_t`` (with label smoothing) and the reduction contract.

    Shape:
        logits ``(N, C)``, target ``(N,)`` int -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.randn(5, 3); y = torch.tensor([0, 1, 2, -100, 1]); w = torch.tensor([1.0, 2.0, 3.0])
        >>> torch.allclose(cross_entropy(z, y, weight=w), F.cross_entropy(z, y, weight=w))
        True

    Relations:
        ``softmax_focal_loss(gamma=0, alpha=weight)``; ``logit_adjusted_cross_entropy(tau=0)``.
    """
    check_class_logits(logits, target)
    check_reduction(reduction)
    eps = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0)
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    w = None if weight is None else torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    if w is not None and w.shape != (x.shape[1],):
        raise ValueError(f"weight must have shape ({x.shape[1]},), got {tuple(w.shape)}")
    loss = F.cross_entropy(x, target, weight=w, ignore_index=ignore_index, label_smoothing=eps, reduction="none")
    if reduction == "none" and sw is None:
        return loss
    valid = target != ignore_index
    if w is not None:
        denom_i = torch.where(valid, w[torch.where(valid, target, 0)], 0.0)
    else:
        denom_i = valid.to(x.dtype)
    if sw is not None:
        loss = loss * sw
        denom_i = denom_i * sw
    return reduce(loss, denom_i.sum() if reduction == "mean" else None, reduction)


def binary_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    weight=None,
    pos_weight=None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary / multi-label cross-entropy on logits with ``y' = y(1-eps) + (1-y)eps`` smoothing.

    Shape:
        ``(N,)`` or ``(N, C)`` -> ``(N,)`` (sum over labels) for ``"none"`` else ``()``;
        ``"mean"`` is the mean over all elements.

    Example:
        >>> z = torch.randn(4, 3); y = (torch.rand(4, 3) > 0.5).float()
        >>> torch.allclose(binary_cross_entropy(z, y), F.binary_cross_entropy_with_logits(z, y))
        True

    Relations:
        ``sigmoid_focal_loss(gamma=0, alpha=None)``.
    """
    check_elementwise(logits, target)
    check_reduction(reduction)
    eps = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0, high_open=True)
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    y = target.to(x.dtype)
    if eps > 0:
        y = y * (1.0 - eps) + (1.0 - y) * eps
    w = None if weight is None else torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    loss = F.binary_cross_entropy_with_logits(x, y, weight=w, pos_weight=pw, reduction="none")
    return reduce_elementwise(loss, sw, reduction)


class CrossEntropyLoss(LossModule):
    """Module form of :func:`cross_entropy`; ``weight`` is a registered buffer."""

    def __init__(self, *, weight=None, label_smoothing: float = 0.0, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("weight", as_weight_tensor(weight, name="weight"))
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index={ignore_index!r} must be an int")
        self.ignore_index = ignore_index

    @classmethod
    def from_counts(cls, counts, *, scheme: str = "effective_number", beta: float = DEFAULT_BETA, cap=None,
                    **kwargs) -> CrossEntropyLoss:
        """Class-balanced cross-entropy: ``weight = tailtune.weighting.class_weights(counts, ...)``."""
        from tailtune.weighting import class_weights

        return cls(weight=class_weights(counts, scheme=scheme, beta=beta, cap=cap), **kwargs)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return cross_entropy(logits, target, weight=self.weight, label_smoothing=self.label_smoothing,
                             ignore_index=self.ignore_index, reduction=self._reduction(reduction),
                             sample_weight=sample_weight)


class BinaryCrossEntropyLoss(LossModule):
    """Module form of :func:`binary_cross_entropy`; ``weight`` and ``pos_weight`` are buffers."""

    def __init__(self, *, weight=None, pos_weight=None, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        if isinstance(pos_weight, (int, float)) and not isinstance(pos_weight, bool):
            pos_weight = [pos_weight]
        self.register_buffer("weight", as_weight_tensor(weight, name="weight"))
        self.register_buffer("pos_weight", as_weight_tensor(pos_weight, name="pos_weight"))
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0,
                                            high_open=True)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return binary_cross_entropy(logits, target, weight=self.weight, pos_weight=self.pos_weight,
                                    label_smoothing=self.label_smoothing, reduction=self._reduction(reduction),
                                    sample_weight=sample_weight)
