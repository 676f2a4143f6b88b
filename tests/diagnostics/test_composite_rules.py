"""The practitioners' composite-loss cases (issue 17): parts judged against each other and their own start."""

import pytest
from histories import contrastive_dominates, early_saturation, healthy, healthy_composites, rows

from tailtune.diagnostics import run_from_history, run_rules

FOCAL_SUPCON = {"loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3}}, "optim": {"lr": 3e-5}}
CE_SUPCON = {"loss": {"ce": {"weight": 0.5}, "supcon": {"weight": 0.5}}, "optim": {"lr": 3e-5}}


def _fired(history, rule, recipe):
    return [f for f in run_rules(run_from_history(history, recipe=recipe), min_severity="ok") if f.rule == rule]


def test_flat_classifier_next_to_falling_contrastive_part_is_flagged():
    # focal 0.65 -> 0.60 still falls 2%/epoch (the old fixed threshold called it "falling: ok")
    (f,) = _fired(contrastive_dominates(), "composite_loss", FOCAL_SUPCON)
    assert f.severity == "warning"
    assert "classifier has stopped learning while the contrastive part dominates" in f.verdict
    assert "focal 0.650 -> 0.600 (shed 8% of its start" in f.verdict and "supcon 0.640 -> 0.350 (shed 45%" in f.verdict
    # the fix moves weight back, by an amount computed from the recipe's weights (half the contrastive weight)
    assert "move weight back to the classification part: loss.supcon.weight 0.3 -> 0.15, loss.focal.weight 0.7 -> 0.85" in f.action
    assert [(k.name, k.direction) for k in f.knobs] == [("loss.focal.weight", "up"), ("loss.supcon.weight", "down")]
    assert f.figures["focal_rel_slope"] / f.figures["supcon_rel_slope"] < f.figures["lag_ratio"]


def test_lag_advice_scales_with_the_recipes_weights():
    recipe = {"loss": {"focal": {"weight": 2.0}, "supcon": {"weight": 2.0}}}
    (f,) = _fired(contrastive_dominates(), "composite_loss", recipe)
    assert "loss.supcon.weight 2 -> 1, loss.focal.weight 2 -> 3 (the sum stays 4)" in f.action


def test_lag_under_uncertainty_balance_says_to_fix_the_balance():
    recipe = {**FOCAL_SUPCON, "loss_balance": "uncertainty"}
    (f,) = _fired(contrastive_dominates(), "composite_loss", recipe)
    assert f.action.startswith("loss_balance: uncertainty let the learned balance drift to supcon")


def test_early_saturation_of_the_classification_part_is_flagged():
    found = run_rules(run_from_history(early_saturation(), recipe=CE_SUPCON), min_severity="warning")
    (f,) = [f for f in found if f.rule == "loss_saturated"]
    assert f.figures["part"] == "ce" and f.figures["last"] == pytest.approx(0.076)
    assert "saturated early: 0.900 -> 0.076 at epoch 8 (8% of its start)" in f.verdict
    assert "supcon is at 0.550 (79% of its own start)" in f.verdict
    assert "has not improved for 3 epochs" in f.verdict
    assert "early_stopping.patience 2" in f.action and "label smoothing 0.1 on loss.ce" in f.action
    # the old fixed constants missed it: 0.076 > 0.05 and 0.076 > 5% of 0.90
    assert f.figures["last"] > 0.05 and f.figures["last_over_first"] > 0.05


def test_single_loss_at_its_floor_with_stalled_validation():
    h = rows(train_loss=[0.6, 0.3, 0.15, 0.08, 0.06, 0.05], val_f1=[0.50, 0.60, 0.64, 0.641, 0.64, 0.642])
    (f,) = [f for f in run_rules(run_from_history(h, recipe={"loss": {"ce": {}}}), reconcile=False)
            if f.rule == "loss_saturated"]
    assert "at its floor" in f.verdict and "memorised" in f.verdict and "label smoothing 0.1 on loss.ce" in f.action
    # the best epoch is the last one by 0.001 ("raise train.epochs"): reconciled with "stop earlier", and the
    # early-stopping metric, which has stalled, decides for stopping
    (merged,) = run_rules(run_from_history(h, recipe={"loss": {"ce": {}}}))
    assert merged.rule == "reconciled" and merged.figures["knobs"] == ["train.epochs"]
    assert "has gained next to nothing over the last 3 epochs" in merged.action and "stop earlier" in merged.action


@pytest.mark.parametrize("name", list(healthy_composites()))
def test_healthy_composite_histories_stay_silent(name):
    h = healthy_composites()[name]
    recipe = CE_SUPCON if "ce" in h[0]["train"]["loss_parts"] else FOCAL_SUPCON
    assert run_rules(run_from_history(h, recipe=recipe)) == []


def test_healthy_single_loss_history_stays_silent():
    h = rows(train_loss=[0.9, 0.6, 0.45, 0.36, 0.3, 0.26], val_loss=[0.8, 0.65, 0.58, 0.55, 0.54, 0.535],
             train_f1=[0.5, 0.6, 0.66, 0.7, 0.72, 0.735], val_f1=[0.49, 0.585, 0.645, 0.68, 0.70, 0.71])
    assert run_rules(run_from_history(h, recipe={"loss": {"ce": {}}})) == []


def test_the_two_composite_rules_do_not_both_fire():
    for h in (contrastive_dominates(), early_saturation(), healthy()):
        rules = {f.rule for f in run_rules(run_from_history(h, recipe=FOCAL_SUPCON))}
        assert not {"composite_loss", "loss_saturated"} <= rules
