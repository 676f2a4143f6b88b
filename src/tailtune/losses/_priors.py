"""Class statistics (counts -> priors, margins) shared by the count-aware losses."""

from __future__ import annotations

import torch

from tailtune.losses._base import as_weight_tensor


def counts_tensor(counts, *, name: str = "counts", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    t = as_weight_tensor(counts, name=name, dtype=dtype)
    zero = torch.nonzero(t == 0).flatten().tolist()
    if zero:
        raise ValueError(
            f"{name} has zero for class index {zero}; these losses need every class seen in training "
            "(add examples, merge or drop the class)"
        )
    return t


def priors_from(counts=None, priors=None) -> torch.Tensor:
    """Exactly one of ``counts`` (-> normalised) or ``priors`` (positive, normalised here); float64,
    so float64 logits get the priors at full precision (callers cast to the logits' dtype)."""
    if (counts is None) == (priors is None):
        raise ValueError("pass exactly one of counts= or priors=")
    if counts is not None:
        c = counts_tensor(counts, dtype=torch.float64)
        return c / c.sum()
    p = as_weight_tensor(priors, name="priors", dtype=torch.float64)
    if (p <= 0).any():
        raise ValueError(f"priors must be positive, got {p.tolist()}")
    return p / p.sum()
