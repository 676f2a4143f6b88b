import itertools

import pytest
import torch
import torch.nn.functional as F

from tailtune.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, binary_cross_entropy, cross_entropy
from tailtune.weighting import class_weights

REDUCTIONS = ("none", "mean", "sum")


@pytest.mark.parametrize("reduction, weighted, ignore, eps", list(itertools.product(REDUCTIONS, (0, 1), (0, 1), (0.0, 0.2))))
def test_cross_entropy_equals_torch(reduction, weighted, ignore, eps):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (10,), generator=g)
    if ignore:
        y[[0, 5]] = -100
    w = torch.tensor([1.0, 0.2, 3.0, 1.5], dtype=torch.float64) if weighted else None
    ref = F.cross_entropy(z, y, weight=w, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(cross_entropy(z, y, weight=w, label_smoothing=eps, reduction=reduction), ref)


@pytest.mark.parametrize("reduction, pw, w, eps", list(itertools.product(REDUCTIONS, (0, 1), (0, 1), (0.0, 0.1))))
def test_bce_equals_torch(reduction, pw, w, eps):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(6, 3, generator=g, dtype=torch.float64)
    y = (torch.rand(6, 3, generator=g) > 0.5).double()
    pos_weight = torch.tensor([2.0, 0.5, 9.0], dtype=torch.float64) if pw else None
    weight = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64) if w else None
    ys = y * (1 - eps) + (1 - y) * eps
    ref = F.binary_cross_entropy_with_logits(z, ys, weight=weight, pos_weight=pos_weight, reduction=reduction)
    if reduction == "none":
        ref = ref.sum(1)
    got = binary_cross_entropy(z, y, weight=weight, pos_weight=pos_weight, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(got, ref)


def test_all_ignored_and_sample_weight():
    z = torch.randn(3, 2, requires_grad=True)
    loss = cross_entropy(z, torch.full((3,), -100))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(z.grad).all()
    z = torch.randn(4, 3, dtype=torch.float64)
    y = torch.tensor([0, 1, -100, 2])
    sw = torch.tensor([1.0, 2.0, 5.0, 0.5], dtype=torch.float64)
    none = F.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(cross_entropy(z, y, sample_weight=sw), (none * sw).sum() / (sw[[0, 1, 3]].sum()))


def test_modules_and_class_balanced():
    counts = [500, 50, 5]
    mod = CrossEntropyLoss.from_counts(counts, scheme="effective_number", beta=0.99)
    torch.testing.assert_close(mod.weight, class_weights(counts, scheme="effective_number", beta=0.99))
    z, y = torch.randn(7, 3), torch.randint(0, 3, (7,))
    torch.testing.assert_close(mod(z, y), F.cross_entropy(z, y, weight=mod.weight))
    torch.testing.assert_close(mod(z, y, reduction="sum"), F.cross_entropy(z, y, weight=mod.weight, reduction="sum"))
    bmod = BinaryCrossEntropyLoss(pos_weight=4.0)
    zb, yb = torch.randn(5), (torch.rand(5) > 0.5).float()
    torch.testing.assert_close(bmod(zb, yb), F.binary_cross_entropy_with_logits(zb, yb, pos_weight=torch.tensor(4.0)))
    assert set(bmod.state_dict()) == {"pos_weight"}


@pytest.mark.parametrize("dtype, scale", [(torch.float16, 100.0), (torch.bfloat16, 100.0), (torch.float32, 1e4)])
def test_extreme_logits(dtype, scale):
    z = (torch.tensor([[1.0, -1.0], [-1.0, 1.0]]) * scale).to(dtype).requires_grad_(True)
    loss = cross_entropy(z, torch.tensor([1, 1]), label_smoothing=0.1)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    zb = (torch.tensor([1.0, -1.0]) * scale).to(dtype).requires_grad_(True)
    loss = binary_cross_entropy(zb, torch.tensor([0.0, 1.0]), pos_weight=torch.tensor(3.0), label_smoothing=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zb.grad).all()


def test_invalid_arguments():
    with pytest.raises(ValueError, match="reduction='max'"):
        CrossEntropyLoss(reduction="max")
    with pytest.raises(ValueError, match="weight must be non-negative"):
        CrossEntropyLoss(weight=[-1.0, 1.0])
    with pytest.raises(ValueError, match="label_smoothing=-0.1"):
        BinaryCrossEntropyLoss(label_smoothing=-0.1)
    with pytest.raises(TypeError, match="ignore_index='x' must be an int"):
        CrossEntropyLoss(ignore_index="x")
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\)"):
        cross_entropy(torch.zeros(2, 3), torch.tensor([0, 1]), weight=torch.ones(2))
    with pytest.raises(ValueError, match="target must have the shape of logits"):
        binary_cross_entropy(torch.zeros(2, 3), torch.zeros(2))
