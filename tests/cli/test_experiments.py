"""CLI: tailtune screen / compare / sweep / ablate (thin wrappers: exit codes, files, printed tables)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from tailtune.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "experiments"))
from exp_tiny_data import write_data  # noqa: E402  (tests/experiments/exp_tiny_data.py)


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_screen_command_prints_table_and_writes_json(tmp_path, tiny_encoder_dir, capsys):
    data = write_data(tmp_path / "data", "binary")
    code = main(["screen", str(data), "--recipes", "ce,focal:1,logit-adjust", "--seeds", "2",
                 "--model", str(tiny_encoder_dir), "--max-length", "16", "--hidden", "0",
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "out"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    saved = json.loads((tmp_path / "out" / "screen.json").read_text())
    assert saved["task"]["kind"] == "binary"
    assert {r["spec"]: r["status"] for r in saved["recipes"]} == {"ce": "ok", "focal:1": "ok", "logit-adjust": "skipped"}
    assert "focal:1" in out and "skipped" in out and "screen.json" in out


def test_screen_bad_recipe_exits_2_with_one_message(tmp_path, capsys):
    data = write_data(tmp_path / "data", "multiclass")
    code = main(["screen", str(data), "--recipes", "ce,focl", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "did you mean 'focal'" in err
    assert not (tmp_path / "out").exists()


def test_compare_command(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    runs = []
    for name, noise in (("ce", 0.6), ("focal", 0.05)):
        for s in range(3):
            d = tmp_path / f"{name}-{s}"
            (d / "predictions").mkdir(parents=True)
            (d / "task.json").write_text(json.dumps({"kind": "multiclass", "labels": ["a", "b"]}))
            (d / "recipe.yaml").write_text(yaml.safe_dump({"name": name, "train": {"seed": s}}))
            pred = np.where(rng.random(200) < noise, rng.integers(0, 2, 200), y)
            (d / "eval.json").write_text(json.dumps({"test": {"macro_f1": float(np.mean(pred == y))}}))
            buf = io.BytesIO()
            np.savez(buf, logits=np.eye(2)[pred].astype(np.float32), targets=y)
            (d / "predictions" / "test.npz").write_bytes(buf.getvalue())
            runs.append(str(d))
    code = main(["compare", *runs, "--resamples", "300", "--output", str(tmp_path / "cmp.json")])
    out = capsys.readouterr().out
    assert code == 0 and "improvement" in out
    assert json.loads((tmp_path / "cmp.json").read_text())["comparisons"]["focal"]["verdict"] == "improvement"
    assert main(["compare", str(tmp_path / "missing")]) == 2


def test_sweep_command_screen_objective(tmp_path, tiny_encoder_dir, capsys):
    data = write_data(tmp_path / "data", "multiclass")
    space = tmp_path / "space.yaml"
    space.write_text("head.lr: {type: float, low: 0.001, high: 0.01, log: true}\nhead.max_epochs: [3]\n")
    code = main(["sweep", "ce", "--space", str(space), "--trials", "2", "--objective", "screen", "--data", str(data),
                 "--model", str(tiny_encoder_dir), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(tmp_path / "sw"), "--seed", "0"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "COMPLETE" in out and "best macro_f1" in out and (tmp_path / "sw" / "sweep.db").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("optim.lr: {type: float, low: 1, high: 0}\n")
    assert main(["sweep", "ce", "--space", str(bad), "--trials", "1", "--out", str(tmp_path / "sw2")]) == 2
    assert "must be below" in capsys.readouterr().err


def test_ablate_command_trains_and_compares(tmp_path, tiny_encoder_dir, capsys):
    data = write_data(tmp_path / "data", "multiclass", n_train=32, n_eval=16)
    out = tmp_path / "abl"
    code = main(["ablate", "ce", "focal:1", "--seeds", "1", "--data", str(data), "--out", str(out),
                 "--set", f"model.name={tiny_encoder_dir}", "--set", "data.max_length=16", "--set", "train.epochs=1",
                 "--set", "train.batch_size=16", "--set", "early_stopping.patience=0"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert (out / "ce" / "seed-13" / "eval.json").exists() and (out / "focal-1" / "seed-13" / "eval.json").exists()
    summary = json.loads((out / "compare.json").read_text())
    assert summary["baseline"] == "ce" and "focal:1" in summary["comparisons"]
    assert "focal:1 vs ce" in printed
    assert main(["ablate", "focl", "--out", str(tmp_path / "x")]) == 2


@pytest.mark.parametrize("argv, message", [
    (["screen", "{data}", "--seeds", "0"], "seeds=0 must be a positive int"),
    (["screen", "{data}", "--rank-by", "f1"], "rank_by='f1' must be one of"),
    (["screen", "{data}", "--max-length", "0"], "max_length=0 must be a positive int"),
    (["screen", "{data}", "--hidden", "-1"], "hidden=-1 must be an int >= 0"),
    (["screen", "{data}", "--recipes", "focal:abc"], "preset 'focal:abc': loss.focal: gamma"),
    (["ablate", "ce", "--seeds", "0"], "seeds=0 must be a positive int"),
    (["ablate", "ce", "--workers", "0"], "workers=0 must be a positive int"),
])
def test_experiment_options_out_of_range_exit_2_without_traceback(tmp_path, capsys, argv, message):
    """Each was a ValueError traceback with exit 1 (2026-12-05): library range checks are OptionError."""
    data = write_data(tmp_path / "data", "binary")
    argv = [a.replace("{data}", str(data)) for a in argv] + ["--out", str(tmp_path / "out")]
    code = main(argv)
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert code == 2, text
    assert message in " ".join(text.split()) and "Traceback" not in text
    assert not (tmp_path / "out").exists()


def test_screen_refuses_before_embedding_when_nothing_or_the_baseline_cannot_be_screened(tmp_path, capsys):
    """asl is sigmoid-only: on a multi-class set it cannot be screened. Refused before any embedding
    (the model path does not even exist), naming the reason."""
    data = write_data(tmp_path / "data", "multiclass")
    common = ["--model", str(tmp_path / "no-model"), "--cache-dir", str(tmp_path / "cache"), "--out",
              str(tmp_path / "out"), "--quiet"]
    assert main(["screen", str(data), "--recipes", "asl", *common]) == 2
    assert "no recipe can be screened on this multiclass task" in " ".join(capsys.readouterr().err.split())
    assert main(["screen", str(data), "--recipes", "ce,asl", "--baseline", "asl", *common]) == 2
    assert "--baseline 'asl' cannot be screened" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


def test_more_out_of_range_options_exit_2(tmp_path, capsys):
    """Found by sweeping every numeric option with -1 and 0 (2026-12-05): tracebacks or exit 0 before."""
    data = write_data(tmp_path / "data", "binary")
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {type: float, low: 1.0e-5, high: 1.0e-3, log: true}\n")
    cases = [
        (["analyze", str(data), "--seed", "-1"], "seed (--seed) must be an integer >= 0"),
        (["screen", str(data), "--threads", "0", "--out", str(tmp_path / "o1")], "threads=0 must be a positive int"),
        (["sweep", "ce", "--space", str(space), "--seed", "-1", "--data", str(data), "--out", str(tmp_path / "o2")],
         "seed=-1: the TPE sampler's seed"),
        (["compare", str(tmp_path), "--resamples", "0"], "n_resamples=0 must be a positive int"),
        (["compare", str(tmp_path), "--alpha", "1"], "alpha=1.0 must be in (0, 1)"),
    ]
    for argv, message in cases:
        code = main(argv)
        captured = capsys.readouterr()
        text = " ".join((captured.out + captured.err).split())
        assert code == 2 and message in text and "Traceback" not in text, (argv, text)
