"""Diagnostics, post-mortem and report on run directories written by the real trainer (tiny encoder)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))  # tiny_runs helpers


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, tiny_encoder_dir):
    tiny_runs = pytest.importorskip("tiny_runs")
    training = pytest.importorskip("tailtune.training")
    from tailtune.recipe import recipe_from_dict

    root = tmp_path_factory.mktemp("real")
    out = {}
    kind = "multiclass"  # aspects/multilabel run dirs: the synthetic fixtures of conftest.py (training is slow here)
    data = tiny_runs.write_tiny_data(root / f"data-{kind}", kind)
    for name, extra in (("ce", {}), ("weighted", {"weighting": {"scheme": "inverse"}})):
        recipe = tiny_runs.tiny_recipe(kind, data, tiny_encoder_dir, root / f"{kind}-{name}", **extra)
        training.train(recipe_from_dict(recipe))
        out[f"{kind}-{name}"] = root / f"{kind}-{name}"
    return out


@pytest.mark.slow
def test_report_and_postmortem_on_real_runs(real_runs):
    from tailtune.diagnostics import load_run, run_rules
    from tailtune.reports import postmortem, write_report

    for name, run_dir in real_runs.items():
        run = load_run(run_dir)
        assert run.kind == "multiclass" and len(run.history) == 2
        run_rules(run, min_severity="ok")  # every rule copes with the real schema
        html = write_report(run_dir).read_text(encoding="utf-8")
        for sid in ("summary", "diagnostics", "distribution", "training", "per-class", "confusion", "pr-curves",
                    "reliability", "thresholds", "recipe"):
            assert f'<section id="{sid}">' in html, (name, sid)
        assert "No predictions/*.npz" not in html, name
        assert 'alt="confusion matrix"' in html
    text = postmortem([real_runs["multiclass-weighted"]], [real_runs["multiclass-ce"]])
    assert "## Verdict" in text and "| `weighting.scheme` | `'uniform'` | `'inverse'` |" in text
    weighted = load_run(real_runs["multiclass-weighted"])
    assert weighted.class_weights is not None and len(weighted.class_weights) == 3


@pytest.mark.slow
def test_postmortem_against_a_tuned_real_baseline(real_runs, tmp_path):
    """The path of docs/diagnostics.md's real example in CI: train, `tailtune tune` the baseline, post-mortem."""
    import shutil

    from tailtune.evaluation.runs import tune_run
    from tailtune.reports import postmortem

    base = shutil.copytree(real_runs["multiclass-ce"], tmp_path / "ce")
    summary = tune_run(base, bootstrap=0)
    assert summary["test_tuned"] is not None
    text = postmortem([real_runs["multiclass-weighted"]], [base])
    verdict = text.split("## Verdict")[1].split("## Metrics")[0]
    assert "The verdict rests on **the candidate's default decision rule against the baseline's tuned rule**" in verdict
    assert "| metric | baseline default | baseline tuned | candidate default | candidate tuned |" in text
    for head in ("## Loss values", "## Next steps", "## Alternatives", "## Lessons"):
        assert head in text
    assert text.index("## Alternatives") < text.index("## Lessons")
    assert "class weights: inverse vs none" in text.split("## Loss values")[1]
