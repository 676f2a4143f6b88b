"""Loss values are not headroom (issue 17): which loss values compare, and why not."""

import pytest

from tailtune.diagnostics.baseline import compare_with_baseline
from tailtune.diagnostics.loss_scale import (
    focal_factor,
    is_loss_metric,
    loss_differences,
    loss_signature,
    share_of_start,
    why_not_comparable,
)
from tailtune.diagnostics.rundata import run_from_history


def test_focal_is_below_cross_entropy_for_every_example():
    import torch
    import torch.nn.functional as F

    from tailtune.losses.focal import softmax_focal_loss

    logits = torch.randn(500, 4, dtype=torch.float64) * 3
    target = torch.randint(0, 4, (500,))
    ce = F.cross_entropy(logits, target, reduction="none")
    for gamma in (0.5, 1.0, 2.0):
        assert torch.all(softmax_focal_loss(logits, target, gamma=gamma, reduction="none") <= ce + 1e-12)
    assert focal_factor(0.9, 2.0) == pytest.approx(0.01)


def test_signature_and_differences():
    focal = {"loss": {"focal": {"weight": 0.7, "gamma": 1.0}, "supcon": {"weight": 0.3, "temperature": 0.1}},
             "weighting": {"scheme": "effective_number", "cap": 3.0}}
    assert loss_signature(focal) == "focal(gamma=1) x0.7 + supcon(temperature=0.1) x0.3"
    assert loss_differences(focal, {"loss": {"ce": {}}}) == [
        "loss: focal(gamma=1) x0.7 + supcon(temperature=0.1) x0.3 vs ce",
        "class weights: effective_number (cap 3.0) vs none"]
    assert loss_differences(focal, focal) == []
    # seed, lr, epochs do not change the loss's scale
    assert loss_differences({**focal, "optim": {"lr": 1e-4}}, {**focal, "optim": {"lr": 5e-5}}) == []
    assert loss_differences({"loss": "ce"}, {"loss": {"ce": {}}}) == []
    assert loss_differences(None, focal) and why_not_comparable(focal, focal) is None


def test_why_quotes_the_focal_factor_the_code_computes():
    why = why_not_comparable({"loss": {"focal": {"gamma": 2.0}}}, {"loss": {"ce": {}}})
    assert "below cross-entropy by construction" in why and "(gamma 2, p_t = 0.9: 0.01x)" in why
    assert "not more room to improve" in why and "against its own start" in why
    smooth = why_not_comparable({"loss": {"ce": {"label_smoothing": 0.1}}}, {"loss": {"ce": {}}})
    assert "label smoothing puts a floor under the loss" in smooth


@pytest.mark.parametrize("name, loss", [("loss", True), ("val_loss", True), ("loss_parts.focal", True),
                                        ("macro_f1", False), ("recall theme", False), ("accuracy", False)])
def test_is_loss_metric(name, loss):
    assert is_loss_metric(name) is loss


def test_share_of_start():
    assert share_of_start([0.5, 0.25, None]) == [1.0, 0.5, None]
    assert share_of_start([None, None]) == [None, None]


def test_baseline_comparison_reads_each_loss_against_its_own_start():
    def hist(losses, f1):
        return [{"epoch": i + 1, "train": {"loss": x}, "validation": {"macro_f1": y}, "best": i == len(losses) - 1}
                for i, (x, y) in enumerate(zip(losses, f1))]

    run = run_from_history(hist([0.40, 0.20, 0.10], [0.50, 0.58, 0.60]), recipe={"loss": {"focal": {"gamma": 2.0}}})
    base = run_from_history(hist([1.10, 0.80, 0.60], [0.52, 0.60, 0.63]), recipe={"loss": {"ce": {}}})
    metrics, scale = compare_with_baseline(run, base)
    assert metrics.rule == "baseline_metrics" and "default rule 0.600 vs 0.630 (-3.0 points)" in metrics.verdict
    assert "tailtune postmortem" in metrics.action
    # focal ends far below CE (0.10 vs 0.60) and yet the run is worse: the raw values are never set side by side
    assert scale.rule == "loss_scale" and "run 0.400 -> 0.100 (25% of its epoch 1)" in scale.verdict
    assert "baseline 1.100 -> 0.600 (55% of its epoch 1)" in scale.verdict
    same = run_from_history(hist([1.0, 0.8, 0.6], [0.5, 0.55, 0.6]), recipe={"loss": {"ce": {}}})
    assert [f.rule for f in compare_with_baseline(same, base)] == ["baseline_metrics"]
