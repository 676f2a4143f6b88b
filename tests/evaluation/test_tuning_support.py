"""Tuning never decides on evidence the validation split does not hold (issue 18, "Decisions that
hurt the minority"): too few positives or negatives keep the default rule with a warning, and no
temperature is kept that was fitted on one class."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.evaluation.tuning import one_class_labels, support_shortfall, tune_decision_rule

BIN = TaskSpec(kind="binary", labels=["ham", "spam"])
MC = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
ML = TaskSpec(kind="multilabel", labels=["x", "y", "z"])


def _scores(n, rng, shift=0.8):
    return rng.normal(shift, 1.0, size=(n, 1))


@pytest.mark.parametrize("bootstrap", [0, 50])
def test_binary_without_validation_positives_keeps_the_default_rule(bootstrap):
    """The reported case: no positive in the validation split. Before, the rule kept a temperature at
    its bound and a threshold far from 0.5 (predict then called every real positive negative)."""
    rng = np.random.default_rng(0)
    z, y = _scores(40, rng), np.zeros(40)
    result = tune_decision_rule(z, y, BIN, bootstrap=bootstrap)
    rule = result.postprocess
    assert rule.temperature is None and rule.thresholds is None
    assert rule.decide(z, BIN).tolist() == (z[:, 0] >= 0).astype(int).tolist()  # the default rule
    warnings = " ".join(rule.extra["warnings"])
    assert "0 positive(s) (spam) and 40 negative(s)" in warnings and "--min-support 5" in warnings
    assert "temperature not fitted" in warnings
    assert rule.extra["bootstrap"]["resamples"] == 0 and "skipped" in rule.extra["bootstrap"]
    assert result.gain == 0.0


def test_binary_with_too_few_positives_keeps_the_default_threshold_but_calibrates():
    rng = np.random.default_rng(1)
    z = np.concatenate([_scores(3, rng, 2.0), _scores(60, rng, -1.0)])
    y = np.array([1] * 3 + [0] * 60)
    rule = tune_decision_rule(z, y, BIN).postprocess
    assert rule.thresholds is None  # 3 < --min-support 5
    assert rule.temperature is not None  # both classes are present: the temperature is a real fit
    assert "3 positive(s)" in " ".join(rule.extra["warnings"])
    assert tune_decision_rule(z, y, BIN, min_support=3).postprocess.thresholds is not None
    # too few negatives is the same shortfall
    assert support_shortfall(1 - y, BIN, min_support=5).startswith("the validation split holds 60 positive(s)")


def test_enough_support_changes_nothing():
    rng = np.random.default_rng(2)
    zb = rng.normal(size=300) - 1.5
    yb = (rng.random(300) < 1 / (1 + np.exp(-(zb + 1.5)))).astype(int)
    rule = tune_decision_rule(zb[:, None], yb, BIN, bootstrap=20).postprocess
    assert "warnings" not in rule.extra and rule.thresholds is not None and rule.temperature is not None


def test_multiclass_with_one_supported_class_keeps_zero_biases():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(30, 3))
    y = np.zeros(30, dtype=int)
    y[:2] = 1  # b has 2 < 5 examples, c none
    rule = tune_decision_rule(z, y, MC).postprocess
    assert rule.biases is None
    assert "only 1 class(es) have at least 5 validation examples" in " ".join(rule.extra["warnings"])


def test_per_label_temperature_of_a_one_class_label_stays_1():
    rng = np.random.default_rng(4)
    z = rng.normal(size=(80, 3))
    y = (rng.random((80, 3)) < 0.4).astype(int)
    y[:, 2] = 0  # label z: no validation positive
    assert one_class_labels(y, ML) == [2]
    rule = tune_decision_rule(z, y, ML, temperature="per_label").postprocess
    assert rule.temperature[2] == 1.0 and rule.temperature[0] != 1.0
    assert "left at 1 for 1 label(s)" in " ".join(rule.extra["warnings"])


def test_one_class_detection():
    assert one_class_labels(np.zeros(5), BIN) is None
    assert one_class_labels(np.array([0, 1, 0]), BIN) == []
    assert one_class_labels(np.array([2, 2, 2]), MC) is None
    assert one_class_labels(np.zeros((4, 3)), ML) is None
