"""Statistics, warnings, plots and splits of the data layer."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tt_data_helpers import write_jsonl

from tailtune.data import load_dataset, multilabel_split, stratified_split
from tailtune.data.plots import PLOTS
from tailtune.data.stats import compute_statistics, leakage, text_features
from tailtune.diagnostics.analysis import analyze, write_analysis


def _multiclass(tmp_path, counts=(200, 30, 5), test=None):
    rows = [{"text": f"doc {c} number {i}" + " pad" * c, "labels": "abc"[c]} for c, n in enumerate(counts) for i in range(n)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    if test is not None:
        write_jsonl(tmp_path / "test.jsonl", test)
    return load_dataset(tmp_path, seed=0)


def test_counts_imbalance_and_weights_match_weighting(tmp_path):
    from tailtune.weighting import SCHEMES, class_weights

    data = _multiclass(tmp_path)
    stats = compute_statistics(data)
    train = stats["counts"]["train"]
    assert sum(train.values()) + sum(stats["counts"]["validation"].values()) == 235
    assert stats["imbalance"]["ratio"] == pytest.approx(train["a"] / train["c"])
    assert stats["imbalance"]["largest"] == "a" and stats["imbalance"]["smallest"] == "c"
    for scheme in SCHEMES:
        expected = class_weights([train[n] for n in "abc"], scheme=scheme, names=list("abc")).tolist()
        assert [stats["weights"]["per_scheme"][scheme][n] for n in "abc"] == pytest.approx(expected)
    json.dumps(stats)  # serialisable


def test_token_lengths_per_class(tmp_path):
    data = _multiclass(tmp_path)
    per = compute_statistics(data)["lengths"]["splits"]["train"]["per_class"]
    # "doc c number i" + c * " pad": 4 + c whitespace tokens
    for c, name in enumerate("abc"):
        assert per[name]["min"] == per[name]["max"] == 4 + c


def test_text_features_normalise_case_and_whitespace():
    import pyarrow as pa

    lens, hashes = text_features(pa.chunked_array([["Hello  World", " hello world ", "hello\tworld!", "a"]]))
    assert lens.tolist() == [2, 2, 2, 1]
    assert hashes[0] == hashes[1] != hashes[2]


def test_text_features_of_large_strings_as_pandas_writes_parquet():
    """pandas writes string columns to parquet as ``large_string``: the statistics (``tailtune analyze``,
    ``tailtune fit``) failed on them with ArrowNotImplementedError (binary_join had no kernel)."""
    import pyarrow as pa

    texts = ["Hello  World", " hello world ", "hello\tworld!", "a"]
    lens, hashes = text_features(pa.chunked_array([pa.array(texts, type=pa.large_string())]))
    small_lens, small_hashes = text_features(pa.chunked_array([texts]))
    assert lens.tolist() == small_lens.tolist() and hashes.tolist() == small_hashes.tolist()


def test_statistics_of_a_parquet_file_written_by_pandas(tmp_path):
    import pandas as pd

    path = tmp_path / "reviews.parquet"
    pd.DataFrame({"sentence": [f"review {i} {'good' if i % 3 else 'bad'}" for i in range(40)],
                  "category": ["pos" if i % 3 else "neg" for i in range(40)]}).to_parquet(path)
    stats = compute_statistics(load_dataset(path, text_column="sentence", label_column="category"))
    assert sum(stats["rows"].values()) == 40 and stats["lengths"]["splits"]["train"]["overall"]["max"] == 3


def test_leakage_across_and_within_splits():
    h = {"train": np.array([1, 2, 3, 3], np.uint64), "validation": np.array([3, 9], np.uint64),
         "test": np.array([9, 2, 7], np.uint64)}
    out = leakage(h, lambda split, i: f"{split}-{i}")
    assert out["across"]["validation_in_train"]["rows"] == 1
    assert out["across"]["test_in_train"]["rows"] == 1
    assert out["across"]["test_in_validation"]["examples"] == [{"index": 0, "text": "test-0"}]
    assert out["within"] == {"train": 1, "validation": 0, "test": 0}


def test_warnings_rare_ratio_leakage(tmp_path):
    test = [{"text": "DOC 0   number 1", "labels": "a"}, {"text": "fresh", "labels": "b"}]
    data = _multiclass(tmp_path, counts=(1000, 30, 5), test=test)
    stats = compute_statistics(data)
    codes = {w["code"]: w for w in stats["warnings"]}
    assert "rare_classes" in codes and "c (" in codes["rare_classes"]["message"]
    assert "extreme_imbalance" in codes and "180:1" in codes["extreme_imbalance"]["message"]
    assert "leakage" in codes and stats["leakage"]["across"]["test_in_train"]["rows"] == 1
    assert all(w["remedy"] for w in stats["warnings"])


def test_multilabel_cardinality_and_co_occurrence(tmp_path):
    labels = [["a", "b"], ["a"], ["b", "c"], ["a", "b", "c"]] * 5
    write_jsonl(tmp_path / "train.jsonl", [{"text": f"t {i}", "labels": r} for i, r in enumerate(labels)])
    write_jsonl(tmp_path / "validation.jsonl", [{"text": "v", "labels": []}, {"text": "w", "labels": ["a"]}])
    stats = compute_statistics(load_dataset(tmp_path))
    ml = stats["multilabel"]
    assert ml["cardinality"]["train"] == pytest.approx(2.0)
    assert ml["rows_without_label"]["validation"] == 1
    co = np.array(ml["co_occurrence"]["matrix"])
    np.testing.assert_array_equal(co, np.array([[15, 10, 5], [10, 15, 10], [5, 10, 10]]))
    assert stats["counts"]["train"] == {"a": 15, "b": 15, "c": 10}
    assert set(stats["weights"]["pos_weight"]) == {"a", "b", "c"}
    # the preview of what training's pos_weight would be under every scheme (20 rows: c has 10 of 20)
    per = stats["weights"]["pos_weight_per_scheme"]
    assert per["inverse"] == stats["weights"]["pos_weight"] and per["inverse"]["c"] == pytest.approx(1.0)
    assert per["inverse"]["a"] == pytest.approx(5 / 15) and per["sqrt_inverse"]["a"] == pytest.approx((5 / 15) ** 0.5)
    assert per["uniform"] == {"a": 1.0, "b": 1.0, "c": 1.0}
    eff = (1 - 0.999**5) / (1 - 0.999**15)
    assert per["effective_number"]["a"] == pytest.approx(eff, rel=1e-5)


def test_aspect_table_and_cell_absent_from_train_warning(tmp_path):
    rows = [{"text": f"t{i}", "labels": [["food#positive"], ["food#negative", "staff#positive"]][i % 2]} for i in range(20)]
    write_jsonl(tmp_path / "train.jsonl", rows)
    write_jsonl(tmp_path / "test.jsonl", [{"text": "x", "labels": ["staff#negative"]}])
    stats = compute_statistics(load_dataset(tmp_path, seed=0))
    total = {a: {c: stats["aspects"]["polarity_table"]["train"][a][c] + stats["aspects"]["polarity_table"]["validation"][a][c]
                 for c in ("positive", "negative", "absent")} for a in ("food", "staff")}
    assert total == {"food": {"positive": 10, "negative": 10, "absent": 0},
                     "staff": {"positive": 10, "negative": 0, "absent": 10}}
    codes = {w["code"]: w for w in stats["warnings"]}
    assert "staff#negative" in codes["test_class_absent_from_train"]["message"]
    assert set(stats["weights"]["per_aspect"]) == {"food", "staff"}
    assert "error" in stats["weights"]["per_aspect"]["staff"]["inverse"]  # zero staff#negative: undefined
    assert stats["weights"]["per_aspect"]["food"]["uniform"]["absent"] == 1.0


def test_tokenizer_lengths(tmp_path, tiny_encoder_dir):
    from transformers import AutoTokenizer

    data = _multiclass(tmp_path, counts=(20, 10))
    _, stats = analyze(tmp_path, tokenizer=str(tiny_encoder_dir), seed=0)
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    per = stats["lengths"]["splits"]["train"]["per_class"]
    first = data.splits["train"]["text"][0]
    assert "tokenizer tokens" in stats["lengths"]["unit"]
    assert per["a"]["max"] >= len(tok(first)["input_ids"]) >= per["a"]["min"]


@pytest.mark.parametrize("kind", ["multiclass", "multilabel", "aspects"])
def test_plots_and_write_analysis(tmp_path, kind):
    if kind == "multiclass":
        rows = [{"text": f"t {i}", "labels": "abc"[i % 3]} for i in range(30)]
    elif kind == "multilabel":
        rows = [{"text": f"t {i}", "labels": [["a"], ["a", "b"], ["c"]][i % 3]} for i in range(30)]
    else:
        rows = [{"text": f"t {i}", "labels": [["x#positive"], ["x#negative", "y#neutral"], ["y#positive"]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "d" / "train.jsonl", rows)
    _, stats = analyze(tmp_path / "d")
    for name, fn in PLOTS.items():
        png = fn(stats)
        if name == "heat_map.png" and kind == "multiclass":
            assert png is None
        else:
            assert png[:4] == b"\x89PNG"
    written = write_analysis(stats, tmp_path / "out")
    assert (tmp_path / "out" / "analysis.json") in written
    assert json.loads((tmp_path / "out" / "analysis.json").read_text())["task"]["kind"] == kind


def test_plots_leave_the_callers_matplotlib_backend_alone(tmp_path):
    """A notebook user's backend must survive ``write_analysis`` (no pyplot, no ``matplotlib.use``)."""
    import matplotlib

    rows = [{"text": f"t {i}", "labels": [["a"], ["a", "b"], ["c"]][i % 3]} for i in range(30)]
    write_jsonl(tmp_path / "d" / "train.jsonl", rows)
    _, stats = analyze(tmp_path / "d")
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        write_analysis(stats, tmp_path / "out")
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(before)


