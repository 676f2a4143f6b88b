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
