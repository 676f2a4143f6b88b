"""End-to-end on tiny-model run directories: evaluate, tune, predict, ensembles, bad input."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from evaluation_helpers import TASKS, TEXTS

import tailtune
from tailtune.errors import DataError, RunDirError
from tailtune.evaluation import build_ensemble, evaluate_run, tune_run
from tailtune.evaluation.predictor import Predictor
from tailtune.metrics import hierarchy_violations, probabilities
from tailtune.utils import rundir


def _copy(src, tmp_path, name="run"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "aspects"])
def test_predict_matches_stored_logits_and_formats(run_factory, kind):
    run = run_factory(kind)
    p = tailtune.load(run)
    logits = p.predict_logits(TEXTS)
    with np.load(run / "predictions" / "validation.npz") as f:
        np.testing.assert_allclose(logits, f["logits"], rtol=1e-4, atol=1e-4)
    rows = p.predict(TEXTS[:3])
    assert len(rows) == 3
    key = {"binary": "label", "multiclass": "label", "multilabel": "labels", "aspects": "aspects"}[kind]
    assert key in rows[0]
    if kind == "aspects":
        food = rows[0]["aspects"]["food"]
        assert food["label"] in ("positive", "negative", "absent")
        assert sum(food["probabilities"].values()) == pytest.approx(1.0)


def test_batching_and_sorting_do_not_change_logits(run_factory):
    run = run_factory("multiclass")
    a = Predictor.from_run_dir(run, batch_size=1).predict_logits(TEXTS[:8])
    b = Predictor.from_run_dir(run, batch_size=64).predict_logits(TEXTS[:8])
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_tune_then_evaluate_writes_postprocess_and_eval(run_factory, tmp_path):
    run = _copy(run_factory("multiclass"), tmp_path)
    summary = tune_run(run)
    assert summary["validation_tuned"] >= summary["validation_default"]
    assert summary["test_default"] is not None and summary["test_tuned"] is not None
    post = json.loads((run / rundir.POSTPROCESS).read_text())
    assert post["tuned_on"] == "validation" and len(post["biases"]) == 3
    ev = json.loads((run / rundir.EVAL).read_text())
    assert {"validation", "validation_tuned", "test", "test_tuned"} <= set(ev)
    entries = evaluate_run(run, split="test")
    assert entries["test_tuned"]["macro_f1"] == pytest.approx(summary["test_tuned"])
    # the predictor applies the tuned rule
    logits = np.load(run / "predictions" / "test.npz")["logits"]
    pred = Predictor.from_run_dir(run).postprocess.decide(logits, TASKS["multiclass"])
    labels = [r["label"] for r in Predictor.from_run_dir(run).predict(TEXTS[::-1])]
    assert labels == [TASKS["multiclass"].labels[i] for i in pred]


def test_tune_multilabel_with_hierarchy(run_factory, tmp_path):
    run = _copy(run_factory("multilabel"), tmp_path)
    tune_run(run, hierarchy_mode="add_parent", temperature="per_label")
    rows = Predictor.from_run_dir(run).predict(TEXTS)
    pred = np.array([[int(n in r["labels"]) for n in TASKS["multilabel"].labels] for r in rows])
    assert hierarchy_violations(pred, TASKS["multilabel"])["total"] == 0
    post = json.loads((run / rundir.POSTPROCESS).read_text())
    assert len(post["temperature"]) == 3 and post["hierarchy_mode"] == "add_parent"


def test_refuse_tuning_on_test(run_factory, tmp_path):
    run = _copy(run_factory("binary"), tmp_path)
    with pytest.raises(RunDirError, match="refusing to tune"):
        tune_run(run, split="test")
    assert not (run / rundir.POSTPROCESS).exists()


def test_missing_split_and_half_written_runs(run_factory, tmp_path):
    run = _copy(run_factory("binary"), tmp_path)
    with pytest.raises(RunDirError, match=r"split 'dev' has no predictions.*available: \['test', 'validation'\]"):
        evaluate_run(run, split="dev")
    (run / "predictions" / "test.npz").write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(RunDirError, match="unreadable or incomplete"):
        evaluate_run(run, split="test")
    with pytest.raises(RunDirError, match="no such run directory"):
        evaluate_run(tmp_path / "nope")
    half = tmp_path / "half"
    half.mkdir()
    (half / "recipe.yaml").write_text("task: {kind: binary}\n")
    with pytest.raises(RunDirError, match="no task.json"):
        Predictor.from_run_dir(half)
    (half / "task.json").write_text(json.dumps(TASKS["binary"].to_dict()))
    with pytest.raises(RunDirError, match="no model/ folder"):
        Predictor.from_run_dir(half)
    (half / "postprocess.json").write_text("{not json")
    with pytest.raises(RunDirError, match="postprocess.json: not valid JSON"):
        evaluate_run(half)


def test_missing_predictions_name_the_command_that_makes_them(run_factory, tmp_path):
    """Before: a run killed before predictions/ was told "pass --split validation" (which had none
    either), and a split never predicted was not told about --recompute."""
    run = _copy(run_factory("binary"), tmp_path)
    with pytest.raises(RunDirError, match=r"split 'train' has no predictions.*Fix: pass --split test, or predict the "
                                          r"split first: tailtune evaluate .*run --split train --recompute"):
        evaluate_run(run, split="train")
    shutil.rmtree(run / "predictions")
    for call in (lambda: evaluate_run(run), lambda: tune_run(run)):
        with pytest.raises(RunDirError, match=r"available: none\. Fix: finish the training .*tailtune train --resume "):
            call()


def test_pickle_model_refused(run_factory, tmp_path):
    run = _copy(run_factory("binary"), tmp_path)
    weights = run / "model" / "model.safetensors"
    weights.rename(run / "model" / "pytorch_model.bin")
    with pytest.raises(RunDirError, match="will not unpickle"):
        Predictor.from_run_dir(run)


def test_truncation_reported_once(run_factory):
    p = Predictor.from_run_dir(run_factory("binary"), max_length=16)
    long = "word " * 200
    with pytest.warns(UserWarning, match="2 of 3 texts are longer than the model's limit of 16") as rec:
        logits = p.predict_logits([long, "short", long])
    assert len(rec) == 1 and p.last_truncated == 2 and logits.shape == (3, 1)
    assert Predictor.from_run_dir(run_factory("binary")).max_length == 128  # the tiny model's limit


def test_ensemble_of_runs(run_factory, tmp_path):
    a, b = run_factory("aspects", seed=0), run_factory("aspects", seed=0)
    c = _copy(run_factory("aspects"), tmp_path, "copy")
    out = tmp_path / "ens"
    summary = build_ensemble([a, c], out, weights=[1.0, 3.0])
    assert summary["splits"] == ["test", "validation"]
    for f in ("task.json", "members.json", "postprocess.json", "eval.json", "predictions/validation.npz"):
        assert (out / f).is_file()
    # two identical members: the ensemble's averaged probabilities (before its own temperature) equal
    # the member's
    ens = Predictor.from_run_dir(out)
    member = Predictor.from_run_dir(b)
    averaged = probabilities(ens.predict_logits(TEXTS[:4]), TASKS["aspects"])
    np.testing.assert_allclose(averaged, member.predict_proba(TEXTS[:4]), rtol=1e-4, atol=1e-5)
    assert len(ens.predict(TEXTS[:2])) == 2
    assert "test" in evaluate_run(out, split="test")
    with pytest.raises(ValueError, match="at least 2"):
        build_ensemble([a], tmp_path / "x")
    with pytest.raises(RunDirError, match="not an ensemble folder"):
        build_ensemble([a, c], a)


def test_ensemble_rejects_different_targets(run_factory, tmp_path):
    a = run_factory("binary", seed=0)
    b = run_factory("binary", seed=1)  # other random targets = other data
    with pytest.raises(RunDirError, match="targets differ"):
        build_ensemble([a, b], tmp_path / "ens")


def test_evaluate_recompute_from_model(run_factory, tmp_path):
    run = _copy(run_factory("multiclass"), tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"text": t, "labels": "abc"[i % 3]} for i, t in enumerate(TEXTS)]
    for split in ("train", "validation", "test"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (run / "predictions" / "test.npz").unlink()
    entries = evaluate_run(run, split="test", data=data)
    assert entries["test"]["n_samples"] == len(TEXTS)
    with np.load(run / "predictions" / "test.npz") as f:
        np.testing.assert_allclose(f["logits"], Predictor.from_run_dir(run).predict_logits(TEXTS), atol=1e-4)
        assert f["targets"].tolist() == [i % 3 for i in range(len(TEXTS))]
    with pytest.raises(RunDirError, match="no data path"):
        evaluate_run(run, split="test", recompute=True)


def test_recompute_reads_the_data_as_training_did(run_factory, tmp_path):
    """``evaluate --recompute`` reads the data through ``recipe.data.load_recipe_data`` with the run's
    task: the recipe's text and label columns (not a column that happens to be called ``text``) and
    its split seed (the validation rows carved from a single file are training's)."""
    import yaml

    from tailtune.data import load_dataset

    run = _copy(run_factory("multiclass"), tmp_path)
    texts = [f"{t} {i}" for i, t in enumerate(TEXTS * 3)]
    rows = [{"text": "decoy", "body": t, "tag": "abc"[i % 3]} for i, t in enumerate(texts)]
    single = tmp_path / "all.jsonl"
    single.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    recipe = {"data": {"path": str(single), "text": "body", "labels": "tag", "val_fraction": 0.25},
              "train": {"seed": 7}}
    (run / rundir.RECIPE).write_text(yaml.safe_dump(recipe), encoding="utf-8")
    evaluate_run(run, split="validation", recompute=True)
    trained = load_dataset(single, task="multiclass", text_column="body", label_column="tag", val_fraction=0.25, seed=7)
    other = load_dataset(single, task="multiclass", text_column="body", label_column="tag", val_fraction=0.25, seed=13)
    val = list(trained.splits["validation"]["text"])
    assert val != list(other.splits["validation"]["text"])  # the seed decides which rows are validation
    with np.load(run / "predictions" / "validation.npz") as f:
        np.testing.assert_allclose(f["logits"], Predictor.from_run_dir(run).predict_logits(val), atol=1e-4)
        assert f["targets"].tolist() == list(trained.splits["validation"]["labels"])


def test_recompute_reads_other_data_with_named_columns(run_factory, tmp_path):
    """Before: data whose columns are not the recipe's failed with "pick one with --text-column", an
    option evaluate did not have; a single labelled file was "has no split 'test'" without the fix."""
    run = _copy(run_factory("multiclass"), tmp_path)
    data = tmp_path / "other"
    data.mkdir()
    rows = [{"Message": t, "Category": "abc"[i % 3]} for i, t in enumerate(TEXTS)]
    for split in ("train", "test"):
        (data / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with pytest.raises(DataError, match=r"text column 'text' not found .*\['Message', 'Category'\]; pick one with "
                                        r"--text-column"):
        evaluate_run(run, split="test", data=data, recompute=True)
    entries = evaluate_run(run, split="test", data=data, recompute=True, text_column="Message", label_column="Category")
    assert entries["test"]["n_samples"] == len(TEXTS)
    with pytest.raises(RunDirError, match=r"name the columns of data read with --recompute"):
        evaluate_run(run, split="test", text_column="Message")
    with pytest.raises(RunDirError, match=r"test\.jsonl: a single file is read as training data .*no split 'test'\. "
                                          r"Fix: put it in a folder as test\.jsonl next to the training file"):
        evaluate_run(run, split="test", data=data / "test.jsonl", recompute=True, text_column="Message",
                     label_column="Category")


def test_recompute_refuses_an_invalid_recipe_yaml(run_factory, tmp_path):
    """The data settings come from recipe.yaml: one that does not validate is named, not ignored."""
    from tailtune.errors import RecipeError

    run = _copy(run_factory("multiclass"), tmp_path)
    (run / rundir.RECIPE).write_text("data: {path: x, empty_txt: drop}\n", encoding="utf-8")
    with pytest.raises(RecipeError, match=r"recipe\.yaml.*data\.empty_txt"):
        evaluate_run(run, split="test", recompute=True)
