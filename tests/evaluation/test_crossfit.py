"""Cross-fitted decision rules: every validation item is decided by a rule tuned without it."""

from __future__ import annotations

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.evaluation.crossfit import cross_fit_halves, cross_fitted_decisions
from tailtune.metrics import decode


def _binary(n=80, seed=0):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    z = (rng.normal(size=n) + 3.0 * y - 3.0)[:, None]  # the positives sit around 0: 0.5 misses half of them
    return TaskSpec(kind="binary", labels=["no", "yes"]), z, y


def test_halves_cover_every_item_once_and_keep_the_classes():
    task, _, y = _binary()
    a, b = cross_fit_halves(y, task, seed=0)
    assert sorted(np.concatenate([a, b]).tolist()) == list(range(len(y))) and not set(a) & set(b)
    assert abs(y[a].mean() - y[b].mean()) < 0.05


def test_each_half_is_decided_by_the_rule_tuned_on_the_other(monkeypatch):
    import tailtune.evaluation.crossfit as cf

    task, z, y = _binary()
    seen = []
    real = cf.tune_decision_rule

    def spy(logits, targets, task, **kw):
        seen.append(len(logits))
        return real(logits, targets, task, **kw)

    monkeypatch.setattr(cf, "tune_decision_rule", spy)
    pred = cross_fitted_decisions(z, y, task, bootstrap=10)
    a, b = cross_fit_halves(y, task, seed=0)
    assert sorted(seen) == sorted([len(a), len(b)]) and pred.shape == y.shape


def test_cross_fitting_finds_a_real_shift_and_beats_the_default_rule():
    from tailtune.fit.decide import macro_f1

    task, z, y = _binary(400)
    default = macro_f1(task, y, decode(z, task))
    crossed = macro_f1(task, y, cross_fitted_decisions(z, y, task, bootstrap=20))
    assert crossed > default + 0.05


def test_too_few_items_per_class_fall_back_to_the_default_rule():
    task = TaskSpec(kind="multiclass", labels=["a", "b", "c", "d"])
    z = np.eye(4)
    assert np.array_equal(cross_fitted_decisions(z, np.arange(4), task), decode(z, task))
    with pytest.raises(ValueError, match="at least 4"):
        cross_fitted_decisions(z[:3], np.arange(3), task)
