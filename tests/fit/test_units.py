"""A training unit: the budget guard stops a real Trainer, and the run is still complete."""

from __future__ import annotations

import yaml

from tailtune.fit.planner import BudgetGuard
from tailtune.fit.units import run_training_unit


def test_the_guard_stops_a_real_run_which_still_finishes(tiny_data, tmp_path, tiny_encoder_dir):
    from tiny_runs import tiny_recipe

    data = tiny_data("multiclass", n_train=64)
    template = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "unused", train={"epochs": 3, "batch_size": 8})
    template.pop("output")
    guard = BudgetGuard(0.0, lambda: 1.0)  # the deadline has passed: stop after the first step
    run = tmp_path / "candidates" / "baseline" / "seed-13"
    out = run_training_unit(run, template, seed=13, epochs=3, data_dir=data, callbacks=[guard])
    assert guard.stopped
    history = [yaml.safe_load(line) for line in (run / "history.jsonl").read_text().splitlines()]
    assert history[-1]["step"] == 1 and out["epochs_run"] < 1
    assert (run / "model" / "model.safetensors").is_file() and (run / "predictions" / "validation.npz").is_file()
    # the same unit again (a fit killed after the run, before its record): finished again from the checkpoint
    again = run_training_unit(run, template, seed=13, epochs=3, data_dir=data, callbacks=[BudgetGuard(0.0, lambda: 1.0)])
    assert again["validation_macro_f1_default_rule"] == out["validation_macro_f1_default_rule"]
