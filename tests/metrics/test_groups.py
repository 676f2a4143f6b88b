"""Label-group metrics (``TaskSpec.groups``): each group's macro/micro scores against scikit-learn on the
group's labels, hierarchy violations per group, aspect groups, the ``<metric>@<group>`` names."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import f1_score, precision_score, recall_score

from tailtune.data import TaskSpec
from tailtune.metrics import classification_report, group_scores

RNG = np.random.default_rng(0)


def test_multiclass_groups_are_sklearn_on_the_group_labels():
    task = TaskSpec("multiclass", ["a", "b", "c", "d"], groups={"rare": ["c", "d"], "all": ["a", "b", "c", "d"]})
    yt, yp = RNG.integers(0, 4, 200), RNG.integers(0, 4, 200)
    r = classification_report(yt, yp, task)
    rare = r["groups"]["rare"]
    assert rare["members"] == ["c", "d"]
    assert rare["macro_f1"] == pytest.approx(f1_score(yt, yp, labels=[2, 3], average="macro"))
    assert rare["macro_precision"] == pytest.approx(precision_score(yt, yp, labels=[2, 3], average="macro"))
    assert rare["macro_recall"] == pytest.approx(recall_score(yt, yp, labels=[2, 3], average="macro"))
    assert rare["micro_f1"] == pytest.approx(f1_score(yt, yp, labels=[2, 3], average="micro"))
    assert rare["support"] == int(np.isin(yt, [2, 3]).sum())
    assert r["groups"]["all"]["macro_f1"] == pytest.approx(r["macro_f1"])  # the whole label set is the headline
    assert r["macro_f1@rare"] == rare["macro_f1"] and r["micro_f1@all"] == pytest.approx(r["micro_f1"])


def test_multilabel_groups_and_hierarchy_violations_of_their_members():
    task = TaskSpec("multilabel", ["violence", "praise", "hate", "spam"], hierarchy={"praise": "violence"},
                    groups={"primary": ["violence", "hate"], "secondary": ["praise", "spam"]})
    yt = (RNG.random((300, 4)) < 0.3).astype(int)
    yp = (RNG.random((300, 4)) < 0.3).astype(int)
    r = classification_report(yt, yp, task)
    sec = r["groups"]["secondary"]
    assert sec["macro_f1"] == pytest.approx(f1_score(yt, yp, labels=[1, 3], average="macro", zero_division=0))
    assert sec["micro_f1"] == pytest.approx(f1_score(yt[:, [1, 3]], yp[:, [1, 3]], average="micro"))
    assert sec["support"] == int(yt[:, [1, 3]].sum())
    violations = int(((yp[:, 1] == 1) & (yp[:, 0] == 0)).sum())
    assert sec["hierarchy_violations"] == {"total": violations, "samples": violations} == {
        "total": r["hierarchy_violations"]["total"], "samples": r["hierarchy_violations"]["samples"]}
    assert r["groups"]["primary"]["hierarchy_violations"] == {"total": 0, "samples": 0}  # no child among them


def test_aspect_groups_average_their_aspects():
    task = TaskSpec("aspects", ["food", "service", "price"], polarities=["positive", "negative"],
                    groups={"core": ["food", "service"]})
    yt, yp = RNG.integers(0, 3, (120, 3)), RNG.integers(0, 3, (120, 3))
    r = classification_report(yt, yp, task)
    core, pa = r["groups"]["core"], r["per_aspect"]
    for key in ("macro_precision", "macro_recall", "macro_f1", "detection_f1"):
        assert core[key] == pytest.approx((pa["food"][key] + pa["service"][key]) / 2)
    t, p = yt[:, :2].ravel(), yp[:, :2].ravel()
    assert core["micro_f1"] == pytest.approx(f1_score(t, p, labels=[0, 1], average="micro"))
    assert core["support"] == pa["food"]["support"] + pa["service"]["support"]


def test_per_aspect_entries_carry_precision_and_recall():
    task = TaskSpec("aspects", ["food"], polarities=["positive", "negative", "neutral"])
    yt, yp = RNG.integers(0, 4, (80, 1)), RNG.integers(0, 4, (80, 1))
    food = classification_report(yt, yp, task)["per_aspect"]["food"]
    assert food["macro_precision"] == pytest.approx(precision_score(yt[:, 0], yp[:, 0], labels=[0, 1, 2], average="macro"))
    assert food["macro_recall"] == pytest.approx(recall_score(yt[:, 0], yp[:, 0], labels=[0, 1, 2], average="macro"))


def test_no_groups_no_keys_and_the_names():
    task = TaskSpec("multiclass", ["a", "b"])
    r = classification_report(np.array([0, 1]), np.array([0, 0]), task)
    assert "groups" not in r and not any("@" in k for k in r)
    assert group_scores({"g": {"macro_f1": 0.5, "micro_f1": None, "support": 3}}) == {"macro_f1@g": 0.5}
