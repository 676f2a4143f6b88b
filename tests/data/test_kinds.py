"""The task kind as an object: one instance per kind, the rules that depend on it answered once."""

from __future__ import annotations

import pytest

from tailtune.data import KINDS, TASK_KINDS, TaskSpec, task_kind
from tailtune.data.kinds import MULTILABEL, known_task_kind
from tailtune.errors import DataError


def test_each_kind_answers_its_questions():
    rows = {k: (v.outputs, v.target, v.decode, v.auto_class_weight) for k, v in TASK_KINDS.items()}
    assert rows == {
        "binary": ("sigmoid", "index", "threshold", "pos_weight"),
        "multiclass": ("softmax", "index", "argmax", "alpha"),
        "multilabel": ("sigmoid", "multi_hot", "threshold", "pos_weight"),
        "aspects": ("softmax", "index_per_aspect", "argmax_per_aspect", "alpha"),
    }
    assert KINDS == tuple(TASK_KINDS) == ("binary", "multiclass", "multilabel", "aspects")
    assert [k for k in KINDS if task_kind(k).sigmoid] == ["binary", "multilabel"]
    assert [k for k in KINDS if task_kind(k).single_label] == ["binary", "multiclass"]
    assert task_kind("multilabel").target_dtype == "float32" and task_kind("aspects").target_dtype == "int64"


def test_outputs_and_weight_classes_follow_the_task():
    binary = TaskSpec("binary", ["ham", "spam"])
    aspects = TaskSpec("aspects", ["food", "staff"], polarities=["positive", "negative"])
    assert binary.kind_info is task_kind("binary") is task_kind(binary) is task_kind(binary.to_dict())
    assert (binary.num_outputs, aspects.num_outputs) == (1, 6)
    assert binary.kind_info.weight_classes(binary) == ["ham", "spam"]
    assert binary.kind_info.weighted_outputs(binary) == ["spam"]  # one pos_weight for the positive class
    assert aspects.kind_info.weight_classes(aspects) == ["positive", "negative", "absent"]
    three = TaskSpec("multiclass", ["a", "b", "c"])
    assert [t.kind_info.target_classes(t) for t in (binary, three, aspects)] == [2, 3, 3]


def test_unknown_kind_names_the_choices():
    with pytest.raises(DataError, match=r"'multi-label' is not one of .*did you mean 'multilabel'"):
        task_kind("multi-label")
    with pytest.raises(DataError, match="None is not one of"):
        task_kind({"labels": ["a"]})  # a task dict without its kind


def test_known_task_kind_is_none_for_missing_or_unknown_kinds():
    assert known_task_kind("multilabel") is MULTILABEL
    assert known_task_kind(TaskSpec("multilabel", ["a", "b"])) is MULTILABEL
    assert known_task_kind(None) is None
    assert known_task_kind("regression") is None
