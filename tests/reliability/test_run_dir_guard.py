"""What ``train`` and the other writers may do with a run directory (training/rundir_guard.py,
utils/runlock.py), through the CLI: no mixing, no blocked retry, a finished run left alone, one
writer at a time, and the checks at model load (max_length, corrupt weights)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tailtune.cli.main import main
from tailtune.utils import rundir
from tailtune.utils.runlock import LOCK_NAME

HERE = Path(__file__).resolve().parent
if str(HERE.parent / "training") not in sys.path:
    sys.path.insert(0, str(HERE.parent / "training"))

from tiny_runs import tiny_recipe, write_tiny_data  # noqa: E402


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def _recipe_file(tmp: Path, encoder: Path, output: Path, *, name: str = "r", **data_over) -> Path:
    data = tmp / "data"
    if not data.exists():
        write_tiny_data(data, "multiclass")
    recipe = tiny_recipe("multiclass", data, encoder, output)
    recipe["train"]["epochs"] = 1
    recipe["data"].update(data_over)
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    return path


def _one_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return " ".join(err.split())


def test_a_folder_of_unrelated_files_is_refused(tmp_path, tiny_encoder_dir, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    (out / "thesis").mkdir()
    before = _snapshot(out)
    assert main(["train", str(_recipe_file(tmp_path, tiny_encoder_dir, out)), "-q"]) == 2
    message = _one_error(capsys.readouterr().err)
    assert "holds files that are not a tailtune run (notes.txt, thesis)" in message
    assert "Fix: choose a new or empty folder with --output" in message
    assert _snapshot(out) == before


def test_max_length_over_the_positions_is_caught_at_load_and_a_failed_start_blocks_nothing(
        tmp_path, tiny_encoder_dir, capsys, monkeypatch):
    from tailtune.training import pipeline
    from tailtune.utils.runlock import is_held_here

    out = tmp_path / "run"
    recipe = _recipe_file(tmp_path, tiny_encoder_dir, out, max_length=512)  # the tiny encoder has 128
    assert main(["lint", str(recipe)]) == 1
    assert "max_length_over_positions" in capsys.readouterr().out
    assert main(["train", str(recipe), "-q"]) == 2
    message = _one_error(capsys.readouterr().err)
    assert "data.max_length = 512" in message and "128 positions" in message
    assert "Fix: set data.max_length: 128" in message and "--set data.max_length=128" in message
    assert not out.exists()  # nothing written: the retry is the same command with the fix
    # what an earlier start left without completing an epoch (a kill at its first batch) blocks nothing
    (out / rundir.CHECKPOINTS_DIR / "checkpoint-3").mkdir(parents=True)
    (out / rundir.CHECKPOINTS_DIR / "checkpoint-3" / "model.safetensors").write_bytes(b"torn")
    (out / rundir.RECIPE).write_text("stale: true\n")
    (out / rundir.TASK).write_text("{}")
    (out / rundir.RESOLVED).write_text("{}")  # the pipeline writes these two at the start of a run
    (out / rundir.LINT).write_text('{"findings": ["stale"]}')
    real_report, held = pipeline.write_report, []

    def report(run_dir, *args, **kwargs):  # the report is written under the run directory's lock
        held.append(is_held_here(run_dir))
        return real_report(run_dir, *args, **kwargs)

    monkeypatch.setattr(pipeline, "write_report", report)
    assert main(["train", str(recipe), "-q", "--set", "data.max_length=16"]) == 0
    capsys.readouterr()
    assert held == [True]
    assert yaml.safe_load((out / rundir.RECIPE).read_text())["data"]["max_length"] == 16
    assert "stale" not in (out / rundir.LINT).read_text() and (out / rundir.RESOLVED).read_text() != "{}"
    assert (out / rundir.EVAL).is_file() and not (out / rundir.CHECKPOINTS_DIR / "checkpoint-3").exists()
    assert not (out / LOCK_NAME).exists()


def test_a_start_that_fails_before_its_first_checkpoint_removes_what_it_wrote(
        tmp_path, tiny_encoder_dir, monkeypatch):
    from tailtune.recipe import load_recipe
    from tailtune.training import train
    from tailtune.training.trainer import TailtuneTrainer

    out = tmp_path / "run"
    recipe = _recipe_file(tmp_path, tiny_encoder_dir, out)

    def crash(self, *args, **kwargs):
        raise RuntimeError("The size of tensor a (304) must match the size of tensor b (128)")

    # compute_loss: called by either step loop (tailtune's fast_step and the Trainer's training_step)
    monkeypatch.setattr(TailtuneTrainer, "compute_loss", crash)
    with pytest.raises(RuntimeError, match="size of tensor"):
        train(load_recipe(recipe))
    assert not out.exists()  # recipe.yaml, task.json and checkpoints/ were removed again
    monkeypatch.undo()
    assert train(load_recipe(recipe)).eval["test"]["macro_f1"] >= 0


def test_corrupt_encoder_weights_are_one_message(tmp_path, tiny_encoder_dir, capsys):
    broken = tmp_path / "encoder"
    shutil.copytree(tiny_encoder_dir, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])  # a truncated download
    out = tmp_path / "run"
    assert main(["train", str(_recipe_file(tmp_path, broken, out)), "-q"]) == 2
    message = _one_error(capsys.readouterr().err)
    assert f"the encoder's weights in {broken} cannot be read" in message and "Fix: copy or download" in message
    assert not out.exists()


def test_resuming_a_finished_tuned_run_does_nothing_and_says_so(tmp_path, real_run, capsys):
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    assert main(["tune", str(run)]) == 0
    assert "validation_tuned" in (run / rundir.EVAL).read_text()
    capsys.readouterr()
    before = _snapshot(run)
    assert main(["train", "--resume", str(run), "-q"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "the run is finished" in out and "nothing to resume, nothing written" in out
    assert _snapshot(run) == before  # eval.json keeps validation_tuned/test_tuned; no report rewritten


HOLDER = """
import sys, time
from tailtune.utils.runlock import run_dir_lock
with run_dir_lock(sys.argv[1], command="tailtune train --resume " + sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def _held(path: Path):
    """Another process holding ``path``'s lock (as a running ``tailtune train --resume`` would)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command", ["tune", "evaluate", "report", "train-resume"])
def test_every_writer_of_a_run_dir_waits_for_no_one(command, real_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(real_run, run)
    argv = {
        "tune": ["tune", str(run)],
        "evaluate": ["evaluate", str(run)],
        "report": ["report", str(run)],
        "train-resume": ["train", "--resume", str(run), "-q"],
    }[command]
    with _held(run) as pid:
        before = _snapshot(run)  # the holder's lock file included
        assert main(argv) == 2
        assert _snapshot(run) == before
    message = _one_error(capsys.readouterr().err)
    assert f"is in use by pid {pid} on host" in message and f"tailtune train --resume {run}" in message


def test_an_ensemble_folder_being_written_is_not_written_twice(real_run, tmp_path, capsys):
    other, ens = tmp_path / "other", tmp_path / "ens"
    shutil.copytree(real_run, other)
    argv = ["ensemble", str(real_run), str(other), "--out", str(ens)]
    assert main(argv) == 0  # an ensemble folder may be re-written ...
    capsys.readouterr()
    with _held(ens) as pid:  # ... but not while another process writes it
        before = _snapshot(ens)
        assert main(argv) == 2
        assert _snapshot(ens) == before
    assert f"is in use by pid {pid} on host" in _one_error(capsys.readouterr().err)


def test_a_binary_run_without_validation_positives_keeps_the_default_rule(tmp_path, tiny_encoder_dir, capsys):
    """The issue's case: one positive in a single file, the carved validation split has none. ``tune``
    used to keep temperature 100 and threshold 0.75 on the strength of an out-of-bag "gain"."""
    data = tmp_path / "all.csv"
    rows = [f"message number {i} good,ham" for i in range(59)] + ["buy cheap pills now,spam"]
    data.write_text("text,labels\n" + "\n".join(rows) + "\n", encoding="utf-8")
    recipe = tiny_recipe("binary", data, tiny_encoder_dir, tmp_path / "run")
    recipe["train"]["epochs"] = 1
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")
    assert main(["train", str(path), "-q"]) == 0
    capsys.readouterr()
    assert main(["tune", str(tmp_path / "run")]) == 0
    err = " ".join(capsys.readouterr().err.split())
    post = yaml.safe_load((tmp_path / "run" / rundir.POSTPROCESS).read_text())
    assert post["temperature"] is None and post["thresholds"] is None
    assert "0 positive(s) (spam)" in err and "the default rule is kept" in err
    assert "temperature not fitted" in err
