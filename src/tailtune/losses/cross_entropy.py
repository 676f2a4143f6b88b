"""Weighted cross-entropy and binary cross-entropy under the tailtune reduction contract.

``cross_entropy`` is ``F.cross_entropy`` plus per-example ``sample_weight`` and an all-ignored
batch that yields 0 instead of NaN; ``binary_cross_entropy`` is
``F.binary_cross_entropy_with_logits`` plus binary label smoothing and ``sample_weight``.
Class-balanced cross-entropy (Cui et al. 2019) is cross-entropy with
``weight=class_weights(counts, scheme="effective_number")``: see :meth:`CrossEntropyLoss.from_counts`.

Class-weight tables (per-row class weights): a softmax loss's ``weight``/``alpha`` may be ``(C,)``
(one weight per class) or a ``(K, C)`` table whose row ``i mod K`` weighs row ``i`` of the logits
(:func:`class_weight_rows`). ``K = N`` gives every row its own class weights; ``K = A`` gives each
aspect its own when an aspect task's logits ``(N, A * C)`` are viewed as ``(N * A, C)`` (example-major,
the training layer's layout): per-cell weights (``weighting.per_aspect``). The reduction contract is
unchanged: ``"mean"`` divides by the summed weight ``sum_i s_i * w[i, t_i]`` of the non-ignored targets.
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


def as_class_weight_tensor(value, *, name: str) -> torch.Tensor | None:
    """A softmax loss's class weights for its buffer: ``None``, ``(C,)`` or a ``(K, C)`` table, float32.

    Raises:
        ValueError/TypeError: naming ``name``: not 1-D or 2-D, empty, not finite or negative.
    """
    if value is None:
        return None
    t = value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float32)
    if t.ndim == 2 and t.numel() > 0:
        t = t.detach().to(torch.float32)
        if not torch.isfinite(t).all() or (t < 0).any():
            raise ValueError(f"{name} must hold finite numbers >= 0, got {t.tolist()}")
        return t
    return as_weight_tensor(value, name=name)


def class_weight_rows(weight, n: int, c: int, ref: torch.Tensor, *, name: str = "weight") -> torch.Tensor | None:
    """``weight`` as the loss applies it to ``n`` rows of ``c`` classes: ``(C,)`` unchanged, a ``(K, C)``
    table as ``(N, C)`` per-row weights (row ``i`` takes table row ``i mod K``; ``N`` must be a multiple of
    ``K``), in ``ref``'s dtype and device.

    Example:
        >>> class_weight_rows(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), 4, 2, torch.zeros(())).tolist()
        [[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0]]

    Raises:
        ValueError: a shape that fits neither form, naming ``name`` and the shapes.
    """
    if weight is None:
        return None
    w = torch.as_tensor(weight, dtype=ref.dtype, device=ref.device)
    if w.ndim == 1 and w.shape == (c,):
        return w
    if w.ndim == 2 and w.shape[1] == c and w.shape[0] > 0 and n % w.shape[0] == 0:
        k = w.shape[0]
        return w if k == n else w.repeat(n // k, 1)
    raise ValueError(
        f"{name} must have shape ({c},) or (K, {c}) with K dividing the {n} rows (per-aspect weights: K = "
        f"the number of aspects), got {tuple(w.shape)}"
    )


def _per_row_cross_entropy(logp: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, w: torch.Tensor,
                           eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(per-example loss, per-example weight of its target) with ``(N, C)`` class weights, exactly
    ``F.cross_entropy``'s weighted label smoothing row by row: ``(1 - eps) w_it (-log p_it) +
    eps / C sum_c w_ic (-log p_ic)``."""
    t = torch.where(valid, target, 0).unsqueeze(1)
    w_t = w.gather(1, t).squeeze(1)
    loss = -logp.gather(1, t).squeeze(1) * w_t
    if eps > 0:
        loss = (1.0 - eps) * loss - (eps / logp.shape[1]) * (logp * w).sum(dim=1)
    return torch.where(valid, loss, 0.0), torch.where(valid, w_t, 0.0)


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

    ``weight`` is ``(C,)`` or a ``(K, C)`` table of per-row class weights (module docstring).

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
    w = class_weight_rows(weight, x.shape[0], x.shape[1], x)
    valid = target != ignore_index
    if w is not None and w.ndim == 2:  # per-row class weights (a (K, C) table)
        loss, denom_i = _per_row_cross_entropy(F.log_softmax(x, dim=1), target, valid, w, eps)
    else:
        loss = F.cross_entropy(x, target, weight=w, ignore_index=ignore_index, label_smoothing=eps, reduction="none")
        if w is not None:
            denom_i = torch.where(valid, w[torch.where(valid, target, 0)], 0.0)
        else:
            denom_i = valid.to(x.dtype)
    if reduction == "none" and sw is None:
        return loss
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
    """Module form of :func:`cross_entropy`; ``weight`` (``(C,)`` or a ``(K, C)`` table) is a registered buffer."""

    #: takes a ``(K, C)`` class-weight table (per-aspect weights)
    per_row_class_weights = True

    def __init__(self, *, weight=None, label_smoothing: float = 0.0, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.register_buffer("weight", as_class_weight_tensor(weight, name="weight"))
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
