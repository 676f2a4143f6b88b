"""The speed levers of the recipe (issues 8 and 15): validation, the Trainer settings they produce,
tiny CPU runs showing they keep the run directory's contract (data-order predictions, unchanged
weights' names), and that every lever that should not change results does not: the same history
and logits as the plain path, for the same seed, to rounding (bit for bit where the maths is the
same). Their speed is measured by ``benchmarks/step_overhead.py`` and ``train_throughput.py``
(benchmarks/README.md)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tiny_runs import tiny_recipe
from transformers import TrainerCallback

from tailtune.errors import RecipeError
from tailtune.recipe import Recipe, recipe_from_dict
from tailtune.recipe.schema import TrainSection, check_train_levers
from tailtune.training import arguments
from tailtune.training import speed as speed_mod
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

    return train(recipe, callbacks=list(callbacks), report=False)  # compared: history, predictions (no report.html)


def _targets_in_file_order(data, split, run_dir):
    names = json.loads((run_dir / rundir.TASK).read_text())["labels"]
    return [names.index(json.loads(line)["labels"]) for line in (data / f"{split}.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------- validation
def test_defaults_leave_every_lever_off():
    """Off by default: every lever that changes results (group_by_length) and every lever with a
    cost to pay first (compile); on: those that change nothing (fast_step, pin_memory)."""
    t = Recipe().train
    assert (t.group_by_length, t.eval_sort_by_length, t.compile, t.pin_memory) == (False, False, False, True)
    assert (t.fast_step, t.cuda_graphs, t.pad_buckets, t.compile_budget_s, t.compile_scope) == (
        True, False, None, 300.0, "layers")
    assert Recipe().optim.name == "adamw"
    opts = speed_mod.speed_options(Recipe().train.model_dump())
    assert (opts.fast_step, opts.compile, opts.cuda_graphs, opts.pad_buckets) == (True, False, False, False)
    assert speed_mod.speed_options({"cuda_graphs": True}).compile is True  # CUDA graphs imply compile
    assert speed_mod.speed_options({"compile": True}).pad_buckets is True  # buckets follow compile


def test_fused_adamw_is_a_choice_and_typos_are_named():
    assert recipe_from_dict({"optim": {"name": "adamw_fused"}}).optim.name == "adamw_fused"
    with pytest.raises(RecipeError, match=r"optim\.name = 'adamw_fusd': not allowed \(did you mean 'adamw_fused'\?\)"):
        recipe_from_dict({"optim": {"name": "adamw_fusd"}})


@pytest.mark.parametrize("field", ["group_by_length", "eval_sort_by_length", "compile", "pin_memory", "fast_step",
                                   "cuda_graphs", "pad_buckets"])
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


def test_compile_budget_and_chunking_are_validated():
    assert recipe_from_dict({"train": {"compile_budget_s": 0}}).train.compile_budget_s == 0
    with pytest.raises(RecipeError, match=r"train\.compile_budget_s"):
        recipe_from_dict({"train": {"compile_budget_s": -1}})
    for lever in ("compile", "cuda_graphs"):
        with pytest.raises(RecipeError, match=r"train\.length_chunks > 1 and train\.compile.*keep one"):
            recipe_from_dict({"train": {lever: True, "length_chunks": 4}})
        with pytest.raises(ValueError, match="keep one"):  # the rule itself, for any object with the fields
            check_train_levers(TrainSection().model_copy(update={lever: True, "length_chunks": 4}))
    check_train_levers(TrainSection(compile=True))  # compile alone, or chunking alone, is fine
    check_train_levers(TrainSection(length_chunks=4))


def test_optimiser_and_dataloader_arguments(monkeypatch):
    assert arguments.optim_name("adamw_fused") == "adamw_torch_fused"
    assert arguments.optim_name("adamw") == "adamw_torch_fused"  # the fused kernel is the default AdamW
    assert speed_mod.dataloader_kwargs(TrainSection()) == speed_mod.dataloader_kwargs({}) == {
        "dataloader_num_workers": 0, "dataloader_pin_memory": True, "dataloader_persistent_workers": False,
    }
    assert speed_mod.dataloader_kwargs(TrainSection(dataloader_workers=2, pin_memory=False)) == {
        "dataloader_num_workers": 2, "dataloader_pin_memory": False, "dataloader_persistent_workers": False,
        "dataloader_prefetch_factor": 2,
    }
    assert speed_mod.trainer_speed_kwargs({})["logging_nan_inf_filter"] is False
    assert "accelerator_config" not in speed_mod.trainer_speed_kwargs({})  # no GPU here
    monkeypatch.setattr(speed_mod, "_cuda", lambda: True)
    assert speed_mod.trainer_speed_kwargs({})["accelerator_config"] == {"non_blocking": True}
    assert "accelerator_config" not in speed_mod.trainer_speed_kwargs({"pin_memory": False})


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
    import torch
    from safetensors import safe_open

    from tailtune.training.compiled import CompiledForward

    torch._dynamo.reset()  # forget what earlier tests compiled: count this test's compilations
    monkeypatch.setattr(speed_mod, "COMPILE_BACKEND", "eager")  # dynamo traces; no C++ code generation
    data = _varied_data(tmp_path / "data", n_train=16, n_eval=8)
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "run")
    recipe["train"].update(compile=True, epochs=1)
    cap = Capture()
    result = _run(recipe, cap)

    layers = cap.model.classifier.encoder.encoder.layer  # scope "layers": each layer, one shared compilation
    assert all(isinstance(layer.forward, CompiledForward) for layer in layers)
    stats = layers[0].forward.stats
    assert stats.compiled_calls == 2 * len(layers) and stats.compilations == 1  # 16 rows, batch 8: 2 steps
    assert stats.eager_calls == 0 and stats.error is None
    with safe_open(str(tmp_path / "run" / rundir.MODEL_DIR / "model.safetensors"), "pt") as fh:
        keys = list(fh.keys())
    assert keys and not any("_orig_mod" in k or "forward" in k for k in keys)
    assert np.isfinite(result.history[-1]["train"]["loss"])
    speed = result.history[-1]["speed"]  # the compile time, reported in the history
    assert speed["compile_s"] > 0 and speed["budget_s"] == 300.0 and speed["budget_exhausted"] is False
    assert speed["scope"] == "layers"


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


# ------------------------------------------------------------- levers that must change no result
#: lever -> (train-section overrides on top of the default path, "exact" | "rounding")
NEUTRAL_LEVERS = {
    "fast_step (default)": ({}, "exact"),
    "pad_buckets": ({"pad_buckets": True}, "rounding"),
    "compile": ({"compile": True}, "rounding"),
    "cuda_graphs (CPU: compile alone)": ({"cuda_graphs": True}, "rounding"),
    "compile without buckets": ({"compile": True, "pad_buckets": False}, "rounding"),
    "compile the whole model": ({"compile": True, "compile_scope": "model"}, "rounding"),
    "compile the training step": ({"compile": True, "compile_scope": "step"}, "rounding"),
    "eval_sort_by_length": ({"eval_sort_by_length": True, "eval_batch_size": 4}, "rounding"),
    "dataloader_workers": ({"dataloader_workers": 2}, "exact"),
    "pin_memory off": ({"pin_memory": False}, "exact"),
}


@pytest.fixture(scope="module")
def lever_setup(tiny_encoder_dir, tmp_path_factory):
    """Data with varied lengths, an encoder without dropout (bucket widths and compiled kernels
    draw dropout masks differently: same distribution, other draws), and the plain path's run:
    the Trainer's own step loop, nothing compiled, padding to a multiple of 8."""
    from transformers import AutoModel, AutoTokenizer

    root = tmp_path_factory.mktemp("levers")
    encoder = root / "no-dropout"
    model = AutoModel.from_pretrained(tiny_encoder_dir, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model.save_pretrained(encoder)
    AutoTokenizer.from_pretrained(tiny_encoder_dir).save_pretrained(encoder)
    data = _varied_data(root / "data", n_train=40, n_eval=16, seed=3)
    recipe = tiny_recipe("multiclass", data, encoder, root / "plain")
    recipe["train"].update(fast_step=False, epochs=1)
    return {"root": root, "data": data, "encoder": encoder, "plain": _run(recipe)}


def _assert_same(got, ref, how: str, path: str = "") -> None:
    if isinstance(ref, dict):
        assert set(got) == set(ref), path
        for key in ref:
            if key not in ("time_s", "eval_time_s"):
                _assert_same(got[key], ref[key], how, f"{path}.{key}")
    elif isinstance(ref, list):
        assert len(got) == len(ref), path
        for i, (g, r) in enumerate(zip(got, ref)):
            _assert_same(g, r, how, f"{path}[{i}]")
    elif isinstance(ref, float) and how == "rounding":
        assert got == pytest.approx(ref, rel=1e-4, abs=1e-6), path
    else:
        assert got == ref, path


@pytest.mark.parametrize("lever", list(NEUTRAL_LEVERS))
def test_lever_changes_no_result(lever, lever_setup, monkeypatch):
    """Same seed, same data: the lever's history and logits equal the plain path's, bit for bit
    where the same maths runs on the same shapes, else to float rounding."""
    overrides, how = NEUTRAL_LEVERS[lever]
    monkeypatch.setattr(speed_mod, "COMPILE_BACKEND", "eager")  # dynamo tracing; no C++ code generation
    out = lever_setup["root"] / f"run-{list(NEUTRAL_LEVERS).index(lever)}"
    recipe = tiny_recipe("multiclass", lever_setup["data"], lever_setup["encoder"], out)
    recipe["train"].update(epochs=1, **overrides)
    result = _run(recipe)
    plain = lever_setup["plain"]
    _assert_same([{k: v for k, v in r.items() if k != "speed"} for r in result.history], plain.history, how)
    _assert_same(result.eval, plain.eval, how)
    for split in ("validation", "test"):
        a = np.load(out / rundir.PREDICTIONS_DIR / f"{split}.npz")
        b = np.load(plain.run_dir / rundir.PREDICTIONS_DIR / f"{split}.npz")
        assert a["targets"].tolist() == b["targets"].tolist()
        if how == "exact":
            assert np.array_equal(a["logits"], b["logits"])
        else:
            np.testing.assert_allclose(a["logits"], b["logits"], rtol=1e-4, atol=1e-5)


def test_the_fused_adamw_default_matches_the_per_tensor_loop(lever_setup, monkeypatch):
    """``optim.name: adamw`` became PyTorch's fused kernel (one launch for every parameter): the
    same update as the per-tensor loop tailtune used before, to rounding."""
    out = lever_setup["root"] / "run-unfused"
    recipe = tiny_recipe("multiclass", lever_setup["data"], lever_setup["encoder"], out)
    recipe["train"].update(fast_step=False, epochs=1)
    monkeypatch.setattr(arguments, "optim_name", lambda name: "adamw_torch")
    cap = Capture()
    result = _run(recipe, cap)
    assert cap.optimizer.param_groups[0].get("fused") in (None, False)
    _assert_same(result.history, lever_setup["plain"].history, "rounding")


# ------------------------------------------------------------------- the compile-time bound
def _toy():
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def test_compile_budget_stops_further_compilations():
    """Once the compiling calls have used the budget, a call that would compile again (a new
    dtype here) runs eagerly; inputs the compiled graph covers still use it."""
    import torch

    from tailtune.training import compiled

    torch._dynamo.reset()
    model = _toy()
    handle = compiled.install(model, backend="eager", budget_s=0.0, scope="model")
    assert compiled.install(model, backend="eager") is handle  # idempotent
    x = torch.randn(3, 4)
    out = model(x)
    assert handle.stats.compilations == 1 and handle.stats.budget_exhausted
    torch.testing.assert_close(out, handle.dispatchers[0].eager(x))
    model.double()
    out64 = model(x.double())  # would recompile (new dtype); the budget is spent: eager
    assert out64.dtype == torch.float64 and handle.stats.compilations == 1
    with torch.no_grad():
        model(x.double())  # no gradients (evaluation): always the eager forward
    assert handle.stats.compiled_calls == 2


def test_a_failed_compilation_falls_back_to_eager(caplog):
    import torch

    from tailtune.training import compiled

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler here")

    model = _toy()
    handle = compiled.install(model, backend=broken_backend, budget_s=10.0, scope="model")
    x = torch.randn(2, 4)
    with caplog.at_level("WARNING", logger="tailtune.training.compiled"):
        out = model(x)
        model(x)
    torch.testing.assert_close(out, handle.dispatchers[0].eager(x))
    assert handle.stats.failed and "no C++ compiler here" in handle.stats.error
    assert handle.stats.eager_calls == 2
    assert "compilation failed" in caplog.text and "training continues without it" in caplog.text


def test_layer_scope_compiles_one_layer_for_all(tiny_encoder_dir):
    """Regional compilation: the encoder's layers share their code, so one compilation serves
    every layer (the compile time of one layer, whatever the depth); an unknown layout falls back
    to compiling the whole model."""
    import torch

    from tailtune.data import TaskSpec
    from tailtune.models import build_classifier
    from tailtune.training import compiled

    torch._dynamo.reset()  # forget what earlier tests compiled: count this test's compilations
    task = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
    model = build_classifier({"name": str(tiny_encoder_dir), "dropout": 0.0}, task)
    handle = compiled.install(model, backend="eager", scope="layers")
    assert handle.scope == "layers" and len(handle.dispatchers) == len(model.encoder.encoder.layer)
    model.train()
    ids = torch.randint(5, 100, (4, 12))
    mask = torch.ones(4, 12, dtype=torch.long)
    mask[:, 9:] = 0
    model(input_ids=ids, attention_mask=mask).logits.sum().backward()
    assert handle.stats.compilations == 1 and handle.stats.compiled_calls == len(handle.dispatchers)
    with pytest.raises(ValueError, match="scope must be one of"):
        compiled.install(_toy(), backend="eager", scope="everything")
    assert compiled.install(_toy(), backend="eager", scope="layers").scope == "model"


def test_speed_settings_read_the_section_object_or_a_mapping():
    """The recipe's ``train`` section object and its dict give the same settings."""
    section = recipe_from_dict({"train": {"cuda_graphs": True, "compile_budget_s": 12, "pin_memory": False}}).train
    as_dict = section.model_dump()
    for cfg in (section, as_dict):
        opts = speed_mod.speed_options(cfg)
        assert (opts.compile, opts.cuda_graphs, opts.pad_buckets, opts.compile_budget_s) == (True, True, True, 12.0)
        assert speed_mod.dataloader_kwargs(cfg)["dataloader_pin_memory"] is False


# ------------------------------------------------------------------ compile_scope: step
def _step_module(tiny_encoder_dir, loss):
    """tailtune's training module (classifier + composite loss) on the tiny encoder, dropout off."""
    import torch

    from tailtune.data import TaskSpec
    from tailtune.losses import CompositeLoss
    from tailtune.models import build_classifier
    from tailtune.training.trainer import TrainModule

    torch.manual_seed(0)
    task = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
    classifier = build_classifier({"name": str(tiny_encoder_dir), "dropout": 0.0}, task)
    classifier.encoder.config.hidden_dropout_prob = 0.0
    for module in classifier.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    return TrainModule(classifier, CompositeLoss({"main": (1.0, loss)}), kind="multiclass").train()


def _batch(n=4, width=12, seed=0):
    import torch

    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 100, (n, width), generator=g)
    mask = torch.ones(n, width, dtype=torch.long)
    mask[:, width - 3:] = 0
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.randint(0, 3, (n,), generator=g)}


