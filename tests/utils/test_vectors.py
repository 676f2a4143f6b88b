import pytest
import torch

from tailtune.utils.vectors import as_class_vector


def test_sequence_and_tensor_give_the_same_detached_vector():
    a = as_class_vector([1, 2.5], name="w")
    b = as_class_vector(torch.tensor([1.0, 2.5], requires_grad=True), name="w")
    assert a.dtype == torch.float32 and torch.equal(a, b) and not b.requires_grad
    assert as_class_vector([1, 2], name="w", dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("bad, err, match", [
    ("abc", TypeError, "w must be a sequence of numbers"),
    ([], ValueError, "w must be a non-empty 1-D"),
    ([[1.0, 2.0]], ValueError, "w must be a non-empty 1-D"),
    ([1.0, float("nan")], ValueError, "w must be finite"),
    ([1.0, -1.0], ValueError, "w must be non-negative"),
])
def test_bad_vectors_name_the_field(bad, err, match):
    with pytest.raises(err, match=match):
        as_class_vector(bad, name="w")


def test_negative_allowed_when_asked():
    assert as_class_vector([-1.0, 1.0], name="alpha", nonnegative=False).tolist() == [-1.0, 1.0]


def test_losses_and_weighting_share_the_rule():
    from tailtune.losses._base import as_weight_tensor
    from tailtune.weighting.classes import class_weights

    with pytest.raises(ValueError, match="must be non-negative"):
        as_weight_tensor([1.0, -2.0], name="weight")
    with pytest.raises(ValueError, match="counts must be non-negative"):
        class_weights([3, -1], scheme="inverse")
