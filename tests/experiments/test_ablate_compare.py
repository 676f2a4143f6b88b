"""ablate (sequential and parallel workers) and compare (grouping, summaries, paired tests, verdicts)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import yaml

from tailtune.errors import RecipeError, RunDirError
from tailtune.experiments.ablate import ablate, compare, plan_ablation, recipe_label


def _fake_run(root, name, seed, logits, targets, task):
    root.mkdir(parents=True)
    (root / "task.json").write_text(json.dumps(task))
    (root / "recipe.yaml").write_text(yaml.safe_dump({"name": name, "train": {"seed": seed}}))
    pred = logits.argmax(1)
    acc = float(np.mean(pred == targets))
    (root / "eval.json").write_text(json.dumps({"test": {"macro_f1": acc, "accuracy": acc}}))
    (root / "predictions").mkdir()
    buf = io.BytesIO()
    np.savez(buf, logits=logits.astype(np.float32), targets=targets)
    (root / "predictions" / "test.npz").write_bytes(buf.getvalue())
    return root


def _logits(y, noise, rng, k=3):
    pred = np.where(rng.random(len(y)) < noise, rng.integers(0, k, len(y)), y)
    return np.eye(k)[pred] * 3.0 + rng.normal(scale=0.1, size=(len(y), k))


TASK = {"kind": "multiclass", "labels": ["a", "b", "c"]}


def test_compare_groups_runs_and_gives_verdicts(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 400)
    runs = []
    for s in range(3):
        runs.append(_fake_run(tmp_path / f"ce-{s}", "ce", s, _logits(y, 0.7, rng), y, TASK))
        runs.append(_fake_run(tmp_path / f"good-{s}", "good", s, _logits(y, 0.1, rng), y, TASK))
    base = _logits(y, 0.5, rng)
    for s in range(3):
        runs.append(_fake_run(tmp_path / f"same-{s}", "same", s, base, y, TASK))
    # a baseline identical to "same" for the no-difference case
    for s in range(3):
        runs.append(_fake_run(tmp_path / f"same2-{s}", "same2", s, base, y, TASK))
    out = compare(runs, n_resamples=300)
    assert out["baseline"] == "ce" and set(out["groups"]) == {"ce", "good", "same", "same2"}
    assert out["groups"]["good"]["metrics"]["macro_f1"]["n"] == 3
    assert out["comparisons"]["good"]["verdict"] == "improvement"
    assert out["comparisons"]["good"]["bootstrap_ci"][0] > 0
    twin = compare([r for r in runs if "same" in r.name], baseline="same", n_resamples=300)
    assert twin["comparisons"]["same2"]["diff"] == 0.0
    assert twin["comparisons"]["same2"]["verdict"] == "no detectable difference"
    with pytest.raises(RecipeError, match="baseline"):
        compare(runs[:2], baseline="nope")


def test_compare_refuses_runs_on_different_test_items(tmp_path):
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 50)
    a = _fake_run(tmp_path / "a", "ce", 1, _logits(y, 0.5, rng), y, TASK)
    y2 = y.copy()
    y2[0] = (y2[0] + 1) % 3
    b = _fake_run(tmp_path / "b", "focal", 1, _logits(y2, 0.5, rng), y2, TASK)
    with pytest.raises(RunDirError, match="same test items"):
        compare([a, b])
    with pytest.raises(RunDirError, match="no such run"):
        compare([tmp_path / "missing"])


def test_plan_validates_every_recipe_before_writing(tmp_path):
    with pytest.raises(RecipeError):
        plan_ablation(["ce", "focal"], out_dir=tmp_path, overrides=["optim.lr=-1"])
    assert not (tmp_path / "recipes").exists()
    jobs = plan_ablation(["ce", "focal:1"], seeds=2, out_dir=tmp_path, overrides=["data.path=x"])
    assert [(j.label, j.seed) for j in jobs] == [("ce", 13), ("ce", 14), ("focal-1", 13), ("focal-1", 14)]
    saved = yaml.safe_load(jobs[3].recipe_path.read_text())
    assert saved["train"]["seed"] == 14 and saved["output"].endswith("focal-1/seed-14") and saved["name"] == "focal:1"
    assert recipe_label("dir/my.yaml") == "my"


@pytest.mark.slow
def test_ablate_in_process_and_with_parallel_workers_then_compare(tmp_path, exp_data, tiny_encoder_dir):
    data = exp_data("multiclass", n_train=48, n_eval=24)
    overrides = [f"data.path={data}", f"model.name={tiny_encoder_dir}", "data.max_length=16", "train.epochs=1",
                 "train.batch_size=16", "early_stopping.patience=0", "optim.lr=0.003"]
    out = tmp_path / "abl"
    first = ablate(["ce"], seeds=1, out_dir=out, overrides=overrides)
    assert [j.status for j in first.jobs] == ["done"]
    # ce seed 13 is finished and skipped; the two focal seeds train in two parallel subprocesses
    second = ablate(["ce", "focal:2"], seeds=2, out_dir=out, overrides=overrides, workers=2)
    status = {(j.label, j.seed): j.status for j in second.jobs}
    assert status == {("ce", 13): "skipped", ("ce", 14): "done", ("focal-2", 13): "done",
                      ("focal-2", 14): "done"}, [j.error for j in second.jobs]
    summary = compare(second.run_dirs, n_resamples=200)
    assert set(summary["groups"]) == {"ce", "focal:2"}
    assert summary["comparisons"]["focal:2"]["n_items"] == 24
