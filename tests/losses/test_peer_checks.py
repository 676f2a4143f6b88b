"""The loss libraries' own test ideas, adopted (issue 18, "Losses, from the peers' tests").

* torchvision ``sigmoid_focal_loss``: its formula as a reference over a gamma x alpha grid, and
  its ``alpha=-1`` ("no weighting") convention, the same in the function and the module;
* kornia's focal-loss tests: float64 ``gradcheck`` and logits of +-100 in float16/bfloat16/float32;
* soft targets (distillation, label smoothing done by the caller) receive a gradient;
* second-order terms (gradient penalties): ``gradgradcheck`` in float64;
* gradients on partly ignored rows, for every softmax loss of the registry;
* ASL (Ridnik et al. 2021): its degenerate cases with gradients, and its reference implementation's
  clip shift;
* supervised contrastive against pytorch-metric-learning's ``SupConLoss`` over temperatures
  0.05..1 and batches up to 512 (values and gradients);
* logit adjustment keeps float64 priors at float64.
"""

import itertools
import warnings

import pytest
import torch
import torch.nn.functional as F

from tailtune.losses import (
    AsymmetricLoss,
    LogitAdjustedLoss,
    SigmoidFocalLoss,
    asymmetric_loss,
    available,
    get,
    logit_adjusted_cross_entropy,
    sigmoid_focal_loss,
    softmax_focal_loss,
    supervised_contrastive_loss,
)

F64 = torch.float64


def _ml(n=12, c=5, seed=0, scale=2.0, dtype=F64, soft=False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=dtype) * scale
    y = torch.rand(n, c, generator=g, dtype=dtype) if soft else (torch.rand(n, c, generator=g) > 0.6).to(dtype)
    return z, y


def torchvision_focal(z, y, *, alpha, gamma, reduction="none"):
    """torchvision.ops.sigmoid_focal_loss's formula: BCE * (1 - p_t)^gamma, times alpha_t when alpha >= 0."""
    p = torch.sigmoid(z)
    loss = F.binary_cross_entropy_with_logits(z, y, reduction="none") * (1 - (p * y + (1 - p) * (1 - y))) ** gamma
    if alpha >= 0:
        loss = (alpha * y + (1 - alpha) * (1 - y)) * loss
    return {"none": loss, "sum": loss.sum(), "mean": loss.mean()}[reduction]


# ---------------------------------------------------------------------------------- torchvision
@pytest.mark.parametrize("soft", [False, True])
@pytest.mark.parametrize("gamma, alpha", list(itertools.product([0.0, 0.5, 1.0, 2.0, 5.0], [-1, 0.0, 0.25, 0.5, 0.9])))
def test_sigmoid_focal_equals_torchvision_formula(gamma, alpha, soft):
    z, y = _ml(soft=soft)
    ref = torchvision_focal(z, y, alpha=alpha, gamma=gamma)
    torch.testing.assert_close(sigmoid_focal_loss(z, y, gamma=gamma, alpha=alpha, reduction="none"), ref.sum(1))
    torch.testing.assert_close(sigmoid_focal_loss(z, y, gamma=gamma, alpha=alpha), ref.mean())
    module = SigmoidFocalLoss(gamma=gamma, alpha=alpha, reduction="sum").double()
    torch.testing.assert_close(module(z, y), ref.sum())
    # and the gradients (the fused path's closed form against autograd through the formula)
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    sigmoid_focal_loss(z1, y, gamma=gamma, alpha=alpha).backward()
    torchvision_focal(z2, y, alpha=alpha, gamma=gamma, reduction="mean").backward()
    torch.testing.assert_close(z1.grad, z2.grad)


