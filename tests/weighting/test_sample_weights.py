import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.weighting import combine_sample_weights, confidence_weights, length_weights


def test_length_weights():
    w = length_weights(torch.tensor([100, 25, 1, 0]))
    assert torch.allclose(w, torch.tensor([1.0, 0.5, 0.1, 0.1]))
    assert torch.allclose(length_weights(torch.tensor([4, 1]), min_weight=0.0), torch.tensor([1.0, 0.5]))
    assert torch.allclose(length_weights(torch.tensor([0, 0])), torch.tensor([0.1, 0.1]))
    with pytest.raises(ValueError, match=r"min_weight=2 must be a number in \[0, 1\]"):
        length_weights(torch.tensor([1]), min_weight=2)
    with pytest.raises(ValueError, match="lengths must have shape"):
        length_weights(torch.ones(2, 2))


def test_confidence_binary_and_multilabel():
    z = torch.tensor([0.0, 100.0, -100.0, 1.0])
    w = confidence_weights(z)
    assert torch.allclose(w, torch.tensor([0.0, 1.0, 1.0, (torch.sigmoid(torch.tensor(1.0)).item() - 0.5) * 2]))
    zz = torch.tensor([[0.0, 100.0]])
    assert torch.allclose(confidence_weights(zz, kind="multilabel"), torch.tensor([0.5]))


def test_confidence_multiclass_generalises_binary():
    z = torch.randn(32)
    two = torch.stack([torch.zeros_like(z), z], dim=1)
    assert torch.allclose(confidence_weights(two, kind="multiclass"), confidence_weights(z), atol=1e-6)
    assert torch.allclose(confidence_weights(torch.zeros(3, 5), kind="multiclass"), torch.zeros(3))


def test_confidence_no_grad_and_errors():
    z = torch.randn(4, requires_grad=True)
    assert not confidence_weights(z).requires_grad
    with pytest.raises(ValueError, match="kind is required"):
        confidence_weights(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="kind='softmax' is not one of"):
        confidence_weights(torch.zeros(2, 3), kind="softmax")
    with pytest.raises(ValueError, match="C >= 2"):
        confidence_weights(torch.zeros(2), kind="multiclass")


def test_combine():
    assert combine_sample_weights(None, None) is None
    w = combine_sample_weights(torch.tensor([1.0, 0.5]), None, torch.tensor([1.0, 1.0]))
    assert torch.allclose(w, torch.tensor([4 / 3, 2 / 3]), atol=1e-5)
    assert torch.isfinite(combine_sample_weights(torch.zeros(3))).all()
    with pytest.raises(ValueError, match="disagree in shape"):
        combine_sample_weights(torch.ones(2), torch.ones(3))
    with pytest.raises(ValueError, match="eps=-1"):
        combine_sample_weights(torch.ones(2), eps=-1)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.1, 10.0), min_size=1, max_size=50))
def test_combine_mean_one(values):
    w = combine_sample_weights(torch.tensor(values))
    assert w.mean().item() == pytest.approx(1.0, rel=1e-4)  # eps=1e-6 against a mean >= 0.1
