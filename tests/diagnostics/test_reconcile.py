"""Contradictory advice (issue 17): findings declare the knob they move; conflicts merge into one recommendation."""

import json

import pytest
from histories import conflicting_class_weights, rows

from tailtune.diagnostics import Finding, run_from_history, run_rules
from tailtune.diagnostics.findings import Knob
from tailtune.diagnostics.reconcile import PRECEDENCE, RESOLUTIONS, knobs_of, reconcile


def test_raise_and_lower_the_class_weights_become_one_recommendation():
    h, kw = conflicting_class_weights()
    run = run_from_history(h, **kw)
    separate = {f.rule: f for f in run_rules(run, reconcile=False)}
    # the contradiction the user saw: raise nine rare labels' weights from 10 to 20 ...
    assert "weighting.overrides.rare0: 20 (now 10)" in separate["rare_zero_recall"].action
    assert "9 classes never recalled" in separate["rare_zero_recall"].verdict
    # ... and, in the next finding, the up-weighted labels are over-predicted: the weights are too high
    assert "the weights are too high" in separate["upweighted_low_precision"].action
    (f,) = run_rules(run)
    assert f.rule == "reconciled" and f.severity == "warning"
    assert f.figures["knobs"] == ["class_weights"] and f.figures["resolved_by"] == "resolution for class_weights"
    assert [x["rule"] for x in f.figures["findings"]] == ["upweighted_low_precision", "rare_zero_recall"]
    # both facts stay, one action: tune thresholds first, then look at the weights
    assert "up-weighted classes over-predicted: crude" in f.verdict and "9 classes never recalled" in f.verdict
    assert f.action.startswith("1. tune the decision rule first: `tailtune tune RUN` sets per-label thresholds")
    assert "the recall of rare0" in f.action and "the precision of crude, trade" in f.action
    assert "2. Then look at the weights" in f.action and "weighting.overrides.rare0: 20" in f.action
    assert "(weighting.cap 5)" in f.action and "not both in one step" in f.action
    json.dumps(f.to_dict())  # diagnose --json


def test_class_weight_conflict_on_a_tuned_run_points_to_the_tuned_metrics():
    h, kw = conflicting_class_weights()
    run = run_from_history(h, **kw, postprocess={"thresholds": [0.5] * 13, "tuned_on": "validation"})
    (f,) = [f for f in run_rules(run) if f.rule == "reconciled"]
    assert "already has a tuned decision rule" in f.action and "validation_tuned" in f.action


def test_softmax_tasks_are_told_about_decision_biases():
    f_up = Finding("rare_zero_recall", "warning", {}, "c never recalled", "raise", (Knob("class_weights", "up", ("c",)),))
    f_down = Finding("upweighted_low_precision", "warning", {}, "b over-predicted", "cap",
                     (Knob("class_weights", "down", ("b",)),))
    run = run_from_history(rows(train_loss=[1, 0.8, 0.6]), task={"kind": "multiclass", "labels": ["a", "b", "c"]})
    (f,) = reconcile([f_up, f_down], run=run)
    assert "per-class decision biases" in f.action


def test_conflict_without_a_resolution_follows_the_stated_precedence():
    lr_up = Finding("composite_loss", "warning", {}, "both parts flat from the first epoch", "raise the learning rate",
                    (Knob("optim.lr", "up"),))
    lr_down = Finding("loss_oscillating", "warning", {}, "train loss oscillates", "halve the learning rate",
                      (Knob("optim.lr", "down"),))
    assert "optim.lr" not in RESOLUTIONS
    (f,) = reconcile([lr_up, lr_down])
    winner = min(("composite_loss", "loss_oscillating"), key=PRECEDENCE.index)
    assert f.figures["resolved_by"] == f"precedence: {winner}"
    assert f.action.startswith("halve the learning rate (following loss_oscillating: its evidence, the shape of the loss curves")
    assert "the advice of composite_loss applies only if it still fires" in f.action


def test_metric_evidence_outranks_the_recipe_alone():
    gamma_up = Finding("rare_zero_recall", "warning", {}, "c never recalled", "raise gamma", (Knob("focal.gamma", "up"),))
    lint = Finding("gamma_weights_mild", "warning", {"gamma": 3.0}, "gamma 3 plus weights on a mild imbalance", "gamma 1")
    assert knobs_of(lint) == (Knob("focal.gamma", "down"),)  # lint checks' knobs come from LINT_KNOBS
    (f,) = reconcile([lint, gamma_up])
    assert f.figures["resolved_by"] == "precedence: rare_zero_recall"


def test_findings_that_do_not_conflict_pass_unchanged():
    a = Finding("val_loss_rising", "warning", {}, "v", "stop", (Knob("train.epochs", "down"),))
    b = Finding("train_val_gap", "warning", {}, "g", "stop", (Knob("train.epochs", "down"), Knob("regularisation", "up")))
    c = Finding("val_test_drop", "warning", {}, "d", "enlarge validation")
    assert reconcile([a, b, c]) == [a, b, c]


def test_errors_are_never_merged_away():
    err = Finding("double_weighting", "error", {}, "weights applied twice", "set sampler: none")
    up = Finding("rare_zero_recall", "warning", {}, "c never recalled", "raise", (Knob("class_weights", "up", ("c",)),))
    assert reconcile([err, up]) == [err, up]


def test_epoch_conflict_follows_the_stopping_metric_while_it_improves():
    h = rows(train_loss=[1.0, 0.7, 0.5, 0.35, 0.25, 0.18], val_loss=[0.9, 0.8, 0.78, 0.85, 0.95, 1.1],
             val_f1=[0.50, 0.56, 0.60, 0.63, 0.66, 0.69], stopped="max_epochs")
    (f,) = run_rules(run_from_history(h))
    assert f.rule == "reconciled" and {x["rule"] for x in f.figures["findings"]} == {"best_epoch", "val_loss_rising"}
    assert "validation macro_f1 is still improving, so train longer" in f.action
    assert "a rising validation loss" in f.action and "temperature scaling" in f.action


def test_knob_validation():
    with pytest.raises(ValueError, match="direction='sideways'"):
        Knob("optim.lr", "sideways")
    with pytest.raises(TypeError, match="knobs must be Knob objects"):
        Finding("r", "warning", {}, "v", "a", ("optim.lr up",))
