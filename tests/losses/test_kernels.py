"""The fused loss path (:mod:`tailtune.losses._fused`): same values and gradients as the reference,
compiled or eager, and the cases that must fall back to the reference."""

import itertools
import subprocess
import sys
import warnings

import pytest
import torch

from tailtune.losses import (
    _fused,
    asymmetric_loss,
    sigmoid_focal_loss,
    softmax_focal_loss,
    supervised_contrastive_loss,
)

F64 = torch.float64


@pytest.fixture
def mode():
    """Set the kernel mode for one test, restoring the previous one."""
    previous = _fused.set_kernel_mode(None)
    yield _fused.set_kernel_mode
    _fused.set_kernel_mode(previous)


def _softmax_case(n, c, seed, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=dtype) * 3
    y = torch.randint(0, c, (n,), generator=g)
    y[::4] = -100
    return z, y, torch.rand(c, generator=g, dtype=dtype) + 0.2, torch.rand(n, generator=g, dtype=dtype) + 0.1


def _sigmoid_case(n, c, seed, dtype=F64, soft=False):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, c, generator=g, dtype=dtype) * 3
    y = torch.rand(n, c, generator=g, dtype=dtype) if soft else (torch.rand(n, c, generator=g) > 0.7).to(dtype)
    return z, y, torch.rand(n, generator=g, dtype=dtype) + 0.1


def _value_and_grad(fn, z):
    t = z.clone().requires_grad_(True)
    out = fn(t)
    (g,) = torch.autograd.grad(out.sum(), t)
    return out.detach(), g


def _cases():
    """(name, loss of z) over the branches of every fused kernel."""
    zs, ys, alpha, sws = _softmax_case(12, 5, 0)
    zb, yb, swb = _sigmoid_case(12, 5, 1)
    pw = torch.linspace(0.5, 3.0, 5, dtype=F64)
    out = []
    for red, g, eps, a, sw in itertools.product(("none", "mean", "sum"), (0.0, 2.0, 0.3, -1.5), (0.0, 0.1),
                                               (None, alpha), (None, sws)):
        out.append((f"softmax-{red}-{g}-{eps}-{a is not None}-{sw is not None}",
                    lambda t, red=red, g=g, eps=eps, a=a, sw=sw: softmax_focal_loss(
                        t, ys, gamma=g, alpha=a, label_smoothing=eps, reduction=red, sample_weight=sw), zs))
    for red, g, eps, a, p, sw in itertools.product(("none", "mean", "sum"), (0.0, 2.0, 0.3, -1.0), (0.0, 0.05),
                                                  (None, 0.25), (None, pw), (None, swb)):
        out.append((f"sigmoid-{red}-{g}-{eps}-{a}-{p is not None}-{sw is not None}",
                    lambda t, red=red, g=g, eps=eps, a=a, p=p, sw=sw: sigmoid_focal_loss(
                        t, yb, gamma=g, alpha=a, pos_weight=p, weight=p, label_smoothing=eps, reduction=red,
                        sample_weight=sw), zb))
    out.append(("sigmoid-binary", lambda t: sigmoid_focal_loss(t[:, 0], yb[:, 0], gamma=2.0, alpha=0.25), zb))
    for red, gp, gn, m, sw in itertools.product(("none", "mean", "sum"), (0.0, 1.0), (0.0, 4.0, 0.5), (0.0, 0.05),
                                                (None, swb)):
        out.append((f"asl-{red}-{gp}-{gn}-{m}-{sw is not None}",
                    lambda t, red=red, gp=gp, gn=gn, m=m, sw=sw: asymmetric_loss(
                        t, yb, gamma_pos=gp, gamma_neg=gn, clip=m, reduction=red, sample_weight=sw), zb))
    ye = torch.tensor([0, 0, 1, 1, 2, -100, 3, 0, 1, 2, 2, 4])
    yml = (yb > 0.5).to(F64)
    for red, sw, norm in itertools.product(("mean", "sum"), (None, swb), (True, False)):
        out.append((f"supcon-{red}-{sw is not None}-{norm}",
                    lambda t, red=red, sw=sw, norm=norm: supervised_contrastive_loss(
                        t, ye, temperature=0.3, reduction=red, sample_weight=sw, normalize=norm), zb))
        out.append((f"supcon-ml-{red}-{sw is not None}-{norm}",
                    lambda t, red=red, sw=sw, norm=norm: supervised_contrastive_loss(
                        t, yml, kind="multilabel", temperature=0.3, reduction=red, sample_weight=sw,
                        normalize=norm), zb))
    return out


