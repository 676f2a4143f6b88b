import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.losses import SupConLoss, positive_weights, supervised_contrastive_loss


def naive_supcon(emb, weights, temperature):
    """Loop reference: per anchor, -sum_j w_ij log softmax_{j != i}(s_i)_j / sum_j w_ij."""
    z = F.normalize(emb, dim=1)
    n = z.shape[0]
    losses, counted = [], []
    for i in range(n):
        others = [j for j in range(n) if j != i]
        logits = torch.stack([z[i] @ z[j] / temperature for j in others])
        log_prob = logits - torch.logsumexp(logits, 0)
        w = torch.stack([torch.as_tensor(weights(i, j), dtype=emb.dtype) for j in others])
        if w.sum() > 0:
            losses.append(-(w * log_prob).sum() / w.sum())
            counted.append(True)
        else:
            losses.append(torch.zeros((), dtype=emb.dtype))
            counted.append(False)
    none = torch.stack(losses)
    k = sum(counted)
    return none, (none.sum() / k if k else none.sum() * 0)


def jaccard(a, b):
    a, b = set(a), set(b)
    return 1.0 if not a | b else len(a & b) / len(a | b)


def _emb(n, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.5])
def test_int_labels_naive(temperature):
    emb = _emb(10)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 0, 4])  # classes 2 and 4 have no positive
    none_ref, mean_ref = naive_supcon(emb, lambda i, j: float(y[i] == y[j]), temperature)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, temperature=temperature, reduction="none"), none_ref)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, temperature=temperature), mean_ref)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, temperature=temperature, reduction="sum"),
                               none_ref.sum())


@pytest.mark.parametrize("n, d, classes", [(16, 8, 3), (64, 32, 10), (128, 384, 20)])
def test_equals_pytorch_metric_learning(n, d, classes):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    g = torch.Generator().manual_seed(n)
    emb = torch.randn(n, d, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    e1 = emb.clone().requires_grad_(True)
    e2 = emb.clone().requires_grad_(True)
    ours = supervised_contrastive_loss(e1, y, temperature=0.1)
    ref = pml.SupConLoss(temperature=0.1)(e2, y)
    torch.testing.assert_close(ours, ref, rtol=1e-5, atol=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-5, atol=1e-7)


def test_multilabel_jaccard_and_exact():
    emb = _emb(7)
    y = torch.tensor([[1, 0, 1], [1, 0, 0], [1, 0, 1], [0, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]).double()
    sets = [tuple(torch.nonzero(r).flatten().tolist()) for r in y]
    none_ref, mean_ref = naive_supcon(emb, lambda i, j: jaccard(sets[i], sets[j]), 0.1)
    got = supervised_contrastive_loss(emb, y, kind="multilabel", reduction="none")
    torch.testing.assert_close(got, none_ref)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, kind="multilabel"), mean_ref)
    none_ex, mean_ex = naive_supcon(emb, lambda i, j: float(sets[i] == sets[j]), 0.1)
    torch.testing.assert_close(
        supervised_contrastive_loss(emb, y, kind="multilabel", positives="exact", reduction="none"), none_ex)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, kind="multilabel", positives="exact"), mean_ex)


@pytest.mark.parametrize("absent", [None, 3])
def test_aspects_jaccard(absent):
    emb = _emb(6)
    y = torch.tensor([[0, 3, 1], [0, 3, 2], [3, 3, 3], [0, 3, 1], [1, 1, 3], [3, 3, 3]])

    def as_set(r):
        return {(a, int(v)) for a, v in enumerate(r) if absent is None or int(v) != absent}

    sets = [as_set(r) for r in y]
    none_ref, _ = naive_supcon(emb, lambda i, j: jaccard(sets[i], sets[j]), 0.2)
    got = supervised_contrastive_loss(emb, y, kind="aspects", absent_index=absent, temperature=0.2, reduction="none")
    torch.testing.assert_close(got, none_ref)


def test_single_label_rows_jaccard_equals_int():
    emb = _emb(8)
    y = torch.tensor([0, 1, 1, 2, 0, 2, 2, 1])
    onehot = F.one_hot(y, 3).double()
    torch.testing.assert_close(supervised_contrastive_loss(emb, onehot, kind="multilabel"),
                               supervised_contrastive_loss(emb, y))


def test_no_positive_anchor_gives_zero_with_grad():
    emb = _emb(5).requires_grad_(True)
    loss = supervised_contrastive_loss(emb, torch.arange(5))
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.isfinite(emb.grad).all() and emb.grad.abs().sum() == 0


def test_sample_weight_mean():
    emb = _emb(8)
    y = torch.tensor([0, 0, 1, 1, 2, 3, 3, 3])
    sw = torch.rand(8, dtype=torch.float64) + 0.1
    none = supervised_contrastive_loss(emb, y, reduction="none")
    counted = torch.tensor([1, 1, 1, 1, 0, 1, 1, 1], dtype=torch.float64)
    torch.testing.assert_close(supervised_contrastive_loss(emb, y, sample_weight=sw),
                               (none * sw).sum() / (counted * sw).sum())