def _loss_and_grads(module, batch, **kw):
    module.zero_grad(set_to_none=True)
    out = module(**batch, **kw)
    out["loss"].backward()
    return out["loss"].detach(), [p.grad.clone() for p in module.parameters() if p.grad is not None]


@pytest.mark.parametrize("loss_name", ["ce", "focal"])
def test_step_scope_compiles_model_and_loss_as_one_graph(loss_name, tiny_encoder_dir):
    """The training module's forward (classifier + loss) compiles once, for every width and batch
    size; loss and gradients equal the eager module's to rounding; the changing progress is no
    constant of the graph (a fixed-gamma focal loss ignores it)."""
    import torch

    from tailtune.losses import get
    from tailtune.training import compiled

    torch._dynamo.reset()
    eager = _step_module(tiny_encoder_dir, get(loss_name, kind="multiclass"))
    module = _step_module(tiny_encoder_dir, get(loss_name, kind="multiclass"))
    handle = compiled.install(module.classifier, backend="eager", scope="step", step=module)
    assert handle.scope == "step" and isinstance(module.forward, compiled.StepForward)
    for i, (n, width) in enumerate([(4, 12), (6, 16), (3, 8)]):
        batch = _batch(n, width, seed=i)
        got, want = _loss_and_grads(module, batch, progress=i / 3), _loss_and_grads(eager, batch, progress=i / 3)
        torch.testing.assert_close(got[0], want[0], rtol=1e-5, atol=1e-6)
        for a, b in zip(got[1], want[1]):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    stats = handle.stats
    # one graph for every shape (focal: a second one when its first trace set the loss kernels' mode)
    assert 1 <= stats.compilations <= compiled.STEP_GRAPHS and stats.compiled_calls == 3 and stats.fallback is None
    assert stats.as_dict()["scope"] == "step"
    module.eval()
    with torch.no_grad():  # evaluation: the eager forward, nothing compiled
        module(**_batch())
    assert stats.compiled_calls == 3