CASES = _cases()


@pytest.mark.parametrize("name, fn, z", CASES, ids=[c[0] for c in CASES])
def test_fused_equals_reference(name, fn, z, mode):
    mode("reference")
    ref = _value_and_grad(fn, z)
    mode("eager")
    got = _value_and_grad(fn, z)
    torch.testing.assert_close(got[0], ref[0], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(got[1], ref[1], rtol=1e-10, atol=1e-13)


def test_fused_path_is_taken_and_falls_back_when_needed(mode):
    z, y, _ = _sigmoid_case(6, 3, 2)
    z.requires_grad_(True)
    mode("eager")
    assert type(sigmoid_focal_loss(z, y).grad_fn).__name__ == "FusedLossBackward"
    assert type(softmax_focal_loss(z, torch.tensor([0, 1, 2, 0, 1, 2])).grad_fn).__name__ == "FusedLossBackward"
    soft = y.clone().requires_grad_(True)  # soft targets that need a gradient: the reference
    assert type(sigmoid_focal_loss(z, soft).grad_fn).__name__ != "FusedLossBackward"
    learnable = torch.tensor([0.3, 0.5, 0.7], dtype=F64, requires_grad=True)
    loss = sigmoid_focal_loss(z, y, alpha=learnable)
    assert type(loss.grad_fn).__name__ != "FusedLossBackward"
    loss.backward()
    assert learnable.grad is not None and learnable.grad.abs().sum() > 0
    mode("reference")
    assert type(sigmoid_focal_loss(z, y).grad_fn).__name__ != "FusedLossBackward"
    mode("auto")  # on the CPU: fused where the eager closed form pays, the reference where it does not
    assert type(sigmoid_focal_loss(z, y).grad_fn).__name__ == "FusedLossBackward"
    assert type(softmax_focal_loss(z, torch.tensor([0, 1, 2, 0, 1, 2])).grad_fn).__name__ != "FusedLossBackward"
    with torch.no_grad():
        mode("eager")
        torch.testing.assert_close(sigmoid_focal_loss(z, y), sigmoid_focal_loss(z.detach(), y))


def test_empty_batch_and_no_grad(mode):
    mode("eager")
    z = torch.zeros(0, 4, requires_grad=True)
    loss = softmax_focal_loss(z, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0 and z.grad.shape == (0, 4)


def test_mode_validation(mode, monkeypatch):
    with pytest.raises(ValueError, match=r"mode='eagr' is not one of .*did you mean 'eager'"):
        mode("eagr")
    monkeypatch.setenv("TAILTUNE_LOSS_KERNELS", "compiled")
    mode(None)
    with pytest.raises(ValueError, match=r"TAILTUNE_LOSS_KERNELS='compiled' is not one of"):
        _fused.kernel_mode()
    monkeypatch.setenv("TAILTUNE_LOSS_KERNELS", "reference")
    mode(None)
    assert _fused.kernel_mode() == "reference"


def test_compile_failure_falls_back_to_eager_once(mode, monkeypatch):
    calls = []

    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            calls.append(1)
            raise RuntimeError("no compiler here")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    monkeypatch.setitem(_fused._state, "compiled", {})
    monkeypatch.setitem(_fused._state, "broken", set())
    z, y, _ = _sigmoid_case(6, 3, 3)
    mode("eager")
    expected = _value_and_grad(lambda t: sigmoid_focal_loss(t, y), z)
    mode("compile")
    with pytest.warns(RuntimeWarning, match="torch.compile failed for the loss kernel sigmoid_focal_kernel"):
        got = _value_and_grad(lambda t: sigmoid_focal_loss(t, y), z)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = _value_and_grad(lambda t: sigmoid_focal_loss(t, y), z)
    assert len(calls) == 1  # not retried
    for a, b in ((got, expected), (again, expected)):
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])


