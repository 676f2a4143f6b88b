"""Soft Dice and Tversky losses (per example) for binary, multi-label and multiclass tasks.

Sigmoid form (``kind="binary"``/``"multilabel"``), element-wise with ``p = sigmoid(z)``::

    Dice    = 1 - (2 p y + s) / (p^k + y^k + s)                  (k = 2 if squared else 1)
    Tversky = 1 - (p y + s) / (p y + alpha p (1-y) + beta (1-p) y + s)

(``"none"`` sums over labels, ``"mean"`` is the mean over the ``N*C`` elements, as for BCE.)

Softmax form (``kind="multiclass"``/``"aspects"``), per example over the C classes with
``p = softmax(z)`` and the one-hot target ``y`` (``TP = p_t``, ``FP = FN = 1 - p_t``)::

    Dice    = 1 - (2 p_t + s) / (sum_c p_c^k + 1 + s)
    Tversky = 1 - (p_t + s) / (p_t + (alpha + beta)(1 - p_t) + s)

(``ignore_index`` targets are skipped; ``"mean"`` divides by the number of non-ignored examples,
weighted by ``sample_weight``.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tailtune.data.kinds import task_kind
from tailtune.losses._base import (
    LossModule,
    check_class_logits,
    check_elementwise,
    check_kind,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
    reduce,
    reduce_elementwise,
)


def _softmax_parts(logits, target, ignore_index):
    check_class_logits(logits, target)
    x = compute_dtype(logits)
    p = torch.softmax(x, dim=1)
    valid = target != ignore_index
    t = torch.where(valid, target, 0)
    p_t = p.gather(1, t.unsqueeze(1)).squeeze(1)
    return x, p, p_t, valid


def _finish_softmax(loss, valid, sw, reduction):
    loss = torch.where(valid, loss, 0.0)
    denom = valid.to(loss.dtype)
    if sw is not None:
        loss = loss * sw
        denom = denom * sw
    if reduction == "none":
        return loss
    return reduce(loss, denom.sum() if reduction == "mean" else None, reduction)


def soft_dice_loss(logits: torch.Tensor, target: torch.Tensor, *, kind: str, smooth: float = 1.0,
                   squared: bool = False, ignore_index: int = -100, reduction: str = "mean",
                   sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Soft Dice loss (see module docstring for both forms).

    Shape:
        sigmoid form ``(N,)``/``(N, C)`` float targets; softmax form ``(N, C)`` logits and ``(N,)``
        int targets -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.tensor([10.0, -10.0]); y = torch.tensor([1.0, 0.0])
        >>> soft_dice_loss(z, y, kind="binary") < 1e-3
        tensor(True)

    References:
        Milletari, Navab, Ahmadi, "V-Net", 3DV 2016; Li et al., "Dice Loss for Data-imbalanced NLP
        Tasks", ACL 2020.

    Relations:
        ``tversky_loss(alpha=beta=0.5, smooth=s)`` equals ``soft_dice_loss(smooth=2s, squared=False)``.
    """
    check_kind(kind)
    check_reduction(reduction)
    s = check_number(smooth, name="smooth", low=0.0)
    k = 2 if squared else 1
    if task_kind(kind).sigmoid:
        check_elementwise(logits, target)
        x = compute_dtype(logits)
        sw = check_sample_weight(sample_weight, x.shape[0], x)
        p = torch.sigmoid(x)
        y = target.to(x.dtype)
        loss = 1.0 - (2.0 * p * y + s) / (p.pow(k) + y.pow(k) + s).clamp_min(torch.finfo(x.dtype).tiny)
        return reduce_elementwise(loss, sw, reduction)
    x, p, p_t, valid = _softmax_parts(logits, target, ignore_index)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    denom = (p.pow(k).sum(dim=1) if squared else torch.ones_like(p_t)) + 1.0 + s
    loss = 1.0 - (2.0 * p_t + s) / denom
    return _finish_softmax(loss, valid, sw, reduction)


