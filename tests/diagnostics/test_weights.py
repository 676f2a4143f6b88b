"""The class weights diagnostics recompute from recipe.yaml equal the ones training used."""

import numpy as np
import pytest

from tailtune.data import TaskSpec
from tailtune.diagnostics.weights import recipe_class_weights
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.build import build_loss
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve

SCHEMES = ["inverse", "sqrt_inverse", "effective_number"]


def test_training_pos_weight_follows_the_scheme():
    """class-balanced (effective_number) and weighted-ce (inverse) give different pos_weight."""
    task = TaskSpec(kind="multilabel", labels=["earn", "wheat"])
    counts, n = np.array([3000, 10]), 7010
    _, inverse = _training({"scheme": "inverse"}, task, counts, n)
    _, effective = _training({"scheme": "effective_number", "beta": 0.999}, task, counts, n)
    assert inverse[1] == pytest.approx(700.0)
    assert effective[1] == pytest.approx((1 - 0.999**7000) / (1 - 0.999**10), rel=1e-5) and effective[1] < 110


def _training(weighting: dict, task: TaskSpec, counts: np.ndarray, n_train: int) -> tuple[str, list[float]]:
    """(argument, tensor) of the focal loss training builds: the recipe resolved and the loss built."""
    flat = counts.sum(axis=0) if counts.ndim == 2 else counts
    cc = ClassCounts(tuple(task.kind_info.weight_classes(task)), tuple(float(c) for c in flat), n_train)
    resolved = resolve(recipe_from_dict({"loss": {"focal": {}}, "weighting": weighting}), task, cc)
    module = build_loss(resolved).losses["focal"]
    arg = resolved.loss["focal"].class_weight_arg
    return arg, [float(v) for v in getattr(module, arg).tolist()]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("cap", [None, 4.0])
def test_multilabel_pos_weight_matches_training(scheme, cap):
    task = TaskSpec(kind="multilabel", labels=["earn", "acq", "wheat"])
    counts, n = np.array([900, 300, 9]), 1000
    weighting = {"scheme": scheme, "cap": cap}
    arg, expected = _training(weighting, task, counts, n)
    got = recipe_class_weights({"weighting": weighting}, "multilabel", dict(zip(task.labels, counts.tolist())),
                               num_examples=n)
    assert arg == "pos_weight"
    assert [got[k] for k in task.labels] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_binary_pos_weight_matches_training_and_alpha_is_its_share(scheme):
    task = TaskSpec(kind="binary", labels=["ham", "spam"])
    counts = np.array([870, 130])
    _, expected = _training({"scheme": scheme}, task, counts, 1000)
    got = recipe_class_weights({"weighting": {"scheme": scheme}}, "binary", {"ham": 870, "spam": 130})
    assert got == {"spam": pytest.approx(expected[0], rel=1e-5)}
    # apply_to alpha: training passes alpha = pw / (1 + pw); diagnostics keep reporting pw (the weight ratio)
    arg, (alpha,) = _training({"scheme": scheme, "apply_to": "alpha"}, task, counts, 1000)
    assert arg == "alpha" and got["spam"] == pytest.approx(alpha / (1 - alpha), rel=1e-4)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_softmax_class_weights_match_training(scheme):
    task = TaskSpec(kind="multiclass", labels=["plot", "character", "setting", "theme"])
    counts = np.array([880, 300, 120, 40])
    weighting = {"scheme": scheme, "cap": 5.0, "overrides": {"theme": 3.0}}
    _, expected = _training(weighting, task, counts, int(counts.sum()))
    got = recipe_class_weights({"weighting": weighting}, "multiclass", dict(zip(task.labels, counts.tolist())))
    assert [got[k] for k in task.labels] == pytest.approx(expected, rel=1e-5)
    # aspects: one weight per polarity class (absent last), from counts pooled over the aspects
    asp = TaskSpec(kind="aspects", labels=["food", "staff"], polarities=["positive", "negative"])
    per_aspect = np.array([[300, 50, 650], [100, 200, 700]])
    _, expected = _training({"scheme": scheme}, asp, per_aspect, 1000)
    pooled = dict(zip(asp.aspect_classes, per_aspect.sum(axis=0).tolist()))
    got = recipe_class_weights({"weighting": {"scheme": scheme}}, "aspects", pooled)
    assert [got[k] for k in asp.aspect_classes] == pytest.approx(expected, rel=1e-5)
