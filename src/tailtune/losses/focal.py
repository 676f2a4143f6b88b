"""Focal losses (softmax and sigmoid), reversed focal (gamma < 0) and gamma schedules.

Softmax focal loss of an example with target ``t`` and probabilities ``p = softmax(z)``::

    FL = (1 - p_t) ** gamma * CE_eps(z, t; alpha)

where ``CE_eps`` is ``F.cross_entropy`` with class weights ``alpha`` and label smoothing ``eps``
(``(1-eps) * alpha_t * -log p_t + eps/C * sum_c alpha_c * -log p_c``). The modulator uses the
probability of the original hard target. ``gamma < 0`` is the reversed focal loss: modulator
``p_t ** |gamma|`` up-weights easy examples (useful against noisy labels).

Sigmoid focal loss of an element with logit ``z``, original label ``y`` and smoothed label
``y' = y(1-eps) + (1-y)eps``::

    FL = alpha_t * (1 - p_t) ** gamma * BCE(z, y'; pos_weight) * weight
    p_t = y sigmoid(z) + (1-y)(1 - sigmoid(z)),   alpha_t = alpha y + (1 - alpha)(1 - y)

``gamma`` is a float or a :class:`GammaSchedule` evaluated at the training ``progress`` in
``[0, 1]`` (e.g. linear 3.0 -> 1.5 over training).

Both losses run as fused kernels with a closed-form gradient (:mod:`._focal_kernels`, compiled
with ``torch.compile`` on CUDA; see :mod:`._fused`). Soft targets that need a gradient
(distillation), learnable weights and second-order terms (``create_graph=True``) get exact
gradients through the same operations under autograd.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from tailtune.errors import did_you_mean
from tailtune.losses import _fused
from tailtune.losses._base import (
    LossModule,
    as_weight_tensor,
    check_class_logits,
    check_elementwise,
    check_number,
    check_reduction,
    check_sample_weight,
    compute_dtype,
)
from tailtune.losses._focal_kernels import sigmoid_focal_kernel, softmax_focal_kernel
from tailtune.losses.cross_entropy import as_class_weight_tensor, class_weight_rows

SCHEDULE_KINDS: tuple[str, ...] = ("constant", "linear", "cosine", "step")


@dataclass(frozen=True)
class GammaSchedule:
    """Focusing parameter as a function of training progress ``p`` in ``[0, 1]``.

    * ``constant``: ``start``;
    * ``linear``: ``start + (end - start) * p``;
    * ``cosine``: ``end + (start - end) * (1 + cos(pi p)) / 2``;
    * ``step``: ``values[k]`` where ``k`` is the number of ``milestones`` ``<= p``
      (``len(values) == len(milestones) + 1``).

    Example:
        >>> GammaSchedule("linear", start=3.0, end=1.5).value(0.5)
        2.25
        >>> GammaSchedule("step", values=(3.0, 1.0), milestones=(0.5,)).value(0.7)
        1.0
    """

    kind: str = "constant"
    start: float = 2.0
    end: float | None = None
    values: tuple[float, ...] = field(default_factory=tuple)
    milestones: tuple[float, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"kind={self.kind!r} is not one of {list(SCHEDULE_KINDS)}{did_you_mean(str(self.kind), SCHEDULE_KINDS)}"
            )
        check_number(self.start, name="start")
        if self.kind in ("linear", "cosine"):
            if self.end is None:
                raise ValueError(f"a {self.kind} gamma schedule needs end= (the value at progress 1)")
            check_number(self.end, name="end")
        if self.kind == "step":
            object.__setattr__(self, "values", tuple(float(v) for v in self.values))
            object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))
            if len(self.values) != len(self.milestones) + 1:
                raise ValueError(
                    f"a step gamma schedule needs len(values) == len(milestones) + 1, got "
                    f"{len(self.values)} values and {len(self.milestones)} milestones"
                )
            for v in self.values:
                check_number(v, name="values[...]")
            ms = list(self.milestones)
            if ms != sorted(ms) or any(not 0.0 < m < 1.0 for m in ms):
                raise ValueError(f"milestones={ms} must be increasing and inside (0, 1)")

    @classmethod
    def from_spec(cls, spec: Mapping) -> GammaSchedule:
        """Build from a recipe mapping such as ``{"schedule": "linear", "start": 3.0, "end": 1.5}``.

        Without ``schedule`` the fields say which: ``values``/``milestones`` a step schedule, ``end`` a
        linear one, else constant (the one default rule; the recipe schema validates through here).
        """
        spec = dict(spec)
        kind = spec.pop("schedule", spec.pop("kind", None))
        if kind is None:
            kind = "step" if ("values" in spec or "milestones" in spec) else "linear" if "end" in spec else "constant"
        allowed = {"start", "end", "values", "milestones"}
        unknown = set(spec) - allowed
        if unknown:
            bad = sorted(unknown)[0]
            raise ValueError(f"unknown gamma schedule field {bad!r}; valid: {sorted(allowed | {'schedule'})}"
                             f"{did_you_mean(bad, allowed)}")
        for key in ("values", "milestones"):
            if key in spec:
                spec[key] = tuple(spec[key])
        return cls(kind, **spec)

    def value(self, progress: float) -> float:
        p = check_number(progress, name="progress", low=0.0, high=1.0)
        if self.kind == "constant":
            return float(self.start)
        if self.kind == "linear":
            return float(self.start + (self.end - self.start) * p)
        if self.kind == "cosine":
            return float(self.end + (self.start - self.end) * (1.0 + math.cos(math.pi * p)) / 2.0)
        k = sum(1 for m in self.milestones if m <= p)
        return float(self.values[k])


GammaLike = float | GammaSchedule


def as_gamma(gamma) -> GammaLike:
    """Validate ``gamma``: a finite number, a :class:`GammaSchedule`, or a schedule mapping."""
    if isinstance(gamma, GammaSchedule):
        return gamma
    if isinstance(gamma, Mapping):
        return GammaSchedule.from_spec(gamma)
    return check_number(gamma, name="gamma")


def resolve_gamma(gamma, progress: float | None) -> float:
    if isinstance(gamma, GammaSchedule):
        if progress is None:
            raise ValueError("gamma is a GammaSchedule, so progress= (training progress in [0, 1]) is required")
        return gamma.value(progress)
    return check_number(gamma, name="gamma")


def softmax_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: GammaLike = 2.0,
    alpha=None,
    label_smoothing: float = 0.0,
    ignore_index: int = -100,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
    progress: float | None = None,
) -> torch.Tensor:
    r"""Softmax focal loss ``-alpha_t (1 - p_t)^gamma log p_t`` (with optional label smoothing).

    Args:
        logits: ``(N, C)`` unnormalised scores (float16/bfloat16 are computed in float32).
        target: ``(N,)`` integer class indices; ``ignore_index`` entries contribute nothing.
        gamma: focusing parameter (``0``: cross-entropy; ``< 0``: reversed focal) or a
            :class:`GammaSchedule` (then ``progress`` is required).
        alpha: ``(C,)`` class weights (from :func:`tailtune.weighting.class_weights`), like
            ``F.cross_entropy(weight=...)``, or a ``(K, C)`` table of per-row class weights (row ``i``
            takes table row ``i mod K``: per-aspect weights, :func:`~tailtune.losses.cross_entropy.class_weight_rows`).
        label_smoothing: ``eps`` in ``[0, 1]``, as in ``F.cross_entropy``.
        ignore_index: target value to ignore.
        reduction: ``"none"`` | ``"mean"`` | ``"sum"`` (see :mod:`tailtune.losses._base`).
        sample_weight: ``(N,)`` per-example weights.
        progress: training progress in ``[0, 1]`` for scheduled gamma.

    Shape:
        logits ``(N, C)``, target ``(N,)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
        >>> y = torch.tensor([0, 2])
        >>> torch.allclose(softmax_focal_loss(z, y, gamma=0.0), F.cross_entropy(z, y))
        True

    References:
        Lin, Goyal, Girshick, He, Dollar. "Focal Loss for Dense Object Detection", ICCV 2017.

    Relations:
        ``gamma=0`` equals ``F.cross_entropy(logits, target, weight=alpha, label_smoothing=...,
        ignore_index=..., reduction=...)`` for every reduction (except an all-ignored batch under
        ``"mean"``: 0 here, NaN in torch). ``focal / CE = (1 - p_t)^gamma`` per example.
    """
    check_class_logits(logits, target)
    check_reduction(reduction)
    g = resolve_gamma(gamma, progress)
    eps = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0)
    x = compute_dtype(logits)
    n, c = x.shape
    sw = check_sample_weight(sample_weight, n, x)
    a = None
    if alpha is not None:
        a = class_weight_rows(alpha, n, c, x, name="alpha")  # (C,) or per-row (N, C)
    return _fused.run(softmax_focal_kernel, x, (target, a, sw), (g, eps), ignore_index=ignore_index,
                      reduction=reduction, focus=_focus(g), smoothing=eps > 0)


def _focus(g: float) -> str | None:
    """Kernel branch: ``"pos"`` focal (``(1-p_t)^g``), ``"neg"`` reversed (``p_t^|g|``), ``None`` (g = 0)."""
    return "pos" if g > 0 else ("neg" if g < 0 else None)


def sigmoid_focal_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    gamma: GammaLike = 2.0,
    alpha=None,
    pos_weight=None,
    weight=None,
    label_smoothing: float = 0.0,
    reduction: str = "mean",
    sample_weight: torch.Tensor | None = None,
    progress: float | None = None,
) -> torch.Tensor:
    r"""Sigmoid (binary / multi-label) focal loss ``alpha_t (1 - p_t)^gamma BCE(z, y')``.

    Args:
        logits: ``(N,)`` binary or ``(N, C)`` multi-label logits.
        target: same shape, values in ``[0, 1]`` (hard 0/1 normally).
        gamma: as in :func:`softmax_focal_loss`; ``p_t`` is the probability of the ORIGINAL label.
        alpha: ``None`` or ``-1`` (no weighting, torchvision's convention), a number in ``[0, 1]`` or
            a ``(C,)`` tensor: weight ``alpha`` for positives and ``1 - alpha`` for negatives
            (torchvision convention). The same rule in :class:`SigmoidFocalLoss` (:func:`sigmoid_alpha`).
        pos_weight: ``(C,)`` (or scalar for binary) positive weights, as in
            ``F.binary_cross_entropy_with_logits`` (see :func:`tailtune.weighting.pos_weight`).
        weight: ``(C,)`` per-label weights multiplying each element (``F.binary_cross_entropy_with_logits(weight=)``).
        label_smoothing: ``eps`` in ``[0, 1)``; the BCE target is ``y(1-eps) + (1-y)eps``.
        reduction, sample_weight, progress: see :func:`softmax_focal_loss`; ``"none"`` sums
            over labels, ``"mean"`` is the mean over all ``N*C`` elements.

    Shape:
        ``(N,)`` or ``(N, C)`` -> ``(N,)`` for ``"none"`` else ``()``.

    Example:
        >>> z = torch.tensor([[3.0, -1.0], [0.5, 2.0]]); y = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> torch.allclose(sigmoid_focal_loss(z, y, gamma=0.0), F.binary_cross_entropy_with_logits(z, y))
        True

    References:
        Lin et al., ICCV 2017; torchvision.ops.sigmoid_focal_loss.

    Relations:
        ``gamma=0, alpha=None`` equals ``F.binary_cross_entropy_with_logits(pos_weight=..., weight=...)``
        for ``"mean"``/``"sum"``; ``focal / BCE = alpha_t (1 - p_t)^gamma`` element-wise.
    """
    check_elementwise(logits, target)
    check_reduction(reduction)
    g = resolve_gamma(gamma, progress)
    eps = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0, high_open=True)
    x = compute_dtype(logits)
    sw = check_sample_weight(sample_weight, x.shape[0], x)
    y = target.to(x.dtype)
    pw = None if pos_weight is None else torch.as_tensor(pos_weight, dtype=x.dtype, device=x.device)
    a = sigmoid_alpha(alpha)
    if a is not None:
        a = torch.as_tensor(a, dtype=x.dtype, device=x.device)
    w = None if weight is None else torch.as_tensor(weight, dtype=x.dtype, device=x.device)
    return _fused.run(sigmoid_focal_kernel, x, (y, pw, a, w, sw), (g, eps), reduction=reduction, focus=_focus(g),
                      smoothing=eps > 0)


#: torchvision's ``sigmoid_focal_loss(alpha=-1)``: no positive/negative weighting (same as ``None``)
NO_ALPHA = -1


def sigmoid_alpha(alpha):
    """The one rule for a sigmoid focal ``alpha`` (functional and module): ``None`` or ``-1``
    (torchvision's "no weighting") -> ``None``; a number in ``[0, 1]``; or per-label values in
    ``[0, 1]`` (a sequence, or a tensor: checked when on the CPU, never with a device sync).
    Anything else raises ``ValueError``/``TypeError`` naming the value."""
    if alpha is None:
        return None
    if isinstance(alpha, torch.Tensor):
        if alpha.device.type != "cpu" or alpha.requires_grad:
            return alpha  # a module buffer (validated at construction) or a learnable weight
        if alpha.ndim == 0:
            return None if _scalar_alpha(float(alpha)) is None else alpha
    elif isinstance(alpha, (int, float)) and not isinstance(alpha, bool):
        return _scalar_alpha(alpha)
    t = as_weight_tensor(alpha, name="alpha", nonnegative=False)
    if ((t < 0) | (t > 1)).any():
        raise ValueError(f"alpha for a sigmoid loss must lie in [0, 1] (positive share; -1 for no weighting only "
                         f"as a single number, as torchvision), got {t.tolist()}")
    return alpha if isinstance(alpha, torch.Tensor) else t


def _scalar_alpha(alpha: float) -> float | None:
    if alpha == NO_ALPHA:
        return None
    if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
        raise ValueError(
            f"alpha={alpha!r} must be a finite number in [0.0, 1.0] (the weight of the positives; the "
            f"negatives get 1 - alpha), or -1 / None for no weighting (torchvision's convention)"
        )
    return float(alpha)


def _check_alpha_sigmoid(alpha):
    a = sigmoid_alpha(alpha)
    return None if a is None else torch.as_tensor(a, dtype=torch.float32).detach()


class SoftmaxFocalLoss(LossModule):
    """Module form of :func:`softmax_focal_loss`; ``alpha`` (``(C,)`` or a ``(K, C)`` table) is a registered buffer.

    ``forward(..., progress=None)`` with a scheduled gamma reuses the last progress seen
    (initially 0.0), so evaluation between training steps uses the current gamma.

    Example:
        >>> loss = SoftmaxFocalLoss(gamma={"schedule": "linear", "start": 3.0, "end": 1.5})
        >>> loss(torch.randn(4, 3), torch.tensor([0, 1, 2, 1]), progress=0.5).shape
        torch.Size([])
    """

    #: takes a ``(K, C)`` class-weight table (per-aspect weights)
    per_row_class_weights = True

    def __init__(self, *, gamma: GammaLike | Mapping = 2.0, alpha: Sequence[float] | torch.Tensor | None = None,
                 label_smoothing: float = 0.0, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.gamma = as_gamma(gamma)
        self.register_buffer("alpha", as_class_weight_tensor(alpha, name="alpha"))
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(f"ignore_index={ignore_index!r} must be an int")
        self.ignore_index = ignore_index
        self._progress = 0.0

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        if progress is not None:
            self._progress = progress
        return softmax_focal_loss(
            logits, target, gamma=self.gamma, alpha=self.alpha, label_smoothing=self.label_smoothing,
            ignore_index=self.ignore_index, reduction=self._reduction(reduction), sample_weight=sample_weight,
            progress=self._progress,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma!r}, label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"


class SigmoidFocalLoss(LossModule):
    """Module form of :func:`sigmoid_focal_loss`; ``alpha``, ``pos_weight``, ``weight`` are buffers."""

    def __init__(self, *, gamma: GammaLike | Mapping = 2.0, alpha=None, pos_weight=None, weight=None,
                 label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction=reduction)
        self.gamma = as_gamma(gamma)
        self.register_buffer("alpha", _check_alpha_sigmoid(alpha))
        if isinstance(pos_weight, (int, float)) and not isinstance(pos_weight, bool):
            pos_weight = [pos_weight]
        self.register_buffer("pos_weight", as_weight_tensor(pos_weight, name="pos_weight"))
        self.register_buffer("weight", as_weight_tensor(weight, name="weight"))
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0,
                                            high_open=True)
        self._progress = 0.0

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, reduction=None):
        if progress is not None:
            self._progress = progress
        return sigmoid_focal_loss(
            logits, target, gamma=self.gamma, alpha=self.alpha, pos_weight=self.pos_weight, weight=self.weight,
            label_smoothing=self.label_smoothing, reduction=self._reduction(reduction),
            sample_weight=sample_weight, progress=self._progress,
        )

    def extra_repr(self) -> str:
        return f"gamma={self.gamma!r}, label_smoothing={self.label_smoothing}, reduction={self.reduction!r}"
