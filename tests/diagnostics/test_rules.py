import json

import pytest
from histories import healthy, rows

from tailtune.diagnostics import RULES, Finding, epoch_table, gap_label, load_run, run_from_history, run_rules
from tailtune.errors import RunDirError

COMPOSITE_RECIPE = {"loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3}}, "optim": {"lr": 3e-5}}


def fired(history, rule, **kw):
    """The findings of one rule, before reconciliation (test_reconcile.py covers the merging)."""
    run = run_from_history(history, **kw)
    return [f for f in run_rules(run, min_severity="ok", reconcile=False) if f.rule == rule]


def problems(history, **kw):
    return run_rules(run_from_history(history, **kw))


# ------------------------------------------------------------------------------- healthy
def test_healthy_history_is_silent():
    assert problems(healthy(), recipe=COMPOSITE_RECIPE) == []


def test_healthy_history_reports_ok_and_info_when_asked():
    found = run_rules(run_from_history(healthy(), recipe=COMPOSITE_RECIPE), min_severity="ok")
    by_rule = {f.rule: f for f in found}
    assert by_rule["composite_loss"].severity == "ok"
    assert "both loss parts are falling" in by_rule["composite_loss"].verdict
    assert by_rule["best_epoch"].severity == "info" and by_rule["best_epoch"].figures["best_epoch"] == 6
    assert by_rule["early_stopping"].severity == "info"
    assert all(not f.is_problem for f in found)


def test_every_rule_returns_findings_named_after_it():
    run = run_from_history(healthy(), recipe=COMPOSITE_RECIPE)
    for name, rule in RULES.items():
        for f in rule(run):
            assert isinstance(f, Finding) and f.rule == name


def test_unknown_rule_name():
    with pytest.raises(ValueError, match="unknown; valid names"):
        run_rules(healthy(), rules=["no_such_rule"])


# ------------------------------------------------------------------------- composite loss
def test_classification_falling_contrastive_plateau_shifts_weight_to_contrastive():
    h = rows(parts={"focal": [0.8, 0.6, 0.45, 0.34, 0.26], "supcon": [4.0, 3.0, 2.99, 3.0, 2.98]},
             val_f1=[0.5, 0.6, 0.65, 0.68, 0.70], train_f1=[0.5, 0.6, 0.65, 0.68, 0.70])
    (f,) = fired(h, "composite_loss", recipe=COMPOSITE_RECIPE)
    assert f.severity == "warning"
    assert "plateaued" in f.verdict and "supcon" in f.verdict
    assert "shift 10% of the total loss weight to supcon" in f.action
    assert "loss.focal.weight 0.7 -> 0.6" in f.action and "loss.supcon.weight 0.3 -> 0.4" in f.action
    assert abs(f.figures["supcon_rel_slope"]) < 0.02


def test_contrastive_falling_classification_plateau_shifts_weight_back():
    h = rows(parts={"focal": [0.8, 0.5, 0.5, 0.5, 0.5], "supcon": [4.0, 3.5, 3.0, 2.6, 2.2]},
             val_f1=[0.5, 0.6, 0.65, 0.68, 0.70], train_f1=[0.5, 0.6, 0.65, 0.68, 0.70])
    (f,) = fired(h, "composite_loss", recipe=COMPOSITE_RECIPE)
    assert f.severity == "warning" and "stopped learning" in f.verdict
    assert "loss.supcon.weight 0.3 -> 0.15, loss.focal.weight 0.7 -> 0.85" in f.action


def test_both_parts_flat_from_the_start_points_to_lr_or_data():
    h = rows(parts={"focal": [0.69, 0.69, 0.689, 0.69, 0.69], "supcon": [4.1, 4.1, 4.09, 4.1, 4.1]},
             val_f1=[0.3, 0.3, 0.3, 0.3, 0.3], train_f1=[0.3, 0.3, 0.3, 0.3, 0.3])
    (f,) = fired(h, "composite_loss", recipe=COMPOSITE_RECIPE)
    assert f.severity == "warning"
    assert "flat from the first epoch" in f.verdict
    assert "learning rate" in f.action and "optim.lr 3e-05 -> 9e-05" in f.action and "data" in f.action


def test_both_parts_converged_after_falling_is_ok():
    h = rows(parts={"focal": [0.8, 0.4, 0.2, 0.2, 0.2, 0.2], "supcon": [4.0, 3.0, 2.0, 2.0, 2.0, 2.0]},
             val_f1=[0.5, 0.6, 0.65, 0.66, 0.66, 0.66], train_f1=[0.5, 0.6, 0.65, 0.66, 0.66, 0.66])
    (f,) = fired(h, "composite_loss", recipe=COMPOSITE_RECIPE)
    assert f.severity == "ok" and "converged" in f.verdict


def test_composite_rule_needs_a_contrastive_part():
    h = rows(parts={"focal": [0.8, 0.6, 0.5, 0.5], "ce": [1.0, 0.9, 0.9, 0.9]}, val_f1=[0.5, 0.6, 0.6, 0.6])
    assert fired(h, "composite_loss") == []


def test_saturated_classification_loss_with_flat_validation():
    h = rows(parts={"focal": [0.5, 0.1, 0.03, 0.01, 0.006], "supcon": [4.0, 3.5, 3.0, 2.6, 2.2]},
             val_f1=[0.60, 0.66, 0.661, 0.66, 0.662], train_f1=[0.6, 0.8, 0.95, 0.99, 1.0])
    (f,) = fired(h, "loss_saturated", recipe=COMPOSITE_RECIPE)
    assert f.severity == "warning"
    assert f.figures["part"] == "focal" and f.figures["last"] == pytest.approx(0.006)
    assert "saturated early" in f.verdict and "supcon alone" in f.verdict


def test_saturated_loss_silent_while_validation_improves():
    h = rows(train_loss=[0.5, 0.1, 0.03, 0.01, 0.006], val_f1=[0.50, 0.55, 0.60, 0.65, 0.70])
    assert fired(h, "loss_saturated") == []


# ------------------------------------------------------------------ oscillation, rising val loss
def test_oscillating_loss_points_to_learning_rate():
    h = rows(train_loss=[0.9, 0.5, 0.85, 0.45, 0.8, 0.5], val_f1=[0.5] * 6)
    (f,) = fired(h, "loss_oscillating", recipe={"optim": {"lr": 1e-4}})
    assert f.severity == "warning" and f.figures["split"] == "train"
    assert "optim.lr 0.0001 -> 5e-05" in f.action


def test_rising_validation_loss():
    h = rows(train_loss=[1.0, 0.7, 0.5, 0.35, 0.25, 0.18], val_loss=[0.9, 0.8, 0.78, 0.85, 0.95, 1.1],
             val_f1=[0.5, 0.6, 0.62, 0.62, 0.61, 0.6])
    (f,) = fired(h, "val_loss_rising")
    assert f.figures["min_epoch"] == 3 and f.figures["last_val_loss"] == pytest.approx(1.1)
    assert "stop near epoch 3" in f.action


def test_falling_validation_loss_is_silent():
    assert fired(healthy(), "val_loss_rising") == []


# ------------------------------------------------------------------------------ gap labels
@pytest.mark.parametrize(
    "gap, prev, label",
    [(0.0, None, "normal"), (0.05, 0.05, "normal"), (-0.03, None, "inverted"), (0.06, 0.04, "growing"),
     (0.03, 0.02, "growing"), (0.02, 0.0, "normal"), (0.15, None, "overfitting"), (0.25, None, "severe"),
     (0.35, None, "critical"), (None, None, None)],
)
def test_gap_label_thresholds(gap, prev, label):
    assert gap_label(gap, prev) == label


def _gap_history(gaps):
    val = [0.6] * len(gaps)
    return rows(train_f1=[v + g for v, g in zip(val, gaps)], val_f1=val, train_loss=[1.0 - 0.1 * i for i in range(len(gaps))], best=1)


@pytest.mark.parametrize("final, label, severity", [(0.15, "overfitting", "warning"), (0.25, "severe", "warning"), (0.38, "critical", "error")])
def test_train_val_gap_levels(final, label, severity):
    (f,) = fired(_gap_history([0.01, 0.05, 0.09, final]), "train_val_gap")
    assert f.severity == severity and f.figures["last_label"] == label
    assert label in f.verdict and f"{100 * final:+.1f} points" in f.verdict


def test_train_val_gap_widening():
    (f,) = fired(_gap_history([0.0, 0.01, 0.03, 0.05, 0.07]), "train_val_gap")
    assert f.severity == "warning" and "widening" in f.verdict


def test_train_val_gap_inverted():
    (f,) = fired(_gap_history([-0.05, -0.04, -0.05, -0.03]), "train_val_gap")
    assert f.severity == "warning" and f.figures["inverted_epochs"] == [1, 2, 3, 4]
    assert "leakage" in f.action or "shared between train and validation" in f.action


def test_epoch_table_labels_each_epoch():
    table = epoch_table(run_from_history(_gap_history([0.0, 0.04, 0.15, 0.25, 0.4])))
    assert [r["label"] for r in table] == ["normal", "growing", "overfitting", "severe", "critical"]
    assert table[0]["best"] and not table[1]["best"]


# --------------------------------------------------------------------- best epoch / stopping
def test_early_stopping_reason():
    h = rows(train_loss=[1, 0.8, 0.7, 0.6, 0.5], val_f1=[0.5, 0.62, 0.6, 0.61, 0.6], stopped="early_stopping",
             es={"metric": "macro_f1", "best": 0.62, "patience_left": 0})
    (f,) = fired(h, "early_stopping")
    assert f.figures["best_epoch"] == 2 and f.figures["epochs_without_improvement"] == 3
    assert "did not improve on 0.620 (epoch 2) for 3 epochs" in f.verdict


def test_best_epoch_last_under_max_epochs_suggests_more_epochs():
    h = rows(train_loss=[1, 0.8, 0.7], val_f1=[0.5, 0.6, 0.7], stopped="max_epochs")
    (f,) = fired(h, "best_epoch")
    assert f.figures["best_epoch"] == 3 and "raise train.epochs" in f.action


def test_best_epoch_falls_back_to_metric_when_unflagged():
    h = rows(train_loss=[1, 0.8, 0.7], val_f1=[0.5, 0.7, 0.6])
    for r in h:
        r.pop("best")
    assert run_from_history(h).best_epoch == 2


# ---------------------------------------------------------------------------- val -> test
def test_validation_to_test_drop():
    ev = {"validation": {"macro_f1": 0.71, "accuracy": 0.85}, "test": {"macro_f1": 0.66, "accuracy": 0.84}}
    (f,) = fired(healthy(), "val_test_drop", eval=ev)
    assert f.severity == "warning" and f.figures["macro_f1"]["drop"] == pytest.approx(0.05)
    assert "-5.0 points" in f.verdict


def test_small_validation_to_test_drop_is_silent():
    ev = {"validation": {"macro_f1": 0.71, "accuracy": 0.85}, "test": {"macro_f1": 0.70, "accuracy": 0.845}}
    assert fired(healthy(), "val_test_drop", eval=ev) == []


# ------------------------------------------------------------------------------- per class
def _pc(**recall_precision):
    return {k: {"precision": p, "recall": r, "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r), "support": s}
            for k, (p, r, s) in recall_precision.items()}


def test_rare_class_with_zero_recall():
    pc = _pc(a=(0.8, 0.95, 300), b=(0.6, 0.5, 60), c=(0.0, 0.0, 12))
    h = rows(train_loss=[1, 0.8, 0.6], val_f1=[0.4, 0.45, 0.5], val_per_class=pc, train_counts={"a": 1500, "b": 300, "c": 40})
    recipe = {"loss": {"focal": {"gamma": 1.0}}, "weighting": {"scheme": "sqrt_inverse"}}
    from tailtune.diagnostics.weights import recipe_class_weights

    weights = recipe_class_weights(recipe, "multiclass", {"a": 1500, "b": 300, "c": 40})
    (f,) = fired(h, "rare_zero_recall", recipe=recipe, class_weights=weights)
    assert f.figures["classes"]["c"]["rare"] and f.figures["classes"]["c"]["train_count"] == 40
    assert "c (val support 12, 2.2% of train)" in f.verdict
    assert f"weighting.overrides.c: {2 * weights['c']:.3g}" in f.action and "gamma 1 -> 2" in f.action


def test_upweighted_class_with_low_precision():
    pc = _pc(a=(0.95, 0.7, 300), b=(0.7, 0.7, 60), c=(0.3, 0.8, 12))
    h = rows(train_loss=[1, 0.8, 0.6], val_f1=[0.4, 0.45, 0.5], val_per_class=pc)
    weights = {"a": 0.2, "b": 1.0, "c": 8.0}
    (f,) = fired(h, "upweighted_low_precision", class_weights=weights, recipe={"weighting": {"scheme": "inverse"}})
    assert list(f.figures["classes"]) == ["c"]
    assert "weight 8.00, precision 0.30, recall 0.80" in f.verdict and "weighting.cap" in f.action


def test_low_precision_without_upweighting_is_silent():
    pc = _pc(a=(0.95, 0.7, 300), b=(0.3, 0.8, 60))
    h = rows(train_loss=[1, 0.8, 0.6], val_f1=[0.4, 0.45, 0.5], val_per_class=pc)
    assert fired(h, "upweighted_low_precision", class_weights={"a": 1.0, "b": 1.0}) == []


# ---------------------------------------------------------------------------- run directory
def test_load_run_reads_files_and_recomputes_weights(tmp_path):
    import yaml

    (tmp_path / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in healthy()))
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump({"weighting": {"scheme": "inverse", "normalize": False}, "train": {"seed": 7}}))
    (tmp_path / "task.json").write_text(json.dumps({"kind": "multiclass", "labels": ["a", "b", "c"]}))
    run = load_run(tmp_path)
    assert run.seed == 7 and run.labels == ["a", "b", "c"] and run.best_epoch == 6
    assert run.class_counts == {"a": 1500.0, "b": 300.0, "c": 100.0}
    assert run.class_weights["c"] == pytest.approx(1900 / 100)
    assert run.predictions("test") is None and run.eval is None


