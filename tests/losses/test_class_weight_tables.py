"""Per-row class weights (a ``(K, C)`` table) in the softmax losses: cross-entropy, softmax focal and the
sentiment presets. Row ``i`` of the logits takes table row ``i mod K``: ``K = N`` per-row weights,
``K = A`` per-aspect weights of an aspect task's ``(N * A, C)`` view (``weighting.per_aspect``).

References: ``F.cross_entropy(weight=w_a)`` per aspect (the reduction contract: ``"mean"`` divides by the
summed weight of the non-ignored targets), float64 ``gradcheck``, half precision at logits of +-100.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tailtune.losses import _fused
from tailtune.losses.cross_entropy import CrossEntropyLoss, class_weight_rows, cross_entropy
from tailtune.losses.focal import SoftmaxFocalLoss, softmax_focal_loss
from tailtune.losses.weighted import SentimentFocalLoss, WeightedLoss

A, C, N = 3, 4, 6  # aspects, classes per aspect, examples


def _batch(seed: int = 0, *, ignore: bool = True):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(N * A, C, generator=g, dtype=torch.float64)
    target = torch.randint(0, C, (N * A,), generator=g)
    if ignore:
        target[[1, 7]] = -100
    table = torch.rand(A, C, generator=g, dtype=torch.float64) * 3 + 0.1
    return logits, target, table


def _per_aspect_reference(logits, target, table, *, reduction, eps=0.0, sample_weight=None):
    """Each aspect's rows through ``F.cross_entropy(weight=table[a])``, summed; mean = sum / summed weight."""
    total, denom = logits.new_zeros(()), logits.new_zeros(())
    rows = torch.arange(logits.shape[0]) % A
    per_row = logits.new_zeros(logits.shape[0])
    for a in range(A):
        idx = rows == a
        loss = F.cross_entropy(logits[idx], target[idx], weight=table[a], label_smoothing=eps, reduction="none")
        sw = sample_weight[idx] if sample_weight is not None else torch.ones_like(loss)
        per_row[idx] = loss * sw
        valid = target[idx] != -100
        denom = denom + (table[a][target[idx].clamp_min(0)] * valid * sw).sum()
        total = total + (loss * sw).sum()
    return {"none": per_row, "sum": total, "mean": total / denom}[reduction]


def test_rows_follow_the_table_cyclically():
    table = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert class_weight_rows(table, 6, 2, torch.zeros(())).tolist() == [[1.0, 2.0], [3.0, 4.0]] * 3
    assert class_weight_rows(torch.tensor([1.0, 2.0]), 5, 2, torch.zeros(())).tolist() == [1.0, 2.0]
    assert class_weight_rows(table, 0, 2, torch.zeros(())).shape == (0, 2)


@pytest.mark.parametrize(("weight", "n", "match"), [
    (torch.ones(2, 3), 5, r"weight must have shape \(3,\) or \(K, 3\) with K dividing the 5 rows"),
    (torch.ones(4), 4, r"got \(4,\)"),
    (torch.ones(2, 2), 4, r"got \(2, 2\)"),
])
def test_a_table_that_fits_no_form_is_refused(weight, n, match):
    with pytest.raises(ValueError, match=match):
        cross_entropy(torch.randn(n, 3), torch.zeros(n, dtype=torch.long), weight=weight)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_equal_rows_are_the_class_weight_vector(reduction, eps):
    logits, target, table = _batch()
    w = table[0]
    rows = w.expand(N * A, C)
    got = cross_entropy(logits, target, weight=rows, label_smoothing=eps, reduction=reduction)
    want = F.cross_entropy(logits, target, weight=w, label_smoothing=eps, reduction=reduction)
    assert torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("sample_weights", [False, True])
def test_per_aspect_table_equals_cross_entropy_per_aspect(reduction, eps, sample_weights):
    logits, target, table = _batch(1)
    sw = torch.rand(N * A, dtype=torch.float64) + 0.5 if sample_weights else None
    got = cross_entropy(logits, target, weight=table, label_smoothing=eps, reduction=reduction, sample_weight=sw)
    want = _per_aspect_reference(logits, target, table, reduction=reduction, eps=eps, sample_weight=sw)
    assert torch.allclose(got, want, atol=1e-12)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_focal_with_gamma_0_is_the_per_aspect_cross_entropy(reduction):
    logits, target, table = _batch(2)
    got = softmax_focal_loss(logits, target, gamma=0.0, alpha=table, label_smoothing=0.05, reduction=reduction)
    want = _per_aspect_reference(logits, target, table, reduction=reduction, eps=0.05)
    assert torch.allclose(got, want, atol=1e-12)


