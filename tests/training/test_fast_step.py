"""tailtune's step loop (training/fast_step.py, ``train.fast_step``, the default).

It must give the Trainer's loop's results bit for bit (same history, same logits) for every task
kind and loss configuration, with gradient accumulation and the class-balanced sampler; read no
device value on the host inside a step; and clip exactly as PyTorch does."""

from __future__ import annotations

import copy
import linecache
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tiny_runs import tiny_recipe
from transformers import Trainer, TrainerCallback

from tailtune.training import fast_step
from tailtune.utils import rundir

CASES = {
    "multiclass-ce": ("multiclass", {}),
    "binary-sample-weights": ("binary", {"sample_weighting": {"length": True, "confidence": True}}),
    "multilabel-focal-supcon": ("multilabel", {
        "loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3, "temperature": 0.1}},
        "model": {"projection_dim": 8}}),
    "aspects-weighted-accumulated": ("aspects", {"weighting": {"scheme": "inverse"},
                                                 "train": {"grad_accum": 2, "batch_size": 4}}),
    "multiclass-balanced-uncertainty": ("multiclass", {
        "sampler": "class_balanced", "loss_balance": "uncertainty",
        "loss": {"cross_entropy": {"weight": 0.5}, "focal": {"weight": 0.5, "gamma": 2.0}}}),
}


def _recipe(kind, data, encoder, out, extra):
    recipe = tiny_recipe(kind, data, encoder, out)
    for section, values in copy.deepcopy(extra).items():
        if isinstance(values, dict) and isinstance(recipe.get(section), dict) and section != "loss":
            recipe[section].update(values)
        else:
            recipe[section] = values
    return recipe


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in ("time_s", "eval_time_s")} for r in rows]


def _train(recipe, *callbacks):
    from tailtune.training import train

    return train(recipe, callbacks=list(callbacks), report=False)  # compared: history, predictions (no report.html)


def test_this_transformers_has_the_loop_it_replaces():
    assert fast_step.supported(Trainer), "transformers' Trainer._run_epoch changed: review training/fast_step.py"


@pytest.mark.parametrize("case", list(CASES))
def test_same_results_as_the_trainers_loop(case, tiny_data, tiny_encoder_dir, tmp_path):
    """Encoder dropout is on (the tiny encoder's 0.1), so equal results also mean the same random
    draws in the same order: the two loops differ in host work only."""
    kind, extra = CASES[case]
    data = tiny_data(kind)
    runs = {}
    for fast in (False, True):
        recipe = _recipe(kind, data, tiny_encoder_dir, tmp_path / f"run-{fast}", extra)
        recipe["train"].update(fast_step=fast, epochs=1)
        runs[fast] = _train(recipe)
    assert _strip(runs[True].history) == _strip(runs[False].history)
    assert runs[True].eval == runs[False].eval
    for split in ("validation", "test"):
        a = np.load(tmp_path / "run-True" / rundir.PREDICTIONS_DIR / f"{split}.npz")
        b = np.load(tmp_path / "run-False" / rundir.PREDICTIONS_DIR / f"{split}.npz")
        assert np.array_equal(a["logits"], b["logits"])
    assert "grad_norm" in runs[True].history[0]["train"]  # the clipped norm, read once per epoch


class HostReads(TrainerCallback):
    """Counts ``Tensor.item/tolist/cpu/numpy/__bool__/__float__/__int__`` calls between the end of
    step 1 and the end of the last step, by the file that made them. A read on a line that checks
    ``device.type == "cpu"`` is left out: it never runs on an accelerator, where a read is a
    synchronisation (the fused losses' backward skips a multiply when a CPU loss gradient is 1)."""

    METHODS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")

    def __init__(self):
        self.sites: dict[str, int] = {}
        self.active = False
        self.saved = {}

    def install(self):
        for name in self.METHODS:
            original = getattr(torch.Tensor, name)
            self.saved[name] = original

            def wrapper(tensor, *args, _original=original, **kwargs):
                if self.active:
                    frame = sys._getframe(1)
                    while frame is not None and "/torch/" in frame.f_code.co_filename.replace("\\", "/") \
                            and "/torch/utils/data" not in frame.f_code.co_filename:
                        frame = frame.f_back
                    site = frame.f_code.co_filename if frame is not None else "?"
                    line = linecache.getline(site, frame.f_lineno) if frame is not None else ""
                    if 'device.type == "cpu"' not in line:  # a read only ever made on the CPU is no sync
                        self.sites[site] = self.sites.get(site, 0) + 1
                return _original(tensor, *args, **kwargs)

            setattr(torch.Tensor, name, wrapper)

    def uninstall(self):
        for name, original in self.saved.items():
            setattr(torch.Tensor, name, original)

    def on_step_end(self, args, state, control, **kw):
        self.active = 1 <= state.global_step < state.max_steps

    def on_epoch_end(self, args, state, control, **kw):
        self.active = False


