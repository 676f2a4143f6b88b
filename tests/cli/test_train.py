"""``tailtune train``: flags and --set overrides, the closing table, exit code 2 before any model loads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

from tailtune.cli.main import main
from tailtune.utils import rundir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))  # tiny_runs helpers
from tiny_runs import tiny_recipe, write_tiny_data  # noqa: E402


@pytest.fixture
def recipe_file(tmp_path, tiny_encoder_dir):
    data = write_tiny_data(tmp_path / "data", "multiclass")
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "unused")
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_train_with_flags_prints_table_and_run_dir(recipe_file, tmp_path, capsys, monkeypatch):
    from tailtune.diagnostics.findings import Finding
    from tailtune.training import pipeline

    finding = Finding("double_weighting", "error", {}, "two mechanisms weight the same classes", "drop one")
    monkeypatch.setattr(pipeline, "lint_recipe", lambda recipe, **counts: [finding])
    out = tmp_path / "run"
    code = main([
        "train", str(recipe_file), "--epochs", "1", "--learning-rate", "0.002", "--set", "train.batch_size=16",
        "--output", str(out), "-q",
    ])
    printed = capsys.readouterr().out
    assert code == 0
    assert "error (double_weighting): two mechanisms weight the same classes drop one" in printed
    assert "per-class results" in printed and "plot" in printed and "macro_f1" in printed
    assert str(out) in printed.replace("\n", "")
    saved = yaml.safe_load((out / rundir.RECIPE).read_text())
    assert saved["train"]["epochs"] == 1 and saved["train"]["batch_size"] == 16
    assert saved["optim"]["lr"] == 0.002 and saved["tailtune_version"]
    # the pipeline records the lint findings and what the recipe resolved to
    assert json.loads((out / rundir.LINT).read_text())["findings"][0]["rule"] == "double_weighting"
    assert json.loads((out / rundir.RESOLVED).read_text())["loss"]["cross_entropy"]["loss"] == "cross_entropy"
    # every run gets its report.html
    assert (out / rundir.REPORT).is_file() and "report:" in printed
    assert '<section id="per-class">' in (out / rundir.REPORT).read_text(encoding="utf-8")


def test_lint_before_training_cites_the_training_data(recipe_file, tmp_path, capsys, monkeypatch):
    """The data-dependent lint checks run at the start of train (here: gamma 2 + weights on a mild imbalance)."""
    import tailtune.training.pipeline
    from tailtune.errors import RecipeError

    def stop(*args, **kwargs):
        raise RecipeError("stopped by the test before training")

    monkeypatch.setattr(tailtune.training.pipeline, "train_model", stop)
    code = main(["train", str(recipe_file), "--set", "loss={focal: {gamma: 2.0}}", "--set", "weighting.scheme=inverse",
                 "--output", str(tmp_path / "run"), "-q"])
    printed = " ".join(capsys.readouterr().out.split())
    assert code == 2
    assert "warning (gamma_weights_mild)" in printed and "is only" in printed and "the smallest (plot)" in printed


def test_the_data_loaders_notes_are_printed_before_training_and_returned(tmp_path, tiny_encoder_dir, capsys, monkeypatch):
    """``LoadedData.notes`` (here: the detected ';' delimiter, the carved validation split) reach the
    user of ``tailtune train`` before training starts, and ``RunResult.notes``."""
    from tailtune.training import pipeline

    rows = ["text;labels"] + [f"word{i} {'good' if i % 3 else 'bad'} movie;{'pos' if i % 3 else 'neg'}" for i in range(48)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    recipe = tiny_recipe("binary", tmp_path / "train.csv", tiny_encoder_dir, tmp_path / "run")
    recipe["train"]["epochs"] = 1
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe), encoding="utf-8")
    results, real = [], pipeline.train_model

    def spy(prepared, **kwargs):
        print("TRAINING STARTS")
        results.append(real(prepared, **kwargs))
        return results[-1]

    monkeypatch.setattr(pipeline, "train_model", spy)
    assert main(["train", str(tmp_path / "recipe.yaml"), "-q"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    note = "with ';' as the column delimiter"
    assert note in printed and printed.index(note) < printed.index("TRAINING STARTS")
    assert "no validation split: held out" in printed
    (result,) = results
    assert any(note in n for n in result.notes) and any("held out" in n for n in result.notes)


def test_invalid_value_exits_2_before_any_model_load(recipe_file, tmp_path, capsys, monkeypatch):
    import tailtune.models

    monkeypatch.setattr(tailtune.models, "build_classifier", lambda *a, **k: pytest.fail("model loaded"))
    out = tmp_path / "run"
    assert main(["train", str(recipe_file), "--set", "optim.lr=-1", "--output", str(out)]) == 2
    assert "optim.lr" in capsys.readouterr().err
    assert main(["train", str(recipe_file), "--set", "loss.cross_entropy.gamma=oops", "--output", str(out)]) == 2
    assert "gamma" in capsys.readouterr().err
    assert main(["train", str(recipe_file), "--set", "loss.focul.weight=1", "--output", str(out)]) == 2
    assert "focul" in capsys.readouterr().err
    assert main(["train", str(recipe_file), "--set", "loss.cross_entropy.weight=0", "--output", str(out)]) == 2
    assert "the loss weights sum to 0" in capsys.readouterr().err
    code = main(["train", str(recipe_file), "--set", "weighting={scheme: inverse, overrides: {plott: 2.0}}",
                 "--output", str(out)])
    assert code == 2 and "weighting.overrides.plott" in capsys.readouterr().err  # checked against the data
    assert main(["train", str(recipe_file), "--focal-gamma", "1.0", "--output", str(out)]) == 2
    assert "no focal loss part" in capsys.readouterr().err
    assert not out.exists()


def test_bf16_and_focal_gamma_flags_with_progress_bars(recipe_file, tmp_path, capsys):
    """--bf16 and --focal-gamma reach the resolved recipe; without -q the progress bars and the
    per-epoch line are printed, then the closing table."""
    out = tmp_path / "run"
    code = main([
        "train", str(recipe_file), "--set", "~loss.cross_entropy", "--set", "loss.focal.weight=1.0",
        "--focal-gamma", "0.5", "--bf16", "--epochs", "1", "--output", str(out),
    ])
    printed = capsys.readouterr().out
    assert code == 0
    saved = yaml.safe_load((out / rundir.RECIPE).read_text())
    assert saved["train"]["precision"] == "bf16" and saved["loss"] == {"focal": {"weight": 1.0, "gamma": 0.5}}
    assert "epoch 1" in printed and "val_macro_f1=" in printed  # RichProgressCallback
    assert "per-class results" in printed


def test_recipe_or_preset_or_resume(recipe_file, tmp_path, capsys):
    assert main(["train"]) == 2
    assert "--preset" in capsys.readouterr().err
    assert main(["train", str(recipe_file), "--preset", "focal"]) == 2
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "drop RECIPE" in capsys.readouterr().err


def test_markup_like_label_names_and_paths_print_as_text(tmp_path, tiny_encoder_dir, capsys):
    import json

    data = write_tiny_data(tmp_path / "data", "multiclass")
    names = {"pos": "[/b]", "neg": "[red]neg", "plot": "plot"}
    for split in ("train", "validation", "test"):
        path = data / f"{split}.jsonl"
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({**r, "labels": names[r["labels"]]}) + "\n" for r in rows))
    out = tmp_path / "[exp1]"
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, out)
    recipe["train"]["epochs"] = 1
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert main(["train", str(path), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "[/b]" in printed and "[red]neg" in printed and "[exp1]" in printed


def test_closing_tables_show_each_aspect_and_each_group(capsys):
    """The closing summary: per-class (pooled over the aspects), per-aspect P/R/F1 and the label groups."""
    from types import SimpleNamespace

    from tailtune.cli.train import _summary

    entry = {"macro_precision": 0.61, "macro_recall": 0.55, "macro_f1": 0.57, "detection_f1": 0.9, "support": 42}
    report = {
        "macro_f1": 0.57, "accuracy": 0.8, "macro_f1@core": 0.57,
        "per_class": {"positive": {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 30}},
        "per_aspect": {"food": entry, "service": {**entry, "macro_f1": 0.43, "support": 7}},
        "groups": {"core": {"members": ["food", "service"], "macro_precision": 0.61, "macro_recall": 0.55,
                            "macro_f1": 0.57, "micro_f1": 0.6, "support": 49}},
    }
    _summary(SimpleNamespace(eval={"test": report}, history=[], run_dir="runs/x"))
    printed = capsys.readouterr().out
    assert "per-class results (pooled over the aspects)" in printed
    assert "per-aspect results" in printed and "service" in printed and "0.430" in printed
    assert "label groups" in printed and "food, service" in printed and "macro_f1@core 0.5700" in printed
