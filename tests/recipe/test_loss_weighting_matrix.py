"""Every registered loss x every task kind x class weighting: the recipe is refused at validation time
with a RecipeError naming the field, or it resolves, builds and trains one step.

The rule under test is which loss arguments the recipe's ``weighting`` fills: only those the loss
registry declares as per-class weight vectors (``LossSpec.class_weight_params``). Tversky's
``alpha``/``beta`` are false-positive/false-negative scalars; before the fix a multiclass Tversky
recipe with class weights had its ``alpha`` replaced by the class-weight vector and failed to build.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest
import torch
from torch import nn

from tailtune.data import TaskSpec
from tailtune.data.kinds import TASK_KINDS
from tailtune.errors import RecipeError
from tailtune.losses import available
from tailtune.losses.registry import spec as loss_spec
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.build import build_loss
from tailtune.recipe.counts import ClassCounts
from tailtune.recipe.loss_args import AUXILIARY_LOSSES, CLASS_WEIGHT_PARAMS
from tailtune.recipe.resolve import resolve
from tailtune.recipe.validation import validate_against_task
from tailtune.training.trainer import TrainModule

TASKS = {
    "binary": TaskSpec("binary", ["ham", "spam"]),
    "multiclass": TaskSpec("multiclass", ["a", "b", "c"]),
    "multilabel": TaskSpec("multilabel", ["p", "c1", "c2"], hierarchy={"c1": "p", "c2": "p"}),
    "aspects": TaskSpec("aspects", ["food", "service"], polarities=["positive", "negative"]),
}
#: encoded training labels of each task, every class present and imbalanced
LABELS = {
    "binary": np.array([0, 0, 0, 0, 0, 0, 1, 1]),
    "multiclass": np.array([0, 0, 0, 0, 0, 1, 1, 2]),
    "multilabel": np.array([[1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 0, 0], [1, 1, 0], [0, 0, 0], [1, 0, 0], [0, 0, 0]],
                           dtype=np.float32),
    "aspects": np.array([[0, 2], [0, 2], [1, 2], [0, 0], [2, 2], [0, 1], [2, 2], [0, 2]]),
}
WEIGHTINGS = [
    {"scheme": "uniform"},
    {"scheme": "inverse"},
    *({"scheme": "inverse", "apply_to": target} for target in CLASS_WEIGHT_PARAMS),
    {"scheme": "inverse", "apply_to": "none"},
]
CASES = [(name, kind, i) for name in available(aliases=False) for kind in TASK_KINDS for i in range(len(WEIGHTINGS))]


class TinyClassifier(nn.Module):
    """Stands in for the encoder + head: logits and embeddings from float features."""

    def __init__(self, num_outputs: int):
        super().__init__()
        self.head = nn.Linear(5, num_outputs)
        self.proj = nn.Linear(5, 4)

    def forward(self, input_ids, attention_mask=None, token_type_ids=None):
        return {"logits": self.head(input_ids), "embeddings": self.proj(input_ids)}


def _recipe(name: str, kind: str, weighting: dict) -> dict:
    loss = {name: {}}
    if name in AUXILIARY_LOSSES:  # a part that scores no classes trains next to one that does
        loss = {name: {"weight": 0.5}, "ce": {}}
    return {"task": {"kind": kind}, "loss": loss, "weighting": dict(weighting)}


def _validated(raw: dict, task: TaskSpec):
    recipe = recipe_from_dict(raw)
    validate_against_task(recipe, task)
    return recipe


def _one_step(resolved, task: TaskSpec, labels: np.ndarray) -> None:
    torch.manual_seed(0)
    info = task.kind_info
    module = TrainModule(TinyClassifier(info.num_outputs(task)), build_loss(resolved), kind=task.kind,
                         num_aspects=len(task.labels) if info.per_aspect else 0)
    x = torch.randn(len(labels), 5)
    y = torch.as_tensor(labels)
    for items in (None, torch.tensor(float(y.numel()))):
        out = module(x, attention_mask=torch.ones(len(labels), 3, dtype=torch.long), labels=y,
                     num_items_in_batch=items)
        assert torch.isfinite(out["loss"]), out["parts"]
        out["loss"].backward()
    grads = [p.grad for p in module.classifier.head.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("name, kind, w", CASES)
def test_every_loss_resolves_builds_and_steps_or_is_refused(name, kind, w):
    task, labels, weighting = TASKS[kind], LABELS[kind], WEIGHTINGS[w]
    raw = _recipe(name, kind, weighting)
    try:
        recipe = _validated(raw, task)
    except RecipeError as exc:
        assert re.search(r"\b(loss|weighting)\.", str(exc)), str(exc)
        return
    assert name in available(kind=kind), f"{name} is not for {kind} tasks, but validation accepted it"
    resolved = resolve(recipe, task, ClassCounts.from_targets(task, labels))
    spec = loss_spec(name, kind=kind)
    part = resolved.loss[name]
    if part.class_weight_arg is not None:  # weights go only to a declared per-class argument
        assert part.class_weight_arg in spec.class_weight_params
        assert len(part.args[part.class_weight_arg]) == len(task.kind_info.weighted_outputs(task))
    for param, default in part.args.items():  # a scalar argument keeps a scalar value
        if param != part.class_weight_arg and isinstance(default, list):
            assert param in spec.class_weight_params or param in part.data_args, (param, default)
    if resolved.class_weights is not None and weighting.get("apply_to", "auto") == "auto" and spec.class_weight_params:
        if task.kind_info.softmax or "pos_weight" in spec.class_weight_params:
            assert part.class_weight_arg is not None, "auto class weights did not reach a class-weighted loss"
    _one_step(resolved, task, labels)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "aspects"])
@pytest.mark.parametrize("loss", [{"tversky": {}}, {"tversky": {"alpha": 0.7, "beta": 0.3}}, {"dice": {}}])
def test_tversky_and_dice_keep_their_scalars_under_class_weights(kind, loss):
    """The reported bug: class weights must not replace Tversky's alpha (an FP weight), and the
    recipe's own alpha is not double weighting; the record says the part trains unweighted."""
    task, labels = TASKS[kind], LABELS[kind]
    raw = {"task": {"kind": kind}, "loss": loss, "weighting": {"scheme": "inverse"}}
    resolved = resolve(_validated(raw, task), task, ClassCounts.from_targets(task, labels))
    (name, part), = resolved.loss.items()
    assert part.class_weight_arg is None
    if name == "tversky":
        assert part.args["alpha"] == loss["tversky"].get("alpha", 0.5)
        assert part.args["beta"] == loss["tversky"].get("beta", 0.5)
    assert resolved.class_weights is not None
    assert any(f"loss part {name!r}" in note and "unweighted" in note for note in resolved.notes)
    _one_step(resolved, task, labels)


