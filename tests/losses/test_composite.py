import pytest
import torch
import torch.nn.functional as F

from tailtune.losses import CompositeLoss, CrossEntropyLoss, SoftmaxFocalLoss, SupConLoss, get


def _batch(n=8, c=3, d=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c, generator=g), torch.randint(0, c, (n,), generator=g), torch.randn(n, d, generator=g))


def test_total_and_parts():
    z, y, e = _batch()
    z.requires_grad_(True)
    focal, supcon = SoftmaxFocalLoss(gamma=1.0), SupConLoss()
    loss = CompositeLoss({"focal": (0.7, focal), "supcon": (0.3, supcon)})
    total, parts = loss(z, y, embeddings=e)
    f, s = focal(z, y), supcon(z, y, embeddings=e)
    torch.testing.assert_close(total, 0.7 * f + 0.3 * s)
    torch.testing.assert_close(parts["focal"], f)
    torch.testing.assert_close(parts["supcon"], s)
    assert not parts["focal"].requires_grad and total.requires_grad
    assert loss.uses_embeddings


def test_uncertainty_weighting():
    z, y, e = _batch()
    loss = CompositeLoss({"ce": (1.0, CrossEntropyLoss()), "supcon": (0.5, SupConLoss())}, auto_balance=True)
    with torch.no_grad():
        loss.log_vars.copy_(torch.tensor([0.3, -0.2]))
    total, parts = loss(z, y, embeddings=e)
    ref = torch.exp(torch.tensor(-0.3)) * parts["ce"] + 0.3 + torch.exp(torch.tensor(0.2)) * 0.5 * parts["supcon"] - 0.2
    torch.testing.assert_close(total.detach(), ref)
    total.backward()
    assert loss.log_vars.grad is not None and torch.isfinite(loss.log_vars.grad).all()
    assert [n for n, _ in loss.named_parameters()] == ["log_vars"]


def test_num_items_in_batch_gives_exact_accumulation():
    z, y, e = _batch(n=12)
    y[0] = -100
    loss = CompositeLoss({"ce": (1.0, CrossEntropyLoss()), "supcon": (0.5, SupConLoss())})
    full_ce = F.cross_entropy(z, y)
    n_items = int((y != -100).sum())
    acc = torch.zeros(())
    ce_acc = torch.zeros(())
    for sl in (slice(0, 5), slice(5, 12)):
        total, parts = loss(z[sl], y[sl], embeddings=e[sl], num_items_in_batch=n_items)
        acc = acc + total
        ce_acc = ce_acc + parts["ce"]
    torch.testing.assert_close(ce_acc, full_ce)  # exact across micro-batches
    # anchors part: micro-batch means weighted by local items / num_items
    s1 = SupConLoss()(None, y[:5], embeddings=e[:5]) * (4 / 11)
    s2 = SupConLoss()(None, y[5:], embeddings=e[5:]) * (7 / 11)
    torch.testing.assert_close(acc, full_ce + 0.5 * (s1 + s2))


def test_with_registry_and_lengths():
    z = torch.randn(5)
    y = (torch.rand(5) > 0.5).float()
    loss = CompositeLoss({"w": (1.0, get("weighted", kind="binary")), "bce": (1.0, get("ce", kind="binary"))})
    assert loss.uses_lengths
    total, parts = loss(z, y, lengths=torch.tensor([5, 6, 7, 8, 9]))
    assert torch.isfinite(total) and set(parts) == {"w", "bce"}


@pytest.mark.parametrize(
    "parts, kwargs, exc, match",
    [
        ({}, {}, ValueError, "non-empty mapping"),
        ({"a b": (1.0, CrossEntropyLoss())}, {}, ValueError, "part name 'a b' must be"),
        ({"a": CrossEntropyLoss()}, {}, TypeError, r"parts\['a'\] must be a \(weight, module\) pair"),
        ({"a": (-1.0, CrossEntropyLoss())}, {}, ValueError, r"parts\['a'\] weight=-1.0 must be"),
        ({"a": (1.0, "ce")}, {}, TypeError, "module must be an nn.Module"),
        ({"a": (1.0, CrossEntropyLoss(reduction="none"))}, {}, ValueError, "reduction='none'"),
        ({"a": (1.0, CrossEntropyLoss())}, {"auto_balance": "yes"}, TypeError, "auto_balance='yes' must be a bool"),
    ],
)
def test_invalid(parts, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        CompositeLoss(parts, **kwargs)
