"""Dice/Tversky, asymmetric, logit adjustment, LDAM, distribution-balanced, hierarchy."""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.losses import (
    AsymmetricLoss,
    DistributionBalancedLoss,
    HierarchyPenalty,
    LDAMLoss,
    LogitAdjustedLoss,
    SoftDiceLoss,
    TverskyLoss,
    asymmetric_loss,
    distribution_balanced_loss,
    hierarchy_penalty,
    ldam_loss,
    ldam_margins,
    logit_adjusted_cross_entropy,
    parent_index,
    sigmoid_focal_loss,
    soft_dice_loss,
    tversky_loss,
)


def _ml(n=6, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(n, c, generator=g) > 0.6).double()
    return z, y


def _mc(n=8, c=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g, dtype=torch.float64) * 2, torch.randint(0, c, (n,), generator=g)


# ------------------------------------------------------------------------------------------- Dice
def test_dice_elementwise_reference():
    z, y = _ml()
    p = torch.sigmoid(z)
    for squared in (False, True):
        k = 2 if squared else 1
        ref = 1 - (2 * p * y + 1.0) / (p**k + y**k + 1.0)
        got = soft_dice_loss(z, y, kind="multilabel", squared=squared, reduction="none")
        torch.testing.assert_close(got, ref.sum(1))
        torch.testing.assert_close(soft_dice_loss(z, y, kind="multilabel", squared=squared), ref.mean())


def test_dice_softmax_reference_and_ignore():
    z, y = _mc()
    y[2] = -100
    p = torch.softmax(z, 1)
    for squared in (False, True):
        got = soft_dice_loss(z, y, kind="multiclass", squared=squared, smooth=0.5, reduction="none")
        for i in range(8):
            if y[i] == -100:
                assert got[i] == 0
                continue
            onehot = F.one_hot(y[i], 4).double()
            k = 2 if squared else 1
            ref = 1 - (2 * (p[i] * onehot).sum() + 0.5) / ((p[i] ** k).sum() + (onehot**k).sum() + 0.5)
            torch.testing.assert_close(got[i], ref)
        torch.testing.assert_close(soft_dice_loss(z, y, kind="multiclass", squared=squared, smooth=0.5),
                                   got.sum() / 7)


@pytest.mark.parametrize("kind", ["multilabel", "multiclass"])
def test_tversky_half_is_dice(kind):
    z, y = _ml() if kind == "multilabel" else _mc()
    torch.testing.assert_close(tversky_loss(z, y, kind=kind, alpha=0.5, beta=0.5, smooth=0.7, reduction="none"),
                               soft_dice_loss(z, y, kind=kind, smooth=1.4, reduction="none"))


def test_tversky_reference():
    z, y = _ml()
    p = torch.sigmoid(z)
    ref = 1 - (p * y + 1) / (p * y + 0.3 * p * (1 - y) + 0.7 * (1 - p) * y + 1)
    torch.testing.assert_close(tversky_loss(z, y, kind="multilabel", alpha=0.3, beta=0.7), ref.mean())
    mod = TverskyLoss(kind="multilabel", alpha=0.3, beta=0.7)
    torch.testing.assert_close(mod(z, y), ref.mean())


# -------------------------------------------------------------------------------------------- ASL
def test_asl_relations():
    z, y = _ml()
    bce = F.binary_cross_entropy_with_logits(z, y)
    torch.testing.assert_close(asymmetric_loss(z, y, gamma_pos=0, gamma_neg=0, clip=0), bce)
    torch.testing.assert_close(asymmetric_loss(z, y, gamma_pos=2, gamma_neg=2, clip=0),
                               sigmoid_focal_loss(z, y, gamma=2.0))


def test_asl_reference():
    z, y = _ml()
    gp, gn, m = 1.0, 4.0, 0.05
    p = torch.sigmoid(z)
    pm = (p - m).clamp_min(0)
    ref = -(y * (1 - p) ** gp * torch.log(p) + (1 - y) * pm**gn * torch.log(1 - pm))
    torch.testing.assert_close(asymmetric_loss(z, y, gamma_pos=gp, gamma_neg=gn, clip=m, reduction="none"), ref.sum(1))
    torch.testing.assert_close(AsymmetricLoss(gamma_pos=gp, gamma_neg=gn, clip=m)(z, y), ref.mean())


# ------------------------------------------------------------------------------- logit adjustment
def test_logit_adjustment():
    z, y = _mc()
    priors = torch.tensor([0.7, 0.2, 0.05, 0.05], dtype=torch.float64)
    torch.testing.assert_close(logit_adjusted_cross_entropy(z, y, priors=priors, tau=0.0), F.cross_entropy(z, y))
    torch.testing.assert_close(logit_adjusted_cross_entropy(z, y, priors=priors, tau=1.5),
                               F.cross_entropy(z + 1.5 * priors.log(), y))
    mod = LogitAdjustedLoss(counts=[70, 20, 5, 5]).double()
    torch.testing.assert_close(mod(z, y), F.cross_entropy(z + priors.log(), y))
    assert mod.needs_counts and "log_prior" in mod.state_dict()


