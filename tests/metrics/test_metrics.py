"""tailtune.metrics: decoding, classification_report per task kind, calibration metrics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, matthews_corrcoef

from tailtune.data import TaskSpec
from tailtune.metrics import (
    brier_score,
    classification_report,
    decode,
    expected_calibration_error,
    hierarchy_violations,
    probabilities,
    reliability_diagram,
    sigmoid,
    softmax,
)
from tailtune.utils.io import dumps_json

BIN = TaskSpec(kind="binary", labels=["ham", "spam"])
MC = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
ML = TaskSpec(kind="multilabel", labels=["p", "c1", "c2"], hierarchy={"c1": "p", "c2": "p"})
ASP = TaskSpec(kind="aspects", labels=["food", "price"], polarities=["positive", "negative"])


def test_sigmoid_softmax_stable():
    x = np.array([-1000.0, 0.0, 1000.0])
    assert np.allclose(sigmoid(x), [0.0, 0.5, 1.0])
    s = softmax(np.array([[1000.0, 0.0], [0.0, 0.0]]))
    assert np.allclose(s, [[1, 0], [0.5, 0.5]])


def test_decode_binary_threshold_and_shapes():
    s = np.array([[-1.0], [0.0], [0.5]])
    assert decode(s, BIN).tolist() == [0, 1, 1]
    assert decode(s[:, 0], BIN, thresholds=0.7).tolist() == [0, 0, 0]
    assert decode(s, BIN, thresholds=[0.2]).tolist() == [1, 1, 1]
    with pytest.raises(ValueError, match="biases are for multiclass"):
        decode(s, BIN, biases=[1.0])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\]"):
        decode(s, BIN, thresholds=1.5)


def test_decode_multiclass_biases():
    s = np.array([[2.0, 1.5, 0.0], [0.0, 0.0, 3.0]])
    assert decode(s, MC).tolist() == [0, 2]
    assert decode(s, MC, biases=[0.0, 1.0, 0.0]).tolist() == [1, 2]
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        decode(s, MC, biases=[1.0, 2.0])
    with pytest.raises(ValueError, match="take biases|takes biases"):
        decode(s, MC, thresholds=0.5)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        decode(s[:, :2], MC)


def test_decode_multilabel_per_label_thresholds():
    s = np.log(np.array([[0.6, 0.3, 0.9]]) / (1 - np.array([[0.6, 0.3, 0.9]])))
    assert decode(s, ML).tolist() == [[1, 0, 1]]
    assert decode(s, ML, thresholds=[0.7, 0.2, 0.95]).tolist() == [[0, 1, 0]]
    with pytest.raises(ValueError, match="one per label"):
        decode(s, ML, thresholds=[0.5, 0.5])


def test_decode_aspects_reshape_and_biases():
    # aspect-major: food (pos, neg, absent), price (pos, neg, absent)
    s = np.array([[3.0, 0.0, 1.0, 0.0, 0.2, 1.0]])
    assert decode(s, ASP).tolist() == [[0, 2]]
    assert decode(s, ASP, biases=[0.0, 1.0, 0.0]).tolist() == [[0, 1]]
    b = np.zeros((2, 3))
    b[0, 2] = 5.0
    assert decode(s, ASP, biases=b).tolist() == [[2, 2]]
    assert probabilities(s, ASP).shape == (1, 2, 3)


def test_binary_report_matches_sklearn():
    rng = np.random.default_rng(0)
    y = (rng.random(200) < 0.2).astype(int)
    logits = rng.normal(size=200) + 2 * y
    pred = decode(logits, BIN)
    r = classification_report(y, pred, BIN, y_score=logits[:, None])
    assert r["f1"] == pytest.approx(f1_score(y, pred))
    assert r["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))
    assert r["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    assert r["pr_auc"] == pytest.approx(average_precision_score(y, logits))
    assert r["per_class"]["spam"]["support"] == int(y.sum())
    assert np.array(r["confusion_matrix"]).sum() == 200
    assert 0 <= r["ece"] <= 1 and 0 <= r["ece_adaptive"] <= 1 and 0 <= r["brier"] <= 1
    json.loads(dumps_json(r))  # JSON-ready


def test_multiclass_report_matches_sklearn_and_zero_division():
    y = np.array([0, 0, 1, 1, 2, 0])
    p = np.array([0, 1, 1, 1, 0, 0])  # class c is never predicted
    r = classification_report(y, p, MC)
    for avg in ("macro", "micro", "weighted"):
        assert r[f"{avg}_f1"] == pytest.approx(f1_score(y, p, average=avg, zero_division=0))
    assert r["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    r1 = classification_report(y, p, MC, zero_division=1.0)
    assert r1["per_class"]["c"]["precision"] == 1.0
    with pytest.raises(ValueError, match="zero_division"):
        classification_report(y, p, MC, zero_division=0.5)
    with pytest.raises(ValueError, match="same shape"):
        classification_report(y, p[:3], MC)


def test_multiclass_pr_auc_missing_class_is_none():
    y = np.array([0, 1, 0, 1])
    s = np.array([[2.0, 0, 0], [0, 2.0, 0], [1.0, 0, 0], [0, 1.0, 0]])
    r = classification_report(y, decode(s, MC), MC, y_score=s)
    assert r["per_class"]["c"]["pr_auc"] is None
    assert r["macro_pr_auc"] == pytest.approx(1.0)


def test_multilabel_report_and_hierarchy_violations():
    y = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 0, 0]])
    p = np.array([[1, 1, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]])
    r = classification_report(y, p, ML)
    assert r["accuracy"] == pytest.approx(0.5)  # subset accuracy
    assert r["hamming_accuracy"] == pytest.approx(10 / 12)
    assert r["macro_f1"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
    assert r["micro_f1"] == pytest.approx(f1_score(y, p, average="micro", zero_division=0))
    assert r["confusion_matrix"]["c1"] == [[2, 1], [0, 1]]
    v = r["hierarchy_violations"]
    assert v == {"total": 2, "samples": 2, "per_edge": {"c1 -> p": 1, "c2 -> p": 1}}
    assert hierarchy_violations(y, ML)["total"] == 0
    mcc = np.mean([matthews_corrcoef(y[:, i], p[:, i]) for i in range(3)])
    assert r["mcc"] == pytest.approx(mcc)


def test_aspects_absent_handling():
    # food: pos, neg, absent, pos ; price: absent everywhere but one neg
    y = np.array([[0, 2], [1, 2], [2, 1], [0, 2]])
    p = np.array([[0, 2], [2, 2], [0, 1], [0, 0]])
    r = classification_report(y, p, ASP)
    food = r["per_aspect"]["food"]
    # positive: tp 2, fp 1 (absent cell predicted positive), fn 0 -> f1 0.8; negative: tp 0, fn 1 -> 0
    assert food["macro_f1"] == pytest.approx((0.8 + 0.0) / 2)
    assert food["per_class"]["absent"]["support"] == 1
    assert food["present_accuracy"] == pytest.approx(2 / 3)
    # detection: present (3 true) vs absent; predicted present on 3 of 4 (row 1 missed, row 2 false alarm)
    assert food["detection_f1"] == pytest.approx(2 / 3)
    price = r["per_aspect"]["price"]
    # polarities used in price: negative (true + predicted), positive (predicted once on an absent cell)
    assert price["macro_f1"] == pytest.approx((1.0 + 0.0) / 2)
    assert r["macro_f1"] == pytest.approx((food["macro_f1"] + price["macro_f1"]) / 2)
    assert r["accuracy"] == pytest.approx(5 / 8)
    assert set(r["per_class"]) == {"positive", "negative", "absent"}


def test_aspects_with_scores():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, size=(50, 2))
    s = rng.normal(size=(50, 6))
    r = classification_report(y, decode(s, ASP), ASP, y_score=s)
    assert "macro_pr_auc" in r["per_aspect"]["food"] and 0 <= r["ece"] <= 1
    json.loads(dumps_json(r))


def test_ece_known_values_and_adaptive_bins():
    assert expected_calibration_error([1, 0], [0.9, 0.6], n_bins=10) == pytest.approx(0.35)
    assert expected_calibration_error([1, 1, 0, 0], [1.0, 1.0, 0.5, 0.5], n_bins=10) == pytest.approx(0.25)
    # perfectly calibrated bins
    correct = np.array([1] * 8 + [0] * 2 + [1] * 6 + [0] * 4)
    conf = np.array([0.8] * 10 + [0.6] * 10)
    assert expected_calibration_error(correct, conf, n_bins=10) == pytest.approx(0.0)
    d = reliability_diagram(correct, conf, n_bins=2, strategy="quantile")
    assert sum(d["count"]) == 20
    with pytest.raises(ValueError, match="strategy"):
        expected_calibration_error(correct, conf, strategy="bogus")
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(correct, conf, n_bins=0)


def test_adaptive_bins_cut_by_rank_so_ties_keep_them_equal_and_rounding_moves_nothing():
    """Quantile edges put every prediction tied at an edge into one bin (unequal bins), and a tie
    broken by float rounding (another batch padding) moved them all across the edge: the metric
    jumped (0.295 -> 0.270 in the eval_sort_by_length lever test on another CPU)."""
    conf = np.array([0.6] * 6 + [0.7] * 6 + [0.9] * 8)
    correct = np.array([1, 0, 1, 0, 1, 1] + [1] * 4 + [0] * 2 + [1] * 8, dtype=float)
    d = reliability_diagram(correct, conf, n_bins=4, strategy="quantile")
    assert d["count"] == [5, 5, 5, 5]
    assert d["bin_lower"][0] == 0.0 and d["bin_upper"][-1] == 1.0
    # by hand: ranks 0-4 (0.6 x5: 3 right), 5-9 (0.6, 0.7 x4: 1 + 4 right), 10-14 (0.7 x2, 0.9 x3: 3 right), 15-19
    want = (abs(0.6 - 0.6) + abs(0.68 - 1.0) + abs(0.82 - 0.6) + abs(0.9 - 1.0)) / 4
    assert expected_calibration_error(correct, conf, n_bins=4, strategy="quantile") == pytest.approx(want)
    # break the ties by rounding noise: same value to rounding (tied items share confidence and outcome)
    rng = np.random.default_rng(0)
    same_outcome_ties = np.array([0.6] * 6 + [0.7] * 6 + [0.9] * 8)
    c2 = np.array([1] * 6 + [0] * 6 + [1] * 8, dtype=float)
    base = expected_calibration_error(c2, same_outcome_ties, n_bins=7, strategy="quantile")
    for _ in range(5):
        noisy = same_outcome_ties + rng.normal(scale=1e-8, size=same_outcome_ties.size)
        assert expected_calibration_error(c2, noisy, n_bins=7, strategy="quantile") == pytest.approx(base, abs=1e-7)
    # fewer predictions than bins: one per bin, nothing empty
    assert reliability_diagram([1, 0], [0.9, 0.6], n_bins=15, strategy="quantile")["count"] == [1, 1]


def test_brier_definitions():
    assert brier_score(np.array([1, 0]), np.array([0.8, 0.4]), BIN) == pytest.approx((0.04 + 0.16) / 2)
    p = np.array([[0.7, 0.2, 0.1]])
    assert brier_score(np.array([0]), p, MC) == pytest.approx(0.09 + 0.04 + 0.01)


def test_task_as_dict_and_bad_task():
    r = classification_report([0, 1], [0, 1], MC.to_dict())
    assert r["accuracy"] == 1.0
    with pytest.raises(TypeError, match="TaskSpec"):
        decode(np.zeros((1, 3)), object())
