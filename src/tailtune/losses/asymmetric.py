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

from tailtune.losses import _fused
from tailtune.losses._base import (
    LossModule,
    check_elementwise,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
)
from tailtune.losses._fused import elementwise_denominator, reduce_rows, row_scale


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
    return _fused.run(asymmetric_kernel, x, (y, sw), (gp, gn, m), reduction=reduction, focus_pos=gp > 0,
                      focus_neg=gn > 0, clip=m > 0)


def asymmetric_kernel(x, y, sw, scalars, *, reduction: str, focus_pos: bool, focus_neg: bool, clip: bool,
                      need_grad: bool):
    """ASL elements, rows summed over labels, the reduction contract; with ``need_grad`` also the
    closed-form derivative (``s = sigmoid(x)``, ``sn = 1 - s``, ``q = min(sn + m, 1) = 1 - p_m``)::

        d pos / dx = -sn^g+ (sn + g+ s softplus(-x))
        d neg / dx = p_m^g- s sn (1/q + g- (-log q) / p_m)   where p > m, else 0
                   = p^g- (s + g- sn softplus(x))            without clip

    (see :mod:`tailtune.losses._fused` for how it runs)."""
    gp, gn, m = scalars
    tiny = torch.finfo(x.dtype).tiny
    s, sn = torch.sigmoid(x), torch.sigmoid(-x)  # p, 1 - p (accurate for large logits)
    pos = F.softplus(-x)  # -log p
    pos_l = pos
    if focus_pos:
        w_pos = sn.clamp_min(tiny).pow(gp)
        pos_l = pos * w_pos
    if clip:
        q = (sn + m).clamp(max=1.0)
        neg = -torch.log(q)  # -log(1 - p_m)
        p_m = (s - m).clamp(min=0.0)
    else:
        neg = F.softplus(x)  # -log(1 - p)
        p_m = s
    neg_l = neg
    if focus_neg:
        p_mc = p_m.clamp_min(tiny)
        w_neg = p_mc.pow(gn)
        neg_l = neg * w_neg
    el = torch.lerp(neg_l, pos_l, y)  # y * pos + (1 - y) * neg
    rows = el.sum(dim=1) if x.ndim == 2 else el
    out, scale = reduce_rows(rows, sw, elementwise_denominator(x, sw, reduction), reduction)
    if not need_grad:
        return out, None
    # only the fused path (no autograd recording) gets here: in-place operations are safe
    d_pos = torch.mul(s, pos).mul_(gp).add_(sn).mul_(w_pos).neg_() if focus_pos else -sn
    if clip:
        d_neg = torch.mul(s, sn).div_(q)
        if focus_neg:
            d_neg = d_neg.add_(torch.mul(s, sn).mul_(neg).div_(p_mc).mul_(gn)).mul_(w_neg)
        d_neg = torch.where(s > m, d_neg, 0.0)
    else:
        d_neg = torch.mul(sn, neg).mul_(gn).add_(s).mul_(w_neg) if focus_neg else s
    grad = torch.lerp(d_neg, d_pos, y)
    return out, grad.mul_(row_scale(scale, x))


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