def tversky_loss(logits: torch.Tensor, target: torch.Tensor, *, kind: str, alpha: float = 0.5, beta: float = 0.5,
                 smooth: float = 1.0, ignore_index: int = -100, reduction: str = "mean",
                 sample_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Tversky loss: ``alpha`` weights false positives, ``beta`` false negatives.

    ``beta > alpha`` favours recall (the usual choice for rare positives, e.g. 0.3/0.7).

    Shape:
        as :func:`soft_dice_loss`.

    Example:
        >>> z = torch.randn(4, 3); y = (torch.rand(4, 3) > 0.5).float()
        >>> tversky_loss(z, y, kind="multilabel", alpha=0.3, beta=0.7).ndim
        0

    References:
        Salehi, Erdogmus, Gholipour, "Tversky loss function for image segmentation using 3D fully
        convolutional deep networks", MLMI 2017.

    Relations:
        ``alpha = beta = 0.5`` is soft Dice (with ``smooth`` doubled); ``alpha = beta = 1`` is the
        Tanimoto/Jaccard loss.
    """
    check_kind(kind)
    check_reduction(reduction)
    a = check_number(alpha, name="alpha", low=0.0)
    b = check_number(beta, name="beta", low=0.0)
    s = check_number(smooth, name="smooth", low=0.0)
    if a + b == 0 and s == 0:
        raise ValueError("alpha + beta and smooth cannot all be 0 (the index would be undefined)")
    tiny = torch.finfo(torch.float32).tiny
    if task_kind(kind).sigmoid:
        check_elementwise(logits, target)
        x = compute_dtype(logits)
        sw = check_sample_weight(sample_weight, x.shape[0], x)
        p = torch.sigmoid(x)
        q = torch.sigmoid(-x)  # 1 - p, accurate for large logits
        y = target.to(x.dtype)
        tp = p * y
        loss = 1.0 - (tp + s) / (tp + a * p * (1.0 - y) + b * q * y + s).clamp_min(tiny)
        return reduce_elementwise(loss, sw, reduction)
    x, p, p_t, valid = _softmax_parts(logits, target, ignore_index)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    logp_t = F.log_softmax(x, dim=1).gather(1, torch.where(valid, target, 0).unsqueeze(1)).squeeze(1)
    miss = -torch.expm1(logp_t)  # 1 - p_t, accurate near p_t = 1
    loss = 1.0 - (p_t + s) / (p_t + (a + b) * miss + s).clamp_min(tiny)
    return _finish_softmax(loss, valid, sw, reduction)


class _KindLoss(LossModule):
    def __init__(self, *, kind: str, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.kind = check_kind(kind)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index={ignore_index!r} must be an int")
        self.ignore_index = ignore_index


class SoftDiceLoss(_KindLoss):
    """Module form of :func:`soft_dice_loss`."""

    def __init__(self, *, kind: str, smooth: float = 1.0, squared: bool = False, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(kind=kind, ignore_index=ignore_index, reduction=reduction)
        self.smooth = check_number(smooth, name="smooth", low=0.0)
        self.squared = bool(squared)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return soft_dice_loss(logits, target, kind=self.kind, smooth=self.smooth, squared=self.squared,
                              ignore_index=self.ignore_index, reduction=self._reduction(reduction),
                              sample_weight=sample_weight)


class TverskyLoss(_KindLoss):
    """Module form of :func:`tversky_loss`."""

    def __init__(self, *, kind: str, alpha: float = 0.5, beta: float = 0.5, smooth: float = 1.0,
                 ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(kind=kind, ignore_index=ignore_index, reduction=reduction)
        self.alpha = check_number(alpha, name="alpha", low=0.0)
        self.beta = check_number(beta, name="beta", low=0.0)
        self.smooth = check_number(smooth, name="smooth", low=0.0)
        if self.alpha + self.beta == 0 and self.smooth == 0:
            raise ValueError("alpha + beta and smooth cannot all be 0 (the index would be undefined)")

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return tversky_loss(logits, target, kind=self.kind, alpha=self.alpha, beta=self.beta, smooth=self.smooth,
                            ignore_index=self.ignore_index, reduction=self._reduction(reduction),
                            sample_weight=sample_weight)