def test_stratified_split_properties():
    y = np.array([0] * 500 + [1] * 37 + [2] * 1 + [3] * 2)
    tr, va = stratified_split(y, val_fraction=0.2, seed=5)
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(y)))
    assert np.bincount(y[va], minlength=4).tolist() == [100, 7, 0, 0]  # round(0.4)=0 for 2; 1 stays in train
    assert set(y[tr]) == {0, 1, 2, 3}
    tr2, va2 = stratified_split(y, val_fraction=0.2, seed=5)
    assert np.array_equal(va, va2)
    assert not np.array_equal(va, stratified_split(y, val_fraction=0.2, seed=6)[1])
    with pytest.raises(ValueError, match="val_fraction"):
        stratified_split(y, val_fraction=0.0)


def test_multilabel_split_deterministic_and_balanced():
    rng = np.random.default_rng(0)
    y = (rng.random((400, 6)) < np.array([0.5, 0.3, 0.1, 0.05, 0.03, 0.02])).astype(np.float32)
    tr, va = multilabel_split(y, val_fraction=0.25, seed=3)
    tr2, va2 = multilabel_split(y, val_fraction=0.25, seed=3)
    assert np.array_equal(va, va2) and len(va) == 100 and not set(tr) & set(va)
    share = y[va].sum(0) / np.maximum(y.sum(0), 1)
    assert np.all(np.abs(share - 0.25) < 0.12)


