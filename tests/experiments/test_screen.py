"""Screening: recipe specs, heads with the real losses for every task kind, cache, screen.json."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tailtune.errors import RecipeError
from tailtune.experiments.embeddings import cache_key, get_embeddings, model_digest
from tailtune.experiments.screen import (
    HeadConfig,
    minority_classes,
    parse_recipe_specs,
    prepare_recipe,
    screen,
    target_tensor,
    train_head,
)

FAST = HeadConfig(hidden=16, max_epochs=6, patience=3, batch_size=32)


def test_recipe_specs_presets_knobs_files_and_errors(tmp_path):
    specs = parse_recipe_specs("ce, focal:1 ,weighted-ce")
    assert [s.spec for s in specs] == ["ce", "focal:1", "weighted-ce"]
    assert specs[1].raw["loss"]["focal"]["gamma"] == 1
    path = tmp_path / "mine.yaml"
    path.write_text("loss: {focal: {gamma: 0.5}}\n")
    assert parse_recipe_specs([str(path)])[0].raw["loss"]["focal"]["gamma"] == 0.5
    with pytest.raises(RecipeError, match="did you mean"):
        parse_recipe_specs("focl")
    with pytest.raises(RecipeError, match="twice"):
        parse_recipe_specs("ce,ce")
    with pytest.raises(RecipeError, match="no recipe"):
        parse_recipe_specs(" , ")


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "aspects"])
def test_heads_train_with_registry_losses_for_every_kind(kind, exp_data):
    from tailtune.data import load_dataset

    loaded = load_dataset(exp_data(kind))
    task = loaded.task
    rng = np.random.default_rng(0)
    feats = {k: rng.normal(size=(len(v), 8)).astype(np.float32) for k, v in loaded.splits.items()}
    targets = {k: target_tensor(task, v["labels"]) for k, v in loaded.splits.items()}
    specs = "ce,focal:2,weighted-ce" + (",asl" if kind in ("binary", "multilabel") else ",logit-adjust")
    specs += "" if kind == "aspects" else ",supcon"  # the trainer refuses supcon for aspects, so does screen
    for spec in parse_recipe_specs(specs):
        prep = prepare_recipe(spec, task, loaded.splits["train"]["labels"])
        out = train_head(prep, task, feats, targets, seed=1, head=FAST)
        assert out["logits"]["test"].shape == (len(loaded.splits["test"]), task.num_outputs)
        assert np.isfinite(out["logits"]["test"]).all() and 1 <= out["best_epoch"] <= out["epochs"]
    assert minority_classes(task, loaded.splits["train"]["labels"])


def test_asl_on_multiclass_is_refused_with_reason(exp_data):
    from tailtune.data import load_dataset

    loaded = load_dataset(exp_data("multiclass"))
    with pytest.raises((RecipeError, ValueError), match="asl"):
        prepare_recipe(parse_recipe_specs("asl")[0], loaded.task, loaded.splits["train"]["labels"])


def test_head_is_deterministic_given_a_seed(exp_data):
    from tailtune.data import load_dataset

    loaded = load_dataset(exp_data("multiclass"))
    task = loaded.task
    rng = np.random.default_rng(0)
    feats = {k: rng.normal(size=(len(v), 8)).astype(np.float32) for k, v in loaded.splits.items()}
    targets = {k: target_tensor(task, v["labels"]) for k, v in loaded.splits.items()}
    prep = prepare_recipe(parse_recipe_specs("focal:1")[0], task, loaded.splits["train"]["labels"])
    a = train_head(prep, task, feats, targets, seed=3, head=FAST)["logits"]["test"]
    b = train_head(prep, task, feats, targets, seed=3, head=FAST)["logits"]["test"]
    np.testing.assert_array_equal(a, b)


def test_cache_key_changes_with_texts_length_and_model(tiny_encoder_dir):
    digest = model_digest(tiny_encoder_dir)
    base = cache_key(digest, {"train": ["a", "b"]}, max_length=128, pooling="mean")
    assert base == cache_key(digest, {"train": ["a", "b"]}, max_length=128, pooling="mean")
    assert base != cache_key(digest, {"train": ["a", "c"]}, max_length=128, pooling="mean")
    assert base != cache_key(digest, {"train": ["ab"]}, max_length=128, pooling="mean")
    assert base != cache_key(digest, {"train": ["a", "b"]}, max_length=64, pooling="mean")
    assert base != cache_key(model_digest("other/model"), {"train": ["a", "b"]}, max_length=128, pooling="mean")


def test_embeddings_match_direct_mean_pooling_and_hit_the_cache(tiny_encoder_dir, tmp_path):
    import torch
    from transformers import AutoModel, AutoTokenizer

    texts = ["a short one", "a much longer text with quite a few more words in it", "mid sized text here"]
    first = get_embeddings({"train": texts}, model=str(tiny_encoder_dir), cache_dir=tmp_path, batch_size=2,
                           precision="fp32", show_progress=False)
    assert not first.hit and first.path.exists()
    second = get_embeddings({"train": texts}, model=str(tiny_encoder_dir), cache_dir=tmp_path, batch_size=2,
                            precision="fp32", show_progress=False)
    assert second.hit and second.key == first.key
    np.testing.assert_array_equal(first.arrays["train"], second.arrays["train"])
    tok = AutoTokenizer.from_pretrained(tiny_encoder_dir)
    model = AutoModel.from_pretrained(tiny_encoder_dir).eval()
    with torch.no_grad():
        for i, text in enumerate(texts):  # one at a time: no padding at all
            enc = tok(text, return_tensors="pt")
            ref = model(**enc).last_hidden_state[0].mean(0).numpy()
            np.testing.assert_allclose(first.arrays["train"][i], ref, atol=1e-5)


def test_screen_end_to_end_writes_ranked_json_and_second_call_hits_cache(exp_data, tiny_encoder_dir, tmp_path):
    data = exp_data("multiclass")
    kwargs = dict(recipes="ce,focal:2,weighted-ce,asl", seeds=2, model=str(tiny_encoder_dir), max_length=16,
                  cache_dir=tmp_path / "cache", head=FAST, n_resamples=200, show_progress=False)
    result = screen(data, out=tmp_path / "out", **kwargs)
    saved = json.loads((tmp_path / "out" / "screen.json").read_text())
    assert saved["embedding"]["cache_hit"] is False and saved["baseline"] == "ce"
    ok = [r for r in saved["recipes"] if r["status"] == "ok"]
    assert [r["rank"] for r in ok] == [1, 2, 3]
    means = [r["default"]["macro_f1"]["mean"] for r in ok]
    assert means == sorted(means, reverse=True)
    skipped = [r for r in saved["recipes"] if r["status"] == "skipped"]
    assert [r["spec"] for r in skipped] == ["asl"] and "multiclass" in skipped[0]["reason"]
    focal = next(r for r in ok if r["spec"] == "focal:2")
    assert focal["vs_baseline"]["default"]["verdict"] in ("improvement", "regression", "no detectable difference")
    assert "recall/plot" in focal["default"] and "macro_f1" in focal["tuned"]
    assert len(focal["per_seed"]) == 2 and result.minority == saved["minority_classes"]
    again = screen(data, **kwargs)
    assert again.embedding["cache_hit"] is True
    assert [r["spec"] for r in again.ranked()] == [r["spec"] for r in ok]  # deterministic ranking