def test_alpha_minus_one_is_no_weighting_in_function_and_module():
    z, y = _ml()
    plain = sigmoid_focal_loss(z, y, gamma=2.0, alpha=None, reduction="none")
    torch.testing.assert_close(sigmoid_focal_loss(z, y, gamma=2.0, alpha=-1, reduction="none"), plain)
    torch.testing.assert_close(sigmoid_focal_loss(z, y, gamma=2.0, alpha=-1.0, reduction="none"), plain)
    module = SigmoidFocalLoss(gamma=2.0, alpha=-1, reduction="none").double()
    assert module.alpha is None
    torch.testing.assert_close(module(z, y), plain)
    assert (sigmoid_focal_loss(z, y, gamma=0.0, alpha=-1, reduction="none") >= 0).all()


def test_linter_does_not_count_alpha_minus_one_as_class_weighting():
    from tailtune.diagnostics import lint
    from tailtune.losses.focal import NO_ALPHA

    assert lint._NO_ALPHA == NO_ALPHA  # the linter's torch-free copy of the rule
    recipe = {"task": {"kind": "multilabel"}, "loss": {"focal": {"alpha": -1}}, "weighting": {"scheme": "inverse"}}
    assert "double_weighting" not in [f.rule for f in lint.lint_recipe(recipe)]
    recipe["loss"]["focal"]["alpha"] = 0.75
    assert "double_weighting" in [f.rule for f in lint.lint_recipe(recipe)]


@pytest.mark.parametrize("alpha", [-0.5, 1.5, float("nan"), -2])
def test_other_alphas_outside_unit_interval_are_refused_by_both(alpha):
    z, y = _ml()
    with pytest.raises(ValueError, match=r"must be a finite number in \[0.0, 1.0\].*or -1 / None for no weighting"):
        sigmoid_focal_loss(z, y, alpha=alpha)
    with pytest.raises(ValueError, match=r"must be a finite number in \[0.0, 1.0\].*or -1 / None for no weighting"):
        SigmoidFocalLoss(alpha=alpha)
    with pytest.raises(ValueError, match=r"alpha for a sigmoid loss must lie in \[0, 1\]"):
        sigmoid_focal_loss(z, y, alpha=[0.5, -1.0, 0.5, 0.5, 0.5])


# ---------------------------------------------------------------------------------------- kornia
FOCAL_CALLS = {
    "softmax_focal": lambda z, g: softmax_focal_loss(z, torch.arange(z.shape[0]) % z.shape[1], gamma=g,
                                                     alpha=torch.linspace(0.5, 2.0, z.shape[1], dtype=z.dtype),
                                                     label_smoothing=0.1),
    "sigmoid_focal": lambda z, g: sigmoid_focal_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype),
                                                     gamma=g, alpha=0.25, pos_weight=torch.tensor(2.0, dtype=z.dtype)),
    "asymmetric": lambda z, g: asymmetric_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype),
                                               gamma_pos=max(g, 0.0), gamma_neg=4.0, clip=0.05),
}


@pytest.mark.parametrize("name", sorted(FOCAL_CALLS))
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, -1.0])
def test_kornia_gradcheck_float64(name, gamma):
    z = (torch.randn(5, 4, dtype=F64, generator=torch.Generator().manual_seed(3)) * 2).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: FOCAL_CALLS[name](t, gamma), (z,))


