import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tailtune.diagnostics import Finding
from tailtune.errors import RunDirError
from tailtune.reports import compare_values, paired_bootstrap, postmortem, recipe_changes, write_postmortem


# ----------------------------------------------------------------------------- statistics
def test_welch_interval_matches_scipy():
    from scipy import stats

    a, b = [0.62, 0.64, 0.61, 0.63], [0.58, 0.60, 0.57]
    c = compare_values(a, b)
    res = stats.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert c.low == pytest.approx(ci.low) and c.high == pytest.approx(ci.high)
    assert c.verdict == "better" and "Welch" in c.method


@pytest.mark.parametrize(
    "a, b, verdict",
    [([0.60, 0.61, 0.62], [0.66, 0.67, 0.65], "worse"),
     ([0.60, 0.66, 0.63], [0.61, 0.64, 0.62], "not distinguishable"),
     ([0.70], [0.60], "not distinguishable")],
)
def test_verdicts(a, b, verdict):
    c = compare_values(a, b)
    assert c.verdict == verdict
    if c.low is not None and c.verdict != "not distinguishable":
        assert (c.low > 0) == (verdict == "better") and (c.high < 0) == (verdict == "worse")


def test_never_better_when_interval_crosses_zero():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a = rng.normal(0.6, 0.02, size=rng.integers(1, 6))
        b = rng.normal(0.6, 0.02, size=rng.integers(1, 6))
        c = compare_values(a, b)
        if c.verdict == "better":
            assert c.low > 0
        if c.low is not None and c.low <= 0 <= c.high:
            assert c.verdict == "not distinguishable"


def test_one_side_with_seeds_uses_its_variance():
    c = compare_values([0.70], [0.60, 0.61, 0.59])
    assert "3-seed side's variance" in c.method and c.verdict == "better"


def test_paired_bootstrap_on_identical_predictions_is_zero():
    y = np.arange(100) % 2
    c = paired_bootstrap(lambda i: float(np.mean(y[i])), lambda i: float(np.mean(y[i])), 100, samples=200)
    assert c.delta == 0 and c.low == 0 and c.high == 0 and c.verdict == "not distinguishable"


def test_compare_values_validation():
    with pytest.raises(ValueError, match="at least one value per side"):
        compare_values([], [0.5])
    with pytest.raises(ValueError, match="confidence"):
        compare_values([0.5], [0.5], confidence=1.5)


# ------------------------------------------------------------------------------ post-mortem
def test_postmortem_with_seeds(runs):
    text = postmortem(runs["focal"], runs["ce"])
    for head in ("# Post-mortem", "## Verdict", "## Metrics", "## Recipe changes", "## Epochs (candidate",
                 "## Epochs (baseline", "## Probable causes", "## Next steps"):
        assert head in text
    assert "**better**" in text and "Welch t-interval, 3 vs 3 seeds" in text
    # the table: accuracy, macro-F1, recall of each minority class, gap
    for row in ("| accuracy |", "| macro-F1 |", "| recall theme |", "| recall setting |", "| recall character |",
                "| train-val gap (best epoch) |"):
        assert row in text
    assert "| recall plot |" not in text  # the majority class is not a minority
    ev = [json.loads((r / "eval.json").read_text())["test"]["macro_f1"] for r in runs["focal"]]
    assert f"{np.mean(ev):.3f} ± {np.std(ev, ddof=1):.3f}" in text
    # recipe changes and lint of the candidate (against the CE baseline)
    assert "| `loss.focal.gamma` | – | `1.0` |" in text and "| `loss.ce` | `{}` | – |" in text
    assert "| `train.seed`" not in text
    # trend labels in the epoch table
    assert "| growing |" in text or "| normal |" in text


def test_postmortem_worse_and_single_seed(runs):
    text = postmortem(runs["ce"], runs["focal"])
    assert "**worse**" in text
    assert "revert the recipe changes one at a time" in text
    single = postmortem(runs["focal"][:1], runs["ce"][:1])
    assert "paired bootstrap over 500 test examples" in single and "seed variance is not included" in single


