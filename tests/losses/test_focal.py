import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from tailtune.losses import (
    GammaSchedule,
    SigmoidFocalLoss,
    SoftmaxFocalLoss,
    sigmoid_focal_loss,
    softmax_focal_loss,
)

REDUCTIONS = ("none", "mean", "sum")


def _softmax_batch(n=12, c=5, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=dtype) * 2
    y = torch.randint(0, c, (n,), generator=g)
    return z, y


@pytest.mark.parametrize(
    "reduction, use_alpha, ignore, eps",
    list(itertools.product(REDUCTIONS, (False, True), (False, True), (0.0, 0.1))),
)
def test_softmax_gamma0_equals_cross_entropy(reduction, use_alpha, ignore, eps):
    z, y = _softmax_batch()
    if ignore:
        y[[1, 4]] = -100
    alpha = torch.tensor([0.5, 2.0, 1.0, 3.0, 0.25], dtype=z.dtype) if use_alpha else None
    ref = F.cross_entropy(z, y, weight=alpha, label_smoothing=eps, ignore_index=-100, reduction=reduction)
    got = softmax_focal_loss(z, y, gamma=0.0, alpha=alpha, label_smoothing=eps, reduction=reduction)
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-12)
    mod = SoftmaxFocalLoss(gamma=0.0, alpha=alpha, label_smoothing=eps, reduction=reduction).double()
    torch.testing.assert_close(mod(z, y), ref, rtol=1e-12, atol=1e-12)


def test_softmax_custom_ignore_index():
    z, y = _softmax_batch()
    y[0] = 7
    ref = F.cross_entropy(z, y, ignore_index=7)
    torch.testing.assert_close(softmax_focal_loss(z, y, gamma=0.0, ignore_index=7), ref)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0, 3.5])
def test_softmax_ratio_property(gamma):
    z, y = _softmax_batch(n=64)
    alpha = torch.rand(5, dtype=z.dtype) + 0.1
    ce = F.cross_entropy(z, y, weight=alpha, reduction="none")
    fl = softmax_focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="none")
    p_t = torch.softmax(z, 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(fl / ce, (1 - p_t) ** gamma)
    # unweighted CE: ratio alpha_t (1 - p_t)^gamma (torchvision's property)
    ce0 = F.cross_entropy(z, y, reduction="none")
    torch.testing.assert_close(fl / ce0, alpha[y] * (1 - p_t) ** gamma)


def test_softmax_reversed_focal():
    z, y = _softmax_batch(n=32)
    ce = F.cross_entropy(z, y, reduction="none")
    fl = softmax_focal_loss(z, y, gamma=-1.5, reduction="none")
    p_t = torch.softmax(z, 1).gather(1, y[:, None]).squeeze(1)
    torch.testing.assert_close(fl, ce * p_t**1.5)


def test_softmax_naive_with_smoothing_and_gamma():
    z, y = _softmax_batch(n=9, c=4)
    eps, gamma = 0.2, 2.0
    got = softmax_focal_loss(z, y, gamma=gamma, label_smoothing=eps, reduction="none")
    for i in range(9):
        logp = torch.log_softmax(z[i], 0)
        q = torch.full((4,), eps / 4, dtype=z.dtype)
        q[y[i]] += 1 - eps
        ref = -(q * logp).sum() * (1 - logp[y[i]].exp()) ** gamma
        torch.testing.assert_close(got[i], ref)


def test_sample_weight_contract():
    z, y = _softmax_batch()
    y[3] = -100
    alpha = torch.rand(5, dtype=z.dtype) + 0.5
    sw = torch.rand(12, dtype=z.dtype) + 0.1
    none = softmax_focal_loss(z, y, gamma=2.0, alpha=alpha, reduction="none")
    valid = (y != -100).to(z.dtype)
    w_t = alpha[y.clamp_min(0)] * valid
    got_mean = softmax_focal_loss(z, y, gamma=2.0, alpha=alpha, sample_weight=sw)
    torch.testing.assert_close(got_mean, (none * sw).sum() / (w_t * sw).sum())
    got_sum = softmax_focal_loss(z, y, gamma=2.0, alpha=alpha, sample_weight=sw, reduction="sum")
    torch.testing.assert_close(got_sum, (none * sw).sum())
    # scale invariance of the weighted mean
    torch.testing.assert_close(softmax_focal_loss(z, y, gamma=2.0, alpha=alpha, sample_weight=3 * sw), got_mean)


def test_all_ignored_is_zero_with_grad():
    z = torch.randn(4, 3, requires_grad=True)
    y = torch.full((4,), -100)
    loss = softmax_focal_loss(z, y)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(z.grad, torch.zeros_like(z))


def test_class_absent_from_batch():
    z, y = _softmax_batch()
    y = y.clamp(max=2)  # classes 3, 4 absent
    alpha = torch.tensor([1.0, 2.0, 3.0, 100.0, 100.0], dtype=z.dtype)
    ref = F.cross_entropy(z, y, weight=alpha)
    torch.testing.assert_close(softmax_focal_loss(z, y, gamma=0.0, alpha=alpha), ref)
    assert torch.isfinite(softmax_focal_loss(z, y, gamma=2.0, alpha=alpha))


@pytest.mark.parametrize("gamma", [2.0, 0.1, -1.0])
def test_softmax_gradcheck(gamma):
    z, y = _softmax_batch(n=5, c=3)
    z.requires_grad_(True)
    alpha = torch.tensor([0.3, 1.0, 2.0], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: softmax_focal_loss(t, y, gamma=gamma, alpha=alpha, label_smoothing=0.1, reduction="none"), (z,)
    )


@pytest.mark.parametrize("gamma", [2.0, 0.1, -1.0])
def test_sigmoid_gradcheck(gamma):
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    y = (torch.rand(4, 3, generator=g) > 0.5).double()
    pw = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: sigmoid_focal_loss(t, y, gamma=gamma, alpha=0.25, pos_weight=pw, label_smoothing=0.05,
                                     reduction="none"), (z,)
    )


