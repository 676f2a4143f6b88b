"""Distribution-balanced loss for multi-label classification (Wu et al. 2020).

Two ingredients on top of (optionally focal) BCE, for counts ``n_c`` of positives per label in a
training set of ``N`` examples:

1. **Re-balanced weighting.** A multi-label example is over-sampled by every label it carries, so
   the weight of label ``c`` on example ``i`` is the ratio of the class-level to the
   instance-level sampling probability, smoothed::

       r_ic = (1 / n_c) / sum_{j in Y_i} (1 / n_j)          (r_ic = inf -> 1 when Y_i is empty)
       w_ic = map_alpha + sigmoid(map_beta * (r_ic - map_mu))

2. **Negative-tolerant regularisation (NTR).** Logits are shifted by a class prior bias
   ``nu_c = kappa * log(p_c / (1 - p_c))``, ``p_c = n_c / N``, and the negative term is
   sharpened by ``lambda`` and scaled back::

       z'   = z + nu_c
       L_ic = w_ic * [ y log(1 + e^{-z'}) + (1 - y) (1 / lambda) log(1 + e^{lambda z'}) ]

   so easy negatives stop dominating the gradient of rare labels.

With ``gamma > 0`` each element is also multiplied by the focal modulator ``(1 - p_t)^gamma``
(``p_t`` from ``z'``; the negative's probability uses ``lambda z'``).
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
from tailtune.losses._priors import counts_tensor


def db_prior_bias(counts, num_samples: int, *, kappa: float = 0.05) -> torch.Tensor:
    """``kappa * logit(n_c / N)`` for each label (negative for rare labels)."""
    n = counts_tensor(counts)
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples <= 0:
        raise ValueError(f"num_samples={num_samples!r} must be a positive int (training examples)")
    if (n >= num_samples).any():
        raise ValueError(f"every label count must be < num_samples={num_samples}, got {n.tolist()}")
    p = n / num_samples
    return check_number(kappa, name="kappa", low=0.0) * torch.log(p / (1.0 - p))


def _db_elements(x, target, inv, bias, lam, a, b, mu, g):
    inv = inv.to(device=x.device, dtype=x.dtype)
    bias = bias.to(device=x.device, dtype=x.dtype)
    y = target.to(x.dtype)
    with torch.no_grad():
        rate = (y * inv).sum(dim=1, keepdim=True)
        r = inv / rate.clamp_min(torch.finfo(x.dtype).tiny)
        w = a + torch.sigmoid(b * (r - mu))
    z = x + bias
    pos = F.softplus(-z)
    neg = F.softplus(lam * z) / lam
    if g > 0:
        tiny = torch.finfo(x.dtype).tiny
        pos = pos * torch.sigmoid(-z).clamp_min(tiny).pow(g)
        neg = neg * torch.sigmoid(lam * z).clamp_min(tiny).pow(g)
    return w * (y * pos + (1.0 - y) * neg)


def distribution_balanced_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    counts,
    num_samples: int,
    kappa: float = 0.05,
    neg_scale: float = 2.0,
    map_alpha: float = 0.1,
    map_beta: float = 10.0,
    map_mu: float = 0.2,
    gamma: float = 0.0,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Distribution-balanced loss (see module docstring).

    Args:
        logits, target: ``(N, C)`` multi-label logits and 0/1 targets.
        counts: ``(C,)`` positives per label in the training set; ``num_samples``: training size.
        kappa: NTR prior-bias scale; ``neg_scale``: NTR ``lambda > 0``.
        map_alpha, map_beta, map_mu: smoothing of the re-balancing weight.
        gamma: optional focal focusing parameter ``>= 0``.

    Shape:
        ``(N, C)`` -> ``(N,)`` (sum over labels) for ``"none"`` else ``()`` (mean over elements).

    Example:
        >>> z = torch.randn(4, 3); y = torch.tensor([[1., 0, 0], [0, 1, 1], [1, 0, 1], [0, 0, 0]])
        >>> distribution_balanced_loss(z, y, counts=[50, 10, 2], num_samples=60).ndim
        0

    References:
        Wu, Huang, Liu, Wang, Lin. "Distribution-Balanced Loss for Multi-Label Classification in
        Long-Tailed Datasets", ECCV 2020; Huang et al. EMNLP 2021 (text classification).

    Relations:
        ``kappa=0, neg_scale=1, gamma=0`` and constant weights (``map_beta=0``, ``map_alpha=0.5``)
        is BCE (times ``map_alpha + 0.5``).
    """
    check_elementwise(logits, target)
    check_reduction(reduction)
    if logits.ndim != 2:
        raise ValueError(f"distribution_balanced_loss is multi-label: logits must be (N, C), got {tuple(logits.shape)}")
    lam = check_number(neg_scale, name="neg_scale", low=0.0, low_open=True)
    a = check_number(map_alpha, name="map_alpha", low=0.0)
    b = check_number(map_beta, name="map_beta", low=0.0)
    mu = check_number(map_mu, name="map_mu")
    g = check_number(gamma, name="gamma", low=0.0)
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    n = counts_tensor(counts)
    if n.numel() != x.shape[1]:
        raise ValueError(f"counts must have {x.shape[1]} entries (one per label), got {n.numel()}")
    bias = db_prior_bias(n, num_samples, kappa=kappa)
    loss = _db_elements(x, target, 1.0 / n, bias, lam, a, b, mu, g)
    return reduce_elementwise(loss, sw, reduction)


class DistributionBalancedLoss(LossModule):
    """Module form; ``counts=`` (positives per label) and ``num_samples=`` from the training set."""

    needs_counts = True

    def __init__(self, *, counts, num_samples: int, kappa: float = 0.05, neg_scale: float = 2.0,
                 map_alpha: float = 0.1, map_beta: float = 10.0, map_mu: float = 0.2, gamma: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        n = counts_tensor(counts)
        self.register_buffer("counts", n)
        self.register_buffer("inv_counts", 1.0 / n)
        self.register_buffer("prior_bias", db_prior_bias(n, num_samples, kappa=kappa))
        self.num_samples = int(num_samples)
        self.kappa = float(kappa)
        self.neg_scale = check_number(neg_scale, name="neg_scale", low=0.0, low_open=True)
        self.map_alpha = check_number(map_alpha, name="map_alpha", low=0.0)
        self.map_beta = check_number(map_beta, name="map_beta", low=0.0)
        self.map_mu = check_number(map_mu, name="map_mu")
        self.gamma = check_number(gamma, name="gamma", low=0.0)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        check_elementwise(logits, target)
        if logits.ndim != 2 or logits.shape[1] != self.counts.numel():
            raise ValueError(f"logits must have shape (N, {self.counts.numel()}), got {tuple(logits.shape)}")
        reduction = self._reduction(reduction)
        x = compute_dtype(logits)
        sw = check_sample_weight(sample_weight, x.shape[0], x)
        loss = _db_elements(x, target, self.inv_counts, self.prior_bias, self.neg_scale, self.map_alpha,
                            self.map_beta, self.map_mu, self.gamma)
        return reduce_elementwise(loss, sw, reduction)
