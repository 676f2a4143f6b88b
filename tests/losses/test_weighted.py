import warnings

import pytest
import torch

from tailtune.losses import (
    SentimentFocalLoss,
    WeightedLoss,
    binary_cross_entropy,
    cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
)
from tailtune.weighting import combine_sample_weights, confidence_weights, length_weights


def test_weighted_binary_preset():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(8, generator=g)
    y = (torch.rand(8, generator=g) > 0.5).float()
    lengths = torch.tensor([3, 10, 100, 50, 7, 1, 64, 20])
    w = combine_sample_weights(length_weights(lengths), confidence_weights(z))
    loss = WeightedLoss(kind="binary")
    torch.testing.assert_close(loss(z, y, lengths=lengths), binary_cross_entropy(z, y, sample_weight=w))
    assert loss.uses_lengths


def test_weighted_multiclass_uses_softmax_confidence():
    z = torch.randn(6, 3)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    lengths = torch.arange(1, 7) * 10
    w = combine_sample_weights(length_weights(lengths), confidence_weights(z, kind="multiclass"))
    torch.testing.assert_close(WeightedLoss(kind="multiclass")(z, y, lengths=lengths), cross_entropy(z, y, sample_weight=w))


def test_sentiment_focal_preset():
    z = torch.randn(10)
    y = (torch.rand(10) > 0.5).float()
    lengths = torch.arange(1, 11)
    w = combine_sample_weights(length_weights(lengths), confidence_weights(z))
    ref = sigmoid_focal_loss(z, y, gamma=0.1, label_smoothing=0.05, sample_weight=w)
    torch.testing.assert_close(SentimentFocalLoss()(z, y, lengths=lengths), ref)
    zm, ym = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    wm = confidence_weights(zm, kind="multiclass")
    wm = wm / (wm.mean() + 1e-6)
    ref = softmax_focal_loss(zm, ym, gamma=0.1, label_smoothing=0.05, sample_weight=wm)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.testing.assert_close(SentimentFocalLoss(kind="multiclass")(zm, ym), ref)


def test_missing_lengths_warns_once_and_gradients_flow():
    loss = WeightedLoss(kind="binary")
    z = torch.randn(4, requires_grad=True)
    with pytest.warns(UserWarning, match="no lengths= given"):
        out = loss(z, torch.ones(4))
    out.backward()
    assert torch.isfinite(z.grad).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loss(z, torch.ones(4))  # second call: silent


def test_preset_errors():
    with pytest.raises(ValueError, match="pos_weight applies to binary/multilabel"):
        WeightedLoss(kind="multiclass", pos_weight=[2.0])
    with pytest.raises(ValueError, match="kind='sentiment' is not one of"):
        SentimentFocalLoss(kind="sentiment")
    with pytest.raises(ValueError, match=r"min_weight=2 must be a finite number in \[0.0, 1.0\]"):
        WeightedLoss(min_weight=2)
    with pytest.raises(ValueError, match="lengths has 2 entries but logits has 3 rows"):
        WeightedLoss()(torch.zeros(3), torch.zeros(3), lengths=torch.tensor([1, 2]))
