"""The training collator (training/collate.py): the same tensors as ``DataCollatorWithPadding``,
bucketed widths, and the proof that bucket padding changes no output (it is masked)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, DataCollatorWithPadding

from tailtune.data import TaskSpec
from tailtune.models import build_classifier
from tailtune.training.collate import LabelCollator, build_collator
from tailtune.training.speed import BUCKET_GRID, bucket_widths

TEXTS = ["good", "a rather long text about the plot of a film and its actors and scenes", "bad film", "",
         "the story", "one two three four five six seven eight nine ten eleven twelve"]


def _features(tok, *, labels=None, weights=None):
    enc = tok(TEXTS, truncation=True, max_length=24)
    feats = [{k: enc[k][i] for k in enc} for i in range(len(TEXTS))]
    for i, f in enumerate(feats):
        if labels is not None:
            f["labels"] = labels[i]
        if weights is not None:
            f["sample_weight"] = weights[i]
    return feats


@pytest.mark.parametrize("side", ["right", "left"])
def test_same_tensors_as_data_collator_with_padding(tiny_encoder_dir, side):
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    tok.padding_side = side
    feats = _features(tok)
    ours = LabelCollator(tok, kind="multiclass")(feats)
    ref = DataCollatorWithPadding(tok, padding="longest", pad_to_multiple_of=8)(feats)
    assert set(ours) == set(ref) == {"input_ids", "attention_mask", "token_type_ids"}
    for key in ref:
        assert ours[key].dtype == ref[key].dtype == torch.int64
        assert torch.equal(ours[key], ref[key]), key


@pytest.mark.parametrize(("kind", "labels", "dtype"), [
    ("multiclass", [0, 1, 2, 1, 0, 2], torch.long),
    ("binary", [0, 1, 1, 0, 0, 1], torch.long),
    ("multilabel", [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]], torch.float32),
    ("aspects", [[0, 2], [1, 2], [2, 2], [0, 0], [1, 1], [2, 0]], torch.long),
])
def test_targets_and_sample_weights_keep_their_values_and_dtypes(tiny_encoder_dir, kind, labels, dtype):
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    weights = [0.5, 1.0, 1.5, 2.0, 0.25, 1.0]
    batch = LabelCollator(tok, kind=kind)(_features(tok, labels=labels, weights=weights))
    assert batch["labels"].dtype == dtype
    assert torch.equal(batch["labels"], torch.tensor(labels, dtype=dtype))
    assert batch["sample_weight"].dtype == torch.float32
    assert torch.equal(batch["sample_weight"], torch.tensor(weights, dtype=torch.float32))


def test_bucket_widths_cover_the_maximum_length():
    assert bucket_widths(128) == (16, 24, 32, 48, 64, 96, 128)
    assert bucket_widths(100) == (16, 24, 32, 48, 64, 96, 104)
    assert bucket_widths(10) == (16,)
    assert all(w % 8 == 0 for w in BUCKET_GRID)
    assert all(b / a <= 1.5 for a, b in zip(BUCKET_GRID, BUCKET_GRID[1:]))


def test_buckets_choose_the_smallest_width_that_holds_the_batch():
    tok = type("Tok", (), {"pad_token_id": 0, "pad_token_type_id": 0, "padding_side": "right"})()
    collate = LabelCollator(tok, kind="multiclass", buckets=bucket_widths(128))
    assert [collate.width(n) for n in (1, 16, 17, 33, 49, 97, 128)] == [16, 16, 24, 48, 64, 128, 128]
    plain = LabelCollator(tok, kind="multiclass")
    assert [plain.width(n) for n in (1, 16, 17, 33)] == [8, 16, 24, 40]
    batch = collate([{"input_ids": [5] * 20, "attention_mask": [1] * 20}, {"input_ids": [6] * 3, "attention_mask": [1] * 3}])
    assert batch["input_ids"].shape == batch["attention_mask"].shape == (2, 24)
    assert batch["attention_mask"].sum(dim=1).tolist() == [20, 3]


def test_build_collator_follows_compile(tiny_encoder_dir):
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    assert build_collator(tok, "multiclass", {}, max_length=64).buckets == ()
    assert build_collator(tok, "multiclass", {"compile": True}, max_length=64).buckets == bucket_widths(64)
    assert build_collator(tok, "multiclass", {"compile": True, "pad_buckets": False}, max_length=64).buckets == ()
    assert build_collator(tok, "multiclass", {"pad_buckets": True}, max_length=64).buckets == bucket_widths(64)


def test_a_tokenizer_without_pad_token_is_named():
    tok = type("Tok", (), {"pad_token_id": None, "padding_side": "right"})()
    with pytest.raises(ValueError, match="no pad token"):
        LabelCollator(tok, kind="multiclass")


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("kind", ["multiclass", "aspects"])
def test_bucket_padding_changes_no_output(tiny_encoder_dir, pooling, kind):
    """The proof that bucketing is result-neutral: the same texts padded to the bucket width and to
    the minimal width give the same logits and embeddings (to float rounding), in eval mode and,
    with dropout off, in training mode with the same gradients."""
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    task = (TaskSpec(kind="aspects", labels=["food", "service"], polarities=["positive", "negative"])
            if kind == "aspects" else TaskSpec(kind="multiclass", labels=["a", "b", "c"]))
    torch.manual_seed(0)
    model = build_classifier({"name": str(tiny_encoder_dir), "pooling": pooling, "dropout": 0.0,
                              "projection_dim": 8}, task)
    for module in model.modules():  # encoder dropout off: training mode then draws no masks
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    feats = _features(tok)
    narrow = LabelCollator(tok, kind=kind, pad_to_multiple_of=None)(feats)
    wide = LabelCollator(tok, kind=kind, buckets=(96,))(feats)
    assert wide["input_ids"].shape[1] == 96 > narrow["input_ids"].shape[1]
    model.eval()
    with torch.no_grad():
        a, b = model(**narrow), model(**wide)
    torch.testing.assert_close(a.logits, b.logits, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.embeddings, b.embeddings, rtol=1e-5, atol=1e-6)
    model.train()
    grads = []
    for batch in (narrow, wide):
        model.zero_grad()
        model(**batch).logits.square().sum().backward()
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for g1, g2 in zip(*grads):
        torch.testing.assert_close(g1, g2, rtol=1e-4, atol=1e-6)
    assert np.isfinite(a.logits.numpy()).all()


# -- the training table (TokenTable + TableCollator, train.fast_step) ---------------------------
def _dataset(rng, n, *, kind="multiclass", token_types=True, weights=True, varied_mask=False):
    import datasets

    rows = {"input_ids": [], "attention_mask": []}
    if token_types:
        rows["token_type_ids"] = []
    for i in range(n):
        length = 0 if i == 3 else int(rng.integers(1, 40))
        rows["input_ids"].append(rng.integers(5, 30_000, size=length).tolist())
        rows["attention_mask"].append((rng.integers(0, 2, size=length) if varied_mask else np.ones(length, int)).tolist())
        if token_types:
            rows["token_type_ids"].append((np.arange(length) >= length // 2).astype(int).tolist())
    rows["labels"] = {"multiclass": lambda: rng.integers(0, 4, size=n).tolist(),
                      "multilabel": lambda: rng.integers(0, 2, size=(n, 3)).astype(float).tolist(),
                      "aspects": lambda: rng.integers(0, 3, size=(n, 2)).tolist()}[kind]()
    if weights:
        rows["sample_weight"] = rng.uniform(0.1, 3.0, size=n).tolist()
    rows["length"] = [len(r) for r in rows["input_ids"]]  # a column the collators ignore
    return datasets.Dataset.from_dict(rows)


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("buckets", [None, (16, 24, 32)])
@pytest.mark.parametrize(("kind", "token_types", "weights", "varied_mask"), [
    ("multiclass", True, True, False), ("multilabel", False, False, True), ("aspects", True, True, True)])
def test_table_batches_equal_the_collators_bit_for_bit(side, buckets, kind, token_types, weights, varied_mask):
    from tailtune.training.collate import TableCollator, TokenTable

    rng = np.random.default_rng(0)
    ds = _dataset(rng, 64, kind=kind, token_types=token_types, weights=weights, varied_mask=varied_mask)
    tok = type("Tok", (), {"pad_token_id": 3, "pad_token_type_id": 1, "padding_side": side})()
    collator = LabelCollator(tok, kind=kind, buckets=buckets)
    table = TokenTable.build(ds)
    assert table is not None and len(table) == 64
    if not varied_mask:
        assert isinstance(table.inputs["attention_mask"], int)  # all ones: one number, no array
    assert table.inputs["input_ids"].dtype == np.int16  # the narrowest type holding the ids
    fast = TableCollator(table, collator)
    for size in (1, 3, 8, 17):
        for _ in range(4):
            idx = rng.choice(64, size=size, replace=False).tolist()
            ref, ours = collator(ds.__getitems__(idx)), fast(table.__getitems__(idx))
            assert list(ours) == list(ref)
            for key in ref:
                assert ours[key].dtype == ref[key].dtype, key
                assert torch.equal(ours[key], ref[key]), key
    only_empty = fast([3])  # a batch of one empty text: the collator's minimal width
    assert only_empty["input_ids"].shape == collator([ds[3]])["input_ids"].shape


def test_table_declines_data_it_cannot_hold():
    import datasets

    from tailtune.training.collate import TokenTable

    rng = np.random.default_rng(1)
    ds = _dataset(rng, 10)
    assert TokenTable.build(ds, max_tokens=5) is None  # too many tokens: the data set's own reads
    assert TokenTable.build(ds.remove_columns("input_ids")) is None
    ragged = datasets.Dataset.from_dict({"input_ids": [[5, 6], [7]], "attention_mask": [[1, 1], [1, 1]]})
    assert TokenTable.build(ragged) is None  # a model input shorter or longer than input_ids
    ragged_labels = datasets.Dataset.from_dict({"input_ids": [[5, 6], [7]], "labels": [[1, 0], [1]]})
    assert TokenTable.build(ragged_labels) is None
    assert TokenTable.build(datasets.Dataset.from_dict({"input_ids": []})) is None


def test_table_follows_the_data_sets_row_mapping():
    """A data set after ``shuffle``/``select``/``remove_columns`` (a row mapping over its stored table):
    the table holds its rows in its own order."""
    from tailtune.training.collate import TableCollator, TokenTable

    rng = np.random.default_rng(2)
    ds = _dataset(rng, 80, kind="multilabel").shuffle(seed=3).select(range(5, 70)).remove_columns("token_type_ids")
    tok = type("Tok", (), {"pad_token_id": 0, "pad_token_type_id": 0, "padding_side": "right"})()
    collator = LabelCollator(tok, kind="multilabel")
    table = TokenTable.build(ds)
    assert len(table) == 65 and list(table.inputs) == ["input_ids", "attention_mask"]
    fast = TableCollator(table, collator)
    for idx in ([0, 1, 2], [64, 10, 33, 7], list(range(65))):
        ref, ours = collator(ds.__getitems__(idx)), fast(idx)
        assert list(ours) == list(ref) and all(torch.equal(ours[k], ref[k]) for k in ref)