@pytest.mark.parametrize(
    "dtype, scale", [(torch.float16, 100.0), (torch.bfloat16, 100.0), (torch.float32, 1e4)]
)
@pytest.mark.parametrize("gamma", [2.0, 0.1, 0.0, -0.5])
def test_extreme_logits_finite(dtype, scale, gamma):
    g = torch.Generator().manual_seed(2)
    sign = torch.randint(0, 2, (16, 4), generator=g).float() * 2 - 1
    z = (sign * scale).to(dtype).requires_grad_(True)
    y = torch.randint(0, 4, (16,), generator=g)
    loss = softmax_focal_loss(z, y, gamma=gamma, label_smoothing=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    zs = (sign[:, 0] * scale).to(dtype).requires_grad_(True)
    ys = torch.randint(0, 2, (16,), generator=g).to(dtype)
    loss = sigmoid_focal_loss(zs, ys, gamma=gamma, alpha=0.25, pos_weight=torch.tensor(3.0),
                              label_smoothing=0.05)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(zs.grad).all()


@pytest.mark.parametrize(
    "reduction, pos_weight, weight",
    list(itertools.product(REDUCTIONS, (None, "pw"), (None, "w"))),
)
def test_sigmoid_gamma0_equals_bce(reduction, pos_weight, weight):
    g = torch.Generator().manual_seed(3)
    z = torch.randn(10, 4, generator=g, dtype=torch.float64) * 3
    y = (torch.rand(10, 4, generator=g) > 0.6).double()
    pw = torch.tensor([1.0, 5.0, 0.5, 2.0], dtype=torch.float64) if pos_weight else None
    w = torch.tensor([2.0, 1.0, 0.1, 1.5], dtype=torch.float64) if weight else None
    ref = F.binary_cross_entropy_with_logits(z, y, pos_weight=pw, weight=w, reduction=reduction)
    if reduction == "none":
        ref = ref.sum(dim=1)  # "none" sums over labels (one value per example)
    got = sigmoid_focal_loss(z, y, gamma=0.0, pos_weight=pw, weight=w, reduction=reduction)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-12)


def test_sigmoid_binary_shape_and_smoothing():
    g = torch.Generator().manual_seed(4)
    z = torch.randn(20, generator=g, dtype=torch.float64)
    y = (torch.rand(20, generator=g) > 0.5).double()
    eps = 0.05
    ref = F.binary_cross_entropy_with_logits(z, y * (1 - eps) + (1 - y) * eps, reduction="none")
    got = sigmoid_focal_loss(z, y, gamma=0.0, label_smoothing=eps, reduction="none")
    torch.testing.assert_close(got, ref)
    # the modulator uses p_t of the ORIGINAL hard label
    p = torch.sigmoid(z)
    p_t = p * y + (1 - p) * (1 - y)
    got2 = sigmoid_focal_loss(z, y, gamma=2.0, label_smoothing=eps, reduction="none")
    torch.testing.assert_close(got2, ref * (1 - p_t) ** 2)