def test_step_scope_falls_back_for_a_scheduled_loss(tiny_encoder_dir, caplog):
    """A loss that reads the training progress (a scheduled gamma) would be a new graph every
    step: the classifier is compiled alone and the loss runs eagerly, said in the log and the stats."""
    import torch

    from tailtune.losses import get
    from tailtune.training import compiled

    torch._dynamo.reset()
    loss = get("focal", kind="multiclass", gamma={"schedule": "linear", "start": 3.0, "end": 1.0})
    module = _step_module(tiny_encoder_dir, loss)
    assert compiled.reads_progress(module.loss) and not compiled.reads_progress(
        _step_module(tiny_encoder_dir, get("focal", kind="multiclass")).loss)
    with caplog.at_level("WARNING", logger="tailtune.training.compiled"):
        handle = compiled.install(module.classifier, backend="eager", scope="step", step=module)
    assert handle.scope == "model" and "training progress" in handle.stats.fallback
    assert "compiling the classifier alone" in caplog.text
    for i in range(3):
        module(**_batch(seed=i), progress=i / 3)["loss"].backward()
    assert handle.stats.compilations == 1 and handle.stats.compiled_calls == 3
    assert loss._progress == pytest.approx(2 / 3)  # the eager loss saw every step's progress


def _odd_loss(kind: str):
    """A loss the step graph cannot hold: ``"host read"`` reads a value on the host (a graph
    break: no single graph); ``"counter"`` changes its Python state every call (a new graph
    each time, were it compiled)."""
    import torch

    class HostRead(torch.nn.Module):
        def forward(self, logits, target, **kw):
            loss = torch.nn.functional.cross_entropy(logits, target)
            return loss * (1.0 if loss.item() >= 0 else 2.0)

    class Counter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.calls = 0

        def forward(self, logits, target, **kw):
            self.calls += 1
            return torch.nn.functional.cross_entropy(logits, target) * (1.0 + 0.0 * self.calls)

    return {"host read": HostRead, "counter": Counter}[kind]()