@pytest.mark.parametrize("name", sorted(FOCAL_CALLS))
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
@pytest.mark.parametrize("gamma", [0.0, 0.5, 2.0, -1.0])
def test_kornia_logits_plus_minus_100(name, dtype, gamma):
    g = torch.Generator().manual_seed(4)
    z = (torch.randint(0, 2, (8, 4), generator=g) * 200 - 100).to(dtype).requires_grad_(True)
    loss = FOCAL_CALLS[name](z, gamma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all() and z.grad.dtype == dtype


# --------------------------------------------------------------------------------- soft targets
@pytest.mark.parametrize("gamma", [0.0, 2.0, 0.5, -1.0])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_soft_targets_receive_their_gradient(gamma, eps):
    z, y = _ml(soft=True)
    z.requires_grad_(True)
    y.requires_grad_(True)
    loss = sigmoid_focal_loss(z, y, gamma=gamma, alpha=0.25, pos_weight=torch.tensor(3.0, dtype=F64),
                              label_smoothing=eps)
    gz, gy = torch.autograd.grad(loss, (z, y))
    assert gy.abs().sum() > 0
    assert torch.autograd.gradcheck(
        lambda a, b: sigmoid_focal_loss(a, b, gamma=gamma, alpha=0.25, label_smoothing=eps), (z, y))


def test_soft_target_gradient_reaches_a_teacher():
    """Distillation: the target comes from a trainable teacher; its parameters must get a gradient."""
    z, _ = _ml()
    teacher = torch.nn.Linear(5, 5).double()
    y = torch.sigmoid(teacher(z))
    sigmoid_focal_loss(z.requires_grad_(True), y, gamma=2.0).backward()
    assert teacher.weight.grad is not None and teacher.weight.grad.abs().sum() > 0
    ya = torch.sigmoid(teacher(z))
    teacher.zero_grad()
    asymmetric_loss(z, ya, gamma_neg=2.0, clip=0.0).backward()
    assert teacher.weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- double backward
DOUBLE = {
    "softmax_focal": lambda z: softmax_focal_loss(z, torch.arange(z.shape[0]) % z.shape[1], gamma=2.0,
                                                  alpha=torch.linspace(0.5, 2.0, z.shape[1], dtype=z.dtype),
                                                  label_smoothing=0.1),
    "reversed_focal": lambda z: softmax_focal_loss(z, torch.arange(z.shape[0]) % z.shape[1], gamma=-1.0,
                                                   reduction="none"),
    "sigmoid_focal": lambda z: sigmoid_focal_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype),
                                                  gamma=2.0, alpha=0.25, pos_weight=torch.tensor(2.0, dtype=z.dtype),
                                                  label_smoothing=0.05),
    "asymmetric": lambda z: asymmetric_loss(z, (torch.arange(z.numel()).reshape(z.shape) % 3 == 0).to(z.dtype),
                                            gamma_pos=1.0, gamma_neg=3.0, clip=0.05, reduction="sum"),
    "supcon": lambda z: supervised_contrastive_loss(z, torch.tensor([0, 0, 1, 1, 2, 0])[: z.shape[0]],
                                                    temperature=0.5),
}


@pytest.mark.parametrize("name", sorted(DOUBLE))
def test_double_backward_gradgradcheck(name):
    z = torch.randn(6, 4, dtype=F64, generator=torch.Generator().manual_seed(5)).requires_grad_(True)
    assert torch.autograd.gradgradcheck(DOUBLE[name], (z,))


@pytest.mark.parametrize("name", sorted(DOUBLE))
def test_gradient_penalty_keeps_second_order_terms(name):
    """loss + |dloss/dz|^2 (a gradient penalty added to the loss): its gradient, which needs the
    second derivative of the loss, matches finite differences."""

    def penalised(t):
        loss = DOUBLE[name](t).sum()
        (g,) = torch.autograd.grad(loss, t, create_graph=True)
        return loss + g.pow(2).sum()

    z = torch.randn(6, 4, dtype=F64, generator=torch.Generator().manual_seed(6)).requires_grad_(True)
    assert torch.autograd.gradcheck(penalised, (z,))


# ------------------------------------------------------------------------ partly ignored rows
SOFTMAX_CTOR = {"ldam": {"counts": [50, 20, 5, 2]}, "logit_adjusted": {"counts": [50, 20, 5, 2]}}


