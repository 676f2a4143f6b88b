"""Numerical edge cases over the whole loss registry (issue 9, numerical part).

Every registered loss and kind, plus a :class:`CompositeLoss` (focal + supcon) and the two
per-sample-weighted presets called the way the training layer calls them (with ``lengths=``), is run
at extreme logits -- +-1e4 in float32, +-100 in float16 and bfloat16 -- on four batches:

* ``normal``: random signs, with one confidently wrong and one confidently right example;
* ``absent``: class 1 (aspects: polarity 1; multi-label: the last label; binary: the positive
  class) never occurs in the batch;
* ``ignored``: nothing in the batch counts.

  - softmax kinds (multiclass, aspects): every target is ``ignore_index`` (-100);
  - sigmoid kinds (binary, multilabel) have no ``ignore_index``: every sample weight is 0 (the
    loss's own weighted-mean denominator is then 0, the same situation);
  - supcon: a batch with no positive pair (every anchor is excluded); for softmax kinds the targets
    are -100, which supcon also treats as "no label", for sigmoid kinds the sample weights are 0;

* ``empty``: ``N = 0`` rows.

Checks: the value is finite, the gradient w.r.t. the logits (and the embeddings for losses that
use them) exists and is finite -- computed from ``loss * 2**16``, the fp16 GradScaler's initial
scale, so a ``1 / tiny`` in a backward pass cannot hide behind a unit upstream gradient; the
``ignored`` and ``empty`` batches give exactly 0; half-precision inputs are computed in float32
(the value is float32) and their gradients have the input dtype.
"""

import itertools
import warnings

import pytest
import torch

from tailtune.losses import CompositeLoss, available, get
from tailtune.losses.registry import spec

N, C, A, D = 12, 4, 3, 8  # aspects: A aspects x (P + 1) = C polarities incl. absent (index C - 1)
GRAD_SCALE = 2.0**16
PRECISIONS = {"float32": (torch.float32, 1e4), "float16": (torch.float16, 100.0), "bfloat16": (torch.bfloat16, 100.0)}
BATCHES = ("normal", "absent", "ignored", "empty")

CTOR = {
    "ldam": {"counts": [50, 20, 5, 2]},
    "logit_adjusted": {"counts": [50, 20, 5, 2]},
    "distribution_balanced": {"counts": [50, 20, 5, 2], "num_samples": 60},
    "hierarchy": {"parent_of": [-1, 0, 0, 1]},
}

REGISTRY = [(name, kind) for name in available(aliases=False) for kind in spec(name).kinds]
EXTRA = [("composite", kind) for kind in ("binary", "multiclass", "multilabel", "aspects")]
EXTRA += [(f"{name}+lengths", kind) for name in ("weighted", "sentiment_focal")
          for kind in ("binary", "multiclass", "multilabel", "aspects")]


def _signs(shape, g, dtype, scale):
    return (torch.randint(0, 2, shape, generator=g) * 2 - 1).to(dtype) * scale


def _batch(kind: str, batch: str, dtype, scale, *, supcon_aspects: bool):
    """logits, target, embeddings, sample_weight, lengths for one case (the training layer's shapes).

    ``supcon_aspects``: targets ``(N, A)`` as supcon takes them directly; otherwise aspects are the
    flattened ``(N*A, P+1)`` logits and ``(N*A,)`` targets every softmax loss sees.
    """
    g = torch.Generator().manual_seed(7)
    n = 0 if batch == "empty" else N
    rows = n * A if kind == "aspects" and not supcon_aspects else n
    emb = _signs((n, D), g, dtype, scale)
    lengths = torch.randint(3, 60, (rows,), generator=g)
    sw = None
    if kind in ("binary", "multilabel"):
        shape = (rows,) if kind == "binary" else (rows, C)
        z = _signs(shape, g, dtype, scale)
        y = (torch.rand(shape, generator=g) > 0.5).float()
        if rows:
            y.view(rows, -1)[0], z.view(rows, -1)[0] = 0.0, scale  # confidently wrong
            y.view(rows, -1)[1], z.view(rows, -1)[1] = 1.0, scale  # confidently right
        if batch == "absent":
            y.view(rows, -1)[:, -1] = 0.0
        if batch == "ignored":
            sw = torch.zeros(rows)
        return z, y, emb, sw, lengths
    z = _signs((rows, C), g, dtype, scale)
    if supcon_aspects:
        y = torch.randint(0, C, (n, A), generator=g)
    else:
        y = torch.randint(0, C, (rows,), generator=g)
        if rows:
            y[:2] = torch.tensor([0, 1])
            z[0], z[0, 0] = scale, -scale  # target logit lowest: confidently wrong
            z[1], z[1, 1] = -scale, scale  # confidently right
    if batch == "absent":
        y[y == 1] = 0  # class/polarity 1 never occurs (the last one is "absent" for aspects)
    if batch == "ignored":
        y[:] = -100
    return z, y, emb, sw, lengths


def _module(name: str, kind: str):
    if name == "composite":
        supcon = {"absent_index": C - 1} if kind == "aspects" else {}
        return CompositeLoss({"focal": (0.7, get("focal", kind=kind, gamma=2.0)),
                              "supcon": (0.3, get("supcon", kind=kind, **supcon))})
    return get(name.removesuffix("+lengths"), kind=kind, **CTOR.get(name, {}))


def _num_items(y):
    """What the HF Trainer passes: the number of label entries that are not -100."""
    return int((y != -100).sum())


