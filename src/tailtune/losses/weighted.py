"""The two per-sample-weighted presets practitioners use for review sentiment.

* ``"weighted"`` (:class:`WeightedLoss`): BCE (binary/multi-label) or CE (multiclass/aspects) with
  per-example weights ``combine(length_weight, confidence_weight)`` (see
  :mod:`tailtune.weighting.sample_weights`): ``sqrt(L)/sqrt(max L)`` clamped to
  ``[min_weight, 1]`` times the (gradient-free) confidence of the current prediction, divided by the
  batch mean.
* ``"sentiment_focal"`` (:class:`SentimentFocalLoss`): focal loss with ``gamma=0.1`` and label
  smoothing ``0.05`` plus the same weights.

Lengths arrive as ``forward(..., lengths=...)`` (token counts, e.g. ``attention_mask.sum(-1)``, one
per row of ``logits``; ``uses_lengths = True`` tells the training layer to pass them). Without
lengths the length factor is 1 and a warning is issued once. A ``sample_weight`` given by the
caller multiplies these weights. Do not also switch on the recipe's ``sample_weighting`` with
these presets: that would weight every example twice.
"""

from __future__ import annotations

import warnings

import torch

from tailtune.data.kinds import task_kind
from tailtune.losses._base import LossModule, as_weight_tensor, check_kind, check_number
from tailtune.losses.cross_entropy import as_class_weight_tensor, binary_cross_entropy, cross_entropy
from tailtune.losses.focal import as_gamma, sigmoid_focal_loss, softmax_focal_loss
from tailtune.weighting.sample_weights import combine_sample_weights, confidence_weights, length_weights


def preset_sample_weights(logits: torch.Tensor, *, kind: str, lengths=None, length: bool = True,
                          confidence: bool = True, min_weight: float = 0.1, sample_weight=None):
    """Per-example weights of the presets (``None`` when no factor applies)."""
    lw = length_weights(lengths, min_weight=min_weight) if (length and lengths is not None) else None
    if lw is not None:
        lw = lw.to(logits.device)
        if lw.shape[0] != logits.shape[0]:
            raise ValueError(f"lengths has {lw.shape[0]} entries but logits has {logits.shape[0]} rows")
    cw = confidence_weights(logits, kind=kind) if confidence else None
    w = combine_sample_weights(lw, cw)
    if sample_weight is not None:
        sw = torch.as_tensor(sample_weight, device=logits.device)
        w = sw if w is None else w * sw
    return w


class _PresetBase(LossModule):
    uses_lengths = True
    #: softmax kinds take a ``(K, C)`` class-weight table (per-aspect weights)
    per_row_class_weights = True

    def __init__(self, *, kind: str, length: bool, confidence: bool, min_weight: float, reduction: str) -> None:
        super().__init__(reduction=reduction)
        self.kind = check_kind(kind)
        self.length = bool(length)
        self.confidence = bool(confidence)
        self.min_weight = check_number(min_weight, name="min_weight", low=0.0, high=1.0)
        self._warned = False

    def _weights(self, logits, lengths, sample_weight):
        if self.length and lengths is None and not self._warned:
            warnings.warn(f"{type(self).__name__}: no lengths= given, the length weight is skipped", stacklevel=3)
            self._warned = True
        return preset_sample_weights(logits, kind=self.kind, lengths=lengths, length=self.length,
                                     confidence=self.confidence, min_weight=self.min_weight,
                                     sample_weight=sample_weight)


class WeightedLoss(_PresetBase):
    """The ``"weighted"`` preset: BCE (or CE) x length weight x confidence weight.

    Example:
        >>> loss = WeightedLoss(kind="binary")
        >>> loss(torch.randn(4), torch.tensor([1.0, 0.0, 1.0, 1.0]), lengths=torch.tensor([5, 50, 12, 80])).ndim
        0
    """

    def __init__(self, *, kind: str = "binary", length: bool = True, confidence: bool = True, min_weight: float = 0.1,
                 weight=None, pos_weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(kind=kind, length=length, confidence=confidence, min_weight=min_weight, reduction=reduction)
        if isinstance(pos_weight, (int, float)) and not isinstance(pos_weight, bool):
            pos_weight = [pos_weight]
        if pos_weight is not None and not task_kind(self.kind).sigmoid:
            raise ValueError(f"pos_weight applies to binary/multilabel tasks, not kind={self.kind!r}")
        weights = as_weight_tensor if task_kind(self.kind).sigmoid else as_class_weight_tensor
        self.register_buffer("weight", weights(weight, name="weight"))
        self.register_buffer("pos_weight", as_weight_tensor(pos_weight, name="pos_weight"))
        self.ignore_index = int(ignore_index)

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, lengths=None,
                reduction=None):
        w = self._weights(logits, lengths, sample_weight)
        if task_kind(self.kind).sigmoid:
            return binary_cross_entropy(logits, target, weight=self.weight, pos_weight=self.pos_weight,
                                        reduction=self._reduction(reduction), sample_weight=w)
        return cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                             reduction=self._reduction(reduction), sample_weight=w)


class SentimentFocalLoss(_PresetBase):
    """The ``"sentiment_focal"`` preset: focal ``gamma=0.1`` + label smoothing 0.05 + preset weights.

    Example:
        >>> loss = SentimentFocalLoss(kind="multiclass")
        >>> loss(torch.randn(3, 3), torch.tensor([0, 2, 1])).ndim
        0
    """

    def __init__(self, *, kind: str = "binary", gamma=0.1, label_smoothing: float = 0.05, length: bool = True,
                 confidence: bool = True, min_weight: float = 0.1, alpha=None, ignore_index: int = -100,
                 reduction: str = "mean") -> None:
        super().__init__(kind=kind, length=length, confidence=confidence, min_weight=min_weight, reduction=reduction)
        self.gamma = as_gamma(gamma)
        self.label_smoothing = check_number(label_smoothing, name="label_smoothing", low=0.0, high=1.0,
                                            high_open=True)
        if alpha is not None and task_kind(self.kind).sigmoid and isinstance(alpha, (int, float)):
            alpha = [float(alpha)]
        weights = as_weight_tensor if task_kind(self.kind).sigmoid else as_class_weight_tensor
        self.register_buffer("alpha", weights(alpha, name="alpha"))
        self.ignore_index = int(ignore_index)
        self._progress = 0.0

    def forward(self, logits, target, *, sample_weight=None, progress=None, embeddings=None, lengths=None,
                reduction=None):
        if progress is not None:
            self._progress = progress
        w = self._weights(logits, lengths, sample_weight)
        if task_kind(self.kind).sigmoid:
            alpha = self.alpha if self.alpha is None or self.alpha.numel() > 1 else self.alpha[0]
            return sigmoid_focal_loss(logits, target, gamma=self.gamma, alpha=alpha,
                                      label_smoothing=self.label_smoothing, reduction=self._reduction(reduction),
                                      sample_weight=w, progress=self._progress)
        return softmax_focal_loss(logits, target, gamma=self.gamma, alpha=self.alpha,
                                  label_smoothing=self.label_smoothing, ignore_index=self.ignore_index,
                                  reduction=self._reduction(reduction), sample_weight=w, progress=self._progress)