@pytest.mark.parametrize("kind, why", [("host read", "does not compile as one graph"),
                                       ("counter", "would change between steps")])
def test_step_scope_falls_back_when_the_loss_is_no_single_graph(kind, why, tiny_encoder_dir, caplog, monkeypatch):
    import torch

    from tailtune.losses import CompositeLoss
    from tailtune.training import compiled

    torch._dynamo.reset()
    module = _step_module(tiny_encoder_dir, torch.nn.Identity())
    module.loss = CompositeLoss({"main": (1.0, _odd_loss(kind))})
    assert compiled.reads_progress(module.loss)  # not one of tailtune's losses: assumed to read it
    monkeypatch.setattr(compiled, "reads_progress", lambda loss: False)  # let the step try to compile it
    handle = compiled.install(module.classifier, backend="eager", scope="step", step=module)
    with caplog.at_level("WARNING", logger="tailtune.training.compiled"):
        losses = [float(module(**_batch(seed=i))["loss"].detach()) for i in range(compiled.STEP_GRAPHS + 2)]
    assert all(np.isfinite(losses))
    assert handle.scope == "model" and why in handle.stats.fallback and why in caplog.text
    assert module.classifier.forward is handle.dispatchers[-1]  # the classifier alone, compiled


def test_step_scope_runs_a_batch_of_one_eagerly(tiny_encoder_dir):
    import torch

    from tailtune.losses import get
    from tailtune.training import compiled

    torch._dynamo.reset()
    module = _step_module(tiny_encoder_dir, get("ce", kind="multiclass"))
    handle = compiled.install(module.classifier, backend="eager", scope="step", step=module)
    module(**_batch(4))["loss"].backward()
    module(**_batch(1))["loss"].backward()
    assert handle.stats.eager_calls == 1 and handle.stats.compilations == 1 and handle.scope == "step"
    assert compiled.install(_toy(), backend="eager", scope="step").scope == "model"  # no training module given


