from __future__ import annotations

import pytest

from tailtune.data import TaskSpec
from tailtune.data.task import hierarchy_cycle, order_polarities
from tailtune.errors import DataError


def test_num_outputs_per_kind():
    assert TaskSpec(kind="binary", labels=["ham", "spam"]).num_outputs == 1
    assert TaskSpec(kind="multiclass", labels=list("abcd")).num_outputs == 4
    assert TaskSpec(kind="multilabel", labels=list("abc")).num_outputs == 3
    spec = TaskSpec(kind="aspects", labels=["food", "service"], polarities=["positive", "negative", "neutral"])
    assert spec.num_outputs == 8
    assert spec.aspect_classes == ["positive", "negative", "neutral", "absent"]
    assert spec.aspect_classes.index("absent") == len(spec.polarities)


def test_round_trip_dict_and_json(tmp_path):
    spec = TaskSpec(kind="multilabel", labels=["a", "b", "c"], hierarchy={"b": "a", "c": "b"}, text_column="body")
    assert TaskSpec.from_dict(spec.to_dict()) == spec
    path = spec.to_json(tmp_path / "task.json")
    assert TaskSpec.from_json(path) == spec


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kind="multiclas", labels=["a", "b"]), "did you mean 'multiclass'"),
        (dict(kind="binary", labels=["a", "b", "c"]), "exactly 2 labels"),
        (dict(kind="multiclass", labels=["a", "a"]), "duplicates"),
        (dict(kind="multiclass", labels=[]), "must not be empty"),
        (dict(kind="aspects", labels=["food"]), "needs polarities"),
        (dict(kind="aspects", labels=["food"], polarities=["positive", "absent"]), "must not contain 'absent'"),
        (dict(kind="multiclass", labels=["a", "b"], polarities=["x"]), "aspects' only"),
        (dict(kind="multiclass", labels=["a", "b"], hierarchy={"a": "b"}), "'multilabel' only"),
        (dict(kind="multilabel", labels=["a", "b"], hierarchy={"a": "zz"}), "not a label"),
        (dict(kind="multilabel", labels=["a", "b", "c"], hierarchy={"a": "b", "b": "c", "c": "a"}), "cycle"),
        (dict(kind="multilabel", labels=["a", "b"], hierarchy={"a": "a"}), "itself"),
    ],
)
def test_invalid_specs_raise(kwargs, match):
    with pytest.raises(DataError, match=match):
        TaskSpec(**kwargs)


def test_from_dict_rejects_unknown_field():
    with pytest.raises(DataError, match="did you mean 'labels'"):
        TaskSpec.from_dict({"kind": "binary", "labels": ["a", "b"], "lables": 1})


def test_hierarchy_cycle_detection():
    assert hierarchy_cycle({"b": "a", "c": "b"}) is None
    cycle = hierarchy_cycle({"x": "y", "y": "z", "z": "x", "w": "x"})
    assert cycle is not None and cycle[0] == cycle[-1] and set(cycle) == {"x", "y", "z"}


def test_order_polarities():
    assert order_polarities({"neutral", "absent", "negative", "positive", "mixed"}) == [
        "positive", "negative", "neutral", "mixed",
    ]


# ----------------------------------------------------------------------------- label groups
def test_groups_are_checked_and_round_trip(tmp_path):
    spec = TaskSpec("multilabel", ["violence", "hate", "spam"], groups={"primary": ["violence", "hate"], "rest": ["spam"]})
    assert spec.group_indices() == {"primary": [0, 1], "rest": [2]}
    assert TaskSpec.from_json(spec.to_json(tmp_path / "task.json")) == spec
    assert TaskSpec("multiclass", ["a", "b"]).to_dict()["groups"] is None
    assert TaskSpec.from_dict({"kind": "multiclass", "labels": ["a", "b"]}).groups is None  # an older task.json
    aspects = TaskSpec("aspects", ["food", "menu"], polarities=["positive"], groups={"g": ["menu"]})
    assert aspects.with_groups(None).groups is None and aspects.with_groups({"h": ["food"]}).groups == {"h": ["food"]}


@pytest.mark.parametrize(("kind", "labels", "groups", "match"), [
    ("multilabel", ["violence", "hate"], {"primary": ["violnce"]}, r"group 'primary' names 'violnce', which is not a label \(did you mean 'violence'\?\)"),
    ("aspects", ["food", "menu"], {"g": ["drinks"]}, "which is not a aspect"),
    ("binary", ["ham", "spam"], {"g": ["spam"]}, "not binary"),
    ("multiclass", ["a", "b"], {"g": []}, "must list at least one label"),
    ("multiclass", ["a", "b"], {"g": ["a", "a"]}, r"lists \['a'\] twice"),
    ("multiclass", ["a", "b"], {"p@x": ["a"]}, "hold no '@'"),
    ("multiclass", ["a", "b"], {"g": "a"}, "must list at least one label"),
])
def test_bad_groups_are_refused(kind, labels, groups, match):
    polarities = ["positive"] if kind == "aspects" else []
    with pytest.raises(DataError, match=match):
        TaskSpec(kind, labels, polarities=polarities, groups=groups)