# ------------------------------------------------------------------------------------------- LDAM
def test_ldam():
    counts = [1000, 100, 10, 1]
    m = ldam_margins(counts, max_margin=0.5)
    ref_m = torch.tensor([c ** -0.25 for c in counts])
    torch.testing.assert_close(m, ref_m * 0.5 / ref_m.max())
    z, y = _mc()
    torch.testing.assert_close(ldam_loss(z, y, margins=torch.zeros(4)), F.cross_entropy(z, y))
    shifted = z.clone()
    shifted[torch.arange(8), y] -= m.double()[y]
    torch.testing.assert_close(ldam_loss(z, y, margins=m.double(), scale=3.0), F.cross_entropy(3.0 * shifted, y))
    mod = LDAMLoss(counts=counts, scale=3.0).double()
    torch.testing.assert_close(mod(z, y), F.cross_entropy(3.0 * shifted, y))


# ---------------------------------------------------------------------------- distribution-balanced
def test_distribution_balanced_reference():
    z, y = _ml(n=5, c=3)
    y[0] = 0  # an example without labels
    counts, n_train = [40, 8, 2], 50
    kappa, lam, a, b, mu = 0.05, 2.0, 0.1, 10.0, 0.2
    got = distribution_balanced_loss(z, y, counts=counts, num_samples=n_train, reduction="none")
    for i in range(5):
        total = 0.0
        pos_labels = [j for j in range(3) if y[i, j] == 1]
        for c in range(3):
            if pos_labels:
                r = (1 / counts[c]) / sum(1 / counts[j] for j in pos_labels)
                w = a + torch.sigmoid(torch.tensor(b * (r - mu), dtype=torch.float64))
            else:
                w = torch.tensor(a + 1.0, dtype=torch.float64)
            p = counts[c] / n_train
            zc = z[i, c] + kappa * torch.log(torch.tensor(p / (1 - p), dtype=torch.float64))
            if y[i, c] == 1:
                term = -torch.log(torch.sigmoid(zc))
            else:
                term = -torch.log(1 - torch.sigmoid(lam * zc)) / lam
            total = total + w * term
        torch.testing.assert_close(got[i], total)
    mod = DistributionBalancedLoss(counts=counts, num_samples=n_train).double()
    torch.testing.assert_close(mod(z, y), got.sum() / 15)


def test_distribution_balanced_reduces_to_bce():
    z, y = _ml()
    got = distribution_balanced_loss(z, y, counts=[5, 5, 5, 5], num_samples=20, kappa=0.0, neg_scale=1.0,
                                     map_alpha=0.5, map_beta=0.0)
    torch.testing.assert_close(got, F.binary_cross_entropy_with_logits(z, y))


# -------------------------------------------------------------------------------------- hierarchy
def test_hierarchy_penalty():
    z = torch.tensor([[-2.0, 3.0, 0.0], [2.0, -1.0, 5.0]], dtype=torch.float64)
    parents = [-1, 0, 0]
    p = torch.sigmoid(z)
    ref = torch.relu(p[:, 1] - p[:, 0]) + torch.relu(p[:, 2] - p[:, 0])
    torch.testing.assert_close(hierarchy_penalty(z, parents, reduction="none"), ref)
    torch.testing.assert_close(hierarchy_penalty(z, parents), ref.sum() / 4)
    ref_l = torch.relu(z[:, 1] - z[:, 0] + 0.5) + torch.relu(z[:, 2] - z[:, 0] + 0.5)
    torch.testing.assert_close(hierarchy_penalty(z, parents, space="logit", margin=0.5, reduction="sum"), ref_l.sum())
    mod = HierarchyPenalty(parent_of={"child": "root", "other": "root"}, names=["root", "child", "other"])
    assert mod.parents.tolist() == [-1, 0, 0] and mod.count_unit == "pairs"
    torch.testing.assert_close(mod(z.float(), None), hierarchy_penalty(z.float(), parents))
    consistent = torch.tensor([[3.0, 1.0, -2.0]])
    assert hierarchy_penalty(consistent, parents).item() == 0.0


def test_parent_index_errors():
    with pytest.raises(ValueError, match="cycle"):
        parent_index([1, 0])
    with pytest.raises(ValueError, match="its own parent"):
        parent_index([0, -1])
    with pytest.raises(ValueError, match="no \\(child, parent\\) pair"):
        parent_index([-1, -1])
    with pytest.raises(ValueError, match="unknown label 'vilent'.*did you mean 'violent'"):
        parent_index({"x": "vilent"}, names=["violent", "x"])
    with pytest.raises(ValueError, match="must be -1 or in"):
        parent_index([-1, 5])


