"""End-to-end training on a tiny random BERT: every task kind, the run directory contract, history rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from tiny_runs import tiny_recipe

from tailtune.errors import RecipeError, RunDirError, TailtuneError
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

HISTORY_KEYS = {"epoch", "step", "lr", "time_s", "train", "validation", "gap", "best", "early_stopping"}


def _train(recipe):
    from tailtune.training import train

    return train(recipe)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "aspects"])
def test_every_kind_end_to_end(kind, tiny_data, tiny_encoder_dir, tmp_path, contracts):
    out = tmp_path / f"run-{kind}"
    recipe = tiny_recipe(kind, tiny_data(kind), tiny_encoder_dir, out)
    if kind == "multiclass":
        recipe["weighting"] = {"scheme": "inverse", "cap": 3.0}
        recipe["sampler"] = "class_balanced"
    result = _train(recipe)

    assert result.run_dir == out
    for name in (rundir.RECIPE, rundir.TASK, rundir.HISTORY, rundir.EVAL):
        assert (out / name).is_file(), name
    assert (out / rundir.MODEL_DIR / "model.safetensors").is_file()
    ckpts = sorted((out / rundir.CHECKPOINTS_DIR).glob("checkpoint-*"))
    assert 1 <= len(ckpts) <= 2 and all((c / "model.safetensors").exists() for c in ckpts)
    assert not list((out / rundir.CHECKPOINTS_DIR).rglob("pytorch_model.bin"))

    rows = read_jsonl(out / rundir.HISTORY)
    assert [r["epoch"] for r in rows] == [1, 2] and rows == result.history
    for row in rows:
        assert HISTORY_KEYS <= set(row)
        parts = set(recipe["loss"])
        assert set(row["train"]["loss_parts"]) == parts and set(row["validation"]["loss_parts"]) == parts
        assert np.isfinite(row["train"]["loss"]) and np.isfinite(row["validation"]["loss"])
        assert row["gap"]["macro_f1"] == pytest.approx(row["train"]["macro_f1"] - row["validation"]["macro_f1"])
        assert row["gap"]["loss"] == pytest.approx(row["validation"]["loss"] - row["train"]["loss"])
        assert "per_class" in row["validation"]
    assert rows[-1]["stopped"] == "max_epochs"
    assert sum(r["best"] for r in rows) >= 1

    task = json.loads((out / rundir.TASK).read_text())
    assert task["kind"] == kind
    evaluation = json.loads((out / rundir.EVAL).read_text())
    assert set(evaluation) == {"validation", "test"} and evaluation == result.eval
    # the best epoch's model is the one evaluated and saved
    best = max(r["validation"]["macro_f1"] for r in rows)
    assert evaluation["validation"]["macro_f1"] == pytest.approx(best)

    from tailtune.models import load_classifier

    model, tokenizer = load_classifier(out / rundir.MODEL_DIR)
    for split in ("validation", "test"):
        npz = np.load(out / rundir.PREDICTIONS_DIR / f"{split}.npz")
        assert npz["logits"].dtype == np.float32 and npz["logits"].shape == (24, model.num_outputs if hasattr(model, "num_outputs") else npz["logits"].shape[1])
        assert len(npz["targets"]) == 24
    # saved model reproduces the saved validation logits
    from tailtune.data import load_dataset

    texts = load_dataset(recipe["data"]["path"], task=kind).splits["validation"]["text"][:4]
    enc = tokenizer(texts, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**enc).logits.numpy()
    np.testing.assert_allclose(logits, np.load(out / rundir.PREDICTIONS_DIR / "validation.npz")["logits"][:4], atol=1e-4)


def test_early_stopping_restores_best(tiny_data, tiny_encoder_dir, tmp_path, contracts):
    out = tmp_path / "run"
    recipe = tiny_recipe("multiclass", tiny_data("multiclass"), tiny_encoder_dir, out)
    recipe["train"]["epochs"] = 6
    recipe["optim"]["lr"] = 1.0e-9  # nothing improves after epoch 1: patience 1 stops at epoch 2
    recipe["early_stopping"] = {"metric": "loss", "patience": 1, "min_delta": 1.0}
    result = _train(recipe)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert result.history[-1]["stopped"] == "early_stopping"
    assert [r["best"] for r in result.history] == [True, False]
    assert result.history[-1]["early_stopping"] == {
        "metric": "loss", "best": result.history[0]["validation"]["loss"], "patience_left": 0
    }


def test_uncertainty_balancing_parameters_are_trained(tiny_data, tiny_encoder_dir, tmp_path, contracts):
    from tailtune.training.trainer import TrainModule

    out = tmp_path / "run"
    recipe = tiny_recipe("multiclass", tiny_data("multiclass"), tiny_encoder_dir, out)
    recipe["loss"] = {"cross_entropy": {"weight": 0.5}, "second": {"type": "softmax_focal", "gamma": 1.0}}
    recipe["loss_balance"] = "uncertainty"
    seen = {}

    from transformers import TrainerCallback

    class Grab(TrainerCallback):
        def on_train_end(self, args, state, control, model=None, optimizer=None, **kw):
            module = model.module if hasattr(model, "module") else model
            assert isinstance(module, TrainModule)
            loss_params = {id(p) for p in module.loss.parameters()}
            in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
            seen["loss_params"] = len(loss_params)
            seen["in_optimizer"] = loss_params <= in_opt

    from tailtune.training import train

    train(recipe, callbacks=[Grab()])
    assert seen["loss_params"] >= 1 and seen["in_optimizer"]


def test_invalid_recipe_fails_before_model_load(tiny_data, tiny_encoder_dir, tmp_path, monkeypatch, contracts):
    import tailtune.models

    def boom(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("model loaded before the recipe was validated")

    monkeypatch.setattr(tailtune.models, "build_classifier", boom)
    data = tiny_data("multiclass")
    out = tmp_path / "run"
    bad = tiny_recipe("multiclass", data, tiny_encoder_dir, out)
    bad["weighting"] = {"scheme": "inverse", "overrides": {"plott": 2.0}}
    with pytest.raises(RecipeError, match=r"weighting\.overrides\.plott.*did you mean 'plot'"):
        _train(bad)
    bad = tiny_recipe("multiclass", data, tiny_encoder_dir, out)
    bad["optim"]["lr"] = -1.0
    with pytest.raises(RecipeError, match=r"optim\.lr"):
        _train(bad)
    bad = tiny_recipe("multiclass", data, tiny_encoder_dir, out)
    bad["task"]["kind"] = "binary"
    bad["loss"] = {"ce": {}}
    with pytest.raises(TailtuneError, match="binary"):
        _train(bad)
    assert not out.exists()


def test_existing_run_dir_is_refused(tiny_data, tiny_encoder_dir, tmp_path, contracts):
    out = tmp_path / "run"
    out.mkdir()
    (out / rundir.HISTORY).write_text('{"epoch": 1, "step": 8}\n')  # a run that completed an epoch
    with pytest.raises(RunDirError, match="--resume"):
        _train(tiny_recipe("multiclass", tiny_data("multiclass"), tiny_encoder_dir, out))
    with pytest.raises(RunDirError, match="no recipe.yaml"):
        from tailtune.training import train

        train(None, resume=out)


def test_out_of_memory_names_the_knobs(tiny_data, tiny_encoder_dir, tmp_path, monkeypatch, contracts):
    from tailtune.training.trainer import TailtuneTrainer

    def oom(self, *a, **k):
        raise torch.OutOfMemoryError("CUDA out of memory")

    monkeypatch.setattr(TailtuneTrainer, "train", oom)
    recipe = tiny_recipe("multiclass", tiny_data("multiclass"), tiny_encoder_dir, tmp_path / "run")
    recipe["train"].update(batch_size=32, grad_accum=2)
    with pytest.raises(RecipeError, match=r"train\.batch_size=16 --set train\.grad_accum=4 \(same effective batch 64\)"):
        _train(recipe)


def test_fixed_seed_on_cpu_is_deterministic(tiny_data, tiny_encoder_dir, tmp_path, contracts):
    """Two runs of the same recipe: the same history (but for the timings) and the same eval.json."""
    data = tiny_data("multiclass")
    results = []
    for name in ("a", "b"):
        recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / name, sampler="class_balanced")
        recipe["model"]["dropout"] = 0.1  # dropout draws from the seeded RNG too
        results.append(_train(recipe))
    timings = ("time_s", "eval_time_s")
    a, b = ([{k: v for k, v in r.items() if k not in timings} for r in res.history] for res in results)
    assert a == b and len(a) == 2
    assert results[0].eval == results[1].eval
    for split in ("validation", "test"):
        la = np.load(tmp_path / "a" / rundir.PREDICTIONS_DIR / f"{split}.npz")["logits"]
        lb = np.load(tmp_path / "b" / rundir.PREDICTIONS_DIR / f"{split}.npz")["logits"]
        np.testing.assert_array_equal(la, lb)


def test_label_sep_and_pos_weight_beside_a_hierarchy_part(tiny_encoder_dir, tmp_path, contracts):
    """``data.label_sep`` reaches the data layer; an explicit ``apply_to: pos_weight`` weights the BCE
    part and leaves the hierarchy penalty (which scores no classes) alone."""
    rng = np.random.default_rng(0)
    root = tmp_path / "data"
    root.mkdir()
    for split, n in (("train", 48), ("validation", 16)):
        rows = []
        for _ in range(n):
            labs = ["grain", "wheat"] if rng.random() < 0.3 else ["earn"] if rng.random() < 0.6 else ["grain"]
            rows.append({"text": " ".join(labs) + " news", "labels": "|".join(labs)})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = tiny_recipe("multilabel", root, tiny_encoder_dir, tmp_path / "run")
    recipe["task"]["hierarchy"] = {"wheat": "grain"}
    recipe["data"]["label_sep"] = "|"
    recipe["loss"] = {"bce": {"weight": 1.0}, "hierarchy": {"weight": 0.1}}
    recipe["weighting"] = {"scheme": "inverse", "cap": 10.0, "apply_to": "pos_weight"}
    recipe["train"]["epochs"] = 1
    result = _train(recipe)
    task = json.loads((result.run_dir / rundir.TASK).read_text())
    assert task["kind"] == "multilabel" and set(task["labels"]) == {"earn", "grain", "wheat"}
    assert set(result.history[0]["train"]["loss_parts"]) == {"bce", "hierarchy"}


def test_gradient_accumulation_matches_the_full_batch(tiny_data, tiny_encoder_dir, tmp_path, contracts):
    """batch 8 x grad_accum 2 trains like batch 16 x 1: the loss goes through ``num_items_in_batch``
    (sum over the optimiser step's items), so the same examples give the same updates."""
    from transformers import AutoModel, AutoTokenizer

    encoder = tmp_path / "no-dropout"  # encoder dropout would draw different masks for other batch shapes
    model = AutoModel.from_pretrained(tiny_encoder_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.save_pretrained(encoder)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(encoder)
    data = tiny_data("multiclass")
    runs = {}
    for name, (bs, ga) in {"full": (16, 1), "accum": (8, 2)}.items():
        recipe = tiny_recipe("multiclass", data, encoder, tmp_path / name)
        recipe["train"].update(batch_size=bs, grad_accum=ga, eval_batch_size=16)
        recipe["weighting"] = {"scheme": "inverse", "apply_to": "weight"}  # a weighted mean must stay exact too
        runs[name] = _train(recipe)
    full, accum = (runs[k].history for k in ("full", "accum"))
    assert [r["step"] for r in full] == [r["step"] for r in accum] == [4, 8]
    for a, b in zip(full, accum):
        assert a["train"]["loss"] == pytest.approx(b["train"]["loss"], rel=1e-4)
        assert a["validation"]["loss"] == pytest.approx(b["validation"]["loss"], rel=1e-4)
    la = np.load(tmp_path / "full" / rundir.PREDICTIONS_DIR / "validation.npz")["logits"]
    lb = np.load(tmp_path / "accum" / rundir.PREDICTIONS_DIR / "validation.npz")["logits"]
    np.testing.assert_allclose(la, lb, rtol=1e-4, atol=1e-5)
