import math

import pytest

from tailtune.diagnostics import lint_recipe

COUNTS = {"plot": 880, "character": 300, "setting": 120, "theme": 40}  # 22:1
MILD = {"pos": 500, "neg": 100, "neutral": 80}                           # 6.25:1


def rules(findings):
    return sorted(f.rule for f in findings)


def one(findings, rule):
    hits = [f for f in findings if f.rule == rule]
    assert len(hits) == 1, [str(f) for f in findings]
    return hits[0]


def clean(**over):
    base = {"task": {"kind": "multiclass"}, "loss": {"ce": {}}, "optim": {"lr": 3e-5}, "train": {"batch_size": 32}}
    base.update(over)
    return base


def test_clean_recipe_has_no_findings():
    assert lint_recipe(clean(), class_counts=COUNTS) == []
    assert lint_recipe(clean(loss={"focal": {"gamma": 1.0}}, weighting={"scheme": "sqrt_inverse", "cap": 5.0}),
                       class_counts=COUNTS) == []


@pytest.mark.parametrize(
    "recipe, mechanisms",
    [
        (clean(loss={"focal": {"gamma": 1.0}}, weighting={"scheme": "inverse"}, sampler="class_balanced"),
         ["weighting.scheme inverse (as alpha)", "sampler: class_balanced"]),
        (clean(loss={"focal": {"gamma": 1.0, "alpha": [0.2, 1, 2, 5]}}, weighting={"scheme": "inverse"}),
         ["weighting.scheme inverse (as alpha)", "loss.focal.alpha"]),
        (clean(loss={"ce": {"weight": [1, 2, 3, 4]}}, sampler="class_balanced"),
         ["loss.ce.weight", "sampler: class_balanced"]),
        (clean(loss={"focal": {"gamma": 1.0, "alpha": [1, 1, 2, 3]}}, weighting={"scheme": "inverse", "apply_to": "weight"},
               sampler="class_balanced"),
         ["weighting.scheme inverse (as weight)", "loss.focal.alpha", "sampler: class_balanced"]),
    ],
)
def test_double_weighting(recipe, mechanisms):
    f = one(lint_recipe(recipe, class_counts=COUNTS), "double_weighting")
    assert f.severity == "error"
    assert f.figures["mechanisms"] == mechanisms
    assert "keep one owner of class weights" in f.action


def test_double_weighting_cites_the_combined_factor():
    recipe = clean(loss={"focal": {"gamma": 1.0}}, weighting={"scheme": "inverse", "normalize": False}, sampler="class_balanced")
    f = one(lint_recipe(recipe, class_counts=COUNTS), "double_weighting")
    assert f.figures["sampling_ratio"] == 22.0 and f.figures["weight_ratio"] == 22.0
    assert "484x in all instead of about 22.0x" in f.verdict