@pytest.mark.parametrize("alpha", [None, 0.25, 0.9])
@pytest.mark.parametrize("gamma", [0.0, 1.0, 2.0])
def test_sigmoid_ratio_property_torchvision(alpha, gamma):
    g = torch.Generator().manual_seed(5)
    z = torch.randn(8, 3, generator=g, dtype=torch.float64) * 2
    y = (torch.rand(8, 3, generator=g) > 0.5).double()
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none")
    fl_elem = torch.stack([sigmoid_focal_loss(z[:, [j]], y[:, [j]], gamma=gamma, alpha=alpha, reduction="none")
                           for j in range(3)], dim=1)
    p = torch.sigmoid(z)
    p_t = p * y + (1 - p) * (1 - y)
    a_t = 1.0 if alpha is None else alpha * y + (1 - alpha) * (1 - y)
    torch.testing.assert_close(fl_elem / bce, a_t * (1 - p_t) ** gamma)


def test_sigmoid_mean_is_elementwise_mean_with_sample_weight():
    z = torch.randn(6, 3, dtype=torch.float64)
    y = (torch.rand(6, 3) > 0.5).double()
    sw = torch.rand(6, dtype=torch.float64) + 0.5
    none = sigmoid_focal_loss(z, y, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(z, y, sample_weight=sw), (none * sw).sum() / (3 * sw.sum()))
    torch.testing.assert_close(sigmoid_focal_loss(z, y), none.sum() / 18)


def test_gamma_schedules():
    assert GammaSchedule("constant", start=2.0).value(0.3) == 2.0
    lin = GammaSchedule("linear", start=3.0, end=1.5)
    assert lin.value(0.0) == 3.0 and lin.value(1.0) == 1.5 and lin.value(0.5) == pytest.approx(2.25)
    cos = GammaSchedule("cosine", start=3.0, end=1.0)
    assert cos.value(0.0) == pytest.approx(3.0) and cos.value(0.5) == pytest.approx(2.0)
    assert cos.value(1.0) == pytest.approx(1.0)
    step = GammaSchedule("step", values=(3.0, 2.0, 1.0), milestones=(0.3, 0.6))
    assert [step.value(p) for p in (0.0, 0.3, 0.5, 0.9)] == [3.0, 2.0, 2.0, 1.0]
    assert GammaSchedule.from_spec({"schedule": "linear", "start": 3.0, "end": 1.5}) == lin


def test_schedule_in_losses():
    z, y = _softmax_batch()
    sched = GammaSchedule("linear", start=3.0, end=1.0)
    torch.testing.assert_close(softmax_focal_loss(z, y, gamma=sched, progress=0.5), softmax_focal_loss(z, y, gamma=2.0))
    mod = SoftmaxFocalLoss(gamma={"schedule": "linear", "start": 3.0, "end": 1.0})
    first = mod(z, y, progress=0.5)
    torch.testing.assert_close(mod(z, y), first)  # progress=None reuses the last one
    torch.testing.assert_close(mod(z, y, progress=0.0), softmax_focal_loss(z, y, gamma=3.0))
    smod = SigmoidFocalLoss(gamma=sched)
    zz = torch.randn(5, 2)
    yy = (torch.rand(5, 2) > 0.5).float()
    torch.testing.assert_close(smod(zz, yy, progress=1.0), sigmoid_focal_loss(zz, yy, gamma=1.0))


