"""Sweeps: the space file format, the pruning callback, SQLite studies for both objectives."""

from __future__ import annotations

import optuna
import pytest
from transformers import TrainerControl, TrainerState

from tailtune.errors import RecipeError
from tailtune.experiments.sweep import OptunaPruningCallback, load_space, parse_space, sweep


def test_space_format_and_errors(tmp_path):
    params = parse_space({
        "optim.lr": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "loss.focal.gamma": {"type": "float", "low": 0.0, "high": 3.0, "step": 0.5},
        "train.batch_size": [16, 32],
        "model.freeze_layers": {"type": "int", "low": 0, "high": 4},
    })
    assert [p.type for p in params] == ["float", "float", "categorical", "int"]
    bad = [
        ({"optim.lr": {"type": "flaot", "low": 0, "high": 1}}, "did you mean 'float'"),
        ({"optim.lr": {"type": "float", "low": 1, "high": 0}}, "must be below"),
        ({"optim.lr": {"type": "float", "low": 0, "high": 1, "log": True}}, "low > 0"),
        ({"optim.lr": {"type": "float", "low": 0, "high": 1, "lgo": True}}, "unknown key 'lgo'"),
        ({"x.y": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"x..y": [1]}, "dotted path"),
        ({}, "non-empty mapping"),
    ]
    for space, message in bad:
        with pytest.raises(RecipeError, match=message):
            parse_space(space)
    path = tmp_path / "space.yaml"
    path.write_text("head.lr: {type: float, low: 0.001, high: 0.01, log: true}\n")
    assert load_space(path)[0].path == "head.lr"
    with pytest.raises(RecipeError, match="not found"):
        load_space(tmp_path / "nope.yaml")


def test_loss_metric_is_refused_when_the_space_changes_the_loss(tmp_path):
    """Issue 17: trials with different losses cannot be ranked by loss values (focal < CE by construction)."""
    space = {"loss.focal.gamma": {"type": "float", "low": 0.0, "high": 3.0}}
    with pytest.raises(RecipeError, match=r"--metric loss: the space varies loss.focal.gamma.*--metric macro_f1"):
        sweep("focal", space=space, trials=1, out_dir=tmp_path, metric="loss")


def test_pruning_callback_reports_each_epoch_and_stops_a_pruned_trial():
    class Trial:
        def __init__(self, prune_at):
            self.reported, self.prune_at = [], prune_at

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= self.prune_at

    trial = Trial(prune_at=2)
    cb = OptunaPruningCallback(trial, "macro_f1")
    state, control = TrainerState(), TrainerControl()
    state.epoch = 1.0
    cb.on_evaluate(None, state, control, metrics={"eval_macro_f1": 0.4})
    assert not control.should_training_stop and not cb.pruned
    state.epoch = 2.0
    cb.on_evaluate(None, state, control, metrics={"eval_macro_f1": 0.3})
    assert control.should_training_stop and cb.pruned and trial.reported == [(1, 0.4), (2, 0.3)]


def test_screen_objective_sweep_uses_sqlite_by_default(tmp_path, exp_data, tiny_encoder_dir):
    data = exp_data("multiclass")
    space = {"head.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True},
             "loss.focal.gamma": {"type": "float", "low": 0.0, "high": 2.0},
             "head.hidden": [0, 16], "head.max_epochs": [4]}
    result = sweep("focal", space=space, trials=3, out_dir=tmp_path / "sw", objective="screen", data=str(data),
                   model=str(tiny_encoder_dir), cache_dir=tmp_path / "cache", seed=0)
    assert result.storage.startswith("sqlite:///") and (tmp_path / "sw" / "sweep.db").exists()
    assert len(result.trials) == 3 and result.best_value is not None
    again = sweep("focal", space=space, trials=1, out_dir=tmp_path / "sw", objective="screen", data=str(data),
                  model=str(tiny_encoder_dir), cache_dir=tmp_path / "cache")
    assert len(again.trials) == 4  # the same study was joined
    study = optuna.load_study(study_name="sweep-focal", storage=result.storage)
    assert {"head.lr", "loss.focal.gamma", "head.hidden"} <= set(study.trials[0].params)


def test_train_objective_sweep_runs_full_fine_tunes(tmp_path, exp_data, tiny_encoder_dir):
    data = exp_data("multiclass", n_train=32, n_eval=16)
    result = sweep("ce", space={"optim.lr": {"type": "float", "low": 1e-3, "high": 5e-3, "log": True}},
                   trials=1, out_dir=tmp_path / "sw", data=str(data), seed=0,
                   overrides=[f"model.name={tiny_encoder_dir}", "data.max_length=16", "train.epochs=2",
                              "train.batch_size=16", "early_stopping.patience=0"])
    assert result.trials[0]["state"] == "COMPLETE"
    assert (tmp_path / "sw" / "trial-0" / "eval.json").exists()
