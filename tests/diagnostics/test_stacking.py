"""Class weights stacked with a tuned decision rule on the same classes (issue 17)."""

import math

import pytest

from tailtune.diagnostics import run_from_history, run_rules
from tailtune.diagnostics.stacking import stacked_corrections


def test_binary_pos_weight_and_a_low_threshold_both_favour_the_positives():
    f = stacked_corrections({"spam": 6.0}, {"thresholds": [0.25]}, kind="binary", labels=["ham", "spam"])
    spam = f.figures["classes"]["spam"]
    # pos_weight multiplies the positive's odds by 6 in training; threshold 0.25 by (1 - 0.25) / 0.25 = 3 at decision time
    assert spam == {"weight": 6.0, "weight_factor": 6.0, "rule_value": 0.25, "rule_factor": 3.0, "combined_factor": 18.0}
    assert "counted twice" in f.verdict and "x18 in all" in f.verdict
    assert "weighting.apply_to: none" in f.action and "tailtune tune" in f.action
    assert [(k.name, k.direction, k.targets) for k in f.knobs] == [("class_weights", "down", ("spam",))]


def test_multilabel_only_labels_pushed_both_ways_are_reported():
    weights = {"earn": 0.8, "wheat": 12.0, "corn": 9.0}
    # wheat: weight and threshold 0.2 both favour it; corn: the tuned threshold (0.7) pulls back against the weight
    f = stacked_corrections(weights, {"thresholds": [0.5, 0.2, 0.7]}, kind="multilabel", labels=["earn", "wheat", "corn"])
    assert list(f.figures["classes"]) == ["wheat"]
    assert f.figures["classes"]["wheat"]["combined_factor"] == pytest.approx(48.0)


def test_multiclass_weights_and_biases_relative_to_the_median():
    weights = {"a": 0.5, "b": 1.0, "c": 8.0}
    f = stacked_corrections(weights, {"biases": [0.0, 0.2, 1.0]}, kind="multiclass", labels=["a", "b", "c"])
    c = f.figures["classes"]["c"]
    assert c["weight_factor"] == pytest.approx(8.0) and c["rule_factor"] == pytest.approx(math.exp(0.8), abs=0.01)
    assert "tuned bias +1.00" in f.verdict


def test_aspect_biases_are_averaged_over_aspects():
    weights = {"positive": 1.0, "negative": 4.0, "absent": 0.3}
    biases = [[0.0, 1.0, -0.5], [0.0, 0.6, -0.5]]
    f = stacked_corrections(weights, {"biases": biases}, kind="aspects", labels=["food", "service"])
    assert list(f.figures["classes"]) == ["negative"] and f.figures["classes"]["negative"]["rule_value"] == pytest.approx(0.8)


@pytest.mark.parametrize("weights, pp", [
    (None, {"thresholds": [0.2]}),                          # no class weights
    ({"spam": 6.0}, None),                                  # never tuned
    ({"spam": 6.0}, {"thresholds": None, "temperature": 1.3}),  # tuning kept the default threshold
    ({"spam": 1.2}, {"thresholds": [0.2]}),                 # weight too small to push
    ({"spam": 6.0}, {"thresholds": [0.45]}),                # threshold too close to 0.5 to push
])
def test_silent_when_only_one_mechanism_pushes(weights, pp):
    assert stacked_corrections(weights, pp, kind="binary", labels=["ham", "spam"]) is None


def test_rule_reads_the_runs_weights_and_postprocess():
    from histories import rows

    h = rows(train_loss=[0.5, 0.4, 0.35], val_f1=[0.5, 0.55, 0.6])
    run = run_from_history(h, class_weights={"spam": 6.0}, postprocess={"thresholds": [0.25]},
                           task={"kind": "binary", "labels": ["ham", "spam"]})
    assert [f.rule for f in run_rules(run, rules=["weights_with_thresholds"])] == ["weights_with_thresholds"]


def test_per_cell_weights_meet_each_aspects_bias_row():
    """weighting.per_aspect: a cell weight (aspect#class) and its own aspect's tuned bias both push it."""
    weights = {"food#pos": 1.0, "food#neg": 3.0, "food#absent": 0.5, "menu#pos": 3.0, "menu#neg": 1.0, "menu#absent": 0.5}
    pp = {"biases": [[0.0, 1.2, 0.0], [0.0, 1.2, 0.0]]}  # both aspects favour neg at decision time
    f = stacked_corrections(weights, pp, kind="aspects")
    assert f is not None and list(f.figures["classes"]) == ["food#neg"]  # menu#neg is not up-weighted
    assert f.figures["classes"]["food#neg"]["rule_factor"] == pytest.approx(math.exp(1.2), rel=1e-2)
    shared = stacked_corrections(weights, {"biases": [0.0, 1.2, 0.0]}, kind="aspects")
    assert list(shared.figures["classes"]) == ["food#neg"]
    assert stacked_corrections(weights, {"biases": [[0.0, 1.2]]}, kind="aspects") is None  # shape mismatch