def test_user_errors_are_not_hidden_by_the_compile_fallback(mode, monkeypatch):
    monkeypatch.setitem(_fused._state, "broken", set())
    mode("compile")
    with pytest.raises(ValueError, match=r"target must have the shape of logits"):
        sigmoid_focal_loss(torch.zeros(3, 2), torch.zeros(3, 3))


def test_import_compiles_nothing():
    code = ("import sys, tailtune, tailtune.losses; "
            "print(any(m.startswith(('torch._dynamo', 'torch._inductor')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _can_compile() -> bool:
    try:
        fn = torch.compile(lambda t: t.sin() + 1, fullgraph=True)
        fn(torch.ones(3))
        return True
    except Exception:  # noqa: BLE001 - no C++ compiler, unsupported platform
        return False


@pytest.mark.slow
def test_compiled_kernels_on_cpu_equal_eager_and_do_not_recompile(mode):
    """The compiled path (what CUDA runs) on the CPU's inductor backend: same values and gradients
    as the eager kernels, and a new gamma (a schedule) or batch size reuses the compiled kernel."""
    if not _can_compile():
        pytest.skip("torch.compile does not work on this machine")
    from torch._dynamo.utils import counters

    zs, ys, alpha, _ = _softmax_case(64, 7, 4, dtype=torch.float32)
    zb, yb, _ = _sigmoid_case(64, 7, 5, dtype=torch.float32)
    ye = torch.randint(0, 5, (64,), generator=torch.Generator().manual_seed(6))
    calls = {
        "softmax": (lambda t, g: softmax_focal_loss(t, ys[: t.shape[0]].clone(), gamma=g, alpha=alpha, label_smoothing=0.1), zs),
        "sigmoid": (lambda t, g: sigmoid_focal_loss(t, yb[: t.shape[0]].clone(), gamma=g, alpha=0.25), zb),
        "asl": (lambda t, g: asymmetric_loss(t, yb[: t.shape[0]].clone(), gamma_pos=g, gamma_neg=4.0), zb),
        "supcon": (lambda t, g: supervised_contrastive_loss(t, ye[: t.shape[0]].clone(), temperature=g / 10), zb),
    }
    for name, (fn, z) in calls.items():
        for i, (n, g) in enumerate(((64, 2.0), (64, 1.5), (48, 1.0), (40, 3.0))):
            mode("eager")
            ref = _value_and_grad(lambda t, fn=fn, g=g: fn(t, g), z[:n])
            mode("compile")
            got = _value_and_grad(lambda t, fn=fn, g=g: fn(t, g), z[:n])
            torch.testing.assert_close(got[0], ref[0], rtol=1e-5, atol=1e-6)
            torch.testing.assert_close(got[1], ref[1], rtol=1e-5, atol=1e-6)
            if i == 0:
                graphs = counters["stats"]["unique_graphs"]
        assert counters["stats"]["unique_graphs"] == graphs, name  # compiled once, for any gamma and batch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_auto_equals_cpu_reference(mode):
    zs, ys, alpha, sw = _softmax_case(256, 9, 7, dtype=torch.float32)
    zb, yb, _ = _sigmoid_case(256, 9, 8, dtype=torch.float32)
    ye = torch.randint(0, 6, (256,), generator=torch.Generator().manual_seed(9))
    calls = [
        (lambda t, d: softmax_focal_loss(t, ys.to(d), gamma=2.0, alpha=alpha.to(d), label_smoothing=0.1,
                                         sample_weight=sw.to(d)), zs),
        (lambda t, d: softmax_focal_loss(t, ys.to(d), gamma=-1.0, reduction="none"), zs),
        (lambda t, d: sigmoid_focal_loss(t, yb.to(d), gamma=2.0, alpha=0.25), zb),
        (lambda t, d: asymmetric_loss(t, yb.to(d)), zb),
        (lambda t, d: supervised_contrastive_loss(t, ye.to(d), temperature=0.1), zb),
    ]
    for fn, z in calls:
        mode("reference")
        ref = _value_and_grad(lambda t, fn=fn: fn(t, "cpu"), z)
        mode("auto")
        got = _value_and_grad(lambda t, fn=fn: fn(t, "cuda"), z.cuda())
        torch.testing.assert_close(got[0].cpu(), ref[0], rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(got[1].cpu(), ref[1], rtol=1e-5, atol=1e-6)