def test_buffers_follow_module():
    mod = SoftmaxFocalLoss(alpha=[1.0, 2.0])
    assert "alpha" in mod.state_dict()
    mod = mod.double()
    assert mod.alpha.dtype == torch.float64
    smod = SigmoidFocalLoss(alpha=0.25, pos_weight=[2.0, 3.0], weight=[1.0, 1.0])
    assert set(smod.state_dict()) == {"alpha", "pos_weight", "weight"}


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: SoftmaxFocalLoss(reduction="avg"), ValueError, r"reduction='avg' is not one of \['none', 'mean', 'sum'\]"),
        (lambda: SoftmaxFocalLoss(gamma="two"), TypeError, "gamma='two' must be a number"),
        (lambda: SoftmaxFocalLoss(gamma=float("nan")), ValueError, "gamma=nan must be a finite number"),
        (lambda: SoftmaxFocalLoss(alpha=[1.0, -1.0]), ValueError, "alpha must be non-negative"),
        (lambda: SoftmaxFocalLoss(alpha=[[[1.0]]]), ValueError, "alpha must be a non-empty 1-D"),
        (lambda: SoftmaxFocalLoss(label_smoothing=1.5), ValueError, r"label_smoothing=1.5 must be a finite number in \[0.0, 1.0\]"),
        (lambda: SoftmaxFocalLoss(ignore_index=1.5), TypeError, "ignore_index=1.5 must be an int"),
        (lambda: SigmoidFocalLoss(alpha=1.5), ValueError, r"alpha=1.5 must be a finite number in \[0.0, 1.0\]"),
        (lambda: SigmoidFocalLoss(alpha=[0.5, 2.0]), ValueError, "alpha for a sigmoid loss must lie in"),
        (lambda: SigmoidFocalLoss(label_smoothing=1.0), ValueError, "label_smoothing=1.0 must be"),
        (lambda: SigmoidFocalLoss(pos_weight=[-1.0]), ValueError, "pos_weight must be non-negative"),
        (lambda: GammaSchedule("exp"), ValueError, r"kind='exp' is not one of .*'constant'"),
        (lambda: GammaSchedule("linear", start=3.0), ValueError, "needs end="),
        (lambda: GammaSchedule("step", values=(1.0,), milestones=(0.5,)), ValueError, r"len\(values\) == len\(milestones\) \+ 1"),
        (lambda: GammaSchedule("step", values=(1.0, 2.0), milestones=(1.5,)), ValueError, "increasing and inside"),
        (lambda: GammaSchedule.from_spec({"schedule": "linear", "start": 1, "end": 2, "ends": 3}), ValueError, "unknown gamma schedule field 'ends'"),
        (lambda: GammaSchedule("linear", start=3.0, end=1.0).value(1.5), ValueError, r"progress=1.5 must be a finite number in \[0.0, 1.0\]"),
    ],
)
def test_invalid_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_invalid_call_arguments():
    z, y = _softmax_batch()
    with pytest.raises(ValueError, match="reduction='mena'.*did you mean 'mean'"):
        softmax_focal_loss(z, y, reduction="mena")
    with pytest.raises(ValueError, match="progress= .*is required"):
        softmax_focal_loss(z, y, gamma=GammaSchedule("linear", start=2.0, end=1.0))
    with pytest.raises(TypeError, match="integer class indices"):
        softmax_focal_loss(z, y.double())
    with pytest.raises(ValueError, match=r"logits must have shape \(N, C\)"):
        softmax_focal_loss(z[0], y)
    with pytest.raises(ValueError, match=r"target must have shape \(12,\)"):
        softmax_focal_loss(z, y[:3])
    with pytest.raises(ValueError, match=r"alpha must have shape \(5,\)"):
        softmax_focal_loss(z, y, alpha=torch.ones(3))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(12,\)"):
        softmax_focal_loss(z, y, sample_weight=torch.ones(2))
    with pytest.raises(ValueError, match="target must have the shape of logits"):
        sigmoid_focal_loss(z, y)
    with pytest.raises(ValueError, match="reduction='avg'"):
        sigmoid_focal_loss(z, z, reduction="avg")


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 16),
    c=st.integers(2, 7),
    gamma=st.floats(-2.0, 5.0),
    eps=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_property_softmax(n, c, gamma, eps, seed):
    z, y = _softmax_batch(n=n, c=c, seed=seed)
    fl = softmax_focal_loss(z, y, gamma=gamma, label_smoothing=eps, reduction="none")
    ce = F.cross_entropy(z, y, label_smoothing=eps, reduction="none")
    assert torch.isfinite(fl).all() and (fl >= 0).all()
    if gamma >= 0:
        assert (fl <= ce + 1e-12).all()  # the modulator never exceeds 1
    # permutation invariance of the mean
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    torch.testing.assert_close(
        softmax_focal_loss(z[perm], y[perm], gamma=gamma, label_smoothing=eps),
        softmax_focal_loss(z, y, gamma=gamma, label_smoothing=eps),
    )


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 12),
    c=st.integers(1, 5),
    gamma=st.floats(0.0, 5.0),
    alpha=st.one_of(st.none(), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**16),
)
def test_property_sigmoid(n, c, gamma, alpha, seed):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=torch.float64) * 4
    y = (torch.rand(n, c, generator=g) > 0.5).double()
    fl = sigmoid_focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="none")
    bce = F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1)
    assert torch.isfinite(fl).all() and (fl >= 0).all()
    assert (fl <= bce + 1e-12).all()


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_gamma0_gradient_equals_cross_entropy_gradient(eps):
    z, y = _softmax_batch()
    y[2] = -100
    alpha = torch.rand(5, dtype=z.dtype) + 0.5
    z1 = z.clone().requires_grad_(True)
    z2 = z.clone().requires_grad_(True)
    softmax_focal_loss(z1, y, gamma=0.0, alpha=alpha, label_smoothing=eps).backward()
    F.cross_entropy(z2, y, weight=alpha, label_smoothing=eps).backward()
    torch.testing.assert_close(z1.grad, z2.grad)
    zb = torch.randn(6, 3, dtype=torch.float64)
    yb = (torch.rand(6, 3) > 0.5).double()
    zb1, zb2 = zb.clone().requires_grad_(True), zb.clone().requires_grad_(True)
    sigmoid_focal_loss(zb1, yb, gamma=0.0, label_smoothing=eps).backward()
    F.binary_cross_entropy_with_logits(zb2, yb * (1 - eps) + (1 - yb) * eps).backward()
    torch.testing.assert_close(zb1.grad, zb2.grad)