@pytest.mark.parametrize("name", available(kind="multiclass", aliases=False))
def test_partly_ignored_rows_get_zero_gradient_and_do_not_count(name):
    g = torch.Generator().manual_seed(7)
    z = torch.randn(10, 4, generator=g, dtype=F64) * 2
    y = torch.randint(0, 4, (10,), generator=g)
    y[[2, 5, 9]] = -100
    emb = torch.randn(10, 6, generator=g, dtype=F64)
    keep = y != -100
    module = get(name, kind="multiclass", **SOFTMAX_CTOR.get(name, {})).double()
    z1, e1 = z.clone().requires_grad_(True), emb.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = module(z1, y, embeddings=e1)
        loss.backward()
        alone = module(z[keep], y[keep], embeddings=emb[keep])
    grad = e1.grad if module.uses_embeddings else z1.grad
    assert torch.equal(grad[~keep], torch.zeros_like(grad[~keep])), name
    assert grad[keep].abs().sum() > 0
    torch.testing.assert_close(loss, alone)  # the mean counts only the rows that are not ignored


def test_softmax_focal_ignored_rows_with_alpha_and_sample_weight():
    g = torch.Generator().manual_seed(8)
    z = (torch.randn(9, 3, generator=g, dtype=F64) * 2).requires_grad_(True)
    y = torch.tensor([0, 1, -100, 2, -100, 1, 0, 2, 1])
    alpha = torch.tensor([0.5, 2.0, 1.0], dtype=F64)
    sw = torch.rand(9, generator=g, dtype=F64) + 0.5
    loss = softmax_focal_loss(z, y, gamma=2.0, alpha=alpha, label_smoothing=0.1, sample_weight=sw)
    loss.backward()
    keep = y != -100
    assert torch.equal(z.grad[~keep], torch.zeros(2, 3, dtype=F64))
    none = softmax_focal_loss(z.detach(), y, gamma=2.0, alpha=alpha, label_smoothing=0.1, reduction="none")
    torch.testing.assert_close(loss, (none * sw)[keep].sum() / (alpha[y[keep]] * sw[keep]).sum())


# -------------------------------------------------------------------------------------------- ASL
def ridnik_asl(z, y, *, gamma_pos, gamma_neg, clip, eps=1e-8):
    """The ASL authors' formulation: shifted negative probability, log clamped at eps, one focusing
    weight (1 - p_t)^(gamma_pos y + gamma_neg (1 - y)); the loss is the negated sum."""
    p = torch.sigmoid(z)
    p_neg = (1 - p + clip).clamp(max=1) if clip > 0 else 1 - p
    loss = y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    if gamma_pos > 0 or gamma_neg > 0:
        p_t = p * y + p_neg * (1 - y)
        loss = loss * torch.pow(1 - p_t, gamma_pos * y + gamma_neg * (1 - y))
    return -loss.sum()


@pytest.mark.parametrize("gamma_pos, gamma_neg, clip", [(0, 0, 0), (0, 4, 0), (1, 4, 0), (0, 0, 0.05), (0, 4, 0.05),
                                                        (1, 4, 0.05), (2, 2, 0.2), (0.5, 1.5, 0.3)])
def test_asl_equals_reference_implementation_with_gradients(gamma_pos, gamma_neg, clip):
    z, y = _ml(n=16, c=6, seed=9)
    z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
    ours = asymmetric_loss(z1, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip, reduction="sum")
    ref = ridnik_asl(z2, y, gamma_pos=gamma_pos, gamma_neg=gamma_neg, clip=clip)
    torch.testing.assert_close(ours, ref)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(z1.grad, z2.grad)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_asl_degenerate_cases_with_gradients(reduction):
    z, y = _ml(n=10, c=4, seed=10)
    sw = torch.rand(10, dtype=F64) + 0.5
    cases = [  # (ASL parameters, reference)
        ({"gamma_pos": 0.0, "gamma_neg": 0.0, "clip": 0.0},
         lambda t: F.binary_cross_entropy_with_logits(t, y, reduction="none")),
        ({"gamma_pos": 2.0, "gamma_neg": 2.0, "clip": 0.0},
         lambda t: torchvision_focal(t, y, alpha=-1, gamma=2.0)),
    ]
    for params, ref_fn in cases:
        z1, z2 = z.clone().requires_grad_(True), z.clone().requires_grad_(True)
        ours = asymmetric_loss(z1, y, reduction=reduction, sample_weight=sw, **params)
        el = ref_fn(z2)
        rows = el.sum(1) * sw
        ref = {"none": rows, "sum": rows.sum(), "mean": rows.sum() / (4 * sw.sum())}[reduction]
        torch.testing.assert_close(ours, ref)
        torch.testing.assert_close(torch.autograd.grad(ours.sum(), z1)[0], torch.autograd.grad(ref.sum(), z2)[0])


