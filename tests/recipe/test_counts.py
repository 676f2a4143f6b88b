"""``resolve``'s ``counts`` boundary: bad counts are one RecipeError naming ``counts`` and the fix,
never a raw TypeError/AttributeError/KeyError from deep inside the weighting maths."""

from __future__ import annotations

import os

import pytest

from tailtune.data import TaskSpec
from tailtune.errors import RecipeError
from tailtune.recipe import read_recipe_file
from tailtune.recipe.counts import ClassCounts, as_class_counts
from tailtune.recipe.resolve import resolve, resolve_class_weights
from tailtune.recipe.schema import WeightingSection

MULTILABEL = TaskSpec("multilabel", ["a", "b"])
MULTICLASS = TaskSpec("multiclass", ["a", "b", "c"])
INVERSE = {"loss": {"ce": {}}, "weighting": {"scheme": "inverse"}}


class CountsLike:
    """A duck-typed counts object without ``num_examples`` (what callers wrote before ClassCounts)."""

    names = ("a", "b")
    values = (3.0, 4.0)

    def of(self, names):
        return [3.0, 4.0]


def test_multilabel_weights_without_num_examples_name_the_field():
    counts = ClassCounts.from_mapping({"a": 3, "b": 4})  # no num_examples: the negatives are unknown
    with pytest.raises(RecipeError, match=r"counts\.num_examples is missing: multilabel class weights.*from_targets"):
        resolve(INVERSE, MULTILABEL, counts)
    with pytest.raises(RecipeError, match=r"counts\.num_examples"):
        resolve_class_weights(WeightingSection(scheme="inverse"), MULTILABEL, counts)
    # with it, the same call resolves
    ok = resolve(INVERSE, MULTILABEL, ClassCounts.from_mapping({"a": 3, "b": 4}, num_examples=10))
    assert ok.class_weights.pos_weight == {"a": pytest.approx(7 / 3), "b": pytest.approx(6 / 4)}


def test_count_based_loss_without_num_examples_names_the_part():
    with pytest.raises(RecipeError, match=r"counts\.num_examples is missing: loss\.db \(num_samples\)"):
        resolve({"loss": {"db": {}}}, MULTILABEL, ClassCounts.from_mapping({"a": 3, "b": 4}))


def test_a_counts_object_of_another_type_is_refused():
    with pytest.raises(RecipeError, match=r"counts: expected a ClassCounts or a \{class: count\} mapping, got CountsLike"):
        resolve(INVERSE, MULTILABEL, CountsLike())
    with pytest.raises(RecipeError, match="got list"):
        resolve(INVERSE, MULTICLASS, [1, 2, 3])


def test_a_mapping_is_read_as_counts():
    mapping = resolve(INVERSE, MULTICLASS, {"a": 90, "b": 9, "c": 1})
    counts = resolve(INVERSE, MULTICLASS, ClassCounts.from_mapping({"a": 90, "b": 9, "c": 1}))
    assert mapping.to_dict() == counts.to_dict()


def test_a_class_without_a_count_is_named():
    with pytest.raises(RecipeError, match=r"counts: no count for class\(es\) 'c' of the task \(counts has a, b\)"):
        resolve(INVERSE, MULTICLASS, {"a": 90, "b": 9})


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_bad_count_is_named(value):
    with pytest.raises(RecipeError, match=r"counts\.b = .*finite number >= 0"):
        resolve(INVERSE, MULTICLASS, ClassCounts(("a", "b", "c"), (5.0, value, 1.0), 7))


@pytest.mark.parametrize("n", [-1, 2.5, "10", True])
def test_a_bad_num_examples_is_named(n):
    with pytest.raises(RecipeError, match=r"counts\.num_examples = .*integer >= 0"):
        as_class_counts(ClassCounts(("a", "b"), (1.0, 2.0), n))


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_an_unreadable_recipe_file_is_a_recipe_error(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("loss: ce\n")
    path.chmod(0)
    try:
        with pytest.raises(RecipeError, match=r"recipe\.yaml: cannot read the recipe"):
            read_recipe_file(path)
    finally:
        path.chmod(0o600)