@pytest.mark.slow
def test_compiled_dropout_draws_the_eager_masks():
    """Inductor draws dropout masks with PyTorch's own random ops (``fallback_random``,
    :data:`compiled.INDUCTOR_OPTIONS`), so a compiled forward with dropout on gives the eager
    forward's outputs and gradients, step after step, to rounding: the same run, not another seed."""
    import torch

    from tailtune.training import compiled

    def toy():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.3), torch.nn.GELU(),
                                   torch.nn.Linear(16, 2)).train()

    def steps(model):
        torch.manual_seed(7)
        outs = []
        for n in (6, 9):
            out = model(torch.randn(n, 8))
            out.square().sum().backward()
            outs.append((out.detach(), model[0].weight.grad.clone()))
            model.zero_grad(set_to_none=True)
        return outs

    torch._dynamo.reset()
    model = toy()
    handle = compiled.install(model, backend="inductor", scope="model")
    got = steps(model)
    if handle.stats.failed:  # no C++ compiler on this machine: nothing compiled to compare
        pytest.skip(f"inductor cannot compile here: {handle.stats.error}")
    want = steps(toy())
    assert handle.stats.compilations >= 1 and compiled.INDUCTOR_OPTIONS["fallback_random"] is True
    for (out, grad), (ref_out, ref_grad) in zip(got, want):
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-6)