@pytest.mark.parametrize("apply_to", ["alpha", "weight"])
def test_explicit_apply_to_on_tversky_is_refused_at_validation(apply_to):
    raw = {"task": {"kind": "multiclass"}, "loss": {"tversky": {}},
           "weighting": {"scheme": "inverse", "apply_to": apply_to}}
    with pytest.raises(RecipeError, match=rf"weighting\.apply_to: '{apply_to}' but loss part 'tversky'.*Fix:"):
        _validated(raw, TASKS["multiclass"])


def test_sigmoid_alpha_share_goes_to_alpha_only():
    """A sigmoid ``alpha`` is the positive share pos_weight / (1 + pos_weight): BCE's per-label ``weight``
    is not an alpha, so ``apply_to: alpha`` with plain BCE is refused instead of filling ``weight``."""
    raw = {"task": {"kind": "multilabel"}, "loss": {"ce": {}}, "weighting": {"scheme": "inverse", "apply_to": "alpha"}}
    with pytest.raises(RecipeError, match=r"loss part 'ce' \(ce\).*takes class weights as pos_weight or weight"):
        _validated(raw, TASKS["multilabel"])
    raw["loss"] = {"focal": {}}
    task, labels = TASKS["multilabel"], LABELS["multilabel"]
    resolved = resolve(_validated(raw, task), task, ClassCounts.from_targets(task, labels))
    assert resolved.loss["focal"].class_weight_arg == "alpha"
    assert all(0 < a < 1 for a in resolved.loss["focal"].args["alpha"])


def test_registry_declares_only_real_parameters():
    for name in available(aliases=False):
        spec = loss_spec(name)
        params = inspect.signature(spec.factory).parameters
        assert set(spec.class_weight_params) <= set(params), name


def test_lint_agrees_with_the_registry_on_non_class_weight_alpha():
    """The lint keeps a torch-free copy of 'whose alpha is not a class weight'; it must match."""
    from tailtune.diagnostics import lint

    registry_view = {n for n in available(aliases=False)
                     if "alpha" in inspect.signature(loss_spec(n).factory).parameters
                     and "alpha" not in loss_spec(n).class_weight_params}
    assert registry_view == set(lint._ALPHA_NOT_CLASS_WEIGHT) - {"dice"}