def test_no_host_read_inside_the_step(tiny_data, tiny_encoder_dir, tmp_path):
    """Loss parts, the gradient norm and the loss sums stay on the device between epochs: nothing in
    tailtune, the Trainer or accelerate reads a tensor's value inside the step loop. (The HF
    encoder's own mask check, ``padding_mask.all()``, and the data loader's sampler, which works on
    host tensors on any device, are the only readers left.)"""
    data = tiny_data("multilabel", n_train=96)
    recipe = _recipe("multilabel", data, tiny_encoder_dir, tmp_path / "run",
                     {"loss": {"focal": {"weight": 0.7}, "supcon": {"weight": 0.3}}, "model": {"projection_dim": 8},
                      "sample_weighting": {"length": True}, "train": {"epochs": 1}})
    spy = HostReads()
    spy.install()
    try:
        _train(recipe, spy)
    finally:
        spy.uninstall()
    # tailtune's own files by the package's folder (a checkout may itself sit in a folder named tailtune)
    own = str(Path(fast_step.__file__).resolve().parents[1])
    ours = {s: n for s, n in spy.sites.items()
            if str(Path(s).resolve()).startswith(own + "/")
            or any(k in s.replace("\\", "/") for k in ("transformers/trainer", "/accelerate/"))}
    assert ours == {}, f"host reads inside the step loop: {ours}"
    allowed = ("masking_utils", "/torch/utils/data")
    assert all(any(k in s for k in allowed) for s in spy.sites), spy.sites


def test_clip_equals_pytorchs_bit_for_bit():
    torch.manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s)) for s in [(5, 3), (7,), (2, 2, 2)]]
    for p in params:
        p.grad = torch.randn_like(p) * 3
    ref = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for r, p in zip(ref, params):
        r.grad = p.grad.clone()
    ours = fast_step.clip_grad_norm(params, 1.0)
    theirs = torch.nn.utils.clip_grad_norm_(ref, 1.0)
    assert torch.equal(ours, theirs)
    assert all(torch.equal(p.grad, r.grad) for p, r in zip(params, ref))
    mixed = [params[0], torch.nn.Parameter(torch.randn(4, dtype=torch.float64))]  # two dtypes: PyTorch's function
    mixed[1].grad = torch.randn(4, dtype=torch.float64)
    mixed_ref = [torch.nn.Parameter(p.detach().clone()) for p in mixed]
    for r, p in zip(mixed_ref, mixed):
        r.grad = p.grad.clone()
    torch.testing.assert_close(fast_step.clip_grad_norm(mixed, 0.5), torch.nn.utils.clip_grad_norm_(mixed_ref, 0.5))
    assert float(fast_step.clip_grad_norm([torch.nn.Parameter(torch.ones(2))], 1.0)) == 0.0  # no gradients


def test_a_resumed_mid_epoch_run_uses_the_trainers_loop(monkeypatch):
    """Checkpoints are written at epoch ends; an epoch resumed mid-way (a foreign checkpoint) goes
    to the Trainer's own loop, which knows how to skip the batches already trained."""
    from tailtune.training.speed import SpeedOptions
    from tailtune.training.trainer import TailtuneTrainer

    calls = []
    monkeypatch.setattr(Trainer, "_run_epoch", lambda self, *a: calls.append("trainer"))
    monkeypatch.setattr(fast_step, "run_epoch", lambda self, *a: calls.append("fast"))
    monkeypatch.setattr(fast_step, "supported", lambda cls: True)
    fake = TailtuneTrainer.__new__(TailtuneTrainer)  # no __init__: only what _run_epoch reads
    fake.speed = SpeedOptions()
    fake.args = type("A", (), {"ignore_data_skip": False})()
    fake._run_epoch(None, 1, None, 8, 8, None, None, 0.0, "ckpt", 1, 0)
    fake._run_epoch(None, 1, None, 8, 8, None, None, 0.0, "ckpt", 1, 3)
    fake._run_epoch(None, 2, None, 8, 8, None, None, 0.0, "ckpt", 1, 3)
    fake.speed = SpeedOptions(fast_step=False)
    fake._run_epoch(None, 0, None, 8, 8, None, None, 0.0, None, 0, 0)
    assert calls == ["fast", "trainer", "fast", "trainer"]


def test_fast_step_module_lists_every_lever_it_removes():
    doc = Path(fast_step.__file__).read_text()
    for phrase in ("no host reads of device values", "model.train()", "clip", "callbacks"):
        assert phrase in doc