# ------------------------------------------------------------------------- shared: grads, stability
FAMILY_CALLS = {
    "dice_ml": lambda z, kind: soft_dice_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 2).to(z.dtype),
                                              kind="multilabel", squared=True),
    "tversky_mc": lambda z, kind: tversky_loss(z, torch.arange(z.shape[0]) % z.shape[1], kind="multiclass",
                                               alpha=0.3, beta=0.7),
    "asl": lambda z, kind: asymmetric_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype)),
    "la": lambda z, kind: logit_adjusted_cross_entropy(z, torch.arange(z.shape[0]) % z.shape[1],
                                                       priors=torch.linspace(1, 4, z.shape[1])),
    "ldam": lambda z, kind: ldam_loss(z, torch.arange(z.shape[0]) % z.shape[1],
                                      margins=ldam_margins(torch.arange(1, z.shape[1] + 1) * 10), scale=2.0),
    "db": lambda z, kind: distribution_balanced_loss(
        z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype),
        counts=torch.arange(1, z.shape[1] + 1) * 5, num_samples=100, gamma=0.5),
    "hierarchy": lambda z, kind: hierarchy_penalty(z, [-1] + [0] * (z.shape[1] - 1)),
}


@pytest.mark.parametrize("name", sorted(FAMILY_CALLS))
def test_family_gradcheck(name):
    z = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: FAMILY_CALLS[name](t, None), (z,))


@pytest.mark.parametrize("name", sorted(FAMILY_CALLS))
@pytest.mark.parametrize("dtype, scale", [(torch.float16, 100.0), (torch.bfloat16, 100.0), (torch.float32, 1e4)])
def test_family_extreme_logits(name, dtype, scale):
    g = torch.Generator().manual_seed(0)
    z = (torch.sign(torch.randn(8, 3, generator=g)) * scale).to(dtype).requires_grad_(True)
    loss = FAMILY_CALLS[name](z, None)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: SoftDiceLoss(kind="multi"), ValueError, r"kind='multi' is not one of"),
        (lambda: SoftDiceLoss(kind="multilabel", smooth=-1), ValueError, "smooth=-1 must be"),
        (lambda: TverskyLoss(kind="binary", alpha=-0.1), ValueError, "alpha=-0.1 must be"),
        (lambda: TverskyLoss(kind="binary", alpha=0, beta=0, smooth=0), ValueError, "cannot all be 0"),
        (lambda: AsymmetricLoss(gamma_neg=-1), ValueError, "gamma_neg=-1 must be"),
        (lambda: AsymmetricLoss(clip=1.0), ValueError, r"clip=1.0 must be a finite number in \[0.0, 1.0\)"),
        (lambda: LogitAdjustedLoss(), ValueError, "exactly one of counts= or priors="),
        (lambda: LogitAdjustedLoss(priors=[0.5, 0.0]), ValueError, "priors must be positive"),
        (lambda: LogitAdjustedLoss(counts=[5, 0]), ValueError, r"counts has zero for class index \[1\]"),
        (lambda: LogitAdjustedLoss(counts=[5, 5], tau=-1), ValueError, "tau=-1 must be"),
        (lambda: LDAMLoss(counts=[5, 5], max_margin=0), ValueError, "max_margin=0 must be"),
        (lambda: LDAMLoss(counts=[5, 5], scale=0), ValueError, "scale=0 must be"),
        (lambda: DistributionBalancedLoss(counts=[5, 5], num_samples=0), ValueError, "num_samples=0 must be a positive int"),
        (lambda: DistributionBalancedLoss(counts=[5, 50], num_samples=20), ValueError, "must be < num_samples=20"),
        (lambda: DistributionBalancedLoss(counts=[5, 5], num_samples=20, neg_scale=0), ValueError, "neg_scale=0 must be"),
        (lambda: HierarchyPenalty(parent_of=[-1, 0], space="log"), ValueError, r"space='log' is not one of \['prob', 'logit'\]"),
        (lambda: HierarchyPenalty(parent_of=[-1, 0], margin=-1), ValueError, "margin=-1 must be"),
        (lambda: HierarchyPenalty(parent_of={"a": "b"}), ValueError, "needs names="),
    ],
)
def test_invalid_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**16), a=st.floats(0.0, 1.0), b=st.floats(0.0, 1.0))
def test_property_bounds(seed, a, b):
    z, y = _ml(seed=seed)
    t = tversky_loss(z, y, kind="multilabel", alpha=a, beta=b, smooth=1.0, reduction="none")
    d = soft_dice_loss(z, y, kind="multilabel", reduction="none")
    assert (t >= -1e-12).all() and (t <= 4 + 1e-12).all()  # each element in [0, 1], 4 labels
    assert (d >= -1e-12).all() and (d <= 4 + 1e-12).all()
    asl = asymmetric_loss(z, y, reduction="none")
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1)
    assert (asl <= bce + 1e-12).all()  # ASL only down-weights (clip shrinks negatives' loss)
