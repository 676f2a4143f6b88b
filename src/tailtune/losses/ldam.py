"""Label-distribution-aware margin loss (LDAM, Cao et al. 2019).

Class margins ``Delta_c = K / n_c^(1/4)`` with ``K`` chosen so that ``max_c Delta_c = max_margin``;
the target logit is lowered by its margin before a (scaled) cross-entropy::

    LDAM = CE(scale * (z - Delta_y e_y), y)

Rare classes must be won by a larger margin. The paper uses a cosine classifier with
``scale = 30``; tailtune heads are linear, so ``scale`` defaults to 1 (raise it only for
normalised logits). Deferred re-weighting (DRW) is LDAM plus class weights switched on late in
training (pass ``weight=``).
"""

from __future__ import annotations

import torch

from tailtune.losses._base import LossModule, as_weight_tensor, check_class_logits, check_number
from tailtune.losses._priors import counts_tensor
from tailtune.losses.cross_entropy import cross_entropy


def ldam_margins(counts, *, max_margin: float = 0.5) -> torch.Tensor:
    """``(C,)`` margins ``max_margin * (n_min / n_c)^(1/4)``.

    Example:
        >>> ldam_margins([10000, 16, 1])
        tensor([0.0500, 0.2500, 0.5000])
    """
    m = check_number(max_margin, name="max_margin", low=0.0, low_open=True)
    n = counts_tensor(counts)
    raw = n.pow(-0.25)
    return raw * (m / raw.max())


def ldam_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    margins,
    scale: float = 1.0,
    weight=None,
    ignore_index: int = -100,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """LDAM loss with given per-class ``margins`` (see :func:`ldam_margins`).

    Shape:
        logits ``(N, C)``, target ``(N,)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.zeros(1, 2); y = torch.tensor([1])
        >>> ldam_loss(z, y, margins=[0.0, 1.0]) > ldam_loss(z, y, margins=[0.0, 0.0])
        tensor(True)

    References:
        Cao, Wei, Gaidon, Arechiga, Ma. "Learning Imbalanced Datasets with Label-Distribution-Aware
        Margin Loss", NeurIPS 2019.

    Relations:
        zero margins and ``scale=1`` is cross-entropy.
    """
    check_class_logits(logits, target)
    s = check_number(scale, name="scale", low=0.0, low_open=True)
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    m = torch.as_tensor(margins, dtype=x.dtype, device=x.device)
    if m.shape != (x.shape[1],):
        raise ValueError(f"margins must have shape ({x.shape[1]},), got {tuple(m.shape)}")
    t = torch.where(target != ignore_index, target, 0)
    shift = torch.zeros_like(x).scatter_(1, t.unsqueeze(1), m[t].unsqueeze(1))
    return cross_entropy(s * (x - shift), target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                         sample_weight=sample_weight)


class LDAMLoss(LossModule):
    """Module form; margins from ``counts=`` (a buffer)."""

    needs_counts = True

    def __init__(self, *, counts, max_margin: float = 0.5, scale: float = 1.0, weight=None,
                 ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("margins", ldam_margins(counts, max_margin=max_margin))
        self.scale = check_number(scale, name="scale", low=0.0, low_open=True)
        self.register_buffer("weight", as_weight_tensor(weight, name="weight"))
        self.ignore_index = int(ignore_index)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        return ldam_loss(logits, target, margins=self.margins, scale=self.scale, weight=self.weight,
                         ignore_index=self.ignore_index, reduction=self._reduction(reduction),
                         sample_weight=sample_weight)