def test_postmortem_not_distinguishable_asks_for_seeds(runs):
    text = postmortem(runs["focal"][:1], runs["focal"][1:2])
    # different seeds -> different test targets, so no paired bootstrap: one run per side
    assert "**not distinguishable**" in text and "one run per side" in text
    assert "run at least 3 seeds per side (now 1)" in text


def test_postmortem_causes_from_rules_and_lint(runs, tmp_path):
    run = tmp_path / "bad"
    shutil.copytree(runs["focal"][0], run)
    rows = [json.loads(x) for x in (run / "history.jsonl").read_text().splitlines()]
    for i, r in enumerate(rows):
        r["gap"]["macro_f1"] = 0.05 + 0.04 * i  # 0.25 at epoch 6: "severe"
        r["train"]["macro_f1"] = r["validation"]["macro_f1"] + r["gap"]["macro_f1"]
    (run / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    import yaml

    recipe = yaml.safe_load((run / "recipe.yaml").read_text())
    recipe["sampler"] = "class_balanced"
    (run / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    text = postmortem([run], runs["ce"][:1])
    # "severe" gap (stop earlier) next to "the best epoch is the last" (train longer): one reconciled cause
    causes = text.split("## Probable causes")[1].split("## Next steps")[0]
    assert "**reconciled** (warning): conflicting advice on train.epochs: train_val_gap moves train.epochs down: severe" in causes
    assert "**recipe: double_weighting** (error)" in text
    assert "set sampler: none" in text.split("## Next steps")[1]


def test_write_postmortem_and_errors(runs, tmp_path):
    out = write_postmortem(runs["focal"][:1], runs["ce"][:1], tmp_path / "pm.md")
    assert out.read_text().startswith("# Post-mortem")
    with pytest.raises(RunDirError, match="no such run directory"):
        postmortem([tmp_path / "missing"], runs["ce"][:1])
    with pytest.raises(RunDirError, match="--split train: not in eval.json"):
        postmortem(runs["focal"][:1], runs["ce"][:1], split="train")


def test_recipe_changes():
    a = {"loss": {"focal": {"gamma": 2.0}}, "optim": {"lr": 3e-5}, "train": {"seed": 1}}
    b = {"loss": {"ce": {}}, "optim": {"lr": 5e-5}, "train": {"seed": 2}}
    assert recipe_changes(a, b) == [("loss.ce", {}, None), ("loss.focal.gamma", None, 2.0), ("optim.lr", 5e-5, 3e-5)]


def test_causes_shared_by_seeds_are_listed_once_with_their_count(runs):
    from tailtune.reports.postmortem import _dedupe

    def drop(v, t):
        return Finding("val_test_drop", "warning", {}, f"validation macro_f1 {v} -> test {t}: over-used", "enlarge it")

    merged = _dedupe([[drop("0.870", "0.846")], [drop("0.848", "0.779")], [Finding("best_epoch", "warning", {}, "x")]])
    assert [(f.rule, n) for f, n in merged] == [("val_test_drop", 2), ("best_epoch", 1)]
    text = postmortem(runs["focal"], runs["ce"])
    causes = text.split("## Probable causes")[1].split("## Next steps")[0]
    # every seed's widening gap (stop earlier) meets its last-epoch best (train longer): one reconciled cause
    assert causes.count("**val_test_drop**") <= 1 and causes.count("**reconciled**") == 1
    assert "**reconciled** (warning) (in 3 of 3 seeds; figures of the first): conflicting advice on train.epochs" in causes


# ------------------------------------------------------------------ against a tuned baseline (issue 17)
@pytest.fixture(scope="module")
def tuned_pair(tmp_path_factory):
    from tuned_runs import write_pair

    return write_pair(tmp_path_factory.mktemp("tuned"))


def test_postmortem_against_a_tuned_baseline_names_the_rule_and_the_alternatives(tuned_pair):
    cand, base = tuned_pair
    ev = json.loads((base / "eval.json").read_text())
    assert "test_tuned" in ev and ev["test_tuned"]["macro_f1"] > ev["test"]["macro_f1"] + 0.02
    text = postmortem([cand], [base])
    verdict = text.split("## Verdict")[1].split("## Metrics")[0]
    # the verdict names the rule it rests on, and the default-rule comparison stands next to it
    assert "The verdict rests on **the candidate's default decision rule against the baseline's tuned rule**" in verdict
    assert "(candidate, default rule) vs" in verdict and "(baseline, tuned rule)" in verdict
    assert "With the default rule on both sides the candidate is **better**" in verdict
    # default and tuned rules side by side
    assert "| metric | baseline default | baseline tuned | candidate default | candidate tuned | Δ default rules |" in text
    cand_ev = json.loads((cand / "eval.json").read_text())
    base_ev = json.loads((base / "eval.json").read_text())
    row = next(line for line in text.splitlines() if line.startswith("| macro-F1 |"))
    assert f"| {base_ev['test']['macro_f1']:.3f} | {base_ev['test_tuned']['macro_f1']:.3f} | {cand_ev['test']['macro_f1']:.3f} | n/a |" in row
    # the tuned baseline holds against the candidate: keep it; tune the candidate for a like-for-like comparison
    steps = text.split("## Next steps")[1].split("## Alternatives")[0]
    assert "keep the baseline with its tuned decision rule" in steps and f"`tailtune tune {cand}`" in steps
    alternatives = text.split("## Alternatives")[1].split("## Lessons")[0]
    assert "**Tune the baseline's decision rule** (measured): `tailtune tune` alone moved the baseline" in alternatives
    assert "of what the recipe change bought, without retraining" in alternatives
    lessons = text.split("## Lessons")[1]
    assert "of the apparent gain was a shift of decision boundaries" in lessons
    assert "Loss values are not headroom: focal loss multiplies each example's cross-entropy" in lessons
    assert "One run per side" in lessons


def test_tuned_bootstrap_reproduces_eval_json(tuned_pair):
    """The paired bootstrap's full-sample delta equals the eval.json figures of the rules it compares."""
    from tailtune.diagnostics import load_run
    from tailtune.reports.postmortem import _bootstrap

    cand, base = load_run(tuned_pair[0]), load_run(tuned_pair[1])
    c = _bootstrap(cand, base, "test", ("default", "tuned"))
    assert c.delta == pytest.approx(cand.eval["test"]["macro_f1"] - base.eval["test_tuned"]["macro_f1"], abs=1e-9)
    d = _bootstrap(cand, base, "test")
    assert d.delta == pytest.approx(cand.eval["test"]["macro_f1"] - base.eval["test"]["macro_f1"], abs=1e-9)


def _copy_pair(pair, tmp_path):
    return [Path(shutil.copytree(r, tmp_path / r.name)) for r in pair]


def test_both_sides_tuned_compares_tuned_rules(tuned_pair, tmp_path):
    from tailtune.evaluation.runs import tune_run

    cand, base = _copy_pair(tuned_pair, tmp_path)
    tune_run(cand, bootstrap=0)
    text = postmortem([cand], [base])
    assert "The verdict rests on **each side's tuned decision rule**" in text
    assert "tune the candidate too" not in text


def test_untuned_baseline_is_tuned_before_adopting(tuned_pair, tmp_path):
    from tuned_runs import untune

    cand, base = _copy_pair(tuned_pair, tmp_path)
    untune(base)
    text = postmortem([cand], [base])
    assert "The verdict rests on **the default decision rule of both sides**" in text
    assert "neither side has a tuned rule" in text
    assert f"tune the baseline before adopting (`tailtune tune {base}`" in text
    assert "| metric | baseline | candidate | delta (points) | 95% interval |" in text  # no tuned columns


def test_validation_split_keeps_the_verdict_on_default_rules(tuned_pair):
    text = postmortem([tuned_pair[0]], [tuned_pair[1]], split="validation")
    assert "The verdict rests on **the default decision rule of both sides**" in text
    assert "a tuned rule is in-sample on the validation split" in text and "baseline tuned (in-sample)" in text


def test_loss_values_are_not_compared_across_losses(tuned_pair):
    text = postmortem([tuned_pair[0]], [tuned_pair[1]])
    section = text.split("## Loss values")[1].split("## Epochs")[0]
    assert "The runs' losses differ (loss: focal(gamma=2) vs ce; class weights: inverse (apply_to alpha) vs none)" in section
    assert "below cross-entropy by construction" in section and "(gamma 2, p_t = 0.9: 0.01x)" in section
    # each loss is read against its own start in the epoch tables
    assert "| 1 | " in text and "(100%)" in text and "each loss as a share of its own epoch 1" in text


def test_check_comparable_refuses_loss_values_of_different_losses():
    from tailtune.reports.compare import check_comparable

    check_comparable("macro_f1", {"loss": {"focal": {}}}, {"loss": {"ce": {}}})
    check_comparable("val_loss", {"loss": {"ce": {}}}, {"loss": {"ce": {}}})  # same loss: comparable
    with pytest.raises(ValueError, match=r"val_loss: loss values of different losses are not comparable \(loss: focal"):
        check_comparable("val_loss", {"loss": {"focal": {"gamma": 1.0}}}, {"loss": {"ce": {}}})
    with pytest.raises(ValueError, match="class weights: inverse vs none"):
        check_comparable("loss", {"loss": {"ce": {}}, "weighting": {"scheme": "inverse"}}, {"loss": {"ce": {}}})


def test_a_reverted_tuning_is_reported_as_temperature_only():
    from tailtune.diagnostics.rundata import run_from_history
    from tailtune.reports.postmortem import Side

    hist = [{"epoch": 1, "train": {"loss": 1.0}, "validation": {"macro_f1": 0.5}}]
    ev = {"test": {"macro_f1": 0.6, "accuracy": 0.7}, "test_tuned": {"macro_f1": 0.6, "accuracy": 0.7}}
    reverted = run_from_history(hist, eval=ev, postprocess={"temperature": 0.56, "biases": [0.0, 0.0, -0.0]})
    assert Side("candidate", [reverted], "test").rule_parts() == "temperature only: tuning kept the default decisions"
    moved = run_from_history(hist, eval=ev, postprocess={"temperature": 0.8, "biases": [0.0, 0.9, -0.3]})
    assert Side("baseline", [moved], "test").rule_parts() == "biases + temperature"
    thr = run_from_history(hist, eval=ev, postprocess={"thresholds": [0.5, 0.3]})
    assert Side("baseline", [thr], "test").rule_parts() == "thresholds"


# ----------------------------------------------------------------------------- a baseline of another task
def test_a_baseline_of_another_task_is_refused_by_postmortem_report_and_diagnose(runs, tmp_path):
    """Before: `postmortem ASPECTS --baseline BINARY` wrote a verdict ("not distinguishable", -75 points)."""
    from tailtune.diagnostics import load_run
    from tailtune.diagnostics.baseline import compare_with_baseline
    from tailtune.reports import write_report

    with pytest.raises(RunDirError, match=r"bin: a task of kind 'binary' .* is a task of kind 'multiclass'"):
        postmortem(runs["focal"], [runs["binary"]])
    with pytest.raises(RunDirError, match=r"report --baseline compares runs of one task"):
        write_report(runs["multilabel"], runs["focal"][0], out=tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()
    with pytest.raises(RunDirError, match=r"diagnose --baseline compares runs of one task"):
        compare_with_baseline(load_run(runs["aspects"]), load_run(runs["binary"]))
    relabelled = shutil.copytree(runs["focal"][1], tmp_path / "relabelled")
    task = json.loads((relabelled / "task.json").read_text())
    task["labels"] = list(reversed(task["labels"]))  # same kind, another class order
    (relabelled / "task.json").write_text(json.dumps(task))
    with pytest.raises(RunDirError, match=r"its labels differ"):
        postmortem(runs["focal"][:1], [relabelled])
    assert "# Post-mortem" in postmortem(runs["focal"], runs["ce"])  # one task: still fine
