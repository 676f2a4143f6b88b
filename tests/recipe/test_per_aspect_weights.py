"""``weighting.per_aspect``: per-cell class weights of an aspect task, through the one place
(``recipe.resolve``) into the loss modules (``recipe.build``) and the training step (``TrainModule``'s
``(N * A, P + 1)`` view), with the refusals that name the fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from tailtune.data import TaskSpec
from tailtune.errors import RecipeError
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.build import build_loss
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.resolve import resolve
from tailtune.recipe.validation import validate_against_task
from tailtune.training.trainer import TrainModule
from tailtune.weighting import aspect_class_weights, class_weights

TASK = TaskSpec("aspects", ["food", "service", "price"], polarities=["positive", "negative", "neutral"])
CELLS = [[40, 12, 30, 118], [9, 25, 6, 160], [5, 3, 10, 182]]  # 200 texts


def _labels(cells=CELLS) -> np.ndarray:
    return np.stack([np.repeat(np.arange(4), row) for row in cells], axis=1)


COUNTS = ClassCounts.from_targets(TASK, _labels())


def _resolve(weighting: dict, loss=None, task=TASK, counts=COUNTS):
    return resolve({"loss": loss or {"ce": {}}, "weighting": weighting}, task, counts)


def test_counts_keep_every_cell_and_pool_them_as_before():
    assert COUNTS.cells == tuple(tuple(float(c) for c in row) for row in CELLS)
    assert COUNTS.as_dict() == {"positive": 54.0, "negative": 40.0, "neutral": 46.0, "absent": 460.0}
    assert ClassCounts.from_dict(json.loads(json.dumps(COUNTS.to_dict()))) == COUNTS


def test_per_cell_weights_are_the_scheme_over_the_cells():
    r = _resolve({"scheme": "effective_number", "beta": 0.99, "per_aspect": True, "cap": 10})
    want = aspect_class_weights(CELLS, aspects=TASK.labels, classes=TASK.aspect_classes, scheme="effective_number",
                                beta=0.99, cap=10)
    cw = r.class_weights
    assert cw.per_aspect and cw.aspects == ("food", "service", "price")
    assert np.allclose(cw.values, want.numpy())
    assert cw.per_class["price#negative"] == pytest.approx(float(want[2, 1]))
    assert cw.per_class["price#negative"] > cw.per_class["food#positive"]  # 3 examples vs 40
    record = json.loads(json.dumps(r.to_dict()))
    assert record["class_weights"]["per_cell"]["service"]["negative"] == pytest.approx(float(want[1, 1]))
    assert record["counts"]["per_cell"]["price"] == {"positive": 5.0, "negative": 3.0, "neutral": 10.0, "absent": 182.0}
    assert np.asarray(record["loss"]["ce"]["args"]["weight"]).shape == (3, 4)


def test_the_pooled_default_is_unchanged():
    r = _resolve({"scheme": "inverse"})
    assert not r.class_weights.per_aspect and "per_cell" not in r.to_dict()["class_weights"]
    want = class_weights([54, 40, 46, 460], scheme="inverse", names=TASK.aspect_classes)
    assert r.class_weights.values == pytest.approx(want.tolist())


def test_train_module_gives_each_aspect_its_row():
    """What the Trainer computes (logits (N, A*(P+1)) viewed as (N*A, P+1)) is the per-aspect weighted CE."""
    r = _resolve({"scheme": "inverse", "per_aspect": True, "overrides": {"absent": 1.0}}, loss={"ce": {}})
    table = torch.tensor(r.class_weights.values, dtype=torch.float32)
    y = torch.as_tensor(_labels()[:37])
    logits = torch.randn(37, 3 * 4, generator=torch.Generator().manual_seed(0))

    class Fixed(nn.Module):
        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            return {"logits": logits}

    module = TrainModule(Fixed(), build_loss(r), kind="aspects", num_aspects=3)
    got = module(input_ids=torch.zeros(37, 2, dtype=torch.long), labels=y)["loss"]
    total = denom = 0.0
    for a in range(3):
        z, t = logits[:, 4 * a: 4 * (a + 1)], y[:, a]
        total += F.cross_entropy(z, t, weight=table[a], reduction="sum")
        denom += table[a][t].sum()
    assert torch.allclose(got, total / denom, atol=1e-6)
    # with gradient accumulation (reduction "sum" / num_items_in_batch), the same per-cell weights
    summed = module(input_ids=torch.zeros(37, 2, dtype=torch.long), labels=y, num_items_in_batch=37 * 3)["loss"]
    assert torch.allclose(summed, total / (37 * 3), atol=1e-6)


@pytest.mark.parametrize(("weighting", "loss", "task", "match"), [
    ({"scheme": "inverse", "per_aspect": True}, {"ldam": {}}, TASK,
     r"loss.ldam \(ldam\) takes one class-weight vector.*Fix: set weighting.per_aspect: false.*focal"),
    ({"scheme": "inverse", "per_aspect": True, "overrides": {"servise#negative": 2}}, None, TASK,
     r"weighting.overrides.servise#negative: .*did you mean 'service#negative'"),
    ({"scheme": "inverse", "overrides": {"service#negative": 2}}, None, TASK,
     r"names aspect cells, but the class weights are pooled.*Fix: set weighting.per_aspect: true"),
    ({"scheme": "inverse", "per_aspect": True}, None, TaskSpec("multiclass", ["a", "b"]),
     r"weighting.per_aspect: true weighs aspect x class cells, for aspects tasks; this one is multiclass"),
])
def test_refusals_name_the_fix(weighting, loss, task, match):
    counts = COUNTS if task is TASK else ClassCounts.from_mapping({"a": 5, "b": 3})
    with pytest.raises(RecipeError, match=match):
        _resolve(weighting, loss=loss, task=task, counts=counts)


def test_the_recipe_and_the_data_check_per_aspect_too():
    with pytest.raises(RecipeError, match="weighting.per_aspect weighs aspect x class cells, for kind 'aspects' only"):
        recipe_from_dict({"task": {"kind": "multiclass"}, "weighting": {"per_aspect": True}})
    recipe = recipe_from_dict({"weighting": {"scheme": "inverse", "per_aspect": True, "overrides": {"food": 2.0}}})
    validate_against_task(recipe, TASK)
    with pytest.raises(RecipeError, match="this one is multiclass"):
        validate_against_task(recipe_from_dict({"weighting": {"per_aspect": True}}), TaskSpec("multiclass", ["a", "b"]))


def test_auxiliary_parts_keep_no_weights_and_a_focal_part_gets_the_table():
    r = _resolve({"scheme": "sqrt_inverse", "per_aspect": True},
                 loss={"focal": {"gamma": 1.0}, "supcon": {"weight": 0.2}})
    assert r.loss["focal"].class_weight_arg == "alpha" and r.loss["supcon"].class_weight_arg is None
    built = build_loss(r).losses["focal"].alpha
    assert built.shape == (3, 4) and torch.allclose(built, torch.tensor(r.class_weights.values, dtype=torch.float32))
