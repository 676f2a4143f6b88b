"""``tailtune evaluate | tune | ensemble | predict`` on tiny-model run directories; bad input exits 2."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tailtune.cli.main import main

_spec = importlib.util.spec_from_file_location(
    "evaluation_helpers", Path(__file__).resolve().parents[1] / "evaluation" / "evaluation_helpers.py"
)
helpers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(helpers)


@pytest.fixture(scope="module")
def base_run(tiny_encoder_dir, tmp_path_factory):
    return helpers.make_run(tmp_path_factory.mktemp("cli-run"), tiny_encoder_dir, helpers.TASKS["multiclass"])


@pytest.fixture
def run(base_run, tmp_path):
    dst = tmp_path / "run"
    shutil.copytree(base_run, dst)
    return dst


def test_tune_evaluate_predict(run, tmp_path, capsys):
    assert main(["tune", str(run)]) == 0
    out = capsys.readouterr().out
    assert "validation macro-F1: default" in out and "test macro-F1" in out
    assert "out-of-bag gain of a tuned rule over the default (100 resamples)" in out
    post = json.loads((run / "postprocess.json").read_text())
    assert post["tuned_on"] == "validation" and post["bootstrap"]["resamples"] == 100
    assert main(["evaluate", str(run), "--split", "test"]) == 0
    ev = json.loads((run / "eval.json").read_text())
    assert "test" in ev and "test_tuned" in ev

    inp = tmp_path / "in.txt"
    inp.write_text("good food\n\n   \nbad service\n", encoding="utf-8")
    dest = tmp_path / "out.jsonl"
    assert main(["predict", str(run), "--input", str(inp), "--output", str(dest)]) == 0
    captured = capsys.readouterr()
    assert "skipped 2 empty line(s): [2, 3]" in captured.err
    rows = [json.loads(x) for x in dest.read_text().splitlines()]
    assert [r["line"] for r in rows] == [1, 4]
    assert rows[0]["label"] in ("a", "b", "c") and set(rows[0]["probabilities"]) == {"a", "b", "c"}

    assert main(["predict", str(run), "--text", "hello", "--text", "word " * 300]) == 0
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["index"] == 2
    assert captured.err.count("truncated") == 1 and "128 tokens" in captured.err


def test_tune_exact_fit_and_seeded_bootstrap(run, capsys):
    assert main(["tune", str(run), "--bootstrap", "0"]) == 0
    assert "out-of-bag" not in capsys.readouterr().out
    assert json.loads((run / "postprocess.json").read_text())["bootstrap"] == {"resamples": 0}
    assert main(["tune", str(run), "--bootstrap", "20", "--seed", "3"]) == 0
    first = json.loads((run / "postprocess.json").read_text())
    assert main(["tune", str(run), "--bootstrap", "20", "--seed", "3"]) == 0
    assert json.loads((run / "postprocess.json").read_text()) == first
    assert first["bootstrap"]["seed"] == 3


def test_ensemble_command(run, base_run, tmp_path, capsys):
    out = tmp_path / "ens"
    assert main(["ensemble", str(run), str(base_run), "--out", str(out), "--weights", "1,2"]) == 0
    assert "ensemble validation macro-F1" in capsys.readouterr().out
    assert main(["predict", str(out), "--text", "fine"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("a", "b", "c")
    assert main(["ensemble", str(run), str(base_run), "--out", str(tmp_path / "e2"), "--weights", "1"]) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "{run}", "--split", "dev"], "split 'dev' has no predictions"),
        (["tune", "{run}", "--split", "test"], "refusing to tune"),
        (["tune", "{run}", "--temperature", "hot"], "temperature must be one of"),
        (["tune", "{run}", "--bootstrap", "1"], "bootstrap must be 0"),
        (["evaluate", "{tmp}/missing"], "no such run directory"),
        (["predict", "{run}"], "exactly one of --input"),
        (["predict", "{run}", "--input", "{tmp}/none.txt"], "no such file"),
        (["predict", "{run}", "--input", "{tmp}/blank.txt"], "holds no text"),
        (["predict", "{run}", "--text", "x", "--batch-size", "0"], "batch_size must be a positive integer"),
    ],
)
def test_bad_input_exits_2_with_one_message(run, tmp_path, capsys, argv, message):
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    argv = [a.format(run=run, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_half_written_and_pickled_runs_exit_2(run, capsys):
    (run / "model" / "model.safetensors").rename(run / "model" / "pytorch_model.bin")
    assert main(["predict", str(run), "--text", "x"]) == 2
    assert "will not unpickle" in capsys.readouterr().err
    shutil.rmtree(run / "model")
    assert main(["predict", str(run), "--text", "x"]) == 2
    assert "no model/ folder" in capsys.readouterr().err
    (run / "task.json").unlink()
    assert main(["evaluate", str(run)]) == 2
    assert "no task.json" in capsys.readouterr().err


def test_evaluate_prints_the_breakdown_tables_of_the_rule_it_scored(run, capsys):
    """Before: evaluate printed summary figures only, so scoring another split showed no per-class,
    per-aspect or label-group figures (train's closing tables); group headlines now join the summary."""
    task = json.loads((run / "task.json").read_text())
    task["groups"] = {"firsts": task["labels"][:2]}
    (run / "task.json").write_text(json.dumps(task))
    assert main(["evaluate", str(run), "--split", "validation"]) == 0
    out = capsys.readouterr().out
    assert "validation (default rule): per-class results" in out and "validation (default rule): label groups" in out
    assert "macro_f1@firsts" in out
    assert main(["tune", str(run)]) == 0 and main(["evaluate", str(run)]) == 0
    assert "test (tuned rule): per-class results" in capsys.readouterr().out