def test_stratified_split_property():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(0, 5), min_size=2, max_size=300), st.floats(0.05, 0.5), st.integers(0, 2**31))
    def check(labels, frac, seed):
        y = np.array(labels)
        tr, va = stratified_split(y, val_fraction=frac, seed=seed)
        assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(len(y)))
        for c, n in zip(*np.unique(y, return_counts=True)):
            n_val = int((y[va] == c).sum())
            assert n_val == min(int(np.rint(n * frac)), n - 1)  # exact per class, one always stays in train

    check()


def test_effective_number_saturation_warning():
    from tailtune.data.stats import find_warnings

    def stats_for(counts):
        from tailtune.weighting import class_weights

        names = [f"c{i}" for i in range(len(counts))]
        per = {s: dict(zip(names, class_weights(counts, scheme=s).tolist())) for s in ("inverse", "effective_number")}
        return {"classes": names, "counts": {"train": dict(zip(names, counts))}, "task": {"kind": "multiclass"},
                "weights": {"per_scheme": per}}

    codes = {w["code"] for w in find_warnings(stats_for([300_000, 20_000, 12_000]))}
    assert "effective_number_saturated" in codes
    codes = {w["code"] for w in find_warnings(stats_for([3_000, 200, 120]))}
    assert "effective_number_saturated" not in codes