def test_focal_over_cross_entropy_is_the_modulator_with_a_table():
    logits, target, table = _batch(3, ignore=False)
    focal = softmax_focal_loss(logits, target, gamma=2.0, alpha=table, reduction="none")
    ce = cross_entropy(logits, target, weight=table, reduction="none")
    p_t = F.softmax(logits, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
    assert torch.allclose(focal / ce, (1 - p_t) ** 2, atol=1e-10)


def test_mean_is_sum_over_the_summed_cell_weight():
    logits, target, table = _batch(4)
    rows = torch.arange(N * A) % A
    valid = target != -100
    denom = table[rows[valid], target[valid]].sum()
    for fn in (lambda **k: cross_entropy(logits, target, weight=table, **k),
               lambda **k: softmax_focal_loss(logits, target, gamma=1.5, alpha=table, **k)):
        assert torch.allclose(fn(reduction="mean"), fn(reduction="sum") / denom, atol=1e-12)


def test_gradcheck_float64():
    logits, target, table = _batch(5)
    x = logits.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: cross_entropy(z, target, weight=table, label_smoothing=0.1), (x,))
    assert torch.autograd.gradcheck(lambda z: softmax_focal_loss(z, target, gamma=1.5, alpha=table), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_extreme_logits_stay_finite(dtype):
    _, target, table = _batch(6)
    logits = (torch.randint(0, 2, (N * A, C)).to(torch.float32) * 200 - 100).to(dtype).requires_grad_(True)
    for loss in (cross_entropy(logits, target, weight=table.float()),
                 softmax_focal_loss(logits, target, gamma=2.0, alpha=table.float())):
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
        logits.grad = None


@pytest.mark.parametrize("module", [
    lambda t: CrossEntropyLoss(weight=t, label_smoothing=0.1),
    lambda t: SoftmaxFocalLoss(gamma=0.0, alpha=t, label_smoothing=0.1),
    lambda t: WeightedLoss(kind="aspects", length=False, confidence=False, weight=t),
    lambda t: SentimentFocalLoss(kind="aspects", gamma=0.0, label_smoothing=0.1, length=False, confidence=False, alpha=t),
])
def test_modules_keep_the_table_as_a_buffer(module):
    logits, target, table = _batch(7)
    loss = module(table)
    buffers = dict(loss.named_buffers())
    stored = next(v for v in buffers.values() if v is not None)
    assert stored.shape == (A, C) and stored.dtype == torch.float32 and loss.per_row_class_weights
    assert any(v.shape == (A, C) for v in loss.state_dict().values())
    eps = 0.0 if isinstance(loss, WeightedLoss) else 0.1
    want = _per_aspect_reference(logits.float(), target, table.float(), reduction="mean", eps=eps)
    assert torch.allclose(loss(logits.float(), target), want, atol=1e-5)


def test_sigmoid_presets_refuse_a_table():
    with pytest.raises(ValueError, match="weight must be a non-empty 1-D"):
        WeightedLoss(kind="multilabel", weight=torch.ones(2, 3))
    with pytest.raises(ValueError, match="must hold finite numbers >= 0"):
        CrossEntropyLoss(weight=[[1.0, -1.0]])


@pytest.mark.parametrize("gamma, eps, reduction, weighted", [
    (2.0, 0.0, "mean", False), (2.0, 0.1, "mean", True), (0.0, 0.1, "sum", True), (-1.5, 0.05, "none", True),
    (0.3, 0.0, "mean", True),
])
def test_fused_focal_kernel_equals_its_reference_with_a_table(gamma, eps, reduction, weighted):
    """The fused softmax focal kernel (value and closed-form gradient in one pass, the training default on
    CUDA) takes the per-row table like the reference: ``a_t``, ``A = sum_c a_c`` and the smoothing term per row."""
    logits, target, table = _batch(7)
    sw = torch.rand(N * A, dtype=torch.float64) + 0.1 if weighted else None
    results = []
    previous = _fused.set_kernel_mode("reference")
    try:
        for mode in ("reference", "eager"):
            _fused.set_kernel_mode(mode)
            x = logits.clone().requires_grad_(True)
            out = softmax_focal_loss(x, target, gamma=gamma, alpha=table, label_smoothing=eps, reduction=reduction,
                                     sample_weight=sw)
            (grad,) = torch.autograd.grad(out.sum(), x)
            results.append((out.detach(), grad))
    finally:
        _fused.set_kernel_mode(previous)
    (ref, ref_grad), (got, got_grad) = results
    torch.testing.assert_close(got, ref, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got_grad, ref_grad, rtol=1e-10, atol=1e-13)
    if gamma == 0.0:
        torch.testing.assert_close(ref, _per_aspect_reference(logits, target, table, reduction=reduction, eps=eps,
                                                              sample_weight=sw), rtol=1e-10, atol=1e-12)
