"""Asymmetric loss (ASL, Ridnik et al. 2021) for multi-label and binary classification.

Element-wise with ``p = sigmoid(z)`` and the shifted probability ``p_m = max(p - clip, 0)``::

    ASL = -y (1 - p)^gamma_pos log(p)  -  (1 - y) p_m^gamma_neg log(1 - p_m)

Easy negatives are down-weighted (``gamma_neg > gamma_pos``) and very easy negatives
(``p < clip``) are discarded entirely. ``"none"`` sums over labels, ``"mean"`` averages over all
``N*C`` elements (the paper's implementation returns the sum).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailtune.losses._base import (
    LossModule,
    check_elementwise,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
    reduce_elementwise,
)


def asymmetric_loss(logits: torch.Tensor, target: torch.Tensor, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0,
                    clip: float = 0.05, reduction: str = "mean",
                    sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Asymmetric loss.

    Args:
        logits, target: ``(N,)`` or ``(N, C)``, targets in ``[0, 1]``.
        gamma_pos, gamma_neg: focusing parameters ``>= 0`` for positives / negatives.
        clip: probability margin ``m`` in ``[0, 1)`` for negatives.

    Shape:
        ``(N,)``/``(N, C)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.randn(4, 5); y = (torch.rand(4, 5) > 0.8).float()
        >>> asymmetric_loss(z, y).ndim
        0

    References:
        Ridnik, Ben-Baruch, Zamir, Noy, Friedman, Protter, Zelnik-Manor. "Asymmetric Loss For
        Multi-Label Classification", ICCV 2021.

    Relations:
        ``gamma_pos = gamma_neg = 0, clip = 0`` is BCE; ``gamma_pos = gamma_neg = g, clip = 0`` is
        sigmoid focal loss with ``gamma = g`` (hard labels).
    """
    check_elementwise(logits, target)
    check_reduction(reduction)
    gp = check_number(gamma_pos, name="gamma_pos", low=0.0)
    gn = check_number(gamma_neg, name="gamma_neg", low=0.0)
    m = check_number(clip, name="clip", low=0.0, high=1.0, high_open=True)
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    y = target.to(x.dtype)
    tiny = torch.finfo(x.dtype).tiny
    sn = torch.sigmoid(-x)  # 1 - p, accurate for large logits
    pos = F.softplus(-x)  # -log p
    if gp > 0:
        pos = pos * sn.clamp_min(tiny).pow(gp)
    if m > 0:
        neg = -torch.log((sn + m).clamp_(max=1.0))  # -log(1 - p_m)
        p_m = (torch.sigmoid(x) - m).clamp_(min=0.0)
    else:
        neg = F.softplus(x)  # -log(1 - p)
        p_m = torch.sigmoid(x)
    if gn > 0:
        neg = neg * p_m.clamp_min(tiny).pow(gn)
    loss = torch.lerp(neg, pos, y)  # y * pos + (1 - y) * neg
    return reduce_elementwise(loss, sw, reduction)


class AsymmetricLoss(LossModule):
    """Module form of :func:`asymmetric_loss`."""

    def __init__(self, *, gamma_pos: float = 0.0, gamma_neg: float = 4.0, clip: float = 0.05,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.gamma_pos = check_number(gamma_pos, name="gamma_pos", low=0.0)
        self.gamma_neg = check_number(gamma_neg, name="gamma_neg", low=0.0)
        self.clip = check_number(clip, name="clip", low=0.0, high=1.0, high_open=True)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return asymmetric_loss(logits, target, gamma_pos=self.gamma_pos, gamma_neg=self.gamma_neg, clip=self.clip,
                               reduction=self._reduction(reduction), sample_weight=sample_weight)