def test_load_run_errors_name_file_and_line(tmp_path):
    with pytest.raises(RunDirError, match="no such run directory"):
        load_run(tmp_path / "missing")
    with pytest.raises(RunDirError, match="no history.jsonl"):
        load_run(tmp_path)
    (tmp_path / "history.jsonl").write_text(json.dumps(healthy()[0]) + "\n{\"epoch\": 2, \"tr")
    with pytest.raises(RunDirError, match=r"history.jsonl: line 2: not valid JSON"):
        load_run(tmp_path)


# ------------------------------------------------------------------ more patterns, realistic noise
def test_gap_wobbling_around_its_level_is_not_widening():
    # labels: normal, growing, growing, normal, growing -- but the gap ends where it was 2 epochs before
    assert [r["label"] for r in epoch_table(run_from_history(_gap_history([0.02, 0.035, 0.045, 0.036, 0.046])))] == [
        "normal", "growing", "growing", "normal", "growing"]
    assert [f.severity for f in fired(_gap_history([0.02, 0.035, 0.045, 0.036, 0.046]), "train_val_gap")] == ["ok"]


def test_rising_loss_part_points_to_learning_rate():
    h = rows(parts={"focal": [0.8, 0.6, 0.5, 0.55, 0.62, 0.7], "supcon": [4.0, 3.6, 3.3, 3.0, 2.8, 2.6]},
             val_f1=[0.5, 0.6, 0.62, 0.6, 0.58, 0.55], train_f1=[0.5, 0.6, 0.62, 0.6, 0.58, 0.55])
    (f,) = fired(h, "composite_loss", recipe=COMPOSITE_RECIPE)
    assert f.severity == "warning" and "focal is rising" in f.verdict and "optim.lr x0.5" in f.action