def test_gradcheck():
    emb = _emb(6, 4).requires_grad_(True)
    y = torch.tensor([0, 0, 1, 1, 1, 2])
    w = torch.rand(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e: supervised_contrastive_loss(e, y, reduction="none") * w, (emb,))
    ym = torch.tensor([[1, 0], [1, 1], [0, 1], [0, 0], [1, 0], [0, 1]]).double()
    assert torch.autograd.gradcheck(
        lambda e: supervised_contrastive_loss(e, ym, kind="multilabel", temperature=0.3), (emb,))


@pytest.mark.parametrize("dtype, scale", [(torch.float16, 100.0), (torch.bfloat16, 100.0), (torch.float32, 1e4)])
def test_extreme_embeddings_finite(dtype, scale):
    g = torch.Generator().manual_seed(0)
    emb = (torch.sign(torch.randn(16, 8, generator=g)) * scale).to(dtype).requires_grad_(True)
    y = torch.randint(0, 3, (16,), generator=g)
    loss = supervised_contrastive_loss(emb, y, temperature=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emb.grad).all()


def test_module_contract():
    mod = SupConLoss(temperature=0.2)
    assert mod.uses_embeddings and mod.count_unit == "anchors"
    emb = _emb(6)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    torch.testing.assert_close(mod(None, y, embeddings=emb), supervised_contrastive_loss(emb, y, temperature=0.2))
    with pytest.raises(ValueError, match="needs embeddings="):
        mod(torch.zeros(6, 3), y)
    # aspects targets flattened by the training layer are reshaped back
    amod = SupConLoss(kind="aspects", absent_index=2)
    ya = torch.tensor([[0, 2], [0, 1], [1, 2], [0, 2], [2, 2], [1, 1]])
    torch.testing.assert_close(amod(None, ya.reshape(-1), embeddings=emb), amod(None, ya, embeddings=emb))
    # binary float targets
    yb = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    torch.testing.assert_close(mod(None, yb, embeddings=emb), mod(None, yb.long(), embeddings=emb))


def test_positive_weights_matrix():
    w = positive_weights(torch.tensor([0, 1, 0]))
    assert w.tolist() == [[0, 0, 1], [0, 0, 0], [1, 0, 0]]


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(temperature=0.0), ValueError, r"temperature=0.0 must be a finite number in \(0.0, inf\)"),
        (dict(positives="all"), ValueError, r"positives='all' is not one of \['jaccard', 'exact'\]"),
        (dict(reduction="avg"), ValueError, "reduction='avg'"),
        (dict(kind="multi"), ValueError, "kind='multi' is not one of"),
        (dict(absent_index=2), ValueError, "absent_index applies only to kind='aspects'"),
    ],
)
def test_invalid_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        SupConLoss(**kwargs)
    with pytest.raises(exc, match=match):
        supervised_contrastive_loss(_emb(4), torch.tensor([0, 0, 1, 1]), **kwargs)


def test_invalid_labels():
    emb = _emb(4)
    with pytest.raises(ValueError, match=r"need kind='multilabel' .* or kind='aspects'"):
        supervised_contrastive_loss(emb, torch.zeros(4, 2))
    with pytest.raises(ValueError, match=r"labels must have shape \(4,\)"):
        supervised_contrastive_loss(emb, torch.zeros(3))
    with pytest.raises(ValueError, match="needs a label matrix"):
        supervised_contrastive_loss(emb, torch.zeros(4), kind="multilabel")
    with pytest.raises(ValueError, match=r"embeddings must be a tensor of shape \(N, D\)"):
        supervised_contrastive_loss(emb[0], torch.zeros(4))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 24), classes=st.integers(1, 6), seed=st.integers(0, 2**16), t=st.floats(0.05, 1.0))
def test_property_permutation_and_bounds(n, classes, seed, t):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (n,), generator=g)
    none = supervised_contrastive_loss(emb, y, temperature=t, reduction="none")
    perm = torch.randperm(n, generator=g)
    torch.testing.assert_close(supervised_contrastive_loss(emb[perm], y[perm], temperature=t, reduction="none"),
                               none[perm])
    has_pos = torch.tensor([(y == y[i]).sum() > 1 for i in range(n)])
    assert (none[~has_pos] == 0).all()
    # Jensen: logsumexp over the k positives >= log k + their mean similarity, so L_i >= log k_i
    k = torch.tensor([float((y == y[i]).sum() - 1) for i in range(n)], dtype=torch.float64)
    assert torch.isfinite(none).all()
    assert (none[has_pos] >= torch.log(k[has_pos]) - 1e-9).all()
