"""``tailtune train --resume``: a run killed (SIGKILL) after its epoch-1 checkpoint, resumed, ends
with the same history and eval.json as an uninterrupted run (CPU, fixed seed)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml
from tiny_runs import tiny_recipe

from tailtune.cli.main import main
from tailtune.utils import rundir
from tailtune.utils.io import read_jsonl

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import sys, time
from transformers import TrainerCallback
from tailtune.recipe import load_recipe
from tailtune.training import train

class WaitToBeKilled(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        print("saved", state.global_step, flush=True)
        time.sleep(300)  # the test kills this process here, after the epoch-1 checkpoint

train(load_recipe(sys.argv[1]), callbacks=[WaitToBeKilled()])
"""


def _strip(rows):
    return [{k: v for k, v in r.items() if k not in ("time_s", "eval_time_s")} for r in rows]


def _complete_checkpoint(run: Path) -> bool:
    from tailtune.training.run import find_checkpoint

    return find_checkpoint(run) is not None


def test_resume_after_kill_matches_uninterrupted(tiny_data, tiny_encoder_dir, tmp_path, capsys):
    data = tiny_data("multiclass")
    recipe = tiny_recipe("multiclass", data, tiny_encoder_dir, tmp_path / "x", sampler="class_balanced")
    recipe["train"]["epochs"] = 3
    recipe["early_stopping"] = {"metric": "macro_f1", "patience": 2}

    # uninterrupted reference, through the CLI
    ref_file = tmp_path / "ref.yaml"
    ref_file.write_text(yaml.safe_dump({**recipe, "output": str(tmp_path / "ref")}))
    assert main(["train", str(ref_file), "-q"]) == 0
    assert str(tmp_path / "ref") in capsys.readouterr().out

    # the same recipe in a child process, SIGKILLed right after its first checkpoint
    killed = tmp_path / "killed"
    kill_file = tmp_path / "killed.yaml"
    kill_file.write_text(yaml.safe_dump({**recipe, "output": str(killed)}))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(kill_file)], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 120
        while not _complete_checkpoint(killed):
            assert child.poll() is None, "the child ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.2)
        time.sleep(0.5)  # let it finish writing and reach the sleep in on_save
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert not (killed / rundir.EVAL).exists()
    assert [r["epoch"] for r in read_jsonl(killed / rundir.HISTORY)] == [1]

    assert main(["train", "--resume", str(killed), "-q"]) == 0
    ref_hist = read_jsonl(tmp_path / "ref" / rundir.HISTORY)
    got_hist = read_jsonl(killed / rundir.HISTORY)
    assert [r["epoch"] for r in got_hist] == [r["epoch"] for r in ref_hist]
    assert _strip(got_hist) == _strip(ref_hist)
    ref_eval = json.loads((tmp_path / "ref" / rundir.EVAL).read_text())
    assert json.loads((killed / rundir.EVAL).read_text()) == ref_eval


def test_resume_of_a_finished_or_unknown_dir_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