def test_oscillating_validation_loss():
    h = rows(train_loss=[1.0, 0.8, 0.65, 0.55, 0.47, 0.4], val_loss=[0.9, 0.6, 0.95, 0.55, 0.9, 0.6], val_f1=[0.5] * 6)
    (f,) = fired(h, "loss_oscillating", recipe={"optim": {"lr": 2e-5}})
    assert f.figures["split"] == "validation" and "optim.lr 2e-05 -> 1e-05" in f.action
    assert fired(h, "val_loss_rising") == []  # a zig-zag is not a trend


@pytest.mark.parametrize("seed", range(40))
def test_noisy_healthy_histories_are_silent(seed):
    """Falling parts, improving validation and a slowly growing gap, with epoch-to-epoch noise of real runs."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = int(rng.integers(4, 11))
    e = np.arange(n)
    focal = 0.8 * 0.8**e * (1 + rng.normal(0, 0.02, n))
    supcon = 4.0 * 0.93**e * (1 + rng.normal(0, 0.01, n))
    val_loss = (0.5 + 0.4 * 0.7**e) * (1 + rng.normal(0, 0.015, n))
    val_f1 = 0.72 - 0.25 * 0.6**e + rng.normal(0, 0.004, n)
    train_f1 = val_f1 + 0.01 + 0.004 * e + rng.normal(0, 0.003, n)
    h = rows(parts={"focal": list(focal), "supcon": list(supcon)}, val_loss=list(val_loss), train_f1=list(train_f1),
             val_f1=list(val_f1), val_per_class=healthy()[0]["validation"]["per_class"],
             train_counts={"a": 1500, "b": 300, "c": 100})
    assert problems(h, recipe=COMPOSITE_RECIPE) == []