CASES = [
    pytest.param(name, kind, prec, batch, id=f"{name}-{kind}-{prec}-{batch}")
    for (name, kind), prec, batch in itertools.product(REGISTRY + EXTRA, PRECISIONS, BATCHES)
]


@pytest.mark.parametrize("name, kind, prec, batch", CASES)
def test_finite_values_and_gradients(name, kind, prec, batch):
    dtype, scale = PRECISIONS[prec]
    module = _module(name, kind)
    supcon_aspects = name == "supcon" and kind == "aspects"
    z, y, emb, sw, lengths = _batch(kind, batch, dtype, scale, supcon_aspects=supcon_aspects)
    z.requires_grad_(True)
    emb.requires_grad_(True)
    kwargs = {"embeddings": emb, "sample_weight": sw}
    if name.endswith("+lengths"):
        kwargs["lengths"] = lengths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # presets warn once when lengths= is missing
        if name == "composite":
            # both paths: plain means, and the Trainer's num_items_in_batch (0 for an all-ignored batch)
            loss, parts = module(z, y, **kwargs)
            loss_nib, parts_nib = module(z, y, num_items_in_batch=_num_items(y), **kwargs)
            assert all(torch.isfinite(v) for v in [*parts.values(), *parts_nib.values()]), (parts, parts_nib)
            loss = loss + loss_nib
        else:
            loss = module(z, y, **kwargs)
    assert loss.shape == () and torch.isfinite(loss), f"value {loss.item()}"
    if dtype != torch.float32:
        assert loss.dtype == torch.float32, "half-precision inputs must be computed in float32"
    if batch in ("ignored", "empty"):
        assert loss.item() == 0.0, f"an {batch} batch must give exactly 0, got {loss.item()}"
    (loss * GRAD_SCALE).backward()
    uses_emb = getattr(module, "uses_embeddings", False)
    uses_logits = name == "composite" or not uses_emb
    for wanted, t in ((uses_logits, z), (uses_emb, emb)):
        if wanted:
            assert t.grad is not None, "backward must reach the inputs"
            assert t.grad.dtype == dtype and torch.isfinite(t.grad).all(), t.grad
            if batch in ("ignored", "empty"):
                assert (t.grad == 0).all()


def test_cases_cover_the_registry():
    """The parametrisation is built from the registry: a new loss is covered without editing this file."""
    names = {name for name, _ in REGISTRY}
    assert names == set(available(aliases=False)) and len(names) >= 16
    assert {"weighted", "sentiment_focal", "supcon"} <= names
    assert len(CASES) == (len(REGISTRY) + len(EXTRA)) * len(PRECISIONS) * len(BATCHES)


@pytest.mark.parametrize("kind", ["multiclass", "aspects"])
def test_supcon_ignore_index_is_no_label(kind):
    """-100 targets are left out as if absent from the batch (nobody's positive or negative, no loss,
    no gradient), so supcon agrees with the softmax parts on an ignored example."""
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(6, D, generator=g, dtype=torch.float64)
    if kind == "multiclass":
        y = torch.tensor([0, 0, 1, 1, -100, -100])
        alone = torch.tensor([0, 0, 1, 1, 2, 3])  # the two ignored ones in classes of their own
    else:
        y = torch.tensor([[0, 1, 3], [0, 1, 3], [2, 3, 3], [2, -100, 3], [-100] * 3, [-100] * 3])
        alone = torch.tensor([[0, 1, 3], [0, 1, 3], [2, 3, 3], [2, 3, 3], [1, 0, 0], [3, 2, 1]])
    loss = get("supcon", kind=kind, **({"absent_index": 3} if kind == "aspects" else {}), reduction="none").double()
    e = emb.clone().requires_grad_(True)
    got = loss(None, y, embeddings=e)
    assert got[4:].abs().sum() == 0
    torch.testing.assert_close(got[:4], loss(None, alone[:4], embeddings=emb[:4]))
    got.sum().backward()
    assert torch.equal(e.grad[4:], torch.zeros_like(e.grad[4:]))
    plain = get("supcon", kind=kind, ignore_index=None, reduction="none").double()
    assert (plain(None, y, embeddings=emb)[4:] > 0).all()  # ignore_index=None: -100 is a label again
    with pytest.raises(TypeError, match="ignore_index='x' must be an int or None"):
        get("supcon", kind=kind, ignore_index="x")


def test_zero_denominator_gradient_survives_loss_scaling():
    """A weighted mean whose weights are all 0 is 0/1, not 0/tiny: a scaled backward stays finite (was NaN)."""
    z = torch.full((4, 3), 30.0, requires_grad=True)
    loss = get("ce", kind="multilabel")(z, torch.ones(4, 3), sample_weight=torch.zeros(4))
    (loss * GRAD_SCALE).backward()
    assert loss.item() == 0.0 and torch.isfinite(z.grad).all()


def test_supcon_single_aspect_flattened():
    """A one-aspect task: the (N*1,) targets the training layer passes are one aspect each (was a ValueError)."""
    emb = torch.randn(6, D, generator=torch.Generator().manual_seed(1))
    y = torch.tensor([0, 0, 1, 2, 2, 1])  # polarity 2 = absent
    loss = get("supcon", kind="aspects", absent_index=2)
    torch.testing.assert_close(loss(None, y, embeddings=emb), loss(None, y.reshape(6, 1), embeddings=emb))
