"""The rules module: which candidates and shared settings each kind of data gets, and that every
candidate is a valid, lint-clean recipe."""

from __future__ import annotations

import pytest

from tailtune.data import TaskSpec
from tailtune.fit.candidates import BASELINE, DataFeatures, ModelInfo, candidate_rules, shared_settings

MINILM = ModelInfo(name="sentence-transformers/all-MiniLM-L6-v2", params=22.7e6, hidden=384, layers=6, max_positions=512)
BERT_BASE = ModelInfo(name="bert-base-uncased", params=110e6, hidden=768, layers=12, max_positions=512)


def features(kind="multiclass", **kw) -> DataFeatures:
    base = dict(kind=kind, n_train=4000, n_validation=500, n_classes=4, imbalance=5.0, smallest=300,
                min_positive_rate=0.075, labels_per_text=1.0, hierarchy=False, length_p95=40.0)
    return DataFeatures(**{**base, **kw})


def names(f) -> list[str]:
    return [c.name for c in candidate_rules(f)]


def test_baseline_always_first_with_a_reason():
    for f in (features(imbalance=1.0), features("binary", n_classes=2), features("multilabel", min_positive_rate=0.3)):
        cands = candidate_rules(f)
        assert cands[0].name == BASELINE and cands[0].preset == "ce" and cands[0].overrides == ()
        assert all(c.reason for c in cands)


def test_balanced_data_gets_only_the_baseline():
    assert names(features(imbalance=1.2)) == [BASELINE]


def test_skewed_multiclass_gets_logit_adjustment_capped_weights_and_mild_focal():
    assert names(features(imbalance=5.0)) == [BASELINE, "logit-adjust", "sqrt-weights", "focal-mild"]


def test_sparse_multilabel_gets_focal_pos_weight_asl_db():
    got = names(features("multilabel", n_classes=90, imbalance=2598.0, min_positive_rate=0.0002, smallest=1))
    assert got[:4] == [BASELINE, "focal-pos-weight", "asl", "db"]
    focal = candidate_rules(features("multilabel", min_positive_rate=0.001))[1]
    assert dict(focal.overrides)["weighting.cap"] == 10.0 and dict(focal.overrides)["loss.focal.gamma"] == 2.0


def test_hierarchy_adds_the_penalty_to_the_first_remedy():
    got = candidate_rules(features("multilabel", min_positive_rate=0.01, hierarchy=True))
    hier = [c for c in got if c.rule == "hierarchy"]
    assert len(hier) == 1 and hier[0].name == "focal-pos-weight+hierarchy"
    assert ("loss.hierarchy", {"weight": 0.1}) in hier[0].overrides


def test_aspects_get_absent_aware_candidates():
    got = names(features("aspects", n_classes=8, imbalance=20.0, absent_share=0.7))
    assert "focal-balanced" in got and "logit-adjust" in got


@pytest.mark.parametrize(("model", "lr"), [(MINILM, 1e-4), (BERT_BASE, 3e-5)])
def test_learning_rate_follows_the_encoder_size(model, lr):
    shared = {s.path: s.value for s in shared_settings(features(), model, device="cpu", bf16=False)}
    assert shared["optim.lr"] == lr


def test_epochs_max_length_and_device_settings():
    small = {s.path: s for s in shared_settings(features(n_train=800, length_p95=300), MINILM, device="cpu", bf16=False)}
    assert small["train.epochs"].value == 8 and small["data.max_length"].value == 256
    capped = {s.path: s.value for s in shared_settings(features(n_train=800), MINILM, device="cuda", bf16=True,
                                                       max_epochs=2)}
    assert capped["train.epochs"] == 2 and capped["train.precision"] == "bf16" and capped["train.length_chunks"] == 1


def _task(kind):
    if kind == "aspects":
        return TaskSpec(kind="aspects", labels=["food", "service"], polarities=["positive", "negative"])
    if kind == "binary":
        return TaskSpec(kind="binary", labels=["ham", "spam"])
    if kind == "multilabel":
        return TaskSpec(kind="multilabel", labels=["a", "b", "c"], hierarchy={"c": "a"})
    return TaskSpec(kind="multiclass", labels=["a", "b", "c"])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "aspects"])
def test_every_candidate_is_a_valid_lint_clean_recipe(kind, tmp_path):
    from tailtune.fit.recipes import candidate_recipe, lint_candidate
    from tailtune.recipe import check_losses, recipe_from_dict

    task = _task(kind)
    f = features(kind, n_classes=len(task.labels), imbalance=50.0, min_positive_rate=0.01, hierarchy=kind == "multilabel",
                 absent_share=0.6)
    counts = {lab: 10.0 * (i + 1) for i, lab in enumerate(task.aspect_classes if kind == "aspects" else task.labels)}
    for cand in candidate_rules(f):
        template = candidate_recipe(cand, shared_settings(f, MINILM, device="cpu", bf16=False), task, tmp_path)
        check_losses(recipe_from_dict(template), kind=kind, task=task)
        errors = [x for x in lint_candidate(template, counts, 1000, task=task) if x["severity"] == "error"]
        assert errors == [], (cand.name, errors)
