"""Length chunking (train.length_chunks): the cut plan is optimal, and the chunked forward equals the
unchunked one in outputs and gradients for every pooling, with and without token type ids."""

from __future__ import annotations

import itertools
import random

import pytest
import torch

from tailtune.data import TaskSpec
from tailtune.models import build_classifier
from tailtune.models.chunking import padded_tokens, plan_chunks


def _brute_force(lengths, max_chunks, multiple=8):
    n, best = len(lengths), None
    for k in range(1, min(max_chunks, n) + 1):
        for cuts in itertools.combinations(range(1, n), k - 1):
            edges = [0, *cuts, n]
            cost = padded_tokens(lengths, list(zip(edges[:-1], edges[1:])), multiple)
            best = cost if best is None else min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(40))
def test_plan_is_optimal_against_brute_force(seed):
    rng = random.Random(seed)
    lengths = sorted((rng.randint(1, 130) for _ in range(rng.randint(1, 9))), reverse=True)
    k = rng.randint(1, 4)
    bounds = plan_chunks(lengths, k)
    assert len(bounds) <= k
    assert bounds[0][0] == 0 and bounds[-1][1] == len(lengths)
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))  # contiguous, covering every row
    assert padded_tokens(lengths, bounds) == _brute_force(lengths, k)


def test_plan_edge_cases():
    assert plan_chunks([], 4) == []
    assert plan_chunks([7], 4) == [(0, 1)]
    assert plan_chunks([64, 64, 64], 3) == [(0, 3)]  # equal widths: no cut saves anything
    assert plan_chunks([64, 9, 3], 1) == [(0, 3)]
    with pytest.raises(ValueError, match="descending"):
        plan_chunks([3, 64], 2)
    with pytest.raises(ValueError, match="max_chunks"):
        plan_chunks([3], 0)


def _batch(tokenizer, seed=0):
    rng = random.Random(seed)
    words = ["plot", "good", "bad", "film", "actor", "scene", "dull"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.choice([1, 2, 3, 12, 30, 45]))) for _ in range(12)]
    return dict(tokenizer(texts, padding=True, pad_to_multiple_of=8, return_tensors="pt"))


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("with_token_types", [True, False])
def test_chunked_forward_and_gradients_equal_the_plain_forward(tiny_encoder_dir, pooling, with_token_types):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    task = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
    batch = _batch(tokenizer)
    if not with_token_types:
        batch.pop("token_type_ids", None)
    results = {}
    for chunks in (1, 4):
        torch.manual_seed(0)
        model = build_classifier({"name": str(tiny_encoder_dir), "pooling": pooling, "dropout": 0.0,
                                  "projection_dim": 8}, task)
        model.eval()  # no dropout: the two forwards must agree
        model.length_chunks = chunks
        out = model(**batch)
        (out.logits.square().sum() + out.embeddings.sum()).backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results[chunks] = (out.logits.detach(), out.embeddings.detach(), grads)
    (l1, e1, g1), (l4, e4, g4) = results[1], results[4]
    torch.testing.assert_close(l4, l1, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(e4, e1, rtol=1e-4, atol=1e-5)
    assert g4.keys() == g1.keys()
    for name in g1:
        torch.testing.assert_close(g4[name], g1[name], rtol=1e-3, atol=1e-5, msg=name)


def test_chunking_runs_fewer_padded_tokens(tiny_encoder_dir, monkeypatch):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_encoder_dir))
    model = build_classifier({"name": str(tiny_encoder_dir)}, TaskSpec(kind="binary", labels=["n", "y"]))
    batch = _batch(tokenizer, seed=3)
    seen = []
    real = model.encoder.forward
    monkeypatch.setattr(model.encoder, "forward", lambda **kw: (seen.append(kw["input_ids"].numel()), real(**kw))[1])
    model.length_chunks = 3
    model(**batch)
    assert 1 < len(seen) <= 3
    assert sum(seen) < batch["input_ids"].numel()
