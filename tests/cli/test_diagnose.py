"""``tailtune lint / diagnose / postmortem / report`` (exit codes, output, files written)."""

import json
import sys
from pathlib import Path

import pytest

from tailtune.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reports"))
from synthetic_run import write_run  # noqa: E402

CLEAN = "task: multiclass\nloss: {focal: {gamma: 1.0}}\noptim: {lr: 3.0e-5}\ntrain: {batch_size: 32}\n"
WARN = "task: multiclass\nloss: {focal: {gamma: 2.0}}\ntrain: {batch_size: 8}\n"
ERROR = "task: multiclass\nloss: {focal: {gamma: 1.0}}\nweighting: {scheme: inverse}\nsampler: class_balanced\noptim: {lr: 3.0e-5}\n"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("cli-runs")
    runs = write_run(root / "focal", skill=1.6), write_run(root / "ce", skill=1.0, seed=13)
    for run in runs:  # the report's prediction plots are tested in tests/reports; keep the CLI tests fast
        shutil.rmtree(run / "predictions")
    return runs


def _recipe(tmp_path, text, name="r.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_lint_clean_exits_0(tmp_path, capsys):
    assert main(["lint", _recipe(tmp_path, CLEAN)]) == 0
    assert "no problems found" in capsys.readouterr().out


def test_lint_warnings_exit_0(tmp_path, capsys):
    assert main(["lint", _recipe(tmp_path, WARN)]) == 0
    out = capsys.readouterr().out
    assert "focal_lr_unchanged" in out and "small_batch_no_accum" in out


def test_lint_errors_exit_1(tmp_path, capsys):
    assert main(["lint", _recipe(tmp_path, ERROR)]) == 1
    cap = capsys.readouterr()
    assert "double_weighting" in cap.out and "1 error-level problem" in cap.err


def test_lint_overrides_and_json(tmp_path, capsys):
    assert main(["lint", _recipe(tmp_path, ERROR), "--set", "sampler=none", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_lint_with_data_cites_counts(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("text,labels\n" + "".join(f"t {i},{'a' if i % 4 else 'b'}\n" for i in range(40)))
    (data / "validation.csv").write_text("text,labels\nx,a\ny,b\n")
    text = f"task: multiclass\ndata: {{path: {data}}}\nloss: {{focal: {{gamma: 2.0}}}}\nweighting: {{scheme: inverse}}\noptim: {{lr: 3.0e-5}}\n"
    assert main(["lint", _recipe(tmp_path, text), "--data", "--json"]) == 0
    found = {f["rule"]: f for f in json.loads(capsys.readouterr().out)}
    assert found["gamma_weights_mild"]["figures"]["imbalance_ratio"] == 3.0


def test_lint_bad_recipe_exits_2(tmp_path, capsys):
    assert main(["lint", _recipe(tmp_path, "optim: {lr: fast}\n")]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert main(["lint", str(tmp_path / "missing.yaml")]) == 2


def test_diagnose(two_runs, capsys):
    assert main(["diagnose", str(two_runs[0]), "--all"]) == 0
    out = capsys.readouterr().out
    assert "best_epoch" in out and "composite_loss" in out
    assert main(["diagnose", str(two_runs[0]), "--json"]) == 0
    assert all(f["severity"] in ("warning", "error") for f in json.loads(capsys.readouterr().out))


def test_postmortem_prints_or_writes(two_runs, tmp_path, capsys):
    run, base = map(str, two_runs)
    assert main(["postmortem", run, "--baseline", base]) == 0
    assert capsys.readouterr().out.startswith("# Post-mortem: focal vs ce")
    out = tmp_path / "pm.md"
    assert main(["postmortem", run, "--baseline", base, "--out", str(out)]) == 0
    assert "## Next steps" in out.read_text()


def test_report(two_runs, tmp_path, capsys):
    run, base = two_runs
    assert main(["report", str(run), "--baseline", str(base), "--out", str(tmp_path / "r.html")]) == 0
    assert "wrote" in capsys.readouterr().out
    assert '<section id="per-class">' in (tmp_path / "r.html").read_text()
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- issue 17
CE_RECIPE = {"task": {"kind": "multiclass"}, "loss": {"ce": {}}, "optim": {"lr": 5.0e-5},
             "train": {"epochs": 6, "batch_size": 32}, "early_stopping": {"metric": "macro_f1", "patience": 3}}


def test_diagnose_with_a_baseline_compares_metrics_not_loss_values(tmp_path, capsys):
    run = write_run(tmp_path / "focal", skill=1.6)
    base = write_run(tmp_path / "ce", skill=1.0, recipe=CE_RECIPE)
    assert main(["diagnose", str(run), "--baseline", str(base)]) == 0
    out = capsys.readouterr().out
    assert f"against the baseline {base}" in out and "baseline_metrics" in out and "loss_scale" in out
    assert "so their values are not compared" in out and "of its epoch 1" in out
    assert main(["diagnose", str(run), "--baseline", str(base), "--json"]) == 0
    found = {f["rule"]: f for f in json.loads(capsys.readouterr().out)}
    assert found["baseline_metrics"]["figures"]["where"] == "test (eval.json)"
    assert found["loss_scale"]["figures"]["differences"][0].startswith("loss: focal(gamma=1) x0.7 + supcon")


def test_lint_run_flags_class_weights_stacked_with_the_runs_tuned_thresholds(tmp_path, capsys):
    recipe = {"task": {"kind": "binary"}, "loss": {"bce": {}}, "weighting": {"scheme": "inverse"}, "optim": {"lr": 3.0e-5}}
    run = write_run(tmp_path / "spam", kind="binary", labels=["ham", "spam"], counts=[900, 100], recipe=recipe)
    (run / "postprocess.json").write_text(json.dumps({"thresholds": [0.25], "temperature": 1.2, "tuned_on": "validation"}))
    path = _recipe(tmp_path, "task: binary\nloss: {bce: {}}\nweighting: {scheme: inverse}\noptim: {lr: 3.0e-5}\n")
    assert main(["lint", path, "--run", str(run), "--json"]) == 0
    (f,) = [f for f in json.loads(capsys.readouterr().out) if f["rule"] == "weights_with_thresholds"]
    spam = f["figures"]["classes"]["spam"]
    assert spam["weight"] == pytest.approx(9.0) and spam["rule_factor"] == pytest.approx(3.0)
    assert spam["combined_factor"] == pytest.approx(27.0)
    # the same recipe without class weights: nothing stacks
    plain = _recipe(tmp_path, "task: binary\nloss: {bce: {}}\noptim: {lr: 3.0e-5}\n", name="plain.yaml")
    assert main(["lint", plain, "--run", str(run), "--json"]) == 0
    assert "weights_with_thresholds" not in capsys.readouterr().out
