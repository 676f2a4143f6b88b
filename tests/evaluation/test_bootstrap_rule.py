"""The bagged decision rule and its out-of-bag check (``bootstrap_rule``), on constructed scores
where the right answer is known: a real score shift is found and kept, pure noise is reverted."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.evaluation.tuning import bootstrap_rule, tune_biases, tune_decision_rule
from tailtune.metrics import classification_report, decode, item_counts, metric_from_counts

BIN = TaskSpec(kind="binary", labels=["neg", "pos"])
MC = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
ML = TaskSpec(kind="multilabel", labels=["x", "y", "z"])
ASP = TaskSpec(kind="aspects", labels=["food", "price"], polarities=["positive", "negative"])


def _calibrated_multiclass(n, rng, shift=(0.0, 0.0, 0.0)):
    """Labels drawn from softmax(z): argmax(z) is Bayes-optimal for accuracy; ``shift`` is then
    subtracted from the logits the rule sees, so ``+shift`` is the bias that undoes it."""
    z = rng.normal(size=(n, 3)) * 1.5
    p = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    y = np.array([rng.choice(3, p=row) for row in p])
    return z - np.asarray(shift), y


def test_real_shift_is_found_and_kept():
    rng = np.random.default_rng(0)
    # class c is under-scored by 2 logits (a model trained on data where c was rare)
    z, y = _calibrated_multiclass(600, rng, shift=(0.0, 0.0, 2.0))
    out = bootstrap_rule(z, y, MC, resamples=40, seed=0)
    assert out["kept"] == ["all"] and out["reverted"] == []
    assert out["oob_gain"] > 0.02 and out["oob_gain_ci"][0] > 0 and out["oob_win_rate"] > 0.9
    b = np.asarray(out["biases"])
    assert b[2] - b[:2].mean() == pytest.approx(2.0, abs=0.6)  # close to the shift it must undo
    assert abs(b.sum()) < 1e-9  # centred


def test_noise_is_reverted_where_an_exact_fit_claims_a_gain():
    # the scores carry no information about the (balanced) labels: no bias can help in expectation,
    # yet on 150 texts the exact maximiser always finds a validation "gain"
    exact_gains, kept = [], 0
    for seed in range(6):
        rng = np.random.default_rng(100 + seed)
        z, y = rng.normal(size=(150, 3)), rng.integers(0, 3, size=150)
        exact = tune_biases(z, y, MC, min_support=1)
        exact_gains.append(exact["tuned"] - exact["default"])
        out = bootstrap_rule(z, y, MC, resamples=40, seed=seed, min_support=1)
        kept += out["kept"] == ["all"]
        if out["reverted"]:
            assert np.allclose(out["biases"], 0.0)
            assert decode(z, MC, biases=out["biases"]).tolist() == decode(z, MC).tolist()
        assert out["oob_gain"] < 0.01  # out of bag, the over-fit shows
    assert min(exact_gains) > 0.02  # the over-fit the check protects against is real
    assert kept <= 1


def test_multilabel_keeps_labels_with_a_shift_and_reverts_noise():
    rng = np.random.default_rng(1)
    n = 800
    z = rng.normal(size=(n, 3)) * 2
    y = (rng.random((n, 3)) < 1 / (1 + np.exp(-z))).astype(int)  # calibrated: 0.5 is F1-reasonable
    z[:, 1] -= 3.0  # label y under-scored: its best threshold is far below 0.5
    out = bootstrap_rule(z, y, ML, resamples=40, seed=0)
    assert "y" in out["kept"]
    assert out["thresholds"][1] < 0.2
    glob = out["global_threshold"]
    base = glob["value"] if glob["kept"] else 0.5
    for label, t in zip(ML.labels, out["thresholds"]):
        if label in out["reverted"]:
            assert t == base  # a reverted label falls back to the global threshold, or 0.5 without it
    assert out["unit_oob_gain"]["y"] > 0.02  # judged against the global threshold when that is kept


def test_multilabel_global_threshold_serves_labels_without_validation_evidence():
    rng = np.random.default_rng(5)
    n = 600
    z = rng.normal(size=(n, 3)) * 2 - 3.0  # every label under-scored the same way: 0.5 almost never fires
    y = (rng.random((n, 3)) < 1 / (1 + np.exp(-(z + 3.0)))).astype(int)
    y[:, 2] = 0
    y[:4, 2] = 1  # label z: 4 validation positives, under min_support -> global threshold in every fit
    out = bootstrap_rule(z, y, ML, resamples=30, seed=0)
    glob = out["global_threshold"]
    assert glob["kept"] and glob["oob_gain"] > 0.05 and glob["value"] < 0.3
    assert out["thresholds"][2] == glob["value"]  # not 0.5: the pooled evidence speaks for it


def test_binary_and_aspects_shapes_and_determinism():
    rng = np.random.default_rng(2)
    zb = rng.normal(size=300) - 1.5
    yb = (rng.random(300) < 1 / (1 + np.exp(-(zb + 1.5)))).astype(int)
    a = bootstrap_rule(zb[:, None], yb, BIN, resamples=20, seed=5)
    b = bootstrap_rule(zb[:, None], yb, BIN, resamples=20, seed=5)
    assert a == b and isinstance(a["thresholds"], float) and a["biases"] is None
    assert a["kept"] == ["pos"] and a["thresholds"] < 0.5  # the shifted scores need a lower cut
    za = rng.normal(size=(200, 2 * 3))
    ya = rng.integers(0, 3, size=(200, 2))
    asp = bootstrap_rule(za, ya, ASP, resamples=10, seed=0)
    assert np.asarray(asp["biases"]).shape == (2, 3)
    assert set(asp["kept"]) | set(asp["reverted"]) == {"food", "price"}


def test_tune_decision_rule_records_the_evidence_and_bootstrap_zero_is_the_exact_fit():
    rng = np.random.default_rng(3)
    z, y = _calibrated_multiclass(400, rng, shift=(0.0, 1.5, 0.0))
    exact = tune_decision_rule(z, y, MC, temperature="none", bootstrap=0)
    assert exact.postprocess.extra["bootstrap"] == {"resamples": 0}
    assert exact.postprocess.biases == pytest.approx(tune_biases(z, y, MC)["biases"])
    bagged = tune_decision_rule(z, y, MC, temperature="none", bootstrap=30, seed=1)
    boot = bagged.postprocess.extra["bootstrap"]
    assert boot["resamples"] == 30 and boot["seed"] == 1 and boot["kept"] == ["all"]
    assert bagged.postprocess.to_dict()["bootstrap"]["oob_gain"] == boot["oob_gain"]
    for bad in (1, -1, 2.5, True):
        with pytest.raises(ValueError, match="bootstrap must be 0"):
            tune_decision_rule(z, y, MC, bootstrap=bad)
    with pytest.raises(ValueError, match="resamples must be an integer >= 2"):
        bootstrap_rule(z, y, MC, resamples=1)


def test_counts_macro_f1_matches_the_report_for_aspects():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, size=(120, 2))
    pred = rng.integers(0, 3, size=(120, 2))
    tp, fp, fn, _ = item_counts(y, pred, ASP)
    got = float(metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), kind="aspects", polarities=2))
    assert got == pytest.approx(classification_report(y, pred, ASP)["macro_f1"])


def test_margin_is_the_evidence_bar():
    rng = np.random.default_rng(6)
    n = 500
    z = rng.normal(size=(n, 3)) * 2
    y = (rng.random((n, 3)) < 1 / (1 + np.exp(-z))).astype(int)
    z[:, 0] -= 2.5  # label x needs a lower threshold; y and z are calibrated
    loose = bootstrap_rule(z, y, ML, resamples=30, seed=0, margin=0.0)
    strict = bootstrap_rule(z, y, ML, resamples=30, seed=0, margin=0.5)
    never = bootstrap_rule(z, y, ML, resamples=30, seed=0, margin=1e6)
    assert set(strict["kept"]) <= set(loose["kept"]) and strict["margin"] == 0.5
    assert never["kept"] == [] and not never["global_threshold"]["kept"]
    assert never["thresholds"].tolist() == [0.5, 0.5, 0.5]
    for bad in (-0.1, float("inf"), float("nan"), "1", True):
        with pytest.raises(ValueError, match="margin must be a finite number >= 0"):
            bootstrap_rule(z, y, ML, resamples=2, margin=bad)
