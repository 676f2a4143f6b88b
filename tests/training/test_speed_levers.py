"""The speed levers of the recipe (issue 8): validation, the Trainer settings they produce, and tiny
CPU runs showing they keep the run directory's contract (data-order predictions, unchanged weights'
names). Their GPU effect is measured by ``benchmarks/train_throughput.py`` (benchmarks/README.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import tiny_recipe
from transformers import TrainerCallback

from tailtune.errors import RecipeError
from tailtune.recipe import Recipe, recipe_from_dict
from tailtune.recipe.schema import TrainSection
from tailtune.training import arguments, modeling
from tailtune.utils import rundir

WORDS = ["good", "bad", "plot", "story", "fine", "dull", "scene", "actor", "great", "poor"]


def _varied_data(root, *, n_train=48, n_eval=20, seed=0):
    """Multiclass data whose texts are 1 to 14 words long (so length order differs from data order)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("validation", n_eval), ("test", n_eval)):
        rows = []
        for _ in range(n):
            y = int(rng.integers(3))
            words = [WORDS[y]] + list(rng.choice(WORDS, size=int(rng.integers(0, 14))))
            rows.append({"text": " ".join(words), "labels": ["pos", "neg", "plot"][y]})
        (root / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


class Capture(TrainerCallback):
    """Keeps what the Trainer hands its callbacks at the start of training."""

    def on_train_begin(self, args, state, control, **kw):
        self.args = args
        self.sampler = _base_sampler(kw.get("train_dataloader"))
        self.optimizer = kw.get("optimizer")
        self.model = kw.get("model")


def _base_sampler(loader):
    """The index sampler under accelerate's wrappers (batch sampler shards, batch samplers)."""
    obj = getattr(loader, "batch_sampler", None) or getattr(loader, "sampler", None)
    for _ in range(5):
        inner = getattr(obj, "batch_sampler", None) or getattr(obj, "sampler", None)
        if inner is None:
            break
        obj = inner
    return obj


def _run(recipe, *callbacks):
    from tailtune.training import train

    return train(recipe, callbacks=list(callbacks))


def _targets_in_file_order(data, split, run_dir):
    names = json.loads((run_dir / rundir.TASK).read_text())["labels"]
    return [names.index(json.loads(line)["labels"]) for line in (data / f"{split}.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------- validation
def test_defaults_leave_every_lever_off():
    t = Recipe().train
    assert (t.group_by_length, t.eval_sort_by_length, t.compile, t.pin_memory) == (False, False, False, True)
    assert Recipe().optim.name == "adamw"


def test_fused_adamw_is_a_choice_and_typos_are_named():
    assert recipe_from_dict({"optim": {"name": "adamw_fused"}}).optim.name == "adamw_fused"
    with pytest.raises(RecipeError, match=r"optim\.name = 'adamw_fusd': not allowed \(did you mean 'adamw_fused'\?\)"):
        recipe_from_dict({"optim": {"name": "adamw_fusd"}})


@pytest.mark.parametrize("field", ["group_by_length", "eval_sort_by_length", "compile", "pin_memory"])
def test_lever_flags_take_booleans_only(field):
    assert getattr(recipe_from_dict({"train": {field: True}}).train, field) is True
    with pytest.raises(RecipeError, match=rf"train\.{field} = 'fast'.*Fix: use true or false"):
        recipe_from_dict({"train": {field: "fast"}})


def test_unknown_lever_key_suggests_the_real_one():
    with pytest.raises(RecipeError, match=r"train\.group_by_len: unknown key \(did you mean 'group_by_length'\?\)"):
        recipe_from_dict({"train": {"group_by_len": True}})


def test_length_grouping_and_class_balanced_sampler_are_exclusive():
    with pytest.raises(RecipeError, match=r"train\.group_by_length and sampler 'class_balanced'.*keep one"):
        recipe_from_dict({"train": {"group_by_length": True}, "sampler": "class_balanced"})


def test_optimiser_and_dataloader_arguments():
    assert arguments.optim_name("adamw_fused") == "adamw_torch_fused"
    assert arguments.optim_name("adamw") == "adamw_torch"
    assert arguments.dataloader_kwargs(TrainSection()) == {
        "dataloader_num_workers": 0, "dataloader_pin_memory": True, "dataloader_persistent_workers": False,
    }
    assert arguments.dataloader_kwargs(TrainSection(dataloader_workers=2, pin_memory=False)) == {
        "dataloader_num_workers": 2, "dataloader_pin_memory": False, "dataloader_persistent_workers": False,
        "dataloader_prefetch_factor": 2,
    }


# ---------------------------------------------------------------------------------- tiny runs
def test_levers_reach_the_trainer_and_predictions_keep_the_data_order(tiny_encoder_dir, tmp_path):
    from transformers.trainer_pt_utils import LengthGroupedSampler

    data = _varied_data(tmp_path / "data")
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "run")
    recipe["optim"]["name"] = "adamw_fused"
    recipe["train"].update(group_by_length=True, eval_sort_by_length=True, pin_memory=False, eval_batch_size=4)
    cap = Capture()
    result = _run(recipe, cap)

    assert cap.args.train_sampling_strategy == "group_by_length" and cap.args.optim == "adamw_torch_fused"
    assert cap.args.logging_nan_inf_filter is False and cap.args.dataloader_pin_memory is False
    assert isinstance(cap.sampler, LengthGroupedSampler)
    assert cap.optimizer.param_groups[0].get("fused") is True
    for split in ("validation", "test"):
        saved = np.load(tmp_path / "run" / rundir.PREDICTIONS_DIR / f"{split}.npz")
        assert saved["targets"].tolist() == _targets_in_file_order(data, split, tmp_path / "run")
        assert np.isfinite(saved["logits"]).all()
    assert set(result.eval) == {"validation", "test"}


def test_length_sorted_evaluation_gives_the_same_outputs(tiny_encoder_dir, tmp_path):
    data = _varied_data(tmp_path / "data", seed=1)
    outputs = {}
    for sort in (False, True):
        out = tmp_path / f"run-{sort}"
        recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, out)
        recipe["train"].update(eval_sort_by_length=sort, eval_batch_size=4)
        result = _run(recipe)
        outputs[sort] = (np.load(out / rundir.PREDICTIONS_DIR / "test.npz"), result)
    (plain, r0), (sorted_, r1) = outputs[False], outputs[True]
    assert sorted_["targets"].tolist() == plain["targets"].tolist() == _targets_in_file_order(data, "test", tmp_path / "run-False")
    np.testing.assert_allclose(sorted_["logits"], plain["logits"], atol=1e-5)
    assert [row["validation"]["macro_f1"] for row in r1.history] == pytest.approx(
        [row["validation"]["macro_f1"] for row in r0.history]
    )
    assert r1.history[-1]["validation"]["loss"] == pytest.approx(r0.history[-1]["validation"]["loss"], rel=1e-5)


@pytest.mark.slow
def test_compile_wraps_the_forward_and_keeps_weight_names(tiny_encoder_dir, tmp_path, monkeypatch):
    from safetensors import safe_open

    monkeypatch.setattr(modeling, "COMPILE_BACKEND", "eager")  # dynamo traces; no C++ code generation
    data = _varied_data(tmp_path / "data", n_train=16, n_eval=8)
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "run")
    recipe["train"].update(compile=True, epochs=1)
    cap = Capture()
    result = _run(recipe, cap)

    assert cap.model.classifier._compiled_call_impl is not None
    with safe_open(str(tmp_path / "run" / rundir.MODEL_DIR / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert keys and not any("_orig_mod" in k for k in keys)
    assert np.isfinite(result.history[-1]["train"]["loss"])


def test_workers_score_each_split_on_its_own_rows(tiny_encoder_dir, tmp_path):
    """With data-loader workers the train subsample is scored on training rows, not on a cached
    validation loader (the Trainer's persistent-worker cache keys every evaluation loader "eval")."""
    data = _varied_data(tmp_path / "data", n_train=40, n_eval=12)
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "run")
    recipe["train"].update(dataloader_workers=2, eval_sort_by_length=True, epochs=2)
    result = _run(recipe)
    for row in result.history:
        assert sum(c["support"] for c in row["train"]["per_class"].values()) == 40
        assert sum(c["support"] for c in row["validation"]["per_class"].values()) == 12


def test_length_chunks_is_validated():
    assert Recipe().train.length_chunks == 1
    assert recipe_from_dict({"train": {"length_chunks": 4}}).train.length_chunks == 4
    with pytest.raises(RecipeError, match=r"train\.length_chunks"):
        recipe_from_dict({"train": {"length_chunks": 0}})


def test_length_chunks_reach_the_model_and_keep_the_batches(tiny_encoder_dir, tmp_path):
    """Chunking leaves the sampler random (unlike group_by_length) and the run's contract intact."""
    data = _varied_data(tmp_path / "data", seed=2)
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "run")
    recipe["train"].update(length_chunks=3, epochs=1)
    cap = Capture()
    result = _run(recipe, cap)
    assert cap.model.classifier.length_chunks == 3
    assert cap.args.train_sampling_strategy == "random"
    saved = np.load(tmp_path / "run" / rundir.PREDICTIONS_DIR / "test.npz")
    assert saved["targets"].tolist() == _targets_in_file_order(data, "test", tmp_path / "run")
    assert np.isfinite(saved["logits"]).all() and np.isfinite(result.history[-1]["train"]["loss"])
