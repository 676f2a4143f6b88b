"""Logit-adjusted cross-entropy (Menon et al. 2021).

With class priors ``pi`` (training frequencies)::

    LA = CE(z + tau * log(pi), y)

Adding the log-prior during training makes the plain argmax of ``z`` at test time approximate
the balanced-error-optimal decision (Fisher-consistent for the balanced error at ``tau = 1``).
"""

from __future__ import annotations

import torch

from tailtune.losses._base import LossModule, as_weight_tensor, check_number
from tailtune.losses._priors import priors_from
from tailtune.losses.cross_entropy import cross_entropy


def logit_adjusted_cross_entropy(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    priors,
    tau: float = 1.0,
    weight=None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy on ``logits + tau * log(priors)``.

    Args:
        priors: ``(C,)`` positive class priors (normalised internally).
        tau: adjustment strength ``>= 0``.
        weight, label_smoothing, ignore_index, reduction, sample_weight: as :func:`cross_entropy`.

    Shape:
        logits ``(N, C)``, target ``(N,)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.zeros(2, 2); y = torch.tensor([0, 1])
        >>> logit_adjusted_cross_entropy(z, y, priors=[0.9, 0.1], reduction="none")
        tensor([0.1054, 2.3026])

    References:
        Menon, Jayasumana, Rawat, Jain, Veit, Kumar. "Long-tail learning via logit adjustment", ICLR 2021.

    Relations:
        ``tau=0`` is cross-entropy; with ``tau=1`` equals the balanced softmax loss (Ren et al. 2020).
    """
    t = check_number(tau, name="tau", low=0.0)
    p = priors_from(priors=priors).to(device=logits.device)
    if p.numel() != logits.shape[-1]:
        raise ValueError(f"priors must have {logits.shape[-1]} entries (one per class), got {p.numel()}")
    x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    return cross_entropy(x + (t * torch.log(p)).to(x.dtype), target, weight=weight, label_smoothing=label_smoothing,
                         ignore_index=ignore_index, reduction=reduction, sample_weight=sample_weight)


class LogitAdjustedLoss(LossModule):
    """Module form; give ``counts=`` (training class counts) or ``priors=``.

    ``log_prior`` is a float32 buffer (it follows the module to any device, MPS included, and into
    checkpoints); float64 logits use the log-priors at float64 precision, kept beside it (and
    refreshed when a state dict is loaded).
    """

    needs_counts = True

    def __init__(self, *, counts=None, priors=None, tau: float = 1.0, weight=None, label_smoothing: float = 0.0,
                 ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        log_prior = torch.log(priors_from(counts, priors))
        self._log_prior64 = tuple(log_prior.tolist())
        self.register_buffer("log_prior", log_prior.to(torch.float32))
        self.register_load_state_dict_post_hook(_refresh_exact_priors)
        self.tau = check_number(tau, name="tau", low=0.0)
        self.register_buffer("weight", as_weight_tensor(weight, name="weight"))
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0)
        self.ignore_index = int(ignore_index)

    def _adjustment(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.float64:
            return self.tau * torch.tensor(self._log_prior64, dtype=torch.float64, device=x.device)
        return self.tau * self.log_prior.to(x.dtype)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        if logits.shape[-1] != self.log_prior.numel():
            raise ValueError(f"logits must have {self.log_prior.numel()} classes, got shape {tuple(logits.shape)}")
        x = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
        return cross_entropy(x + self._adjustment(x), target, weight=self.weight,
                             label_smoothing=self.label_smoothing, ignore_index=self.ignore_index,
                             reduction=self._reduction(reduction), sample_weight=sample_weight)


def _refresh_exact_priors(module: LogitAdjustedLoss, incompatible_keys) -> None:
    module._log_prior64 = tuple(module.log_prior.double().tolist())
