"""``task.groups`` and ``early_stopping.metric: <metric>@<group>`` in a recipe: the schema, the check
against the data's labels, and the loaded task that carries the groups (``recipe.data``)."""

from __future__ import annotations

import json

import pytest

from tailtune.data import TaskSpec
from tailtune.errors import RecipeError
from tailtune.recipe import recipe_from_dict
from tailtune.recipe.data import load_recipe_data
from tailtune.recipe.validation import validate_against_task
from tailtune.training.callbacks import metric_greater_is_better

GROUPS = {"primary": ["a", "b"], "secondary": ["c"]}


def test_groups_and_a_group_stop_metric_validate():
    r = recipe_from_dict({"task": {"groups": GROUPS}, "early_stopping": {"metric": "macro_f1@primary"}})
    assert r.task.groups == GROUPS and r.early_stopping.greater_is_better
    assert metric_greater_is_better("macro_f1@primary") and metric_greater_is_better("micro_f1@loss")
    assert not metric_greater_is_better("loss")


@pytest.mark.parametrize(("data", "match"), [
    ({"early_stopping": {"metric": "macro_f1@primary"}}, "watches group 'primary', but task.groups declares none"),
    ({"task": {"groups": GROUPS}, "early_stopping": {"metric": "macro_f1@primery"}},
     r"declares primary, secondary \(did you mean 'primary'\?\)"),
    ({"early_stopping": {"metric": "accuracy@primary"}}, r"not allowed.*macro_f1@<group>"),
    ({"task": {"kind": "binary", "groups": {"g": ["spam"]}}}, "not binary"),
    ({"task": {"labels": ["a", "b", "c"], "groups": {"g": ["a", "d"]}}}, "group 'g' names 'd', which is not a label"),
    ({"task": {"groups": {"g@h": ["a"]}}}, "hold no '@'"),
])
def test_recipe_refusals(data, match):
    with pytest.raises(RecipeError, match=match):
        recipe_from_dict(data)


def test_members_are_checked_against_the_data():
    recipe = recipe_from_dict({"task": {"groups": {"primary": ["violence", "hat"]}}})
    with pytest.raises(RecipeError, match=r"task.groups: group 'primary' names 'hat'.*did you mean 'hate'.*Fix:"):
        validate_against_task(recipe, TaskSpec("multilabel", ["violence", "hate"]))
    validate_against_task(recipe_from_dict({"task": {"groups": {"p": ["violence"]}}}),
                          TaskSpec("multilabel", ["violence", "hate"]))


def test_the_loaded_task_carries_the_groups(tmp_path):
    rows = [{"text": f"t{i}", "labels": "abc"[i % 3]} for i in range(30)]
    for split in ("train", "validation"):
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    recipe = recipe_from_dict({"task": {"kind": "multiclass", "groups": GROUPS}, "data": {"path": str(tmp_path)}})
    loaded = load_recipe_data(recipe)
    assert loaded.task.groups == GROUPS and loaded.task.to_dict()["groups"] == GROUPS
    bad = recipe_from_dict({"task": {"kind": "multiclass", "groups": {"g": ["a", "z"]}}, "data": {"path": str(tmp_path)}})
    with pytest.raises(RecipeError, match="task.groups: group 'g' names 'z'"):
        load_recipe_data(bad)
    # a trained run's task (task=) keeps its own groups
    run_task = TaskSpec("multiclass", ["a", "b", "c"], groups={"x": ["c"]})
    assert load_recipe_data(recipe, task=run_task).task.groups == {"x": ["c"]}