def test_asl_clip_shifts_negatives():
    """A negative with p <= clip costs nothing and gets no gradient; above it the loss is that of p - clip."""
    m = 0.2
    p = torch.tensor([0.05, 0.2 - 1e-9, 0.5, 0.9], dtype=F64)
    z = torch.logit(p).requires_grad_(True)
    y = torch.zeros(4, dtype=F64)
    none = asymmetric_loss(z, y, gamma_pos=0.0, gamma_neg=0.0, clip=m, reduction="none")
    none.sum().backward()
    assert torch.equal(none[:2], torch.zeros(2, dtype=F64)) and torch.equal(z.grad[:2], torch.zeros(2, dtype=F64))
    torch.testing.assert_close(none[2:], -torch.log(1 - (p[2:] - m)))
    # d/dz -log(1 - (p - m)) = p (1 - p) / (1 - p + m)
    torch.testing.assert_close(z.grad[2:], p[2:] * (1 - p[2:]) / (1 - p[2:] + m))
    module = AsymmetricLoss(gamma_pos=0.0, gamma_neg=0.0, clip=m, reduction="sum")
    torch.testing.assert_close(module(z.detach(), y), none.sum())


# ------------------------------------------------------------------------------- supervised contrastive
@pytest.mark.parametrize("temperature", [0.05, 0.1, 0.2, 0.5, 1.0])
@pytest.mark.parametrize("batch", [16, 128, 512])
def test_supcon_equals_pytorch_metric_learning(temperature, batch):
    pml = pytest.importorskip("pytorch_metric_learning.losses")
    g = torch.Generator().manual_seed(batch)
    emb = torch.randn(batch, 32, generator=g, dtype=F64)
    y = torch.randint(0, max(2, batch // 8), (batch,), generator=g)
    e1, e2 = emb.clone().requires_grad_(True), emb.clone().requires_grad_(True)
    ours = supervised_contrastive_loss(e1, y, temperature=temperature)
    ref = pml.SupConLoss(temperature=temperature)(e2, y)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=0)
    ours.backward()
    ref.backward()
    torch.testing.assert_close(e1.grad, e2.grad, rtol=1e-8, atol=1e-12)


# ----------------------------------------------------------------------------- logit adjustment
def test_logit_adjustment_keeps_float64_priors():
    g = torch.Generator().manual_seed(11)
    z = torch.randn(8, 3, generator=g, dtype=F64)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0])
    priors = [0.7, 0.2999999, 1e-7]
    p = torch.tensor(priors, dtype=F64)
    ref = F.cross_entropy(z + torch.log(p / p.sum()), y)
    torch.testing.assert_close(logit_adjusted_cross_entropy(z, y, priors=priors), ref, rtol=1e-14, atol=0)
    torch.testing.assert_close(LogitAdjustedLoss(priors=priors)(z, y), ref, rtol=1e-14, atol=0)
    counts = [7000001, 2999999, 1]
    c = torch.tensor(counts, dtype=F64)
    ref_c = F.cross_entropy(z + torch.log(c / c.sum()), y)
    module = LogitAdjustedLoss(counts=counts)
    torch.testing.assert_close(module(z, y), ref_c, rtol=1e-14, atol=0)
    assert module.log_prior.dtype == torch.float32  # the buffer follows the module to any device (MPS too)
    module.load_state_dict(module.state_dict())
    torch.testing.assert_close(module(z.float(), y), F.cross_entropy(z.float() + module.log_prior, y))