@pytest.mark.parametrize("fused", [False, True])
def test_cached_init_group_gives_the_same_updates(fused):
    """AdamW stepped with the cached parameter walk equals AdamW stepped normally, bit for bit,
    also when a parameter stops having a gradient and when the state is reloaded."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 3))
    twin = copy.deepcopy(model)
    opts = [torch.optim.AdamW(m.parameters(), lr=1e-2, fused=fused) for m in (model, twin)]
    fast_step.CachedInitGroup.install(opts[0])
    assert isinstance(opts[0]._init_group, fast_step.CachedInitGroup)
    for step in range(6):
        x = torch.randn(5, 4)
        for m, opt in zip((model, twin), opts):
            m(x).square().sum().backward()
            if step == 3:  # a parameter without a gradient this step
                m[0].bias.grad = None
            opt.step()
            for p in m.parameters():
                p.grad = None
        if step == 4:  # a reloaded state (resume): the cache must not hand back the old tensors
            opts[0].load_state_dict(copy.deepcopy(opts[1].state_dict()))
        for a, b in zip(model.parameters(), twin.parameters()):
            assert torch.equal(a, b), step


def test_the_step_loop_reads_training_batches_from_a_token_table(tiny_data, tiny_encoder_dir, tmp_path):
    """With ``fast_step`` the training loader's batches come from a TokenTable (the equality of its
    batches with the collator's is tests/training/test_collate.py's; the same results as the
    Trainer's path, which reads the data set row by row, are test_same_results_as_the_trainers_loop's)."""
    from tailtune.training.collate import LabelCollator, TableCollator

    class Loader(TrainerCallback):
        collate_fn = None

        def on_train_begin(self, args, state, control, train_dataloader=None, **kw):
            Loader.collate_fn = getattr(train_dataloader, "collate_fn", None)

    data = tiny_data("multiclass")
    seen = {}
    for fast in (True, False):
        recipe = _recipe("multiclass", data, tiny_encoder_dir, tmp_path / f"run-{fast}", {"train": {"epochs": 1}})
        recipe["train"]["fast_step"] = fast
        _train(recipe, Loader())
        seen[fast] = Loader.collate_fn
    assert isinstance(seen[True], TableCollator)
    assert not isinstance(seen[False], TableCollator) and isinstance(getattr(seen[False], "data_collator", seen[False]),
                                                                     LabelCollator)


@pytest.mark.parametrize(("cls", "amsgrad", "weight_decay"),
                         [(torch.optim.AdamW, False, 0.01), (torch.optim.Adam, False, 0.0), (torch.optim.Adam, True, 0.1),
                          (torch.optim.AdamW, True, 0.0)])
def test_fused_adam_step_gives_the_same_updates_and_state(cls, amsgrad, weight_decay):
    """The fused kernel called directly (step counters as views of one tensor) equals the optimiser's
    own ``step`` bit for bit: parameters, moments and step counts, over two parameter groups, a step
    where one parameter has no gradient, a reloaded state, a changed learning rate, and steps where
    a hook forces ``optimizer.step()`` (before and after the reload: the cached parameter walk must
    not hand back the step counters the fast step replaced)."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Linear(6, 3))
    twin = copy.deepcopy(model)

    def make(m):
        groups = [{"params": [m[0].weight, m[1].weight]},
                  {"params": [m[0].bias, m[1].bias], "weight_decay": 0.0}]
        return cls(groups, lr=1e-2, fused=True, amsgrad=amsgrad, weight_decay=weight_decay)

    opt, ref = make(model), make(twin)
    fast_step.CachedInitGroup.install(opt)  # as the step engine installs both
    fast = fast_step.FusedAdamStep.create(opt)
    assert fast is not None
    taken = []
    for step in range(9):
        x = torch.randn(5, 4)
        for m, o in ((model, opt), (twin, ref)):
            m(x).square().sum().backward()
            if step == 3:  # a parameter without a gradient this step
                m[0].bias.grad = None
            if step == 6:
                o.param_groups[0]["lr"] = 3e-3
            if o is opt:
                handle = opt.register_step_pre_hook(lambda *a: None) if step in (2, 7) else None
                took = fast.step()
                taken.append(took)
                if not took:
                    opt.step()
                if handle is not None:
                    handle.remove()
            else:
                o.step()
            for p in m.parameters():
                p.grad = None
        if step == 4:  # a reloaded state (resume): the plan must not hand back the old tensors
            opt.load_state_dict(copy.deepcopy(ref.state_dict()))
        for a, b in zip(model.parameters(), twin.parameters()):
            assert torch.equal(a, b), step
        for a, b in zip(model.parameters(), twin.parameters()):
            for key, value in ref.state[b].items():
                assert torch.equal(opt.state[a][key], value), (step, key)
    # the first step sets the state up (optimizer.step), the hooked one goes through it too
    assert taken == [False, True, False, True, True, True, True, False, True]


def test_fused_adam_step_only_for_fused_adam():
    params = [torch.nn.Parameter(torch.ones(2))]
    assert fast_step.FusedAdamStep.create(torch.optim.AdamW(params, lr=0.1)) is None  # foreach, not fused
    assert fast_step.FusedAdamStep.create(torch.optim.SGD(params, lr=0.1)) is None
    assert fast_step.FusedAdamStep.create(torch.optim.AdamW(params, lr=0.1, fused=True)) is not None
    opt = torch.optim.AdamW(params, lr=torch.tensor(0.1), fused=True)
    params[0].grad = torch.ones(2)
    opt.step()
    assert fast_step.FusedAdamStep.create(opt).step() is False  # a tensor learning rate
