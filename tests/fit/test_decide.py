"""The decision: a challenger replaces the baseline only when it wins outside the noise, both over
the validation items and over the seeds; losing or winning inside the noise keeps the baseline."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.fit.decide import compare_arms, decide, macro_f1

TASK = TaskSpec(kind="multiclass", labels=["a", "b", "c"])
N = 300
Y = np.random.default_rng(0).integers(0, 3, N)


@pytest.fixture(autouse=True)
def _few_resamples(monkeypatch):
    monkeypatch.setattr("tailtune.fit.decide.N_RESAMPLES", 500)


def runs(accuracies: list[float], seed: int) -> dict[int, dict]:
    """One run per accuracy: each item right with that probability, else a wrong class."""
    rng = np.random.default_rng(seed)
    out = {}
    for i, acc in enumerate(accuracies):
        right = rng.random(N) < acc
        pred = np.where(right, Y, (Y + rng.integers(1, 3, N)) % 3)
        score = macro_f1(TASK, Y, pred)
        out[13 + i] = {"default_pred": pred, "tuned_pred": pred, "default": score, "tuned": score}
    return out


def test_a_clear_winner_replaces_the_baseline():
    d = decide(TASK, Y, {"baseline": runs([0.6, 0.6, 0.6], 1), "good": runs([0.85, 0.85, 0.85], 2)}, baseline="baseline")
    assert d["winner"] == "good" and d["improvements"] == ["good"]
    t = d["comparisons"]["good"]["tuned"]
    assert t["item_ci"][0] > 0 and t["seed_ci"][0] > 0 and "beats baseline outside the noise" in d["reason"]


def test_a_loser_never_replaces_the_baseline():
    d = decide(TASK, Y, {"baseline": runs([0.7, 0.7, 0.7], 1), "worse": runs([0.55, 0.55, 0.55], 2)}, baseline="baseline")
    assert d["winner"] == "baseline" and d["comparisons"]["worse"]["verdict"] == "regression"


def test_a_win_inside_the_noise_keeps_the_baseline():
    same = decide(TASK, Y, {"baseline": runs([0.7, 0.7, 0.7], 1), "same": runs([0.71, 0.7, 0.71], 2)}, baseline="baseline")
    assert same["winner"] == "baseline" and "is kept" in same["reason"]


def test_a_win_carried_by_one_lucky_seed_keeps_the_baseline():
    # the stacked items favour the challenger, but its seeds disagree: the seed interval crosses zero
    d = decide(TASK, Y, {"baseline": runs([0.6, 0.6, 0.6], 1), "lucky": runs([0.95, 0.58, 0.6], 2)}, baseline="baseline")
    c = d["comparisons"]["lucky"]["tuned"]
    assert c["item_verdict"] == "improvement" and c["seed_verdict"] != "improvement"
    assert d["winner"] == "baseline"


def test_one_common_seed_cannot_call_a_difference():
    c = compare_arms(TASK, Y, runs([0.5], 1), runs([0.9], 2))
    assert c["verdict"] == "no detectable difference" and "seed noise cannot be measured" in c["note"]


def test_the_decision_rests_on_the_tuned_rule():
    base, cand = runs([0.6, 0.6, 0.6], 1), runs([0.6, 0.6, 0.6], 2)
    for s in cand:  # better only under the default rule: no change of the tuned decisions
        cand[s]["default_pred"], cand[s]["default"] = Y, 1.0
    d = decide(TASK, Y, {"baseline": base, "x": cand}, baseline="baseline")
    assert d["comparisons"]["x"]["default"]["verdict"] == "improvement" and d["winner"] == "baseline"
