"""Registry, aliases, and the shared invariance tests run over every registered loss and kind."""

import warnings

import pytest
import torch

from tailtune.losses import available, get, resolve
from tailtune.losses.registry import spec

N, C, A = 10, 4, 3

CTOR = {
    "ldam": {"counts": [50, 20, 5, 2]},
    "logit_adjusted": {"counts": [50, 20, 5, 2]},
    "distribution_balanced": {"counts": [50, 20, 5, 2], "num_samples": 60},
    "hierarchy": {"parent_of": [-1, 0, 0, 1]},
}


def _inputs(name, kind, seed=0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(N, 6, generator=g, dtype=torch.float64)
    if kind == "binary":
        z = torch.randn(N, generator=g, dtype=torch.float64) * 2
        y = (torch.rand(N, generator=g) > 0.5).double()
    elif kind == "multilabel":
        z = torch.randn(N, C, generator=g, dtype=torch.float64) * 2
        y = (torch.rand(N, C, generator=g) > 0.5).double()
    else:
        z = torch.randn(N, C, generator=g, dtype=torch.float64) * 2
        y = torch.randint(0, C, (N,), generator=g)
        y[3] = -100
        if name == "supcon" and kind == "aspects":
            y = torch.randint(0, 3, (N, A), generator=g)
    return z, y, emb


def _count(module, name, kind, z, y):
    if name == "supcon":
        w = (y.unsqueeze(1) == y.unsqueeze(0)) if y.ndim == 1 else None
        if w is None:  # label sets: the anchors with at least one overlapping other
            from tailtune.losses import positive_weights

            pw = positive_weights(y, kind="multilabel" if kind == "multilabel" else "aspects")
            return float((pw.sum(1) > 0).sum())
        return float((w.sum(1) > 1).sum())
    if name == "hierarchy":
        return float(z.shape[0] * 3)
    if kind in ("binary", "multilabel"):
        return float(z.numel())
    return float((y != -100).sum())


def _call(module, z, y, emb, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return module(z, y, embeddings=emb, **kw)


CASES = [(name, kind) for name in available(aliases=False) for kind in spec(name).kinds]


def _make(name, kind, **kw):
    params = dict(CTOR.get(name, {}))
    params.update(kw)
    return get(name, kind=kind, **params).double()


@pytest.mark.parametrize("name, kind", CASES)
def test_reduction_contract(name, kind):
    z, y, emb = _inputs(name, kind)
    none = _call(_make(name, kind, reduction="none"), z, y, emb)
    total = _call(_make(name, kind, reduction="sum"), z, y, emb)
    mean = _call(_make(name, kind), z, y, emb)
    assert none.shape == (N,)
    assert total.shape == () and mean.shape == ()
    torch.testing.assert_close(total, none.sum())
    module = _make(name, kind)
    assert module.reduction == "mean" and isinstance(module.uses_embeddings, bool)
    if not module.uses_lengths:  # presets carry their own per-sample weights (a weighted mean)
        torch.testing.assert_close(mean, total / _count(module, name, kind, z, y))
    # sample_weight of ones changes nothing
    torch.testing.assert_close(_call(module, z, y, emb, sample_weight=torch.ones(N, dtype=torch.float64)), mean)
    # the reduction override used by CompositeLoss
    torch.testing.assert_close(_call(module, z, y, emb, reduction="sum"), total)


@pytest.mark.parametrize("name, kind", CASES)
def test_permutation_invariance(name, kind):
    z, y, emb = _inputs(name, kind, seed=1)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(3))
    module = _make(name, kind, reduction="none")
    torch.testing.assert_close(_call(module, z[perm], y[perm], emb[perm]), _call(module, z, y, emb)[perm])


@pytest.mark.parametrize("name, kind", CASES)
def test_gradients_finite_and_buffers_move(name, kind):
    z, y, emb = _inputs(name, kind, seed=2)
    z = (z * 50).requires_grad_(True)
    emb = (emb * 50).requires_grad_(True)
    module = _make(name, kind)
    loss = _call(module, z, y, emb)
    loss.backward()
    grad = emb.grad if module.uses_embeddings else z.grad
    assert torch.isfinite(loss) and grad is not None and torch.isfinite(grad).all()
    for buf in module.buffers():
        assert buf.dtype == torch.float64 or not buf.is_floating_point()


def test_aliases_resolve_by_kind():
    assert resolve("focal", kind="multiclass") == "softmax_focal"
    assert resolve("focal", kind="aspects") == "softmax_focal"
    assert resolve("focal", kind="binary") == "sigmoid_focal"
    assert resolve("focal", kind="multilabel") == "sigmoid_focal"
    assert resolve("ce", kind="multilabel") == "bce"
    assert resolve("asl") == "asymmetric"  # one form only: no kind needed
    assert type(get("label_smoothing", kind="multiclass")).__name__ == "CrossEntropyLoss"
    assert get("label_smoothing", kind="multiclass").label_smoothing == 0.1
    assert get("label_smoothing", kind="binary", label_smoothing=0.2).label_smoothing == 0.2
    assert "focal" in available("binary") and "focal" not in available("binary", aliases=False)
    assert "ldam" in available("multiclass") and "ldam" not in available("multilabel")
    assert get("supcon", kind="aspects").kind == "aspects"  # kind is passed on


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda: get("focall", kind="binary"), ValueError, r"unknown loss 'focall'.*did you mean 'focal'"),
        (lambda: get("focal"), ValueError, r"several forms .*pass kind="),
        (lambda: get("ldam", kind="multilabel"), ValueError, "'ldam' does not apply to kind='multilabel'"),
        (lambda: get("asl", kind="multiclass"), ValueError, "'asl' is not available for kind='multiclass'"),
        (lambda: get("focal", kind="regression"), ValueError, "kind='regression' is not one of"),
        (lambda: get("focal", kind="binary", gama=2.0), TypeError, r"unknown parameter 'gama'.*did you mean 'gamma'"),
        (lambda: get("ldam", kind="multiclass"), TypeError, r"needs parameter\(s\) \['counts'\]"),
        (lambda: get("focal", kind="multiclass", reduction="avg"), ValueError, "reduction='avg'"),
        (lambda: available("regression"), ValueError, "kind='regression' is not one of"),
    ],
)
def test_registry_errors(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_recipe_style_params():
    mod = get("focal", kind="multiclass", gamma={"schedule": "cosine", "start": 3.0, "end": 1.0}, alpha=[1, 2, 3])
    assert mod.alpha.tolist() == [1.0, 2.0, 3.0]
    z, y = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    assert torch.isfinite(mod(z, y, progress=0.25))


def test_docstring_examples_run():
    """The runnable examples of every loss docstring (the Conventions' "a runnable example")."""
    import doctest
    import importlib
    import pkgutil

    import torch.nn.functional as F

    import tailtune.losses as L

    names = {k: getattr(L, k) for k in L.__all__}
    attempted = 0
    for info in pkgutil.iter_modules(L.__path__):
        module = importlib.import_module(f"tailtune.losses.{info.name}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = doctest.testmod(module, extraglobs={"torch": torch, "F": F, **names})
        assert result.failed == 0, info.name
        attempted += result.attempted
    assert attempted >= 30
