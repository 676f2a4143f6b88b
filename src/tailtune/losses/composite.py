"""CompositeLoss: a weighted sum of named loss parts, each part reported for logging.

``total = sum_i w_i L_i`` (fixed), or with ``auto_balance=True`` the homoscedastic-uncertainty
weighting of Kendall et al. (2018) with one learnable log-variance ``s_i`` per part::

    total = sum_i exp(-s_i) * w_i * L_i + s_i

(``s_i`` start at 0, i.e. at the fixed weights; they are parameters of this module, so the
optimizer must include ``CompositeLoss.parameters()``.)

``forward`` returns ``(total, parts)``; ``parts[name]`` is the detached, unweighted value of part
``name`` (0-dim tensor). With ``num_items_in_batch`` (the Hugging Face Trainer's count of label
items over all gradient-accumulation micro-batches) parts whose ``count_unit`` is ``"targets"`` use
``reduction="sum"`` divided by it, so accumulated gradients equal the full-batch mean (the idea of
transformers' ``fixed_cross_entropy``); other parts (``"anchors"``, ``"pairs"``) keep their mean,
scaled by ``local items / num_items_in_batch``, i.e. averaged over micro-batches by size.
``num_items_in_batch == 0`` (every target of the accumulated batch ignored) divides by 1 instead, so
the total is 0 with a gradient, never NaN, as the parts' own ``"mean"`` reduction guarantees.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
from torch import nn


class CompositeLoss(nn.Module):
    """Weighted sum of named losses.

    Args:
        parts: ``{name: (weight, module)}``; every module follows the registry's forward contract
            and has a reduction other than ``"none"``.
        auto_balance: learn the weights (Kendall et al. 2018) on top of the fixed ``weight`` s.

    Example:
        >>> from tailtune.losses import get
        >>> loss = CompositeLoss({"focal": (0.7, get("focal", kind="multiclass")),
        ...                       "supcon": (0.3, get("supcon"))})
        >>> total, parts = loss(torch.randn(4, 3), torch.tensor([0, 1, 1, 2]), embeddings=torch.randn(4, 8))
        >>> sorted(parts)
        ['focal', 'supcon']

    References:
        Kendall, Gal, Cipolla. "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
        Geometry and Semantics", CVPR 2018.
    """

    def __init__(self, parts: Mapping[str, tuple[float, nn.Module]], *, auto_balance: bool = False) -> None:
        super().__init__()
        if not isinstance(parts, Mapping) or not parts:
            raise ValueError("parts must be a non-empty mapping {name: (weight, module)}")
        modules: dict[str, nn.Module] = {}
        weights: dict[str, float] = {}
        for name, value in parts.items():
            if not isinstance(name, str) or not name.isidentifier():
                raise ValueError(f"part name {name!r} must be a non-empty identifier (letters, digits, _)")
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise TypeError(f"parts[{name!r}] must be a (weight, module) pair, got {value!r}")
            w, module = value
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
                raise ValueError(f"parts[{name!r}] weight={w!r} must be a finite number >= 0")
            if not isinstance(module, nn.Module):
                raise TypeError(f"parts[{name!r}] module must be an nn.Module, got {type(module).__name__}")
            if getattr(module, "reduction", "mean") == "none":
                raise ValueError(f"parts[{name!r}] has reduction='none'; a composite needs 'mean' or 'sum'")
            modules[name] = module
            weights[name] = float(w)
        if not isinstance(auto_balance, bool):
            raise TypeError(f"auto_balance={auto_balance!r} must be a bool")
        self.losses = nn.ModuleDict(modules)
        self.weights = weights
        self.auto_balance = auto_balance
        self.log_vars = nn.Parameter(torch.zeros(len(modules))) if auto_balance else None

    @property
    def uses_embeddings(self) -> bool:
        return any(getattr(m, "uses_embeddings", False) for m in self.losses.values())

    @property
    def uses_lengths(self) -> bool:
        return any(getattr(m, "uses_lengths", False) for m in self.losses.values())

    def forward(self, logits, target, *, embeddings=None, sample_weight=None, progress=None,
                num_items_in_batch=None, lengths=None):
        total = None
        parts: dict[str, torch.Tensor] = {}
        local_items = None
        if num_items_in_batch is not None:  # a count: 0 only when every target is ignored (0 / 1, not 0 / 0)
            num_items_in_batch = (num_items_in_batch.clamp_min(1) if isinstance(num_items_in_batch, torch.Tensor)
                                  else max(num_items_in_batch, 1))
        for i, (name, module) in enumerate(self.losses.items()):
            kwargs = {"sample_weight": sample_weight, "progress": progress, "embeddings": embeddings}
            if getattr(module, "uses_lengths", False):
                kwargs["lengths"] = lengths
            if num_items_in_batch is None:
                value = module(logits, target, **kwargs)
            elif getattr(module, "count_unit", "targets") == "targets":
                value = module(logits, target, reduction="sum", **kwargs) / num_items_in_batch
            else:
                if local_items is None:
                    local_items = (target != -100).sum()
                value = module(logits, target, **kwargs) * (local_items / num_items_in_batch)
            parts[name] = value.detach()
            term = self.weights[name] * value
            if self.log_vars is not None:
                s = self.log_vars[i]
                term = torch.exp(-s) * term + s
            total = term if total is None else total + term
        return total, parts

    def extra_repr(self) -> str:
        return f"weights={self.weights}, auto_balance={self.auto_balance}"
