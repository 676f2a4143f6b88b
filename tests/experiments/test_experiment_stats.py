"""Statistics on constructed cases: seed summaries, paired bootstrap/permutation, verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as st

from tailtune.data import TaskSpec
from tailtune.experiments.stats import (
    item_counts,
    metric_from_counts,
    paired_bootstrap,
    paired_permutation,
    summarize,
    verdict,
    welch_interval,
)

MC = TaskSpec(kind="multiclass", labels=["a", "b", "c", "d"])
BIN = TaskSpec(kind="binary", labels=["neg", "pos"])
ML = TaskSpec(kind="multilabel", labels=["x", "y", "z"])
ASP = TaskSpec(kind="aspects", labels=["food", "service"], polarities=["positive", "negative", "neutral"])


def _noisy(y, rate, k, rng):
    out = y.copy()
    flip = rng.random(len(y)) < rate
    out[flip] = rng.integers(0, k, flip.sum())
    return out


# --------------------------------------------------------------------------------- summaries
def test_summarize_matches_scipy_t_interval():
    x = [0.61, 0.64, 0.59, 0.66, 0.63]
    s = summarize(x)
    low, high = st.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=st.sem(x))
    assert s.n == 5 and s.mean == pytest.approx(np.mean(x))
    assert s.sd == pytest.approx(np.std(x, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_summarize_one_value_has_no_interval_and_drops_nan():
    s = summarize([0.5, float("nan")])
    assert s.n == 1 and s.mean == 0.5 and math.isnan(s.ci_low)
    assert s.to_dict()["ci_low"] is None
    with pytest.raises(ValueError, match="confidence"):
        summarize([1, 2], confidence=95)


def test_welch_interval_contains_true_difference():
    diff, low, high = welch_interval([0.5, 0.52, 0.51], [0.6, 0.62, 0.61])
    assert diff == pytest.approx(0.1) and low > 0 and high > low


# ------------------------------------------------------------------------------ counts = report
@pytest.mark.parametrize("task", [MC, BIN, ML, ASP], ids=lambda t: t.kind)
def test_counts_reproduce_classification_report_macro_f1(task):
    from tailtune.metrics.classification import classification_report

    rng = np.random.default_rng(0)
    n = 300
    if task.kind == "multiclass":
        y, p = rng.integers(0, 4, n), rng.integers(0, 4, n)
    elif task.kind == "binary":
        y, p = rng.integers(0, 2, n), rng.integers(0, 2, n)
    elif task.kind == "multilabel":
        y, p = (rng.random((n, 3)) < 0.3).astype(int), (rng.random((n, 3)) < 0.3).astype(int)
    else:  # aspects: mostly absent (index 3); "neutral" never occurs in aspect 1
        y = rng.choice(4, size=(n, 2), p=[0.2, 0.1, 0.05, 0.65])
        y[:, 1] = np.where(y[:, 1] == 2, 3, y[:, 1])
        p = rng.choice(4, size=(n, 2), p=[0.2, 0.1, 0.05, 0.65])
        p[:, 1] = np.where(p[:, 1] == 2, 3, p[:, 1])
    tp, fp, fn, correct = item_counts(y, p, task)
    got = float(metric_from_counts(tp.sum(0), fp.sum(0), fn.sum(0), kind=task.kind, polarities=len(task.polarities)))
    report = classification_report(y, p, task)
    assert got == pytest.approx(report["macro_f1"], abs=1e-12)
    if task.kind in ("binary", "multiclass", "multilabel"):
        assert correct.mean() == pytest.approx(report["accuracy"])


# ------------------------------------------------------------------------------ paired tests
@pytest.mark.parametrize("test_fn", [paired_bootstrap, paired_permutation])
def test_identical_predictions_are_not_distinguishable(test_fn):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 4, 500)
    pred = _noisy(y, 0.4, 4, rng)
    result = test_fn(y, pred, pred.copy(), task=MC, n_resamples=500, seed=3)
    assert result.diff == 0.0
    assert result.p_value == 1.0
    assert verdict(result) == "no detectable difference"


def test_large_real_difference_is_significant_bootstrap_and_permutation():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 4, 600)
    weak = _noisy(y, 0.8, 4, rng)
    strong = _noisy(y, 0.1, 4, rng)
    boot = paired_bootstrap(y, weak, strong, task=MC, n_resamples=1000, seed=0)
    perm = paired_permutation(y, weak, strong, task=MC, n_resamples=1000, seed=0)
    assert boot.diff > 0.4 and boot.ci_low > 0.3 and boot.p_value < 0.01
    assert perm.p_value < 0.01 and perm.diff == pytest.approx(boot.diff)
    assert verdict(boot) == "improvement"
    assert verdict(paired_bootstrap(y, strong, weak, task=MC, n_resamples=500)) == "regression"


def test_small_noisy_difference_is_not_called_an_improvement():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 80)
    a = _noisy(y, 0.5, 4, rng)
    b = a.copy()
    b[:2] = y[:2]  # at most two items better
    boot = paired_bootstrap(y, a, b, task=MC, n_resamples=1000, seed=0)
    assert boot.ci_low <= 0 <= boot.ci_high
    assert verdict(boot) == "no detectable difference"


def test_tests_are_deterministic_given_a_seed():
    rng = np.random.default_rng(4)
    y = (rng.random((200, 3)) < 0.3).astype(int)
    a = (rng.random((200, 3)) < 0.3).astype(int)
    b = np.where(rng.random((200, 3)) < 0.7, y, a)
    one = paired_bootstrap(y, a, b, task=ML, n_resamples=300, seed=7)
    two = paired_bootstrap(y, a, b, task=ML, n_resamples=300, seed=7)
    other = paired_bootstrap(y, a, b, task=ML, n_resamples=300, seed=8)
    assert one == two and (one.ci_low, one.ci_high) != (other.ci_low, other.ci_high)
    assert paired_permutation(y, a, b, task=ML, n_resamples=300, seed=7) == paired_permutation(
        y, a, b, task=ML, n_resamples=300, seed=7
    )


def test_several_seeds_are_stacked_and_accuracy_works():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 400)
    a = [_noisy(y, 0.6, 2, rng) for _ in range(3)]
    b = [_noisy(y, 0.1, 2, rng) for _ in range(3)]
    boot = paired_bootstrap(y, a, b, task=BIN, metric="accuracy", n_resamples=400)
    expected = np.mean([np.mean(p == y) for p in b]) - np.mean([np.mean(p == y) for p in a])
    assert boot.diff == pytest.approx(expected) and verdict(boot) == "improvement"
    assert paired_permutation(y, a, b, task=BIN, metric="accuracy", n_resamples=300).p_value < 0.01
    with pytest.raises(ValueError, match="same number of seeds"):
        paired_permutation(y, a, b[:2], task=BIN)


def test_argument_validation_names_the_argument():
    y = np.array([0, 1, 2, 3])
    with pytest.raises(ValueError, match="metric='auc'"):
        paired_bootstrap(y, y, y, task=MC, metric="auc")
    with pytest.raises(ValueError, match="n_resamples=0"):
        paired_bootstrap(y, y, y, task=MC, n_resamples=0)
    with pytest.raises(ValueError, match="cover 3 items"):
        paired_bootstrap(y, y[:3], y, task=MC)


def test_verdict_never_calls_an_interval_crossing_zero_an_improvement():
    assert verdict(low=-0.001, high=0.5, p_value=0.001) == "no detectable difference"
    assert verdict(low=0.0, high=0.5) == "no detectable difference"
    assert verdict(low=0.01, high=0.5, p_value=0.2) == "no detectable difference"
    assert verdict(low=float("nan"), high=0.5) == "no detectable difference"
    assert verdict(low=0.01, high=0.5) == "improvement"
    assert verdict(low=-0.5, high=-0.01) == "regression"
    assert verdict(low=-0.5, high=-0.01, higher_is_better=False) == "improvement"
