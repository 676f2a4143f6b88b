"""Threshold/bias tuning, temperature scaling and hierarchy repair on constructed score matrices."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.evaluation.calibration import calibration_summary, fit_temperature, negative_log_likelihood
from tailtune.evaluation.constraints import enforce_hierarchy
from tailtune.evaluation.postprocess import PostProcess
from tailtune.evaluation.tuning import (
    check_tuning_split,
    tune_biases,
    tune_binary_threshold,
    tune_decision_rule,
    tune_multilabel_thresholds,
)
from tailtune.metrics import classification_report, decode, hierarchy_violations, softmax

BIN = TaskSpec(kind="binary", labels=["neg", "pos"])
MC = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
ML = TaskSpec(kind="multilabel", labels=["x", "y", "z"])
ASP = TaskSpec(kind="aspects", labels=["food", "price"], polarities=["positive", "negative"])


def _logit(p):
    p = np.asarray(p, dtype=np.float64)
    return np.log(p / (1 - p))


def test_binary_threshold_known_optimum():
    # positives sit in [0.30, 0.40], negatives below 0.20: any cut in (0.2, 0.3) is perfect;
    # the exact sweep puts it halfway between the adjacent scores 0.2 and 0.3
    p = np.array([0.4, 0.35, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 1, 0, 0, 0])
    t, score = tune_binary_threshold(p, y)
    assert t == pytest.approx(0.25) and score == pytest.approx(1.0)
    assert decode(_logit(p), BIN, thresholds=t).tolist() == y.tolist()
    with pytest.raises(ValueError, match="metric must be one of"):
        tune_binary_threshold(p, y, metric="auc")


def test_binary_threshold_matches_brute_force():
    rng = np.random.default_rng(3)
    y = (rng.random(300) < 0.15).astype(int)
    p = 1 / (1 + np.exp(-(rng.normal(size=300) + 1.5 * y - 1)))
    t, score = tune_binary_threshold(p, y)
    def macro(pred):
        tp, fp, fn = (pred & (y == 1)).sum(), (pred & (y == 0)).sum(), (~pred & (y == 1)).sum()
        tn = len(y) - tp - fp - fn
        return (2 * tp / (2 * tp + fp + fn) + 2 * tn / (2 * tn + fn + fp)) / 2

    brute = max(macro(p >= c) for c in np.unique(p))
    assert score == pytest.approx(brute)
    assert classification_report(y, (p >= t).astype(int), BIN)["macro_f1"] == pytest.approx(score)


def test_multilabel_thresholds_and_min_support_fallback():
    rng = np.random.default_rng(0)
    n = 400
    y = np.zeros((n, 3), dtype=int)
    y[:100, 0] = 1  # label x: 100 positives, scores 0.30-0.40 vs negatives < 0.2
    y[100:300, 1] = 1  # label y: positives high
    y[:3, 2] = 1  # label z: only 3 validation positives -> fallback
    p = rng.uniform(0.0, 0.2, size=(n, 3))
    p[:100, 0] = rng.uniform(0.30, 0.40, size=100)
    p[100:300, 1] = rng.uniform(0.6, 0.9, size=200)
    p[:3, 2] = 0.99
    res = tune_multilabel_thresholds(p, y, min_support=5)
    t = res["thresholds"]
    assert 0.2 <= t[0] <= 0.3 and 0.2 <= t[1] <= 0.6
    assert res["fallback"] == [2]
    assert t[2] == pytest.approx(res["global_threshold"])
    # without the fallback label z gets its own (over-fitted) cut between 0.2 and 0.99
    own = tune_multilabel_thresholds(p, y, min_support=1)["thresholds"][2]
    assert own > 0.5


def test_multiclass_biases_recover_known_shift():
    rng = np.random.default_rng(1)
    n = 3000
    y = rng.integers(0, 3, size=n)
    clean = np.eye(3)[y] * 2.0 + rng.normal(size=(n, 3))
    shifted = clean.copy()
    shifted[:, 2] -= 2.0  # the model under-scores class c by 2 logits
    res = tune_biases(shifted[:1500], y[:1500], MC, min_support=5)
    b = np.array(res["biases"])
    assert b[2] - b[:2].mean() == pytest.approx(2.0, abs=0.6)
    assert res["tuned"] > res["default"] + 0.05
    # held-out: the tuned rule is close to the clean model's default rule
    test_tuned = classification_report(y[1500:], decode(shifted[1500:], MC, biases=b), MC)["macro_f1"]
    test_clean = classification_report(y[1500:], decode(clean[1500:], MC), MC)["macro_f1"]
    test_default = classification_report(y[1500:], decode(shifted[1500:], MC), MC)["macro_f1"]
    assert test_tuned > test_default + 0.05 and test_tuned == pytest.approx(test_clean, abs=0.03)
    # the reported value is the report's macro-F1 for these biases
    got = classification_report(y[:1500], decode(shifted[:1500], MC, biases=b), MC)["macro_f1"]
    assert got == pytest.approx(res["tuned"])


def test_aspect_biases_per_aspect_and_report_consistency():
    rng = np.random.default_rng(2)
    n = 1200
    y = rng.choice(3, size=(n, 2), p=[0.2, 0.1, 0.7])
    s = np.eye(3)[y] * 2.0 + rng.normal(size=(n, 2, 3))
    s[:, 0, 1] -= 1.5  # food/negative under-scored
    flat = s.reshape(n, 6)
    res = tune_biases(flat, y, ASP)
    b = np.array(res["biases"])
    assert b.shape == (2, 3)
    assert b[0, 1] - b[0, [0, 2]].mean() > 0.7
    report = classification_report(y, decode(flat, ASP, biases=b), ASP)
    assert report["macro_f1"] == pytest.approx(res["tuned"])
    assert res["tuned"] >= res["default"]


def test_biases_min_support_keeps_rare_class_untuned():
    y = np.array([0] * 50 + [1] * 50 + [2] * 2)
    s = np.eye(3)[y] + np.random.default_rng(0).normal(size=(102, 3))
    b = tune_biases(s, y, MC, min_support=5)["biases"]
    others = tune_biases(s, y, MC, min_support=5)
    assert len(b) == 3 and others["tuned"] >= others["default"]


def test_temperature_recovers_known_value():
    rng = np.random.default_rng(0)
    n = 20000
    z = rng.normal(size=(n, 3)) * 2.0
    p = softmax(z)
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)  # y ~ softmax(z)
    t = fit_temperature(z * 3.0, y, MC)  # over-confident by 3
    assert t == pytest.approx(3.0, rel=0.05)
    assert negative_log_likelihood(z * 3, y, MC, temperature=t) < negative_log_likelihood(z * 3, y, MC)
    summary = calibration_summary(z * 3.0, y, MC, temperature=t)
    assert summary["ece_after"] < summary["ece_before"]
    assert sum(summary["reliability_after"]["count"]) == n


def test_per_label_temperature_multilabel():
    rng = np.random.default_rng(1)
    n = 20000
    z = rng.normal(size=(n, 2)) * 2.0
    y = (rng.random((n, 2)) < 1 / (1 + np.exp(-z))).astype(int)
    ts = fit_temperature(z * np.array([2.0, 0.5]), y, TaskSpec(kind="multilabel", labels=["u", "v"]), per_label=True)
    assert ts[0] == pytest.approx(2.0, rel=0.07) and ts[1] == pytest.approx(0.5, rel=0.07)
    with pytest.raises(ValueError, match="multilabel tasks only"):
        fit_temperature(z, y[:, 0], MC, per_label=True)


def test_refuses_test_split():
    with pytest.raises(ValueError, match="refusing to tune the decision rule on split 'test'"):
        check_tuning_split("test")
    z = np.zeros((4, 3))
    with pytest.raises(ValueError, match="refusing"):
        tune_decision_rule(z, np.array([0, 1, 2, 0]), MC, split="test")


def test_tune_decision_rule_end_to_end_multiclass():
    rng = np.random.default_rng(5)
    n = 2000
    y = rng.choice(3, size=n, p=[0.7, 0.2, 0.1])
    z = np.eye(3)[y] * 1.5 + rng.normal(size=(n, 3))
    z[:, 2] -= 1.0
    res = tune_decision_rule(z, y, MC)
    assert res.postprocess.tuned_on == "validation"
    assert res.gain > 0
    assert res.postprocess.to_dict()["validation"]["gain"] == pytest.approx(res.gain)
    assert res.calibration["nll_after"] <= res.calibration["nll_before"] + 1e-9


def test_postprocess_roundtrip_and_check(tmp_path):
    rule = PostProcess(temperature=1.5, biases=[0.0, 0.5, -0.5], tuned_on="validation", extra={"k": 1})
    rule.save(tmp_path / "postprocess.json")
    back = PostProcess.load(tmp_path / "postprocess.json")
    assert back.biases == [0.0, 0.5, -0.5] and back.extra == {"k": 1}
    back.check(MC)
    from tailtune.errors import RunDirError

    with pytest.raises(RunDirError, match="does not fit task.json"):
        back.check(TaskSpec(kind="multiclass", labels=["a", "b"]))
    assert PostProcess.load(tmp_path / "missing.json").is_default


def test_enforce_hierarchy_modes():
    task = TaskSpec(kind="multilabel", labels=["a", "b", "c"], hierarchy={"b": "a", "c": "b"})
    pred = np.array([[0, 0, 1], [1, 0, 1], [1, 1, 0], [0, 1, 0]])
    added = enforce_hierarchy(pred, task, mode="add_parent")
    assert added.tolist() == [[1, 1, 1], [1, 1, 1], [1, 1, 0], [1, 1, 0]]
    dropped = enforce_hierarchy(pred, task, mode="drop_child")
    assert dropped.tolist() == [[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 0, 0]]
    for out in (added, dropped):
        assert hierarchy_violations(out, task)["total"] == 0
    with pytest.raises(ValueError, match="hierarchy mode must be one of"):
        enforce_hierarchy(pred, task, mode="both")


@pytest.mark.parametrize("task", [BIN, MC])
@pytest.mark.parametrize("bad", [-1, 2.5, True])
def test_a_bad_min_support_is_refused_for_every_kind(task, bad):
    """Before: `tailtune tune RUN --min-support -1` on a binary run tuned and exited 0 (only the
    multilabel and bias tuners checked it)."""
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 20) if task is BIN else np.array([0, 1, 2] * 20)
    z = rng.normal(size=(len(y), 1 if task is BIN else 3))
    with pytest.raises(ValueError, match=r"min_support must be a non-negative integer"):
        tune_decision_rule(z, y, task, min_support=bad, bootstrap=0)