def test_part_weight_number_is_not_a_class_weight():
    recipe = clean(loss={"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3}}, weighting={"scheme": "sqrt_inverse"})
    assert "double_weighting" not in rules(lint_recipe(recipe, class_counts=COUNTS))


def test_contrastive_part_is_not_double_weighted():
    recipe = clean(loss={"supcon": {"weight": 1.0}}, sampler="class_balanced", weighting={"scheme": "inverse"})
    assert "double_weighting" not in rules(lint_recipe(recipe))


def test_gamma_two_with_weights_on_mild_imbalance_cites_ratio():
    recipe = clean(loss={"focal": {"gamma": 2.0}}, weighting={"scheme": "inverse"}, optim={"lr": 3e-5})
    f = one(lint_recipe(recipe, class_counts=MILD), "gamma_weights_mild")
    assert f.severity == "warning" and f.figures["imbalance_ratio"] == 6.25
    assert "only 6.2x the smallest (neutral)" in f.verdict
    # a strong imbalance (22:1) justifies both
    assert "gamma_weights_mild" not in rules(lint_recipe(recipe, class_counts=COUNTS))
    # without counts the check cannot cite a ratio, so it stays quiet
    assert "gamma_weights_mild" not in rules(lint_recipe(recipe))


def test_gamma_schedule_is_checked_at_its_largest_value():
    recipe = clean(loss={"focal": {"gamma": {"schedule": "linear", "start": 3.0, "end": 1.0}}}, weighting={"scheme": "inverse"})
    assert one(lint_recipe(recipe, class_counts=MILD), "gamma_weights_mild").figures["gamma"] == 3.0


def test_focal_with_default_ce_learning_rate():
    f = one(lint_recipe(clean(loss={"focal": {"gamma": 2.0}}, optim={"lr": 5e-5})), "focal_lr_unchanged")
    assert f.severity == "warning" and f.figures["easy_loss_factor"] == pytest.approx(0.01)
    assert "0.01x its cross-entropy loss" in f.verdict and "try 0.0001 and 2.5e-05" in f.action


def test_focal_lr_compared_with_a_ce_baseline():
    recipe = clean(loss={"focal": {"gamma": 1.0}}, optim={"lr": 3e-5})
    assert "focal_lr_unchanged" not in rules(lint_recipe(recipe))
    f = one(lint_recipe(recipe, baseline=clean(optim={"lr": 3e-5})), "focal_lr_unchanged")
    assert "baseline" in f.verdict and f.figures["reference_lr"] == 3e-5


def test_smaller_batch_without_accumulation_cites_rare_share():
    f = one(lint_recipe(clean(train={"batch_size": 8}), class_counts=COUNTS), "small_batch_no_accum")
    assert f.figures["rarest"] == "theme" and f.figures["rarest_share"] == pytest.approx(40 / 1340, abs=1e-4)
    assert f.figures["p_batch_without_rarest"] == pytest.approx((1 - 40 / 1340) ** 8, abs=1e-3)
    assert "train.grad_accum: 4 (effective 32)" in f.action
    assert "small_batch_no_accum" not in rules(lint_recipe(clean(train={"batch_size": 8, "grad_accum": 4})))


def test_smaller_batch_than_baseline():
    base = clean(train={"batch_size": 64, "grad_accum": 1})
    f = one(lint_recipe(clean(train={"batch_size": 32}), baseline=base), "small_batch_no_accum")
    assert "baseline's effective batch of 64" in f.verdict


def test_weights_over_fifty_times():
    counts = {"a": 10000, "b": 500, "c": 50}
    f = one(lint_recipe(clean(weighting={"scheme": "inverse"}), class_counts=counts), "weights_over_50x")
    assert f.figures["class"] == "c" and f.figures["ratio"] == 200.0
    assert "200x" in f.verdict and "weighting.cap" in f.action
    assert "weights_over_50x" not in rules(lint_recipe(clean(weighting={"scheme": "inverse", "cap": 10.0}), class_counts=counts))


def test_explicit_alpha_over_fifty_times():
    f = one(lint_recipe(clean(loss={"focal": {"gamma": 1.0, "alpha": [0.01, 1.0, 2.0]}})), "weights_over_50x")
    assert f.figures["ratio"] == 200.0 and f.figures["param"] == "alpha"


def test_multilabel_pos_weight_over_fifty():
    recipe = clean(task={"kind": "multilabel"}, weighting={"scheme": "inverse"})
    f = one(lint_recipe(recipe, class_counts={"earn": 2000, "wheat": 30}, num_examples=6000), "weights_over_50x")
    assert f.figures["class"] == "wheat" and f.figures["ratio"] == pytest.approx(199.0)


@pytest.mark.parametrize("gamma", [-0.5, {"schedule": "linear", "start": 1.0, "end": -1.0}])
def test_reversed_focal_is_a_warning_with_the_formula_the_loss_computes(gamma):
    f = one(lint_recipe(clean(loss={"focal": {"gamma": gamma}})), "reversed_focal")
    g = f.figures["gamma"]
    # gamma < 0 (focus on easy examples) is the remedy for noisy labels: a legitimate choice, not an error
    assert f.severity == "warning" and g < 0
    assert "p_t^|gamma|" in f.verdict and "(1 - p_t)^gamma" not in f.verdict and "noisy labels" in f.verdict
    # the figures are p_t^|gamma| (what losses/focal.py computes), not (1 - p_t)^gamma (3.2x for gamma -0.5)
    assert f.figures["easy_factor"] == pytest.approx(0.9 ** abs(g), abs=1e-4)
    assert f.figures["hard_factor"] == pytest.approx(0.1 ** abs(g), abs=1e-4)
    assert f.figures["easy_over_hard"] == pytest.approx(9 ** abs(g), abs=0.01)
    assert f"easy examples count {9 ** abs(g):.1f}x as much as hard ones" in f.verdict
    assert "3.2x" not in f.verdict and "gamma >= 0" in f.action


@pytest.mark.parametrize("gamma", [-1.0, -0.5, 0.0, 0.5, 2.0])
def test_focal_factor_is_the_losss_own_ratio_to_cross_entropy(gamma):
    import torch
    import torch.nn.functional as F

    from tailtune.diagnostics.loss_scale import focal_factor
    from tailtune.losses.focal import softmax_focal_loss

    p = 0.8
    logits = torch.tensor([[math.log(p), math.log(1 - p)]], dtype=torch.float64)
    target = torch.tensor([0])
    ratio = float(softmax_focal_loss(logits, target, gamma=gamma) / F.cross_entropy(logits, target))
    assert focal_factor(p, gamma) == pytest.approx(ratio, rel=1e-9)
    assert focal_factor(p, gamma) == pytest.approx((1 - p) ** gamma if gamma >= 0 else p ** -gamma, rel=1e-9)


def test_label_smoothing_with_confidence_weighting():
    recipe = clean(task={"kind": "multiclass", "labels": ["a", "b", "c", "d"]}, loss={"ce": {"label_smoothing": 0.1}},
                   sample_weighting={"confidence": True})
    f = one(lint_recipe(recipe), "smoothing_with_confidence")
    assert f.figures["max_target"] == pytest.approx(0.925)
    assert "0.925 with 4 classes" in f.verdict
    assert "smoothing_with_confidence" not in rules(lint_recipe(clean(loss={"ce": {"label_smoothing": 0.1}})))


def test_errors_come_first_and_bad_input_type():
    findings = lint_recipe(clean(loss={"focal": {"gamma": 2.0}}, optim={"lr": 5e-5}, train={"batch_size": 8},
                                 weighting={"scheme": "inverse"}, sampler="class_balanced"))
    assert findings[0].severity == "error" and findings[0].rule == "double_weighting"
    with pytest.raises(TypeError, match="recipe must be a Recipe or a mapping"):
        lint_recipe(42)


def test_lint_accepts_a_validated_recipe():
    recipe_mod = pytest.importorskip("tailtune.recipe")
    rec = recipe_mod.Recipe.model_validate(
        {"task": {"kind": "multiclass"}, "loss": {"focal": {"gamma": 2.0}}, "weighting": {"scheme": "inverse"},
         "sampler": "class_balanced"})
    assert {"double_weighting", "focal_lr_unchanged"} <= set(rules(lint_recipe(rec, class_counts=COUNTS)))


def test_class_counts_from_data(tmp_path):
    pytest.importorskip("tailtune.data")
    from tailtune.diagnostics import class_counts_from_data

    (tmp_path / "train.csv").write_text("text,labels\n" + "".join(f"text {i},{'a' if i % 5 else 'b'}\n" for i in range(50)))
    (tmp_path / "validation.csv").write_text("text,labels\nx,a\ny,b\n")
    counts, n = class_counts_from_data({"data": {"path": str(tmp_path)}})
    assert n == 50 and counts == {"a": 40.0, "b": 10.0}


def test_class_counts_read_the_data_as_training_does(tmp_path):
    """The recipe's data options (empty_text: drop, label_sep) apply when lint counts classes."""
    pytest.importorskip("tailtune.data")
    import json

    from tailtune.diagnostics import class_counts_from_data

    rows = [{"text": f"text {i}", "labels": "a|b" if i % 4 == 0 else "a"} for i in range(20)]
    rows.append({"text": "  ", "labels": "a"})  # an empty text
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "validation.jsonl").write_text('{"text": "x", "labels": "a"}\n{"text": "y", "labels": "a|b"}\n')
    recipe = {"task": {"kind": "multilabel"}, "data": {"path": str(tmp_path), "empty_text": "drop", "label_sep": "|"}}
    counts, n = class_counts_from_data(recipe)
    assert n == 20 and counts == {"a": 20.0, "b": 5.0}


def test_rebalancing_loss_plus_class_weights_is_double():
    recipe = clean(loss={"logit_adjusted": {"tau": 1.0}}, weighting={"scheme": "inverse"})
    f = one(lint_recipe(recipe), "double_weighting")
    assert "logit_adjusted rebalances by class counts itself" in f.verdict
    assert "double_weighting" not in rules(lint_recipe(clean(loss={"logit_adjusted": {"tau": 1.0}})))


def test_tversky_alpha_is_not_a_class_weight():
    recipe = clean(loss={"tversky": {"alpha": 0.3, "beta": 0.7}}, sampler="class_balanced")
    assert "double_weighting" not in rules(lint_recipe(recipe))


def test_confidence_inside_a_loss_part_with_smoothing():
    recipe = clean(loss={"sentiment_focal": {"gamma": 1.0, "label_smoothing": 0.1, "confidence": True}}, optim={"lr": 3e-5})
    f = one(lint_recipe(recipe), "smoothing_with_confidence")
    assert "loss.sentiment_focal.confidence" in f.verdict


# ------------------------------------------------------------------- reversed alpha, accumulation
def test_softmax_alpha_heavier_on_the_majority_is_reversed():
    recipe = clean(loss={"focal": {"gamma": 1.0, "alpha": [2.0, 1.0, 0.8, 0.5]}})
    f = one(lint_recipe(recipe, class_counts=COUNTS), "reversed_focal")
    assert f.severity == "warning" and f.figures["largest"] == "plot" and f.figures["rarest"] == "theme"
    assert f.figures["ratio"] == 4.0
    assert "largest class plot (880 examples) weight 2 and the rarest theme (40 examples) 0.5 (4x)" in f.verdict
    # the same list the right way round, or without counts to compare it with, is fine
    assert "reversed_focal" not in rules(lint_recipe(clean(loss={"focal": {"gamma": 1.0, "alpha": [0.5, 0.8, 1.0, 2.0]}}),
                                                     class_counts=COUNTS))
    assert "reversed_focal" not in rules(lint_recipe(recipe))


def test_sigmoid_alpha_under_half_on_rare_positives_is_reversed():
    recipe = clean(task={"kind": "binary"}, loss={"focal": {"gamma": 2.0, "alpha": 0.25}})
    f = one(lint_recipe(recipe, class_counts={"ham": 870, "spam": 130}), "reversed_focal")
    assert f.severity == "warning" and f.figures["class"] == "spam" and f.figures["down_weight"] == 3.0
    assert "spam: 130 of 1000, 13.0%" in f.verdict and "down-weighted 3x" in f.verdict
    assert "loss.focal.alpha: 0.75" in f.action
    assert "reversed_focal" not in rules(lint_recipe(clean(task={"kind": "binary"}, loss={"focal": {"alpha": 0.75}}),
                                                     class_counts={"ham": 870, "spam": 130}))
    # multilabel: every label whose positives are the minority; needs the training size
    ml = clean(task={"kind": "multilabel"}, loss={"focal": {"gamma": 1.0, "alpha": 0.25}})
    f = one(lint_recipe(ml, class_counts={"earn": 2000, "wheat": 30}, num_examples=6000), "reversed_focal")
    assert f.figures["class"] == "wheat" and f.figures["labels"] == ["earn", "wheat"] and "on 2 labels" in f.verdict
    assert "reversed_focal" not in rules(lint_recipe(ml, class_counts={"earn": 2000, "wheat": 30}))


def test_accumulation_that_does_not_make_up_for_a_smaller_batch():
    base = clean(train={"batch_size": 64, "grad_accum": 1})
    f = one(lint_recipe(clean(train={"batch_size": 16, "grad_accum": 2}), baseline=base), "small_batch_no_accum")
    assert f.figures["effective_batch"] == 32 and "with train.grad_accum = 2 (effective batch 32)" in f.verdict
    assert "train.grad_accum: 4 (effective 64)" in f.action
    assert "small_batch_no_accum" not in rules(lint_recipe(clean(train={"batch_size": 16, "grad_accum": 4}), baseline=base))


def test_small_batch_share_of_a_multilabel_label_is_of_the_rows():
    recipe = clean(task={"kind": "multilabel"}, train={"batch_size": 8})
    f = one(lint_recipe(recipe, class_counts={"earn": 2000, "wheat": 30}, num_examples=6000), "small_batch_no_accum")
    assert f.figures["rarest"] == "wheat" and f.figures["rarest_share"] == pytest.approx(30 / 6000)


def test_double_weighting_cites_the_data_without_a_sampler_too():
    recipe = clean(loss={"logit_adjusted": {"tau": 1.0}}, weighting={"scheme": "inverse", "normalize": False})
    f = one(lint_recipe(recipe, class_counts=COUNTS), "double_weighting")
    assert f.figures["weight_ratio"] == 22.0 and f.figures["imbalance_ratio"] == 22.0
    assert "give theme 22.0x the weight of plot (the data is 22.0:1)" in f.verdict
    # an explicit weight list plus the sampler: the combined factor from the list
    recipe = clean(loss={"ce": {"weight": [1, 2, 4, 5]}}, sampler="class_balanced")
    f = one(lint_recipe(recipe, class_counts=COUNTS), "double_weighting")
    assert f.figures["weight_ratio"] == 5.0 and f.figures["combined"] == 110.0
    assert "110x in all instead of about 22.0x" in f.verdict


def test_focal_checks_use_the_losses_own_default_gamma():
    """A part without ``gamma`` is checked at its loss's default (resolved from the signature):
    focal 2.0, but sentiment_focal 0.1 (the lint used to assume 2.0 for every focal part)."""
    weights = {"scheme": "inverse"}
    focal = one(lint_recipe(clean(loss={"focal": {}}, weighting=weights), class_counts=MILD), "gamma_weights_mild")
    assert focal.figures["gamma"] == 2.0
    assert "gamma_weights_mild" not in rules(lint_recipe(clean(loss={"sentiment_focal": {}}, weighting=weights),
                                                         class_counts=MILD))
    lr = one(lint_recipe(clean(loss={"sentiment_focal": {}}, optim={"lr": 5e-5})), "focal_lr_unchanged")
    assert lr.figures["gamma"] == pytest.approx(0.1)
